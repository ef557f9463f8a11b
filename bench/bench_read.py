"""Benchmark reading dashboards: every query kind against panels only, in one run.

    python bench/bench_read.py [--rounds 10]

Reads the 37 corpus dashboards (tests/corpus/dashboards) the way verify does, parsing every
query: panels, library panels, template variables and annotations. The baseline is the same
reader limited to panels, as dashgen read dashboards before variables and annotations
counted; a third command only imports dashgen, so that the cost above the import shows.
Commands alternate round-robin (``measure.py``). Targets: every kind within 1.3x of panels
only, and under 0.5 s above the import.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from measure import Command, alternate, load_note, median_ratio, median_wall

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "corpus" / "dashboards"
IMPORT = "import pathlib, dashgen.verify.dashboard_files"
READ = f"{IMPORT}; dashgen.verify.dashboard_files.read_dashboards(pathlib.Path({str(CORPUS)!r}))"
PANELS_ONLY = (
    "import dashgen.verify.dashboards as d; "
    "d._variable_targets = d._annotation_targets = lambda *a: iter(()); " + READ
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    options = parser.parse_args()
    python = [sys.executable, "-c"]
    commands = {
        "import": Command([*python, IMPORT]),
        "panels": Command([*python, PANELS_ONLY]),
        "every kind": Command([*python, READ]),
    }
    runs = alternate(commands, options.rounds)
    imported, panels, every = (median_wall(runs[name]) for name in commands)
    print(f"37 corpus dashboards; {load_note()}")
    print(f"import dashgen:              {imported:.3f} s")
    print(f"read, panels only:           {panels:.3f} s")
    print(
        f"read, every query kind:      {every:.3f} s = "
        f"{median_ratio(runs['every kind'], runs['panels']):.2f}x panels only (target <= 1.30x), "
        f"{every - imported:.3f} s above the import (target < 0.5 s)"
    )


if __name__ == "__main__":
    main()
