"""Stage 3: one panel per hint, queries built only from the names the exporter produced."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from dashgen.build.identity import assign_ids
from dashgen.catalog import Catalog, DashboardSpec, RowSpec
from dashgen.declare import PanelSpec
from dashgen.errors import DashgenError
from dashgen.expr import Expr, Ratio, Recorded, Scaled, Selection, selections
from dashgen.families import Exported, ExportedMetric
from dashgen.hints import Average, Current, Heatmap, Hint, Increase, Quantiles, Rate, Threshold
from dashgen.query_checks import kept_keys
from dashgen.rules import RECORDING_NAME, RULE_WINDOW
from dashgen.units import panel_unit
from dashgen.vocabulary import implied_base, ref_id

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
    threshold_base: str
    """The colour below the first threshold (declared, or implied from the steps)."""
    targets: tuple[TargetPlan, ...]
    grid: GridPos


@dataclass(frozen=True)
class RowPlan:
    id: int
    title: str
    collapsed: bool
    grid: GridPos
    panels: tuple[PanelPlan, ...]


@dataclass(frozen=True)
class VariablePlan:
    """A multi-value variable with All, and the label it filters every panel by."""

    name: str
    query: str
    """``label_values(...)`` over the dashboard's own metrics, which Grafana runs for the
    variable's options."""


Matcher = tuple[str, str]
"""(stored label, regex): the matcher ``label=~"regex"`` of a selector (``"$job"`` for a
variable)."""


@dataclass(frozen=True)
class DashboardPlan:
    uid: str
    folder: str
    """The Grafana folder (a subdir of the output dir); "" for General."""
    title: str
    description: str
    tags: tuple[str, ...]
    refresh: str
    time_from: str
    rows: tuple[RowPlan, ...]
    link_tags: tuple[str, ...] = ()
    """Tags this dashboard shares with other generated ones: a link menu to them per tag."""
    variables: tuple[VariablePlan, ...] = ()

    @property
    def path(self) -> str:
        """The file's path in the output dir."""
        return f"{self.folder}/{self.uid}.json" if self.folder else f"{self.uid}.json"


def plan_dashboards(
    catalog: Catalog,
    exported: Exported,
    scrape_variables: Sequence[str] = (),
    part: slice = slice(None),
) -> tuple[DashboardPlan, ...]:
    """Every dashboard (or those of ``part``), linked to the others that share a tag with it."""
    plans = []
    for spec in catalog.dashboards[part]:
        others = {tag for d in catalog.dashboards if d is not spec for tag in d.tags}
        link_tags = tuple(sorted(set(spec.tags) & others))
        plan = plan_dashboard(spec, exported.metrics, scrape_variables)
        plans.append(replace(plan, link_tags=link_tags))
    return tuple(plans)


def plan_dashboard(
    spec: DashboardSpec,
    metrics: Mapping[str, ExportedMetric],
    scrape_variables: Sequence[str] = (),
) -> DashboardPlan:
    """Rows top to bottom, each packed into lines of 24 columns without holes; ids from
    what each row and panel is (see ``identity``), not from where it stands; every selector
    filtered by the dashboard's variables."""
    on_board = [metrics[name] for name in dict.fromkeys(n for r in spec.rows for n in r.shown)]
    variables, matchers = _variables(spec, on_board, scrape_variables)
    placed = [(row, _row_panels(row, metrics)) for row in spec.rows]
    row_keys = _ranked([f"row:{row.title}" for row, _ in placed])
    panel_keys = _ranked([_panel_key(panel) for _, panels in placed for panel in panels])
    ids = assign_ids([*row_keys, *panel_keys])
    keys = iter(panel_keys)
    y = 0
    rows: list[RowPlan] = []
    for (row, panels), row_key in zip(placed, row_keys, strict=True):
        row_grid = GridPos(x=0, y=y, w=GRID_WIDTH, h=1)
        y += 1
        planned: list[PanelPlan] = []
        for line in _lines([_look(panel).width for panel in panels]):
            for index, x, width in line:
                panel = panels[index]
                grid = GridPos(x=x, y=y, w=width, h=_look(panel).height)
                if isinstance(panel, PanelSpec):
                    planned.append(
                        _custom_panel(
                            ids[next(keys)], panel, grid, metrics, matchers, scrape_variables
                        )
                    )
                else:
                    metric, hint = panel
                    matched = matchers[metric.spec.name]
                    planned.append(_panel(ids[next(keys)], metric, hint, grid, matched))
            y += max(_look(panels[index]).height for index, _, _ in line)
        rows.append(RowPlan(ids[row_key], row.title, row.collapsed, row_grid, tuple(planned)))
    return DashboardPlan(
        uid=spec.uid,
        folder=spec.folder,
        title=spec.title,
        description=spec.description,
        tags=spec.tags,
        refresh=spec.refresh,
        time_from=spec.time_from,
        rows=tuple(rows),
        variables=variables,
    )


