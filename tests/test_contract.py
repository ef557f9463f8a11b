"""The contract checks of ``verify``, against families from the real OTel Prometheus exporter."""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Meter
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry

from dashgen.errors import DashgenError
from dashgen.families import Family
from dashgen.verify.accepted import ContractRules, ExternalMetric
from dashgen.verify.contract import (
    UNKNOWN_LABEL,
    UNKNOWN_METRIC,
    UNMATCHED_REGEX,
    UNPANELLED_FAMILY,
    UNPARSABLE_QUERY,
    Finding,
    VerifyResult,
    check_contract,
)
from dashgen.verify.dashboards import (
    DashboardQueries,
    ParsedTarget,
    SkippedTarget,
    Target,
    read_dashboard,
)
from dashgen.verify.promql import PromQLError, extract_refs, substitute_variables
from dashgen.verify.regex import compile_regex, full_matcher

# --- helpers -------------------------------------------------------------------------------


def export(record: Callable[[Meter], None]) -> tuple[Family, ...]:
    """Families exactly as PrometheusMetricReader exports what ``record`` records."""
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry)], shutdown_on_exit=False
    )
    try:
        record(provider.get_meter("tests"))
        return tuple(
            Family(
                name=metric.name,
                type=metric.type,
                samples=tuple(sorted({s.name for s in metric.samples})),
                labels=tuple(sorted({label for s in metric.samples for label in s.labels})),
                source=f"tests:{metric.name}",
            )
            for metric in registry.collect()
        )
    finally:
        provider.shutdown()


def _record_app(meter: Meter) -> None:
    meter.create_counter("http.requests", unit="{request}").add(
        1, {"http.route": "/a", "http.request.method": "GET"}
    )
    meter.create_histogram("http.server.duration", unit="s").record(0.2, {"http.route": "/a"})
    meter.create_gauge("process.memory.usage", unit="By").set(1024, {"memory.type": "heap"})
    meter.create_up_down_counter("queue.depth").add(3, {"queue": "jobs"})


@cache
def families() -> tuple[Family, ...]:
    return export(_record_app)


def family(name: str) -> Family:
    return next(f for f in families() if f.name == name)


def parsed(
    expr: str, panel: str = "Traffic", ref_id: str = "A", file: str = "app.json"
) -> ParsedTarget:
    """A target as the dashboard reader produces it, parsed by the real PromQL stage."""
    target = Target(
        file=file,
        dashboard=f"Dashboard {file}",
        panel=panel,
        panel_id=1,
        ref_id=ref_id,
        expr=expr,
        legend="",
        datasource="prometheus",
    )
    try:
        return ParsedTarget(target, extract_refs(substitute_variables(expr)), None)
    except PromQLError as error:
        return ParsedTarget(target, None, str(error))


def dashboard(
    *targets: ParsedTarget, file: str = "app.json", skipped: Sequence[SkippedTarget] = ()
) -> DashboardQueries:
    return DashboardQueries(
        file=file,
        title=f"Dashboard {file}",
        uid=file,
        panels=tuple(sorted({t.target.panel for t in targets})),
        targets=targets,
        skipped=tuple(skipped),
    )


def check(
    *exprs: str,
    rules: ContractRules | None = None,
    exported: Sequence[Family] | None = None,
) -> VerifyResult:
    """One dashboard, one panel, refIds A, B, ... plus queries reading every family."""
    targets = [parsed(e, ref_id=chr(ord("A") + i)) for i, e in enumerate(exprs)]
    everything = [parsed(e, panel="Everything", file="all.json") for e in USE_ALL]
    return check_contract(
        [dashboard(*targets), dashboard(*everything, file="all.json")],
        families() if exported is None else exported,
        rules or ContractRules(),
    )


def only(result: VerifyResult, kind: str | None = None) -> Finding:
    found = [f for f in result.findings if kind is None or f.kind == kind]
    assert len(found) == 1, result.findings
    return found[0]


# Queries that read every exported family (except target_info), without a finding.
USE_ALL = (
    "sum by (http_route, http_request_method) (rate(http_requests_total[$__rate_interval]))",
    "histogram_quantile(0.9, sum by (le) (rate(http_server_duration_seconds_bucket[5m])))",
    "process_memory_usage_bytes{memory_type='heap'}",
    "queue_depth",
)


# --- the exporter data the tests rely on ---------------------------------------------------


