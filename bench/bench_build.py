"""Benchmark `dashgen build` on synthetic catalogs against the import floor, in one run.

    python bench/bench_build.py [--families 1000 10000] [--repeat 3]

Each figure is the best of ``--repeat`` runs of a fresh process, so the import floor
(``import grafanalib.core, opentelemetry.sdk.metrics, opentelemetry.exporter.prometheus,
typer``) measured in the same run is the baseline every build is compared with.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FLOOR = (
    "import grafanalib.core, opentelemetry.sdk.metrics, opentelemetry.exporter.prometheus, typer"
)
_RUN_BUILD = """
import resource, sys
from dashgen.cli import app
try:
    app(["build", "--project", sys.argv[1]], prog_name="dashgen")
except SystemExit as exit:
    assert not exit.code, exit.code
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""
_KINDS = [
    ("Counter", "hints.Rate(by=('route',))"),
    ("Histogram", "[hints.Quantiles(by=('route',)), hints.Heatmap()]"),
    ("Gauge", "hints.Current(style='stat')"),
    ("UpDownCounter", "hints.Current(by=('route',))"),
    ("ObservableCounter", "hints.Increase()"),
    ("ObservableGauge", "hints.Current(style='bargauge', by=('route',))"),
    ("ObservableUpDownCounter", "hints.Current(style='gauge')"),
    ("Histogram", "hints.Average(by=('route',))"),
]


def write_catalog(root: Path, families: int, dashboards: int = 50) -> None:
    """``families`` metrics spread evenly over ``dashboards`` source modules."""
    sources = root / "src"
    sources.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.dashgen]\nsources = "src"\noutput = "out"\n')
    per_board = families // dashboards
    for board in range(dashboards):
        lines = ["from dashgen import *", "from dashgen import hints", ""]
        names = []
        for index in range(per_board):
            kind, hint = _KINDS[(board + index) % len(_KINDS)]
            name = f"M{index}"
            names.append(name)
            lines.append(
                f"{name} = {kind}('svc{board}.area{index % 7}.metric{index}', unit='ms', "
                f"labels=['route', 'status'], hint={hint})"
            )
        rows = ", ".join(
            f"Row('row {r}', [{', '.join(names[r::5])}])" for r in range(min(5, len(names)))
        )
        lines.append(f"D = Dashboard('Board {board}', rows=[{rows}])")
        (sources / f"board_{board:03}.py").write_text("\n".join(lines) + "\n")


def timed(args: list[str]) -> tuple[float, int]:
    """Wall seconds of a fresh process, and its peak RSS in KiB when it reports one."""
    start = time.perf_counter()
    done = subprocess.run(args, capture_output=True, text=True, check=True)
    elapsed = time.perf_counter() - start
    last = done.stderr.strip().splitlines()[-1:] or ["0"]
    return elapsed, int(last[0]) if last[0].isdigit() else 0


def best(args: list[str], repeat: int) -> tuple[float, int]:
    runs = [timed(args) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--repeat", type=int, default=3)
    options = parser.parse_args()
    floor, _ = best([sys.executable, "-c", FLOOR], options.repeat)
    print(f"import floor: {floor:.3f} s")
    per_family = []
    for families in options.families:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_catalog(root, families)
            # Wipe the output between runs so every run really writes all files.
            wall, rss = best([sys.executable, "-c", _RUN_BUILD, str(root)], 1)
            for _ in range(options.repeat - 1):
                subprocess.run(["rm", "-rf", str(root / "out")], check=True)
                again, again_rss = timed([sys.executable, "-c", _RUN_BUILD, str(root)])
                wall, rss = min(wall, again), max(rss, again_rss)
            written = len(list((root / "out").glob("*.json")))
        above = wall - floor
        per_family.append((families, above / families))
        print(
            f"{families:>6} families / {written} dashboards: {wall:.3f} s wall "
            f"({above:+.3f} s over the floor, {wall / floor:.2f}x floor), "
            f"peak RSS {rss / 1024:.0f} MiB, {above / families * 1e3:.3f} ms/family"
        )
    if len(per_family) > 1:
        (small, small_cost), (large, large_cost) = per_family[0], per_family[-1]
        print(
            f"linearity: cost per family at {large} is {large_cost / small_cost:.2f}x "
            f"the cost at {small} (1.00 = linear)"
        )


if __name__ == "__main__":
    main()
