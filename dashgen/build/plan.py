"""Stage 3: one panel per hint, queries built only from the names the exporter produced."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from dashgen.catalog import Catalog, DashboardSpec
from dashgen.verify.dashboards import ref_id
from dashgen.errors import DashgenError
from dashgen.families import Exported, ExportedMetric
from dashgen.hints import Average, Current, Heatmap, Hint, Increase, Quantiles, Rate, Threshold
from dashgen.units import panel_unit

PanelKind = Literal["timeseries", "stat", "gauge", "bargauge", "heatmap"]
GRID_WIDTH = 24

#: Grafana display units for the UCUM units people use; anything else shows as "short".
_RATE_UNITS = {"By": "Bps", "bit": "bps"}
#: Words PromQL's lexer reads as an operator, a modifier or a number wherever they stand
#: (case-insensitively), so a metric of that name cannot be selected by its bare name:
#: ``sum(on)`` and ``rate(bool[5m])`` do not parse, and ``inf`` parses as a number.
#: Checked against promtool and promql-parser in the tests.
_LEGACY_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LEGACY_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_NOT_BARE_NAMES = frozenset(
    {"atan2", "bool", "group_left", "group_right", "ignoring", "inf", "nan", "on"}
)


@dataclass(frozen=True)
class GridPos:
    x: int
    y: int
    w: int
    h: int


@dataclass(frozen=True)
class TargetPlan:
    ref_id: str
    expr: str
    legend: str
    instant: bool = False
    heatmap: bool = False


@dataclass(frozen=True)
class PanelPlan:
    id: int
    kind: PanelKind
    title: str
    description: str
    unit: str
    thresholds: tuple[Threshold, ...]
    targets: tuple[TargetPlan, ...]
    grid: GridPos
    metric: str


@dataclass(frozen=True)
class RowPlan:
    id: int
    title: str
    collapsed: bool
    grid: GridPos
    panels: tuple[PanelPlan, ...]


@dataclass(frozen=True)
class DashboardPlan:
    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    refresh: str
    time_from: str
    rows: tuple[RowPlan, ...]


def plan_dashboards(catalog: Catalog, exported: Exported) -> tuple[DashboardPlan, ...]:
    return tuple(plan_dashboard(d, exported.metrics) for d in catalog.dashboards)


def plan_dashboard(spec: DashboardSpec, metrics: Mapping[str, ExportedMetric]) -> DashboardPlan:
    """Lay rows out top to bottom and panels left to right, wrapping at 24 columns."""
    next_id = 1
    y = 0
    rows: list[RowPlan] = []
    for row in spec.rows:
        row_id, next_id = next_id, next_id + 1
        row_grid = GridPos(x=0, y=y, w=GRID_WIDTH, h=1)
        y += 1
        x, line_height = 0, 0
        panels: list[PanelPlan] = []
        for name in row.metrics:
            metric = metrics[name]
            for hint in metric.spec.hints:
                if x + hint.width > GRID_WIDTH:
                    x, y, line_height = 0, y + line_height, 0
                grid = GridPos(x=x, y=y, w=hint.width, h=hint.height)
                panels.append(_panel(next_id, metric, hint, grid))
                next_id += 1
                x += hint.width
                line_height = max(line_height, hint.height)
        y += line_height
        rows.append(RowPlan(row_id, row.title, row.collapsed, row_grid, tuple(panels)))
    return DashboardPlan(
        uid=spec.uid,
        title=spec.title,
        description=spec.description,
        tags=spec.tags,
        refresh=spec.refresh,
        time_from=spec.time_from,
        rows=tuple(rows),
    )


def selector(name: str) -> str:
    """The PromQL that selects metric ``name``: the bare name, or ``{__name__="on"}`` where
    the bare name would read as a keyword or is no legacy name (``a.b``, stored as it is by
    an OTLP server that does not translate)."""
    if name.lower() in _NOT_BARE_NAMES or not _LEGACY_NAME.fullmatch(name):
        return f'{{__name__="{_quoted(name)}"}}'
    return name


def _quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')


@dataclass(frozen=True)
class _Grouping:
    """The labels a panel groups by, as ``by (...)`` and legends can name them.

    Before Prometheus 3, ``by (...)`` takes only legacy names, and Prometheus 3's quoted form
    (``by ("http.route")``) is refused by VictoriaMetrics. So a label stored as it is
    (``http.route``) is first copied to its legacy spelling with ``label_replace``, which
    every engine runs, and grouped by that.
    """

    labels: tuple[str, ...]
    copies: tuple[tuple[str, str], ...]
    """(legacy name, stored name) for each stored name ``by (...)`` cannot take."""

    def agg(self, operator: str, inner: str, first: Sequence[str] = ()) -> str:
        """``sum by (a, b) (inner)``, or ``sum(inner)`` with no grouping."""
        labels = [*first, *self.labels]
        for legacy, stored in self.copies:
            inner = f'label_replace({inner}, "{legacy}", "$1", "{_quoted(stored)}", "(.*)")'
        return (
            f"{operator} by ({', '.join(labels)}) ({inner})" if labels else f"{operator}({inner})"
        )


def _grouping(metric: ExportedMetric, attributes: Sequence[str]) -> _Grouping:
    labels: list[str] = []
    copies: list[tuple[str, str]] = []
    for attribute in attributes:
        stored = metric.labels[attribute]
        if _LEGACY_LABEL.fullmatch(stored):
            labels.append(stored)
            continue
        legacy = re.sub(r"[^a-zA-Z0-9_]", "_", stored)
        legacy = f"_{legacy}" if legacy[0].isdigit() else legacy
        if legacy in (metric.family.labels or ()) or legacy in labels:
            raise DashgenError(
                metric.spec.where,
                f"its label '{stored}' cannot be grouped by: PromQL's by (...) needs it "
                f"copied to '{legacy}', which the metric already has",
            )
        labels.append(legacy)
        copies.append((legacy, stored))
    return _Grouping(tuple(labels), tuple(copies))


def _legend(labels: Sequence[str], fallback: str, prefix: str = "") -> str:
    """``{{route}} {{code}}`` for grouped series, else the fallback; prefixed if asked."""
    text = " ".join(f"{{{{{label}}}}}" for label in labels) if labels else fallback
    return f"{prefix} {text}".strip() if prefix else text


def _panel(panel_id: int, metric: ExportedMetric, hint: Hint, grid: GridPos) -> PanelPlan:
    spec = metric.spec
    grouping = _grouping(metric, hint.by)
    by = grouping.labels
    legend = hint.legend if hint.legend is not None else _legend(by, spec.name)
    base_unit = panel_unit(spec.unit, "short")
    kind: PanelKind = "timeseries"
    unit = base_unit
    title_suffix: str
    targets: tuple[TargetPlan, ...]
    value = selector(metric.value_sample)
    bucket = selector(metric.bucket_sample or "")
    total = selector(metric.sum_sample or "")
    match hint:
        case Rate():
            title_suffix = "rate"
            unit = _RATE_UNITS.get(spec.unit, "ops")
            expr = grouping.agg("sum", f"rate({value}[$__rate_interval])")
            targets = (TargetPlan("A", expr, legend),)
        case Increase():
            title_suffix = "increase over range"
            kind = "stat"
            expr = grouping.agg("sum", f"increase({value}[$__range])")
            targets = (TargetPlan("A", expr, legend, instant=True),)
        case Quantiles():
            title_suffix = "/".join(f"p{q * 100:g}" for q in hint.quantiles)
            buckets = grouping.agg("sum", f"rate({bucket}[$__rate_interval])", first=["le"])
            targets = tuple(
                TargetPlan(
                    ref_id(i),
                    f"histogram_quantile({q:g}, {buckets})",
                    hint.legend if hint.legend is not None else _legend(by, "", f"p{q * 100:g}"),
                )
                for i, q in enumerate(hint.quantiles)
            )
        case Heatmap():
            title_suffix = "distribution"
            kind = "heatmap"
            expr = _Grouping(("le",), ()).agg("sum", f"increase({bucket}[$__rate_interval])")
            targets = (TargetPlan("A", expr, "{{le}}", heatmap=True),)
        case Average():
            title_suffix = "average"
            sums = grouping.agg("sum", f"rate({total}[$__rate_interval])")
            count = grouping.agg("sum", f"rate({value}[$__rate_interval])")
            expr = f"{sums} / {count}"
            targets = (TargetPlan("A", expr, legend),)
        case Current():
            title_suffix = "current"
            kind = hint.style
            expr = grouping.agg(hint.agg, value)
            instant = hint.style in ("gauge", "bargauge")
            targets = (TargetPlan("A", expr, legend, instant=instant),)
        case _:
            raise TypeError(f"unknown hint {type(hint).__name__}")
    return PanelPlan(
        id=panel_id,
        kind=kind,
        title=hint.title if hint.title is not None else f"{spec.name} · {title_suffix}",
        description=hint.description if hint.description is not None else spec.description,
        unit=hint.unit if hint.unit is not None else unit,
        thresholds=hint.thresholds,
        targets=targets,
        grid=grid,
        metric=spec.name,
    )