_Planned = tuple[ExportedMetric, Hint] | PanelSpec
"""One panel of a row: a metric's hint, or a custom panel."""


def _row_panels(row: RowSpec, metrics: Mapping[str, ExportedMetric]) -> list[_Planned]:
    panels: list[_Planned] = []
    for entry in row.entries:
        if isinstance(entry, PanelSpec):
            panels.append(entry)
        else:
            panels.extend((metrics[entry], hint) for hint in metrics[entry].spec.hints)
    return panels


def _panel_key(panel: _Planned) -> str:
    if isinstance(panel, PanelSpec):
        return f"custom:{panel.title}"
    metric, hint = panel
    return f"panel:{metric.spec.name}/{type(hint).__name__}"


def _look(panel: _Planned) -> Hint | PanelSpec:
    """What holds the panel's width and height."""
    return panel if isinstance(panel, PanelSpec) else panel[1]


def _custom_panel(
    panel_id: int,
    spec: PanelSpec,
    grid: GridPos,
    metrics: Mapping[str, ExportedMetric],
    matchers: Mapping[str, tuple[Matcher, ...]],
    levels: Sequence[str],
) -> PanelPlan:
    """A ``Panel``: each query rendered from the metrics it names, as the export path
    stores them, filtered by the dashboard's variables."""
    targets = []
    for index, expression in enumerate(spec.exprs):
        first = selections(expression)[0]
        by = grouping(metrics[first.metric], kept_keys(expression)).labels
        legend = spec.legend if spec.legend is not None else _legend(by, spec.title)
        expr = render_query(expression, metrics, matchers, levels)
        instant = spec.style in ("gauge", "bargauge")
        targets.append(TargetPlan(ref_id(index), expr, legend, instant=instant))
    thresholds = tuple(sorted(spec.thresholds, key=lambda step: step[0]))
    return PanelPlan(
        id=panel_id,
        kind=spec.style,
        title=spec.title,
        description=spec.description,
        unit=spec.unit,
        thresholds=thresholds,
        threshold_base=spec.base if spec.base is not None else implied_base(thresholds),
        targets=tuple(targets),
        grid=grid,
    )


def render_query(
    expression: Expr,
    metrics: Mapping[str, ExportedMetric],
    matchers: Mapping[str, tuple[Matcher, ...]],
    levels: Sequence[str],
    window: str | None = None,
    keep: bool = False,
) -> str:
    """The PromQL of ``expression``. ``levels``: the scrape's labels (``job``,
    ``instance``), which recording rules keep, for dashboards to filter their output by.
    For a rule, ``window`` replaces Grafana's windows; ``keep`` keeps the levels in every
    aggregation (a recording rule)."""
    kept = levels if keep else ()
    match expression:
        case Selection():
            metric = metrics[expression.metric]
            where = []
            for key, regex in expression.where:
                stored = metric.labels[key]
                # A label stored dotted is only in stores that take Prometheus 3's quoted
                # matcher (VictoriaMetrics too); by (...) is another matter (see _Grouping).
                label = stored if _LEGACY_LABEL.fullmatch(stored) else f'"{_quoted(stored)}"'
                where.append((label, _quoted(regex)))
            chosen = selector(metric.value_sample, (*matchers[metric.spec.name], *where))
            grouped = grouping(metric, expression.by)
            if expression.function == "current":
                return grouped.agg(expression.agg, chosen, kept)
            span = _window(expression.window, window)
            return grouped.agg("sum", f"{expression.function}({chosen}[{span}])", kept)
        case Ratio():
            numerator = render_query(expression.numerator, metrics, matchers, levels, window, keep)
            denominator = render_query(
                expression.denominator, metrics, matchers, levels, window, keep
            )
            return f"({numerator}) / ({denominator})"
        case Scaled():
            inner = render_query(expression.expr, metrics, matchers, levels, window, keep)
            return f"({inner}) / {expression.divisor:g}"
        case Recorded():
            return _render_recorded(expression, metrics, matchers, levels)


def _window(declared: str, rule_window: str | None) -> str:
    return rule_window if rule_window is not None and declared.startswith("$") else declared