def test_helper_reads_the_real_exporter_names() -> None:
    assert {f.name: (f.type, f.samples) for f in families()} == {
        "target": ("info", ("target_info",)),
        "http_requests": ("counter", ("http_requests_total",)),
        "http_server_duration_seconds": (
            "histogram",
            (
                "http_server_duration_seconds_bucket",
                "http_server_duration_seconds_count",
                "http_server_duration_seconds_sum",
            ),
        ),
        "process_memory_usage_bytes": ("gauge", ("process_memory_usage_bytes",)),
        "queue_depth": ("gauge", ("queue_depth",)),
    }
    assert family("http_server_duration_seconds").labels == (
        "http_route",
        "le",
        "otel_scope_name",
        "otel_scope_schema_url",
        "otel_scope_version",
    )


def test_queries_on_exported_names_are_clean() -> None:
    result = check()
    assert result.findings == ()
    assert result.info == ()


# --- forward: unknown metric names ---------------------------------------------------------


def test_unknown_metric_names_dashboard_panel_and_ref_id() -> None:
    result = check("queue_depth", "rate(http_request_total[5m])")
    assert only(result) == Finding(
        kind=UNKNOWN_METRIC,
        file="app.json",
        dashboard="Dashboard app.json",
        panel="Traffic",
        ref_id="B",
        subject="http_request_total",
        message="no exported sample is named `http_request_total`",
        hint="did you mean `http_requests_total`?",
    )


@pytest.mark.parametrize(
    ("query", "hint"),
    [
        (
            "rate(http_server_duration_milliseconds_bucket[5m])",
            "did you mean `http_server_duration_seconds_bucket`? "
            "(the unit suffix comes from the instrument's unit)",
        ),
        (
            "process_memory_usage",
            "did you mean `process_memory_usage_bytes`? "
            "(the unit suffix comes from the instrument's unit)",
        ),
        (
            "rate(http_requests[5m])",
            "did you mean `http_requests_total`? (counter samples end in `_total`)",
        ),
        (
            "queue_depth_total",
            "did you mean `queue_depth`? (`queue_depth` is a gauge: only counter samples end "
            "in `_total`)",
        ),
        (
            "queue_depth_count",
            "did you mean `queue_depth`? (a gauge has no `_count` sample, only histograms do)",
        ),
        (
            "http_requests_sum",
            "did you mean `http_requests_total`? (a counter has no `_sum` sample, only "
            "histograms do)",
        ),
        (
            "http_server_duration_seconds",
            "did you mean `http_server_duration_seconds_bucket`, "
            "`http_server_duration_seconds_count` or `http_server_duration_seconds_sum`? "
            "(a histogram exports only `_bucket`, `_count` and `_sum` samples)",
        ),
        (
            '{__name__="process.memory.usage_bytes"}',
            "did you mean `process_memory_usage_bytes`? "
            "(the exporter turns dots and other characters into `_`)",
        ),
        (
            '{"http.requests"}',
            "did you mean `http_requests_total`? (the exporter turns dots and other characters "
            "into `_`; counter samples end in `_total`)",
        ),
        ("proces_memory_usage_bytes", "did you mean `process_memory_usage_bytes`?"),
        (
            "http_server_duration_second_count",
            "did you mean `http_server_duration_seconds_count`, "
            "`http_server_duration_seconds_sum` or `http_server_duration_seconds_bucket`?",
        ),
        (
            "node_cpu_seconds_total",
            "no exported sample is close: fix the name, make sure the instrument records at "
            "least once, or declare the metric external with a reason",
        ),
    ],
)
def test_did_you_mean(query: str, hint: str) -> None:
    assert only(check(query)).hint == hint


def test_dotted_name_of_an_exported_sample_suggests_only_that_sample() -> None:
    def record(meter: Meter) -> None:
        for name in ("queue.depth", "queue.depth.max"):
            meter.create_gauge(name).set(1)

    exported = export(record)
    result = check_contract(
        [dashboard(parsed('{__name__="queue.depth"}'))], exported, ContractRules()
    )
    assert only(result, UNKNOWN_METRIC).hint == (
        "did you mean `queue_depth`? (the exporter turns dots and other characters into `_`); "
        "no panel reads it, so it is most likely the name meant here"
    )


def test_family_name_is_not_a_sample_name() -> None:
    assert only(check("http_requests")).subject == "http_requests"


