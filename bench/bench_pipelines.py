"""Benchmark `dashgen verify` on each export path, against the default path, in one run.

    python bench/bench_pipelines.py [--families 5000] [--vm-families 1000] [--rounds 5]

The same synthetic catalog and dashboards, verified cold (``--no-cache``, so the export path
really runs) with ``--pipeline prometheus-exporter`` (the baseline) and the path measured,
the dashboards built for each path first, so that every verify is clean:

- ``otlp`` (the real SDK and OTLP/HTTP exporter to a loopback receiver, then the
  translator) at ``--families``: target within 1.2x;
- ``victoriametrics`` (the same payload into a real VictoriaMetrics started for the run,
  read back from its API) at ``--vm-families``: target within 2 s above the baseline.

Commands alternate round-robin (``measure.py``); a ratio or a difference is the median of
the per-round ones.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench_build import write_catalog
from measure import (
    Command,
    Run,
    alternate,
    load_note,
    median_difference,
    median_ratio,
    median_wall,
)

BASELINE = "prometheus-exporter"


def verify_runs(pipeline: str, families: int, rounds: int) -> dict[str, list[Run]]:
    """``pipeline`` and the baseline, cold verify, alternating."""
    with tempfile.TemporaryDirectory() as tmp:
        commands = {}
        for name in (BASELINE, pipeline):
            root = Path(tmp) / name
            write_catalog(root, families)
            if name == "victoriametrics":
                with (root / "pyproject.toml").open("a") as config:
                    config.write("prometheus_naming = true\n")
            dashgen = [sys.executable, "-m", "dashgen"]
            flags = ["--project", str(root), "--pipeline", name]
            subprocess.run([*dashgen, "build", *flags], check=True, capture_output=True)
            shutil.rmtree(root / ".dashgen")
            commands[name] = Command([*dashgen, "verify", *flags, "--no-cache"])
        return alternate(commands, rounds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, default=5000)
    parser.add_argument("--vm-families", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    print(load_note())
    otlp = verify_runs("otlp", options.families, options.rounds)
    print(f"{options.families} families over 50 dashboards, verify --no-cache:")
    print(f"  {BASELINE}: {median_wall(otlp[BASELINE]):.3f} s")
    print(
        f"  otlp:                {median_wall(otlp['otlp']):.3f} s = "
        f"{median_ratio(otlp['otlp'], otlp[BASELINE]):.2f}x (target <= 1.20x)"
    )
    vm = verify_runs("victoriametrics", options.vm_families, options.rounds)
    print(f"{options.vm_families} families, verify --no-cache:")
    print(f"  {BASELINE}: {median_wall(vm[BASELINE]):.3f} s")
    print(
        f"  victoriametrics:     {median_wall(vm['victoriametrics']):.3f} s = "
        f"+{median_difference(vm['victoriametrics'], vm[BASELINE]):.2f} s, server start "
        "included (target <= +2 s)"
    )


if __name__ == "__main__":
    main()
