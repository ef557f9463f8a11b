"""``verify --live``: every panel query, run over HTTP against a real TSDB, must draw data.

Static checks prove names exist; this proves each target returns series. Grafana's
variables are put in as Grafana would on a fresh load, every target runs as a range query
over the window, and what comes back is judged: an error, no series, a legend naming a
label the result lacks, or a query whose functions do not fit the metric's kind.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dashgen.errors import DashgenError
from dashgen.families import Family
from dashgen.live.feed import as_stored_by, feed_catalog, feed_otlp
from dashgen.live.scrape import Series
from dashgen.live.tsdb import (
    Engine,
    ExistingEndpoint,
    LocalServer,
    OtlpVictoriaMetricsServer,
    PrometheusServer,
    VictoriaMetricsServer,
    window_end_ms,
)
from dashgen.pipelines import Pipeline, PipelineName
from dashgen.verify.contract import LEGEND_LABEL, Finding
from dashgen.verify.dashboards import ALERT_RULE, RECORDING_RULE, DashboardQueries, ParsedTarget

if TYPE_CHECKING:
    from dashgen.catalog import Catalog
    from dashgen.verify.stages import LiveOptions

QUERY_ERROR = "query-error"
NO_DATA = "no-data"
KIND_MISMATCH = "kind-mismatch"

#: Grafana's default scrape interval, from which it derives ``$__rate_interval``.
SCRAPE_INTERVAL_S = 15
_VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::\w+)?\]\]|\$(\w+)")
_ERROR_HINT = "fix the query so that the server accepts it (the message says where)"
_NO_DATA_HINT = (
    "check the label values its matchers use, and that every metric it reads is recorded"
)


@dataclass(frozen=True)
class Window:
    """The time range every query covers, and the step Grafana would use over it."""

    start_s: float
    end_s: float
    step_s: int

    @property
    def range_s(self) -> int:
        return round(self.end_s - self.start_s)

    def builtins(self) -> dict[str, str]:
        """Grafana's global variables for this window (``$__rate_interval`` and friends)."""
        rate = max(4 * SCRAPE_INTERVAL_S, self.step_s + SCRAPE_INTERVAL_S)
        return {
            "__rate_interval": f"{rate}s",
            "__rate_interval_ms": str(rate * 1000),
            "__interval": f"{self.step_s}s",
            "__interval_ms": str(self.step_s * 1000),
            "__range": f"{self.range_s}s",
            "__range_s": str(self.range_s),
            "__range_ms": str(self.range_s * 1000),
        }


@dataclass(frozen=True)
class Timings:
    start_s: float = 0.0
    ingest_s: float = 0.0
    queries_s: float = 0.0


@dataclass(frozen=True)
class TargetOutcome:
    target: ParsedTarget
    query: str
    series: int
    findings: tuple[Finding, ...]


@dataclass(frozen=True)
class LiveResult:
    engine: str
    outcomes: tuple[TargetOutcome, ...]
    timings: Timings

    @property
    def findings(self) -> tuple[Finding, ...]:
        found = (f for outcome in self.outcomes for f in outcome.findings)
        return tuple(sorted(found, key=Finding.sort_key))

    @property
    def ok(self) -> bool:
        return not self.findings


def interpolate(expr: str, values: Mapping[str, str]) -> str:
    """Grafana's own variable interpolation: ``$x``, ``${x}``, ``${x:fmt}``, ``[[x]]``.

    Unknown variables stay as they are, so the server reports them.
    """

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2) or match.group(3)
        return values.get(name, match.group(0))

    return _VARIABLE.sub(value, expr)