def test_external_metrics_are_never_missing() -> None:
    query = "rate(node_cpu_seconds_total[5m])"
    assert only(check(query)).kind == UNKNOWN_METRIC
    exact = ContractRules(external=(ExternalMetric("node_cpu_seconds_total", False, "node"),))
    regex = ContractRules(external=(ExternalMetric("node_.*", True, "node-exporter"),))
    anchored = ContractRules(external=(ExternalMetric("node", True, "prefix is not enough"),))
    assert check(query, rules=exact).findings == ()
    assert check(query, rules=regex).findings == ()
    assert only(check(query, rules=anchored)).kind == UNKNOWN_METRIC


def test_invalid_external_regex_is_an_input_error() -> None:
    rules = ContractRules(external=(ExternalMetric("node_(", True, "typo"),))
    with pytest.raises(DashgenError, match=r"node_\("):
        check("queue_depth", rules=rules)


def test_unparsable_query_carries_the_parser_message() -> None:
    target = parsed("rate(http_requests_total[5m]")
    assert target.error
    result = check_contract([dashboard(target)], families(), ContractRules())
    finding = only(result, UNPARSABLE_QUERY)
    assert finding.subject == "rate(http_requests_total[5m]"
    assert finding.message == f"query does not parse: {target.error}"
    assert finding.ref_id == "A"
    assert check("rate(http_requests_total[5m])").findings == ()


# --- labels --------------------------------------------------------------------------------


def test_matcher_labels_on_the_family_and_scrape_labels_are_allowed() -> None:
    query = 'http_requests_total{http_route="/a", job="api", instance="i", otel_scope_name="t"}'
    assert check(query).findings == ()


def test_matcher_label_not_on_the_family() -> None:
    finding = only(check('rate(http_requests_total{route="/a"}[5m])'))
    assert (finding.kind, finding.subject, finding.ref_id) == (UNKNOWN_LABEL, "route", "A")
    assert finding.message.startswith(
        "label `route` is not on `http_requests_total` (it has `http_request_method`, "
        "`http_route`, "
    )
    assert finding.hint == "did you mean `http_route`?"


def test_label_hints_for_dots_and_le() -> None:
    dotted = only(check('http_requests_total{"http.route"="/a"}'))
    assert dotted.hint == (
        "did you mean `http_route`? (the exporter turns dots into `_` in attribute names)"
    )
    le = only(check('http_requests_total{le="1"}'))
    assert (le.subject, le.hint) == ("le", "only histogram `_bucket` samples have `le`")
    assert check('http_server_duration_seconds_bucket{le="0.5"}').findings == ()


def test_no_close_label() -> None:
    assert only(check('queue_depth{zzz="1"}')).hint == (
        "use a label the metric has, or record the attribute where the metric is recorded"
    )


def test_custom_scrape_labels_replace_the_default() -> None:
    rules = ContractRules(scrape_labels=frozenset({"cluster"}))
    assert check('queue_depth{cluster="c"}', rules=rules).findings == ()
    assert only(check('queue_depth{job="j"}', rules=rules)).subject == "job"


def test_grouping_label_on_no_family_the_query_reads() -> None:
    finding = only(check("sum by (route) (rate(http_requests_total[5m]))"))
    assert (finding.kind, finding.subject) == (UNKNOWN_LABEL, "route")
    assert finding.message == (
        "grouping label `route` is on none of the families this query reads (`http_requests`)"
    )
    assert finding.hint == "did you mean `http_route`?"


def test_grouping_label_from_another_family_of_the_query() -> None:
    joined = (
        "sum by (queue) (rate(http_requests_total[5m]) * on (job) group_left (queue) queue_depth)"
    )
    assert check(joined).findings == ()
    assert only(check("sum by (queue) (rate(http_requests_total[5m]))")).subject == "queue"


def test_grouping_labels_introduced_by_the_query() -> None:
    assert (
        check(
            'sum by (path) (label_replace(rate(http_requests_total[5m]), "path", "$1", '
            '"http_route", "(.*)"))',
            'count by (value) (count_values("value", queue_depth))',
            "sum by (job, instance, __name__) (queue_depth)",
        ).findings
        == ()
    )


def test_grouping_labels_are_not_checked_when_a_selector_is_not_ours() -> None:
    rules = ContractRules(external=(ExternalMetric("up", False, "scrape"),))
    external = check("sum by (zone) (queue_depth * on (job) group_left (zone) up)", rules=rules)
    assert external.findings == ()
    unknown = check("sum by (zone) (queue_depth * on (job) group_left (zone) nope)")
    assert only(unknown).kind == UNKNOWN_METRIC


