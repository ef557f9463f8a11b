"""Benchmark `dashgen verify` on each export path, against the default path, in one run.

    python bench/bench_pipelines.py [--families 5000] [--rounds 5]

The same synthetic catalog and dashboards, verified cold (``--no-cache``, so the export path
really runs) with ``--pipeline prometheus-exporter`` (the baseline) and ``--pipeline otlp``
(the real SDK and OTLP/HTTP exporter to a loopback receiver, then the translator). The
dashboards are built for each path first, so both verifies are clean. Commands alternate
round-robin (``measure.py``); the ratio is the median of per-round ratios. Target: otlp
within 1.2x.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_build import write_catalog
from measure import Command, alternate, load_note, median_ratio, median_wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        commands = {}
        for pipeline in ("prometheus-exporter", "otlp"):
            root = Path(tmp) / pipeline
            write_catalog(root, options.families)
            dashgen = [sys.executable, "-m", "dashgen"]
            flags = ["--project", str(root), "--pipeline", pipeline]
            subprocess.run([*dashgen, "build", *flags], check=True, capture_output=True)
            shutil.rmtree(root / ".dashgen")
            commands[pipeline] = Command([*dashgen, "verify", *flags, "--no-cache"])
        runs = alternate(commands, options.rounds)
    ratio = median_ratio(runs["otlp"], runs["prometheus-exporter"])
    print(f"catalog: {options.families} families over 50 dashboards; {load_note()}")
    print(
        f"verify --no-cache, prometheus-exporter: {median_wall(runs['prometheus-exporter']):.3f} s"
    )
    print(
        f"verify --no-cache, otlp:                {median_wall(runs['otlp']):.3f} s = "
        f"{ratio:.2f}x (target <= 1.20x)"
    )


if __name__ == "__main__":
    main()
