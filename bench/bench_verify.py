"""Benchmark `dashgen verify` against a seed-style contract test, in one run.

    python bench/bench_verify.py [--families 5000] [--rounds 7]

Baseline: the contract test of seed 000 as that team wrote it (``seed_style_contract.py``:
pytest, the real PrometheusMetricReader, a regex tokenizer), run as a user runs it, with
pytest's plugin autoloading off. Also the import floor (grafanalib, the OTel SDK and
exporter, typer). ``dashgen verify`` runs warm (a memo hit: the build just before left it)
and cold (``--no-cache``: the exporter runs). All four alternate round-robin (see
``measure.py``); ratios are medians of per-round ratios. Targets: warm <= 0.3x, cold <= 1.0x.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_build import FLOOR, write_catalog
from measure import LEAN, Command, alternate, load_note, median_ratio, median_wall

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_catalog(root, options.families)
        dashgen = [sys.executable, "-m", "dashgen"]
        subprocess.run([*dashgen, "build", "--project", str(root)], check=True, capture_output=True)
        verify = [*dashgen, "verify", "--project", str(root)]
        seed = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                str(HERE / "seed_style_contract.py")]  # fmt: skip
        runs = alternate(
            {
                "floor": Command([sys.executable, "-c", FLOOR]),
                "seed": Command(seed, env={**LEAN, "DASHGEN_BENCH_ROOT": str(root)}),
                "warm": Command(verify),
                "cold": Command([*verify, "--no-cache"]),
            },
            options.rounds,
        )
    print(f"catalog: {options.families} families over 50 dashboards; {load_note()}")
    print(f"import floor:                   {median_wall(runs['floor']):.3f} s (median)")
    print(f"seed-style contract test (lean): {median_wall(runs['seed']):.3f} s (median)")
    for label, key, target in (("memo hit", "warm", 0.3), ("cold (--no-cache)", "cold", 1.0)):
        ratio = median_ratio(runs[key], runs["seed"])
        print(
            f"dashgen verify, {label + ':':18} {median_wall(runs[key]):.3f} s = {ratio:.2f}x "
            f"the seed-style test (target <= {target:.2f}x), "
            f"{median_ratio(runs[key], runs['floor']):.2f}x the import floor"
        )


if __name__ == "__main__":
    main()