def _render_recorded(
    expression: Recorded,
    metrics: Mapping[str, ExportedMetric],
    matchers: Mapping[str, tuple[Matcher, ...]],
    levels: Sequence[str],
) -> str:
    """A recording rule's output, re-aggregated, filtered by the matchers of the metric it
    is computed from on the labels the rule keeps."""
    first = metrics[selections(expression.source)[0].metric]
    kept = {*levels, *grouping(first, kept_keys(expression.source)).labels}
    chosen = [(label, regex) for label, regex in matchers[first.spec.name] if label in kept]
    name = recording_name(expression.source, expression.name, metrics, levels)
    return grouping(first, expression.by).agg(expression.agg, selector(name, chosen))


def recording_name(
    source: Expr,
    name: str | None,
    metrics: Mapping[str, ExportedMetric],
    levels: Sequence[str],
) -> str:
    """``level:metric:operation`` (Prometheus' convention): the labels the rule keeps, the
    sample it reads (``_total`` dropped, as the convention says for rates), and what it
    does (``rate5m``, ``increase1h``, ``max``)."""
    if name is not None:
        return name
    assert isinstance(source, Selection)  # the declaration requires a name otherwise
    metric = metrics[source.metric]
    level = "_".join([*levels, *grouping(metric, source.by).labels]) or "all"
    stem = re.sub(r"[^a-zA-Z0-9_]", "_", metric.value_sample.removesuffix("_total"))
    if source.function == "current":
        operation: str = source.agg
    else:
        operation = f"{source.function}{_window(source.window, RULE_WINDOW)}"
    named = f"{level}:{stem}:{operation}"
    if not RECORDING_NAME.fullmatch(named):
        raise DashgenError(
            metric.spec.where,
            f"a recording rule over it would be named '{named}', no level:metric:operation "
            "name: give the rule name=",
        )
    return named


def _variables(
    spec: DashboardSpec, metrics: Sequence[ExportedMetric], scrape_variables: Sequence[str]
) -> tuple[tuple[VariablePlan, ...], dict[str, tuple[Matcher, ...]]]:
    """A variable per scrape label (on every metric) and per declared filter (on the metrics
    that declare it), and each metric's matchers."""
    matchers: dict[str, list[Matcher]] = {m.spec.name: [] for m in metrics}
    variables = []
    for label in scrape_variables:
        for metric in metrics:
            matchers[metric.spec.name].append((label, f"${label}"))
        variables.append(_variable(label, metrics))
    for key in spec.filters:
        having = [m for m in metrics if key in m.spec.labels]
        stored = having[0].labels[key]
        if not _LEGACY_LABEL.fullmatch(stored) or stored in scrape_variables:
            raise DashgenError(
                f"{spec.file}:{spec.line}: dashboard '{spec.title}'",
                f"filter '{key}' is stored as label '{stored}', which cannot be a Grafana "
                "variable and matcher of its own here: drop the filter",
            )
        for metric in having:
            matchers[metric.spec.name].append((metric.labels[key], f"${stored}"))
        variables.append(_variable(stored, having))
    return tuple(variables), {name: tuple(found) for name, found in matchers.items()}


def _variable(label: str, metrics: Sequence[ExportedMetric]) -> VariablePlan:
    names = "|".join(sorted({re.escape(m.value_sample) for m in metrics}))
    return VariablePlan(label, f'label_values({{__name__=~"{_quoted(names)}"}}, {label})')


def _ranked(keys: Sequence[str]) -> list[str]:
    """Each key with its rank among equal ones (``x#0``, ``x#1``): a second quantiles panel
    of one metric is another panel."""
    seen: dict[str, int] = {}
    ranked = []
    for key in keys:
        seen[key] = seen.get(key, -1) + 1
        ranked.append(f"{key}#{seen[key]}")
    return ranked


_UNSET_WIDTH = 12
"""What a panel of unset width takes when it decides whether it still fits on a line."""


def _lines(widths: Sequence[int | None]) -> list[list[tuple[int, int, int]]]:
    """(panel index, x, width) of each panel, line by line, every line exactly 24 wide.
    Panels join a line while their widths (12 for an unset one) fit; then the unset ones
    share what the set ones leave, or, with none unset, the line's last panel stretches to
    close it: a hole in a dashboard is never the layout anyone meant."""
    lines: list[list[int]] = []
    used = GRID_WIDTH
    for index, width in enumerate(widths):
        wanted = _UNSET_WIDTH if width is None else width
        if used + wanted > GRID_WIDTH:
            lines.append([])
            used = 0
        lines[-1].append(index)
        used += wanted
    placed: list[list[tuple[int, int, int]]] = []
    for line in lines:
        shared = [i for i in line if widths[i] is None] or [line[-1]]
        free = GRID_WIDTH - sum(widths[i] or 0 for i in line if i not in shared)
        share = {
            i: free // len(shared) + (rank < free % len(shared)) for rank, i in enumerate(shared)
        }
        x = 0
        placed.append([])
        for i in line:
            width = share.get(i) or widths[i] or 0
            placed[-1].append((i, x, width))
            x += width
    return placed