def run_queries(
    dashboards: Sequence[DashboardQueries],
    families: Sequence[Family],
    engine: Engine,
    window: Window,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> tuple[TargetOutcome, ...]:
    """Every parsed PromQL target of every dashboard (panels and annotations; a variable's
    ``label_values(...)`` is no PromQL) through ``engine``; unparsable ones are left to the
    static check, which already reports them."""
    types = {sample: family.type for family in families for sample in family.samples}
    targets = [
        (d, t)
        for d in dashboards
        for t in d.targets
        if t.refs is not None and t.target.runs_as_promql
    ]
    outcomes = []
    for done, (dashboard, parsed) in enumerate(targets, start=1):
        text, must_draw = _what_runs(parsed)
        query = interpolate(text, {**window.builtins(), **dashboard.values})
        result = engine.query_range(query, window.start_s, window.end_s, window.step_s)
        findings = list(_kind_findings(parsed, types))
        if result.status == "error":
            message = f"the server rejects the query: {result.error}"
            findings.append(_finding(parsed, QUERY_ERROR, query, message, _ERROR_HINT))
        elif not result.series or result.values_count == 0:
            if must_draw:
                message = "returns no data over the window"
                findings.append(_finding(parsed, NO_DATA, query, message, _NO_DATA_HINT))
        else:
            findings += _legend_findings(parsed, result.series)
        outcomes.append(TargetOutcome(parsed, query, len(result.series), tuple(findings)))
        progress(done, len(targets))
    return tuple(outcomes)


def _what_runs(parsed: ParsedTarget) -> tuple[str, bool]:
    """The query to run and whether it must return data. An alert's ``x > 0.1`` has no
    series while it does not fire, so the ``x`` it watches runs instead, and must draw; an
    alert of any other form only has to run."""
    target = parsed.target
    if target.place != ALERT_RULE:
        return target.expr, True
    assert parsed.refs is not None
    compared = parsed.refs.compared
    return (target.expr, False) if compared is None else (compared, True)


def _finding(parsed: ParsedTarget, kind: str, subject: str, message: str, hint: str) -> Finding:
    return Finding.at(parsed.target, kind, subject, message, hint)


def _kind_findings(parsed: ParsedTarget, types: Mapping[str, str]) -> Iterator[Finding]:
    """Functions that cannot fit the data, whatever the server returns."""
    assert parsed.refs is not None
    for metric in sorted(parsed.refs.counter_inputs):
        if types.get(metric) == "gauge":
            yield _finding(
                parsed,
                KIND_MISMATCH,
                metric,
                f"rate()/increase() over `{metric}`, which is a gauge: the result is meaningless",
                "show a gauge's value directly (or use deriv()/delta()), or make it a counter",
            )
    if parsed.refs.quantiles_without_le:
        yield _finding(
            parsed,
            KIND_MISMATCH,
            "histogram_quantile",
            "histogram_quantile() over buckets aggregated without `le`",
            "keep `le` in the aggregation: sum by (le, ...) (rate(x_bucket[...]))",
        )


def _legend_findings(
    parsed: ParsedTarget, series: Sequence[Mapping[str, str]]
) -> Iterator[Finding]:
    for label in parsed.target.legend_labels:
        lacking = sum(label not in labels for labels in series)
        if lacking:
            yield _finding(
                parsed,
                LEGEND_LABEL,
                label,
                f"legend uses {{{{{label}}}}} but {lacking} of {len(series)} result series "
                f"have no `{label}` label",
                f"group by `{label}` in the query, or take it out of the legend",
            )


@contextmanager
def stopwatch(into: dict[str, float], key: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        into[key] = into.get(key, 0.0) + time.perf_counter() - started


LIVE_SCRAPES = 20
LIVE_STEP_S = 15
ENGINES = {"prometheus": PrometheusServer, "victoria-metrics": VictoriaMetricsServer}


def _embedded_engine(
    catalog: Catalog,
    pipeline: Pipeline,
    engine: str,
    end_ms: int,
    recorded: Sequence[Series] = (),
) -> LocalServer:
    """The embedded server, not yet started, with the catalog's history along the path the
    app deploys: OTLP into VictoriaMetrics itself for ``victoriametrics``; for the others,
    the pull exporter's samples under the names that path stores; and ``recorded``, what
    the recording rules wrote over the window."""
    window = {"scrapes": LIVE_SCRAPES, "step_s": LIVE_STEP_S, "end_ms": end_ms}
    if pipeline.name is PipelineName.VICTORIAMETRICS:
        if engine != "victoria-metrics":
            raise DashgenError(
                "--engine", "pipeline=victoriametrics is checked live on VictoriaMetrics itself"
            )
        otlp = feed_otlp(catalog.metrics, **window)
        return OtlpVictoriaMetricsServer(
            recorded, prometheus_naming=pipeline.prometheus_naming, otlp=otlp
        )
    series = as_stored_by(feed_catalog(catalog.metrics, **window), catalog.metrics, pipeline)
    return ENGINES[engine]([*series, *recorded])


def _read_recording_rules(
    dashboards: Sequence[DashboardQueries], rules: Sequence[DashboardQueries]
) -> list[ParsedTarget]:
    """The recording rules (of ``rules``) whose output some query of ``dashboards`` reads."""
    read = {
        selector.metric
        for dashboard in dashboards
        for parsed in dashboard.targets
        if parsed.refs is not None
        for selector in parsed.refs.selectors
    }
    return [
        parsed
        for group in rules
        for parsed in group.targets
        if parsed.target.place == RECORDING_RULE
        and parsed.refs is not None
        and parsed.target.panel in read
    ]


def recorded_series(server: Engine, rules: Sequence[ParsedTarget], window: Window) -> list[Series]:
    """What each recording rule writes over the window, as Prometheus would: the rule's
    expression evaluated at every step, stored under the rule's name. The embedded server
    holds a window in the past, where its own rule evaluation (from now on) never reaches."""
    series = []
    for parsed in rules:
        name = parsed.target.panel
        result = server.query_range(parsed.target.expr, window.start_s, window.end_s, window.step_s)
        for labels, values in zip(result.series, result.values, strict=False):
            kept = tuple(sorted((k, v) for k, v in labels.items() if k != "__name__"))
            points = tuple((round(at * 1000), value) for at, value in values)
            series.append(Series(name, "gauge", name, kept, points))
    return series


def run_live(
    catalog: Catalog | None,
    families: Sequence[Family],
    dashboards: Sequence[DashboardQueries],
    options: LiveOptions,
    progress: Callable[[int, int], None],
    pipeline: Pipeline,
    other_rules: Sequence[DashboardQueries] = (),
) -> LiveResult:
    """Embedded server fed from the catalog, or an existing endpoint over its last hour.
    ``other_rules``: rule groups whose recording rules the dashboards may read, not checked
    here themselves (the build's, beside hand-written dashboards)."""
    timings: dict[str, float] = {}
    if options.url is not None:
        end = time.time()
        window = Window(start_s=end - 3600, end_s=end, step_s=60)
        endpoint: Engine = ExistingEndpoint(options.url, options.token_env)
        with stopwatch(timings, "queries"):
            outcomes = run_queries(dashboards, families, endpoint, window, progress)
        return LiveResult(endpoint.name, outcomes, Timings(queries_s=timings["queries"]))
    if catalog is None:
        raise DashgenError(
            "--live",
            "the embedded server is fed from dashgen declarations; with --instruments, "
            "point --url at a server that holds your app's series",
        )
    end_ms = window_end_ms()
    window = Window(
        start_s=end_ms / 1000 - (LIVE_SCRAPES - 1) * LIVE_STEP_S,
        end_s=end_ms / 1000,
        step_s=LIVE_STEP_S,
    )
    on_vm = pipeline.name is PipelineName.VICTORIAMETRICS
    engine = options.engine or ("victoria-metrics" if on_vm else "prometheus")
    with stopwatch(timings, "ingest"):
        embedded = _embedded_engine(catalog, pipeline, engine, end_ms)
    rules = _read_recording_rules(dashboards, [*dashboards, *other_rules])
    if rules:  # a second start, with what they wrote: only when a query reads it
        with stopwatch(timings, "start"), embedded as first:
            recorded = recorded_series(first, rules, window)
        embedded = _embedded_engine(catalog, pipeline, engine, end_ms, recorded)
    with ExitStack() as stack:
        with stopwatch(timings, "start"):
            server = stack.enter_context(embedded)
        with stopwatch(timings, "queries"):
            outcomes = run_queries(dashboards, families, server, window, progress)
    return LiveResult(
        engine,
        outcomes,
        Timings(start_s=timings["start"], ingest_s=timings["ingest"], queries_s=timings["queries"]),
    )