def test_a_bad_matcher_label_is_reported_once() -> None:
    assert only(check('sum by (route) (http_requests_total{route="/a"})')).message.startswith(
        "label `route` is not on"
    )


def test_unknown_label_set_is_an_info_line_not_a_finding() -> None:
    unknown = [
        dataclasses.replace(f, labels=None) if f.name == "queue_depth" else f for f in families()
    ]
    queries = ('queue_depth{queue_name="x"}', "sum by (queue_name) (queue_depth)")
    for query in queries:
        assert only(check(query)).subject == "queue_name"
        result = check(query, exported=unknown)
        assert result.findings == ()
        assert result.info == ("label set unknown for family `queue_depth`: label check skipped",)


# --- __name__ regexes ----------------------------------------------------------------------


def test_name_regex_is_anchored_and_must_match_something() -> None:
    assert check('{__name__=~"http_requests_.*"}').findings == ()
    finding = only(check('{__name__=~"http_requests"}'))
    assert (finding.kind, finding.subject) == (UNMATCHED_REGEX, "http_requests")
    assert finding.message == '`__name__=~"http_requests"` matches no exported sample'


def test_a_regex_listing_names_matches_exactly_those_names() -> None:
    """What dashboards' variable queries write (``a|b|c``): looked up in a set, it must match
    what RE2 would, no more (no prefixes, no partial names) and no less."""
    listed = "http_requests_total|queue_depth|queue_depth_ratio"
    names = ["http_requests_total", "queue_depth", "queue_depth_ratio", "queue_dep", "http"]
    assert [n for n in names if full_matcher(listed)(n)] == [
        n for n in names if compile_regex(listed).fullmatch(n)
    ]
    assert check('{__name__=~"http_requests_total|queue_depth"}').findings == ()
    finding = only(check('{__name__=~"http_requests|queue"}'))
    assert (finding.kind, finding.subject) == (UNMATCHED_REGEX, "http_requests|queue")


def test_regex_covered_by_externals() -> None:
    same_text = ContractRules(external=(ExternalMetric("node_.*", True, "node-exporter"),))
    exact = ContractRules(external=(ExternalMetric("node_load1", False, "node-exporter"),))
    assert check('{__name__=~"node_.*"}', rules=same_text).findings == ()
    assert check('{__name__=~"node_load.*"}', rules=exact).findings == ()
    # node_load.* selects names node_.* declares external: covered, not unmatched.
    assert check('{__name__=~"node_load.*"}', rules=same_text).findings == ()
    assert check('{__name__=~"node_(cpu|load)[0-9]+"}', rules=same_text).findings == ()
    assert only(check('{__name__=~"jvm_.*"}', rules=same_text)).kind == UNMATCHED_REGEX


def test_regex_labels_are_checked_against_all_matched_families() -> None:
    assert check('{__name__=~"(http|queue)_.*", http_route="/a", queue="q"}').findings == ()
    finding = only(check('{__name__=~"queue_.*", http_route="/a"}'))
    assert (finding.kind, finding.subject) == (UNKNOWN_LABEL, "http_route")
    assert finding.message.startswith('label `http_route` is not on `__name__=~"queue_.*"`')


def test_regex_that_may_select_externals_skips_label_checks() -> None:
    query = '{__name__=~"(queue|node)_.*", cpu="0"}'
    assert only(check(query)).subject == "cpu"
    rules = ContractRules(external=(ExternalMetric("(queue|node)_.*", True, "node-exporter"),))
    assert check(query, rules=rules).findings == ()


def test_regexes_are_read_as_prometheus_reads_them_in_re2_syntax() -> None:
    """POSIX classes and \\Q...\\E are RE2 (Prometheus takes them, Python's re does not);
    a look-behind is not (Python's re takes it, Prometheus refuses it)."""
    assert (
        check('{__name__=~"[[:alpha:]_]+"}', '{__name__=~"\\\\Qqueue_depth\\\\E"}').findings == ()
    )
    finding = only(check('{__name__=~"(?<=x)queue_depth"}'))
    assert (finding.kind, finding.subject) == (UNPARSABLE_QUERY, '{__name__=~"(?<=x)queue_depth"}')
    unmatched = only(check('{__name__=~"\\\\p{Lu}+"}'))  # RE2: upper-case letters only
    assert (unmatched.kind, unmatched.subject) == (UNMATCHED_REGEX, "\\p{Lu}+")