def humanised(name: str) -> str:
    """A metric name as a panel title: ``shop.checkout.duration`` -> ``Shop checkout
    duration`` (a title says what is shown; the query says which series)."""
    words = re.sub(r"[._]+", " ", name).strip()
    return words[:1].upper() + words[1:]


def selector(name: str, matchers: Sequence[Matcher] = ()) -> str:
    """The PromQL that selects metric ``name`` where each matcher's label matches its
    regex: the bare name, or ``{__name__="on"}`` where the bare name would read as a
    keyword or is no legacy name (``a.b``, stored as it is by an OTLP server that does not
    translate)."""
    matched = [f'{label}=~"{regex}"' for label, regex in matchers]
    if name.lower() in _NOT_BARE_NAMES or not _LEGACY_NAME.fullmatch(name):
        by_name = f'__name__="{_quoted(name)}"'
        return "{" + ", ".join([by_name, *matched]) + "}"
    return name + "{" + ", ".join(matched) + "}" if matched else name


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


def grouping(metric: ExportedMetric, attributes: Sequence[str]) -> _Grouping:
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


def hint_targets(metric: ExportedMetric, hint: Hint) -> tuple[TargetPlan, ...]:
    """The queries of a hint's panel, filtered by no dashboard's variables: what an alert
    on the hint watches."""
    return _panel(0, metric, hint, GridPos(0, 0, GRID_WIDTH, hint.height)).targets


def _legend(labels: Sequence[str], fallback: str, prefix: str = "") -> str:
    """``{{route}} {{code}}`` for grouped series, else the fallback; prefixed if asked."""
    text = " ".join(f"{{{{{label}}}}}" for label in labels) if labels else fallback
    return f"{prefix} {text}".strip() if prefix else text


def _panel(
    panel_id: int,
    metric: ExportedMetric,
    hint: Hint,
    grid: GridPos,
    matchers: Sequence[Matcher] = (),
) -> PanelPlan:
    spec = metric.spec
    grouped = grouping(metric, hint.by)
    by = grouped.labels
    legend = hint.legend if hint.legend is not None else _legend(by, spec.name)
    base_unit = panel_unit(spec.unit, "short")
    kind: PanelKind = "timeseries"
    unit = base_unit
    title_suffix: str
    targets: tuple[TargetPlan, ...]
    value = selector(metric.value_sample, matchers)
    bucket = selector(metric.bucket_sample or "", matchers)
    total = selector(metric.sum_sample or "", matchers)
    match hint:
        case Rate():
            title_suffix = "per second"
            unit = _RATE_UNITS.get(spec.unit, "ops")
            expr = grouped.agg("sum", f"rate({value}[$__rate_interval])")
            targets = (TargetPlan("A", expr, legend),)
        case Increase():
            title_suffix = "in range"
            kind = "stat"
            expr = grouped.agg("sum", f"increase({value}[$__range])")
            targets = (TargetPlan("A", expr, legend, instant=True),)
        case Quantiles():
            title_suffix = "/".join(f"p{q * 100:g}" for q in hint.quantiles)
            buckets = grouped.agg("sum", f"rate({bucket}[$__rate_interval])", first=["le"])
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
            sums = grouped.agg("sum", f"rate({total}[$__rate_interval])")
            count = grouped.agg("sum", f"rate({value}[$__rate_interval])")
            expr = f"{sums} / {count}"
            targets = (TargetPlan("A", expr, legend),)
        case Current():
            title_suffix = ""
            kind = hint.style
            expr = grouped.agg(hint.agg, value)
            instant = hint.style in ("gauge", "bargauge")
            targets = (TargetPlan("A", expr, legend, instant=instant),)
        case _:
            raise TypeError(f"unknown hint {type(hint).__name__}")
    thresholds = tuple(sorted(hint.thresholds, key=lambda step: step[0]))  # as Grafana reads them
    return PanelPlan(
        id=panel_id,
        kind=kind,
        title=hint.title
        if hint.title is not None
        else f"{humanised(spec.name)} {title_suffix}".strip(),
        description=hint.description if hint.description is not None else spec.description,
        unit=hint.unit if hint.unit is not None else unit,
        thresholds=thresholds,
        threshold_base=hint.base if hint.base is not None else implied_base(thresholds),
        targets=targets,
        grid=grid,
    )
