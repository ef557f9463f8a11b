"""Benchmark `dashgen verify` against two baselines measured in the same run.

    python bench/bench_verify.py [--families 1000] [--repeat 3]

Baselines, on the same synthetic catalog (1,000 families over 50 dashboards):
- the import floor (grafanalib, the OTel SDK and exporter, typer);
- a seed-000-style contract test: pytest + PrometheusMetricReader + regex tokenizer.
``dashgen verify`` is timed cold (``--no-cache``: the exporter and renderer run) and as a
memo hit (the inputs are those of the build just before). Each figure is the best of
``--repeat`` fresh processes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_build import FLOOR, best, write_catalog

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_catalog(root, options.families)
        dashgen = [sys.executable, "-m", "dashgen"]
        subprocess.run([*dashgen, "build", "--project", str(root)], check=True, capture_output=True)
        floor, _ = best([sys.executable, "-c", FLOOR], options.repeat)
        command = [*dashgen, "verify", "--project", str(root)]
        cold, _ = best([*command, "--no-cache"], options.repeat)
        warm, _ = best(command, options.repeat)  # the build above left the memo
        os.environ["DASHGEN_BENCH_ROOT"] = str(root)
        seed, _ = best(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
             str(HERE / "seed_style_contract.py")],
            options.repeat,
        )  # fmt: skip
    print(f"catalog: {options.families} families over 50 dashboards")
    print(f"import floor:               {floor:.3f} s")
    print(f"seed-style contract test:   {seed:.3f} s")
    for label, verify in (("cold (--no-cache)", cold), ("memo hit", warm)):
        print(
            f"dashgen verify, {label + ':':18} {verify:.3f} s = {verify / seed:.2f}x the "
            f"seed-style test (target <= 0.50x), floor {verify - floor:+.3f} s (target <= +1.0 s)"
        )


if __name__ == "__main__":
    main()