# --- reverse: exported families no panel reads ---------------------------------------------


def reverse(*exprs: str, rules: ContractRules | None = None) -> list[str]:
    """Unpanelled family names when only ``exprs`` are on the dashboards."""
    targets = [parsed(e, ref_id=chr(ord("A") + i)) for i, e in enumerate(exprs)]
    result = check_contract([dashboard(*targets)], families(), rules or ContractRules())
    return [f.subject for f in result.findings if f.kind == UNPANELLED_FAMILY]


def test_unpanelled_families() -> None:
    assert reverse(*USE_ALL) == []
    assert reverse("queue_depth") == [
        "http_requests",
        "http_server_duration_seconds",
        "process_memory_usage_bytes",
    ]
    targets = [parsed("queue_depth")]
    finding = only(
        check_contract(
            [dashboard(*targets)], [family("queue_depth"), family("http_requests")], ContractRules()
        )
    )
    assert finding == Finding(
        kind=UNPANELLED_FAMILY,
        file="",
        dashboard="",
        panel="",
        ref_id="",
        subject="http_requests",
        message="counter `http_requests` (`http_requests_total`) is on no dashboard, "
        "declared at tests:http_requests",
        hint="add a panel that queries it, or exclude it with a reason if it is not meant for "
        "dashboards",
        source="tests",  # the file part of where the family is declared
    )


def test_any_sample_or_regex_match_counts_as_usage() -> None:
    assert (
        reverse(
            "http_server_duration_seconds_count",
            '{__name__=~"(http|process)_.*"}',
            "queue_depth",
        )
        == []
    )


def test_negated_names_and_variables_do_not_count_as_usage() -> None:
    assert "queue_depth" in reverse('{__name__!="queue_depth", queue="q"}')
    assert "queue_depth" in reverse('{__name__!~"x.*", queue="q"}')
    assert "queue_depth" in reverse("sum(rate($metric[5m]))")


def test_metric_name_from_a_variable_is_an_info_line() -> None:
    result = check("sum(rate($metric[5m]))", "sum(rate(${metric}_total[5m]))")
    assert result.findings == ()
    assert result.info == (
        "app.json: panel 'Traffic' refId A: a metric name comes from a Grafana variable, "
        "not checked",
        "app.json: panel 'Traffic' refId B: a metric name comes from a Grafana variable, "
        "not checked",
    )


def test_exclusions_by_family_or_sample_name() -> None:
    rules = ContractRules(
        excluded={
            "queue_depth": "debugging only",
            "http_requests_total": "alerting only",
            "gone_metric": "removed last year",
        }
    )
    assert reverse("process_memory_usage_bytes", rules=rules) == ["http_server_duration_seconds"]
    info = check(rules=rules).info
    assert info == ("exclusion `gone_metric` matches no exported family",)


def test_families_covered_by_externals_are_not_required() -> None:
    rules = ContractRules(external=(ExternalMetric("process_.*", True, "runtime"),))
    assert "process_memory_usage_bytes" in reverse("queue_depth")
    assert "process_memory_usage_bytes" not in reverse("queue_depth", rules=rules)


def test_info_families_are_never_required() -> None:
    assert "target" not in reverse()
    info = dataclasses.replace(family("queue_depth"), name="build", type="info")
    # Plain Prometheus text has no info type: target_info is typed gauge there.
    untyped = dataclasses.replace(family("target"), type="gauge")
    assert check_contract([], [info, untyped, family("queue_depth")], ContractRules()) == (
        check_contract([], [family("queue_depth")], ContractRules())
    )


# --- counts, order, scale ------------------------------------------------------------------


def test_counts_and_skipped_reasons() -> None:
    skipped_target = parsed("{}").target
    dash = dashboard(
        parsed("queue_depth"),
        parsed("queue_depth +"),
        skipped=[
            SkippedTarget(skipped_target, "datasource loki"),
            SkippedTarget(skipped_target, "datasource loki"),
            SkippedTarget(skipped_target, "no expression"),
        ],
    )
    result = check_contract(
        [dash, dashboard(file="empty.json")], [family("queue_depth")], ContractRules()
    )
    assert (result.dashboards, result.targets, result.parsed, result.skipped) == (2, 5, 1, 3)
    assert result.skipped_reasons == {"datasource loki": 2, "no expression": 1}
    assert [f.kind for f in result.findings] == [UNPARSABLE_QUERY]


