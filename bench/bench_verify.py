"""Benchmark `dashgen verify` against a seed-style contract test, in one run.

    python bench/bench_verify.py [--families 5000] [--rounds 7]

Baseline: the contract test of seed 000 as that team wrote it (``seed_style_contract.py``:
pytest, the real PrometheusMetricReader, a regex tokenizer), run as a user runs it, with
pytest's plugin autoloading off. It runs warm (the sources' ``__pycache__`` left by the run
before) and cold (that ``__pycache__`` removed first: a fresh clone, as in CI). ``dashgen
verify`` runs warm (a memo hit: the build just before left it) and cold (``--no-cache``:
the sources are compiled and imported, the exporter runs, every query is parsed), once on
the output dir (which also renders every file, to find stale ones) and once on a copy of
its dashboards as a hand-written dir (what the seed test checks). Warm is compared with
the seed warm, cold with the seed cold; cold against the seed warm is printed too. Also
the import floor (grafanalib, the OTel SDK and exporter, typer). All commands alternate
round-robin (see ``measure.py``); ratios are medians of per-round ratios. Targets: warm
<= 0.3x, cold <= 1.0x.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_build import FLOOR, write_catalog
from measure import LEAN, Command, Run, alternate, load_note, median_ratio, median_wall

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
        hand = root / "hand"
        hand.mkdir()
        for path in (root / "out").glob("*.json"):
            shutil.copy(path, hand)
        verify = [*dashgen, "verify", "--project", str(root)]
        seed = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                str(HERE / "seed_style_contract.py")]  # fmt: skip
        seed_env = {**LEAN, "DASHGEN_BENCH_ROOT": str(root)}
        bytecode = root / "src" / "__pycache__"
        forget = [sys.executable, "-c", f"import shutil; shutil.rmtree({str(bytecode)!r}, True)"]
        runs = alternate(
            {
                "floor": Command([sys.executable, "-c", FLOOR]),
                "seed": Command(seed, env=seed_env),
                "seed cold": Command(seed, env=seed_env, before=forget),
                "warm": Command(verify),
                "cold": Command([*verify, "--no-cache"]),
                "cold hand": Command([*verify, "--no-cache", str(hand)]),
            },
            options.rounds,
        )
    print(f"catalog: {options.families} families over 50 dashboards; {load_note()}")
    print(f"import floor:                     {median_wall(runs['floor']):.3f} s (median)")
    print(f"seed-style contract test (lean):  {median_wall(runs['seed']):.3f} s warm, "
          f"{median_wall(runs['seed cold']):.3f} s cold (median)")  # fmt: skip
    _report("memo hit", runs["warm"], runs["seed"], "warm", 0.3, runs["floor"])
    for label, key in (("cold, output dir", "cold"), ("cold, hand-written", "cold hand")):
        _report(label, runs[key], runs["seed cold"], "cold", 1.0, runs["floor"])
        print(f"{'':36}({median_ratio(runs[key], runs['seed']):.2f}x the seed test warm)")


def _report(
    label: str, runs: list[Run], seed: list[Run], state: str, target: float, floor: list[Run]
) -> None:
    print(
        f"dashgen verify, {label + ':':19} {median_wall(runs):.3f} s = "
        f"{median_ratio(runs, seed):.2f}x the seed test {state} (target <= {target:.2f}x), "
        f"{median_ratio(runs, floor):.2f}x the import floor"
    )


if __name__ == "__main__":
    main()
