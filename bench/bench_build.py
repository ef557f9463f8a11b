"""Benchmark `dashgen build` against grafanalib's own `generate-dashboards`, in one run.

    python bench/bench_build.py [--families 1000 5000] [--rounds 5]

Baseline: the same dashboards (same panels, queries, legends and grid) written by hand in
grafanalib, one ``*.dashboard.py`` per dashboard, turned into JSON by grafanalib's
``generate-dashboards``: what a team that writes dashboards in grafanalib runs today. dashgen
does more (the real exporter names every query, the schema check, an atomic write), so the
target is parity: build <= 1.0x the baseline at 5,000 families. Also the import floor
(grafanalib, the OTel SDK and exporter, typer). Every build writes into a wiped output dir
with no memo of an earlier build (which would make it a no-op). Both sides keep their
compiled code, as a user's second run has it: the baseline the ``__pycache__`` that
grafanalib's loader writes beside each ``*.dashboard.py``, dashgen its cache of compiled
sources (``.dashgen/cache/sources``).
Commands alternate round-robin in fresh processes (``measure.py``); ratios are medians of
per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from measure import Command, alternate, load_note, median_ratio, median_wall

FLOOR = (
    "import grafanalib.core, opentelemetry.sdk.metrics, opentelemetry.exporter.prometheus, typer"
)
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


_BASELINE = """\
from grafanalib.core import (
    BarGauge, Dashboard, GaugePanel, GridPos, Heatmap, RowPanel, Stat, Target, TimeSeries,
)

PANELS = {panels!r}
KINDS = {{"timeseries": TimeSeries, "stat": Stat, "gauge": GaugePanel, "bargauge": BarGauge,
         "heatmap": Heatmap}}


def panel(kind, title, grid, targets):
    targets = [Target(expr=expr, legendFormat=legend, refId=ref) for expr, legend, ref in targets]
    if kind == "row":
        return RowPanel(title=title, gridPos=GridPos(*grid))
    return KINDS[kind](title=title, gridPos=GridPos(*grid), targets=targets)


dashboard = Dashboard(title={title!r}, uid={uid!r}, panels=[panel(*p) for p in PANELS])
"""


def write_grafanalib_baseline(built: Path, into: Path) -> None:
    """One hand-written-style grafanalib module per dashboard dashgen built."""
    into.mkdir()
    for path in sorted(built.glob("*.json")):
        board = json.loads(path.read_text())
        panels = []
        for item in board["panels"]:
            for panel in [item, *item.get("panels", [])]:
                grid = panel["gridPos"]
                targets = [
                    (t["expr"], t.get("legendFormat", ""), t["refId"])
                    for t in panel.get("targets", [])
                ]
                grid_args = (grid["h"], grid["w"], grid["x"], grid["y"])
                panels.append((panel["type"], panel["title"], grid_args, targets))
        text = _BASELINE.format(panels=panels, title=board["title"], uid=board["uid"])
        (into / f"{path.stem}.dashboard.py").write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", type=int, nargs="+", default=[1000, 5000])
    parser.add_argument("--rounds", type=int, default=5)
    options = parser.parse_args()
    generate = str(Path(sys.executable).with_name("generate-dashboards"))
    print(load_note())
    for families in options.families:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            write_catalog(root, families)
            build = [sys.executable, "-m", "dashgen", "build", "--project", str(root)]
            subprocess.run(build, check=True, capture_output=True)
            baseline = root / "grafanalib"
            write_grafanalib_baseline(root / "out", baseline)
            modules = sorted(str(p) for p in baseline.glob("*.dashboard.py"))
            cache = root / ".dashgen" / "cache"
            memos = [str(cache / "code-side.memo"), str(cache / "contract.memo")]
            wipe = ["rm", "-rf", str(root / "out"), *memos]
            runs = alternate(
                {
                    "floor": Command([sys.executable, "-c", FLOOR]),
                    "grafanalib": Command([generate, *modules]),
                    "dashgen": Command(build, before=wipe),
                },
                options.rounds,
            )
            written = len(list((root / "out").glob("*.json")))
        ratio = median_ratio(runs["dashgen"], runs["grafanalib"])
        print(
            f"{families:>6} families / {written} dashboards: dashgen build "
            f"{median_wall(runs['dashgen']):.3f} s, grafanalib generate-dashboards "
            f"{median_wall(runs['grafanalib']):.3f} s: {ratio:.2f}x (target <= 1.00x); "
            f"import floor {median_wall(runs['floor']):.3f} s"
        )


if __name__ == "__main__":
    main()