def test_findings_are_sorted_and_independent_of_input_order() -> None:
    dashboards = [
        dashboard(
            parsed("nope_b", panel="Zeta", ref_id="A", file="b.json"),
            parsed('queue_depth{x="1"} + nope_a', panel="Alpha", ref_id="B", file="b.json"),
            parsed("nope_c", panel="Alpha", ref_id="A", file="b.json"),
            file="b.json",
        ),
        dashboard(parsed('{__name__=~"zz.*"}', panel="Mid", file="a.json"), file="a.json"),
    ]
    exported = list(families())
    result = check_contract(dashboards, exported, ContractRules())
    keys = [(f.file, f.panel, f.ref_id, f.kind, f.subject) for f in result.findings]
    assert keys == [
        ("", "", "", UNPANELLED_FAMILY, "http_requests"),
        ("", "", "", UNPANELLED_FAMILY, "http_server_duration_seconds"),
        ("", "", "", UNPANELLED_FAMILY, "process_memory_usage_bytes"),
        ("a.json", "Mid", "A", UNMATCHED_REGEX, "zz.*"),
        ("b.json", "Alpha", "A", UNKNOWN_METRIC, "nope_c"),
        ("b.json", "Alpha", "B", UNKNOWN_LABEL, "x"),
        ("b.json", "Alpha", "B", UNKNOWN_METRIC, "nope_a"),
        ("b.json", "Zeta", "A", UNKNOWN_METRIC, "nope_b"),
    ]
    shuffler = random.Random(7)
    for _ in range(5):
        shuffled = [
            dataclasses.replace(d, targets=tuple(shuffler.sample(d.targets, len(d.targets))))
            for d in shuffler.sample(dashboards, len(dashboards))
        ]
        again = check_contract(shuffled, shuffler.sample(exported, len(exported)), ContractRules())
        assert again == result


def test_a_dashboard_file_end_to_end(tmp_path: Path) -> None:
    panels = [
        {
            "id": 1,
            "title": "Requests",
            "targets": [{"refId": "A", "expr": "rate(http_requests_total[5m])"}],
        },
        {
            "id": 2,
            "title": "Queue",
            "targets": [{"refId": "A", "expr": "sum by (queue_name) (queue_depth)"}],
        },
    ]
    path = tmp_path / "app.json"
    path.write_text(json.dumps({"title": "App", "uid": "app", "panels": panels}), encoding="utf-8")
    result = check_contract(
        [read_dashboard(path, tmp_path)],
        [family("http_requests"), family("queue_depth")],
        ContractRules(),
    )
    finding = only(result)
    assert (finding.file, finding.dashboard, finding.panel, finding.ref_id, finding.subject) == (
        "app.json",
        "App",
        "Queue",
        "A",
        "queue_name",
    )


def test_scale_1000_families_50_dashboards() -> None:
    """The right findings and hints at scale (1,000 families, 50 dashboards); how fast is
    bench/bench_verify.py's to measure, not a timed test's."""
    base = [f for f in families() if f.type != "info"]
    many = [
        dataclasses.replace(
            f,
            name=f"{f.name}_{i}",
            samples=tuple(s.replace(f.name, f"{f.name}_{i}") for s in f.samples),
        )
        for i in range(250)
        for f in base
    ]
    assert len(many) == 1000
    exprs = [
        f"rate({a.samples[0]}[5m]) / on () group_left {b.samples[-1]}"
        for a, b in zip(many[::2], many[1::2], strict=True)
    ]
    typos = [f"rate(http_requests_{i}_totl[5m])" for i in range(500)]
    regex = parsed('{__name__=~"queue_depth_1.*", queue="q"}')
    dashboards = [
        dashboard(
            *[parsed(e) for e in exprs[d * 10 : d * 10 + 10] + typos[d * 10 : d * 10 + 10]],
            regex,
            file=f"d{d}.json",
        )
        for d in range(50)
    ]
    result = check_contract(dashboards, many, ContractRules())
    assert result.targets == 1050
    assert [f.kind for f in result.findings] == [UNKNOWN_METRIC] * 500
    hints = {f.subject: f.hint for f in result.findings}
    assert hints["http_requests_7_totl"].startswith("did you mean `http_requests_7_total`")
