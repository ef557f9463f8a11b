"""37 real-world dashboards (tests/corpus, provenance in SOURCES.md) read end to end.

The expected names below were read by hand from the JSON files, not produced by dashgen.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from dashgen.verify import promql
from dashgen.verify.dashboard_files import read_dashboards
from dashgen.verify.dashboards import DashboardQueries, ParsedTarget

CORPUS = Path(__file__).parent / "corpus"

# file -> (PromQL targets, parsed or failed; skipped targets). The PromQL counts are the
# "expr targets" column of SOURCES.md minus the exprs on Loki/VictoriaLogs datasources;
# the skipped ones were counted by hand from each file's datasources.
COUNTS = {
    "autometrics-function-explorer.json": (3, 0),
    "autometrics-slos.json": (6, 0),
    "canonical-blackbox-loki-mixed.json": (8, 1),  # one Loki logs panel
    "cnpg-cluster.json": (118, 2),  # one __expr__ target, one Prometheus target with expr ""
    "dotdc-k8s-system-coredns.json": (15, 0),
    "dotdc-k8s-views-global.json": (57, 0),
    "dotdc-k8s-views-pods.json": (36, 0),
    "flux-cluster.json": (11, 0),
    "flux-logs-loki.json": (0, 2),
    "ingress-nginx-nginx.json": (21, 0),
    "integr8s-http-middleware.json": (10, 0),
    "integr8s-overview.json": (14, 0),
    "kp-apiserver.json": (16, 0),
    "kp-grafana-overview.json": (7, 0),
    "kp-k8s-resources-cluster.json": (44, 0),
    "kp-node-rsrc-use.json": (11, 0),
    "kp-nodes.json": (17, 0),
    "kp-prometheus-remote-write.json": (15, 0),
    "lgtm-jvm-metrics.json": (8, 0),
    "lgtm-red-metrics-classic.json": (6, 0),
    "mysqld-mixin-overview.json": (66, 0),
    "otel-demo-apm.json": (26, 2),  # one Jaeger, one OpenSearch
    "otel-demo-collector.json": (52, 1),  # one OpenSearch
    "otel-demo-demo.json": (8, 3),  # two OpenSearch, one Jaeger
    "otel-demo-spanmetrics.json": (14, 0),
    "pstack-vllm-model-metrics.json": (27, 0),
    "pstack-vllm-router.json": (14, 0),
    "redis-exporter-legacy-0.3x.json": (17, 0),
    "redis-mixin-overview.json": (16, 0),
    "rfmoz-node-exporter-full-old.json": (472, 0),
    "rfmoz-node-exporter-full.json": (286, 0),
    "rfmoz-unbound-full.json": (55, 0),
    "thanos-query.json": (31, 0),
    "vm-query-stats-victorialogs.json": (0, 18),  # LogsQL on VictoriaLogs
    "vm-vmagent.json": (108, 0),
    "vm-vmalert.json": (45, 0),
    "vm-vmanomaly-default.json": (18, 0),
}

# Every target that does not parse, and why: all are MetricsQL, which promql-parser does
# not accept, on VictoriaMetrics dashboards. (file, panel, refId)
_ANOMALY_STATS = "Anomaly Score Statistics, grouped by `$groupby`"
EXPECTED_FAILURES = {
    # `x default y`: MetricsQL operator.
    ("vm-vmalert.json", "Datapoints send rate ($instance)", "A"),
    # count/min/max/quantile over a range vector `{...}[$__range]`: MetricsQL implicit rollup.
    ("vm-vmanomaly-default.json", _ANOMALY_STATS, "series_cnt"),
    ("vm-vmanomaly-default.json", _ANOMALY_STATS, "as_min"),
    ("vm-vmanomaly-default.json", _ANOMALY_STATS, "as_q25"),
    ("vm-vmanomaly-default.json", _ANOMALY_STATS, "as_q50"),
    ("vm-vmanomaly-default.json", _ANOMALY_STATS, "as_q75"),
    ("vm-vmanomaly-default.json", _ANOMALY_STATS, "as_q99"),
    ("vm-vmanomaly-default.json", _ANOMALY_STATS, "as_max"),
    (
        "vm-vmanomaly-default.json",
        "q99 anomaly score over time (threshold = $anomaly_score_threshold), grouped by `$groupby`",
        "anomaly_score_q99",
    ),
    # `{...}[$__range] > x` inside avg(): comparison on a range vector, MetricsQL only.
    (
        "vm-vmanomaly-default.json",
        "Anomaly score (> $anomaly_score_threshold) distribution, grouped by `$groupby`",
        "share_of_anomalous_datapoints",
    ),
    # count_gt_over_time / share_gt_over_time / range_last: MetricsQL functions.
    ("vm-vmanomaly-default.json", _ANOMALY_STATS, "as_cnt"),
    ("vm-vmanomaly-default.json", _ANOMALY_STATS, "as_share"),
    (
        "vm-vmanomaly-default.json",
        "% of Anomalies over time (threshold = $anomaly_score_threshold), grouped by `$groupby`",
        "share_of_anomalous_datapoints",
    ),
    ("vm-vmanomaly-default.json", "Anomalous Time Series", "as_share"),
    ("vm-vmanomaly-default.json", "Anomalous Time Series", "as_absolute"),
    ("vm-vmanomaly-default.json", "Raw Metric Values ($output_series)", "raw_metrics_data"),
    # Annotation "version": `sum(...) offset $__interval`, an offset on an aggregation.
    ("vm-vmagent.json", "version", ""),
    ("vm-vmalert.json", "version", ""),
}


@pytest.fixture(scope="module")
def corpus() -> dict[str, DashboardQueries]:
    return {d.file: d for d in read_dashboards(CORPUS / "dashboards").dashboards}


def panel_targets(dashboard: DashboardQueries) -> list[ParsedTarget]:
    """The names below were read from the panels; variables have their own test."""
    return [t for t in dashboard.targets if t.target.place == "panel"]


def metrics(dashboard: DashboardQueries) -> set[str]:
    return {
        s.metric
        for t in panel_targets(dashboard)
        if t.refs
        for s in t.refs.selectors
        if s.metric is not None
    }


def regexes(dashboard: DashboardQueries) -> set[str]:
    return {
        s.name_regex
        for t in panel_targets(dashboard)
        if t.refs
        for s in t.refs.selectors
        if s.name_regex is not None
    }


def selector_labels(dashboard: DashboardQueries) -> set[str]:
    return {
        label
        for t in panel_targets(dashboard)
        if t.refs
        for s in t.refs.selectors
        for label in s.labels
    }


def grouping_labels(dashboard: DashboardQueries) -> set[str]:
    return {label for t in panel_targets(dashboard) if t.refs for label in t.refs.grouping_labels}


def test_every_file_is_read_and_has_provenance(corpus: dict[str, DashboardQueries]) -> None:
    assert sorted(corpus) == sorted(COUNTS)
    sources = (CORPUS / "SOURCES.md").read_text()
    assert all(f"| {name} |" in sources for name in corpus)


# file -> (template variables with a query, annotations with an expr), counted from the
# JSON: `templating.list[]` of type "query" and `annotations.list[]` with `expr`.
OTHER_QUERIES = {
    "autometrics-function-explorer.json": (1, 0),
    "autometrics-slos.json": (5, 0),
    "canonical-blackbox-loki-mixed.json": (5, 0),
    "cnpg-cluster.json": (4, 0),
    "dotdc-k8s-system-coredns.json": (4, 0),
    "dotdc-k8s-views-global.json": (2, 0),
    "dotdc-k8s-views-pods.json": (4, 0),
    "flux-cluster.json": (2, 0),
    "flux-logs-loki.json": (3, 0),
    "ingress-nginx-nginx.json": (5, 1),
    "kp-apiserver.json": (2, 0),
    "kp-grafana-overview.json": (2, 0),
    "kp-k8s-resources-cluster.json": (1, 0),
    "kp-node-rsrc-use.json": (2, 0),
    "kp-nodes.json": (2, 0),
    "kp-prometheus-remote-write.json": (3, 0),
    "lgtm-jvm-metrics.json": (2, 0),
    "lgtm-red-metrics-classic.json": (2, 0),
    "mysqld-mixin-overview.json": (2, 0),
    "otel-demo-apm.json": (2, 0),
    "otel-demo-collector.json": (6, 0),
    "otel-demo-demo.json": (1, 0),
    "otel-demo-spanmetrics.json": (2, 0),
    "pstack-vllm-model-metrics.json": (1, 0),
    "redis-exporter-legacy-0.3x.json": (1, 0),
    "redis-mixin-overview.json": (1, 0),
    "rfmoz-node-exporter-full-old.json": (3, 0),
    "rfmoz-node-exporter-full.json": (3, 0),
    "rfmoz-unbound-full.json": (1, 0),
    "thanos-query.json": (1, 0),
    "vm-query-stats-victorialogs.json": (1, 0),
    "vm-vmagent.json": (3, 2),
    "vm-vmalert.json": (4, 2),
    "vm-vmanomaly-default.json": (4, 0),
}


def test_target_counts(corpus: dict[str, DashboardQueries]) -> None:
    found = {
        name: (
            sum(t.target.place == "panel" for t in d.targets),
            sum(t.target.place == "panel" for t in d.skipped),
        )
        for name, d in corpus.items()
    }
    assert found == COUNTS


def test_variable_and_annotation_queries_are_read(corpus: dict[str, DashboardQueries]) -> None:
    found = {}
    for name, dashboard in corpus.items():
        places = [t.target.place for t in dashboard.targets]
        places += [t.target.place for t in dashboard.skipped]
        counts = (places.count("variable"), places.count("annotation"))
        if counts != (0, 0):
            found[name] = counts
    assert found == OTHER_QUERIES


def test_variable_queries_name_what_they_read(corpus: dict[str, DashboardQueries]) -> None:
    """label_values(series, label): the series' names and the label it lists."""

    def variables(name: str) -> dict[str, tuple[set[str | None], set[str | None], set[str]]]:
        return {
            t.target.panel: (
                {s.metric for s in t.refs.selectors},
                {s.name_regex for s in t.refs.selectors},
                set(t.refs.grouping_labels | t.refs.labels_on_any_family),
            )
            for t in corpus[name].targets
            if t.target.place == "variable" and t.refs is not None
        }

    thanos = variables("thanos-query.json")
    assert thanos == {"$job": ({"up"}, {None}, {"job"})}
    unbound = variables("rfmoz-unbound-full.json")
    assert unbound == {"$instance": ({"unbound_up"}, {None}, {"instance"})}
    jvm = variables("lgtm-jvm-metrics.json")
    regex = "(jvm_class_count|process_runtime_jvm_classes_current_loaded|jvm_classes_loaded)"
    assert any(regex in str(regexes) for _, regexes, _ in jvm.values())


def test_every_promql_target_is_parsed_or_has_an_error(
    corpus: dict[str, DashboardQueries],
) -> None:
    for dashboard in corpus.values():
        for parsed in dashboard.targets:
            assert (parsed.refs is None) == (parsed.error is not None), parsed
            assert parsed.error is None or "\n" not in parsed.error


def test_failures_are_only_the_known_metricsql_ones(corpus: dict[str, DashboardQueries]) -> None:
    failures = {
        (t.target.file, t.target.panel, t.target.ref_id)
        for d in corpus.values()
        for t in d.targets
        if t.error is not None
    }
    assert failures == EXPECTED_FAILURES
    assert corpus["vm-vmanomaly-default.json"].targets[0].target.datasource == (
        "victoriametrics-metrics-datasource"
    )


def test_all_logs_dashboards_are_skipped(corpus: dict[str, DashboardQueries]) -> None:
    victorialogs = corpus["vm-query-stats-victorialogs.json"]
    assert {s.reason for s in victorialogs.skipped} == {
        "victoriametrics-logs-datasource datasource"
    }
    assert {s.reason for s in corpus["flux-logs-loki.json"].skipped} == {"loki datasource"}
    mixed = corpus["canonical-blackbox-loki-mixed.json"]
    assert [(s.target.panel, s.reason) for s in mixed.skipped] == [("Logs", "loki datasource")]


def test_traces_and_logs_targets_are_skipped(corpus: dict[str, DashboardQueries]) -> None:
    assert {s.reason for s in corpus["otel-demo-apm.json"].skipped} == {
        "jaeger datasource",
        "grafana-opensearch-datasource datasource",
    }
    assert {s.reason for s in corpus["otel-demo-demo.json"].skipped} == {
        "jaeger datasource",
        "grafana-opensearch-datasource datasource",
    }


def test_server_side_expression_is_skipped(corpus: dict[str, DashboardQueries]) -> None:
    assert sorted(s.reason for s in corpus["cnpg-cluster.json"].skipped) == [
        "empty expr",
        "server-side expression",
    ]


def test_legacy_rows_thanos_query(corpus: dict[str, DashboardQueries]) -> None:
    thanos = corpus["thanos-query.json"]
    assert len(thanos.panels) == 18
    assert {t.target.datasource for t in thanos.targets} == {"prometheus"}  # via $datasource
    assert metrics(thanos) == {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "grpc_client_handled_total",
        "grpc_client_handling_seconds_bucket",
        "thanos_query_store_apis_dns_lookups_total",
        "thanos_query_store_apis_dns_failures_total",
        "thanos_query_concurrent_gate_queries_max",
        "thanos_query_concurrent_gate_queries_in_flight",
        "go_memstats_alloc_bytes",
        "go_memstats_heap_alloc_bytes",
        "go_memstats_alloc_bytes_total",
        "go_memstats_stack_inuse_bytes",
        "go_memstats_heap_inuse_bytes",
        "go_goroutines",
        "go_gc_duration_seconds",
    }
    assert regexes(thanos) == set()
    assert selector_labels(thanos) == {"job", "handler", "code", "grpc_type", "grpc_code"}
    assert grouping_labels(thanos) == {"job", "handler", "code", "le", "grpc_method", "grpc_code"}


def test_otel_python_named_datasource(corpus: dict[str, DashboardQueries]) -> None:
    middleware = corpus["integr8s-http-middleware.json"]
    assert {t.target.datasource for t in middleware.targets} == {"prometheus"}  # by name
    assert metrics(middleware) == {
        "http_requests_total",
        "http_request_duration_seconds_bucket",
        "http_requests_active_requests",
        "http_request_size_bytes_bucket",
        "http_response_size_bytes_bucket",
        "idempotency_processing_duration_seconds_bucket",
        "event_processing_errors_total",
        "system_cpu_percent",
        "process_metrics_mixed",
    }
    assert grouping_labels(middleware) == {"le", "error_type", "consumer_group"}
    assert selector_labels(middleware) == set()


def test_name_regexes_comments_and_label_replace(corpus: dict[str, DashboardQueries]) -> None:
    explorer = corpus["autometrics-function-explorer.json"]
    assert metrics(explorer) == {"build_info", "up"}
    assert regexes(explorer) == {
        "function_calls(_count)?(_total)?",
        "function_calls_duration(_seconds)?_bucket",
    }
    assert selector_labels(explorer) == {"function", "result"}
    assert grouping_labels(explorer) == {
        "function",
        "module",
        "service_name",
        "version",
        "commit",
        "instance",
        "job",
        "le",
    }
    introduced = {label for t in explorer.targets if t.refs for label in t.refs.introduced_labels}
    assert introduced == {"percentile_latency"}


def test_name_regexes_jvm(corpus: dict[str, DashboardQueries]) -> None:
    jvm = corpus["lgtm-jvm-metrics.json"]
    assert metrics(jvm) == {"jvm_gc_pause_milliseconds_sum"}
    assert regexes(jvm) == {
        "http_server_request_duration_seconds_count|http_server_request_duration_count"
        "|http_server_duration_seconds_count|http_server_duration_count"
        "|http_server_duration_milliseconds_count|http_server_requests_milliseconds_count"
        "|http_server_requests_count|http_server_requests_seconds_count",
        "http_server_request_duration_seconds_count|http_server_request_duration_count",
        "http_server_duration_milliseconds_count|http_server_duration_seconds_count"
        "|http_server_duration_count",
        "http_server_requests_milliseconds_count|http_server_requests_count"
        "|http_server_requests_seconds_count",
        "http_server_request_duration_seconds_bucket|http_server_request_duration_bucket"
        "|http_server_duration_seconds_bucket|http_server_duration_bucket"
        "|http_server_requests_seconds_bucket",
        "http_server_duration_milliseconds_bucket|http_server_requests_milliseconds_bucket"
        "|http_server_requests_bucket",
        "jvm_cpu_recent_utilization|jvm_cpu_recent_utilization_ratio"
        "|process_runtime_jvm_system_cpu_utilization"
        "|process_runtime_jvm_system_cpu_utilization_ratio|system_cpu_usage",
        "jvm_memory_used|jvm_memory_used_bytes",
        "jvm_memory_limit|jvm_memory_limit_bytes",
        "process_runtime_jvm_memory_usage|process_runtime_jvm_memory_usage_bytes",
        "process_runtime_jvm_memory_limit|process_runtime_jvm_memory_limit_bytes",
        "jvm_memory_max|jvm_memory_max_bytes",
        "jvm_gc_duration_sum|jvm_gc_duration_seconds_sum|process_runtime_jvm_gc_duration_sum"
        "|process_runtime_jvm_gc_duration_seconds_sum|jvm_gc_pause_sum|jvm_gc_pause_seconds_sum",
        "jvm_class_count|process_runtime_jvm_classes_current_loaded|jvm_classes_loaded",
        "jvm_thread_count|process_runtime_jvm_threads_count|jvm_threads_live",
    }
    assert selector_labels(jvm) == {
        "job",
        "instance",
        "http_response_status_code",
        "http_status_code",
        "outcome",
        "jvm_memory_type",
        "type",
        "area",
    }
    assert grouping_labels(jvm) == {"instance", "le"}


def test_colon_metric_names(corpus: dict[str, DashboardQueries]) -> None:
    router = corpus["pstack-vllm-router.json"]
    assert metrics(router) == {
        "vllm:healthy_pods_total",
        "vllm:e2e_request_latency_seconds_sum",
        "vllm:e2e_request_latency_seconds_count",
        "vllm:e2e_request_latency_seconds_bucket",
        "vllm:current_qps",
        "vllm:request_time_per_output_token_seconds_sum",
        "vllm:request_time_per_output_token_seconds_count",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:gpu_prefix_cache_hits_total",
        "vllm:gpu_prefix_cache_queries_total",
        "router_cpu_usage_percent",
        "router_memory_usage_percent",
        "router_disk_usage_percent",
    }
    assert selector_labels(router) == {"endpoint"}
    assert grouping_labels(router) == {"server", "le"}


def test_collapsed_rows_unbound(corpus: dict[str, DashboardQueries]) -> None:
    unbound = corpus["rfmoz-unbound-full.json"]
    assert len(unbound.panels) == 35  # 42 panel objects, 7 of them rows
    assert metrics(unbound) == {
        "unbound_answer_rcodes_total",
        "unbound_answers_bogus",
        "unbound_answers_secure_total",
        "unbound_expired_total",
        "unbound_msg_cache_max_collisions_total",
        "unbound_prefetches_total",
        "unbound_queries_cookie_client_total",
        "unbound_queries_cookie_invalid_total",
        "unbound_queries_cookie_valid_total",
        "unbound_queries_total",
        "unbound_query_aggressive_nsec",
        "unbound_query_classes_total",
        "unbound_query_edns_DO_total",
        "unbound_query_edns_present_total",
        "unbound_query_flags_total",
        "unbound_query_https_total",
        "unbound_query_ipv6_total",
        "unbound_query_opcodes_total",
        "unbound_query_quic_total",
        "unbound_query_tcp_total",
        "unbound_query_tcpout_total",
        "unbound_query_tls_resume_total",
        "unbound_query_tls_total",
        "unbound_query_types_total",
        "unbound_query_udpout_total",
        "unbound_recursive_replies_total",
        "unbound_response_time_seconds_bucket",
        "unbound_rpz_action_count",
        "unbound_rrset_bogus_total",
        "unbound_rrset_cache_max_collisions_total",
        "unbound_signature_validations",
        "unbound_unwanted_queries_total",
        "unbound_unwanted_replies_total",
        "unbound_cache_hits_total",
        "unbound_cache_misses_total",
        "unbound_queries_discard_timeout",
        "unbound_queries_replyaddr_limit",
        "unbound_queries_wait_limit",
        "unbound_request_list_exceeded_total",
        "unbound_request_list_overwritten_total",
        "unbound_request_list_current_all",
        "unbound_request_list_current_replies",
        "unbound_request_list_current_user",
        "unbound_infra_cache_count",
        "unbound_memory_caches_bytes",
        "unbound_memory_doh_bytes",
        "unbound_memory_doq_bytes",
        "unbound_memory_modules_bytes",
        "unbound_memory_sbrk_bytes",
        "unbound_msg_cache_count",
        "unbound_recursion_time_seconds_avg",
        "unbound_recursion_time_seconds_median",
        "unbound_rrset_cache_count",
        "unbound_time_up_seconds_total",
    }
    assert selector_labels(unbound) == {"instance", "le", "buffer"}


def test_variable_metric_names_are_placeholders(corpus: dict[str, DashboardQueries]) -> None:
    # {__name__="${vmanomaly_prefix}anomaly_score"}: the name is not knowable.
    anomaly = corpus["vm-vmanomaly-default.json"]
    parsed = [t for t in anomaly.targets if t.refs is not None]
    assert parsed
    assert all(t.refs is not None and t.refs.placeholder_metric for t in parsed)
    assert metrics(anomaly) == set()


def test_label_regexes_read_as_equality_change_nothing(
    corpus: dict[str, DashboardQueries], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every corpus query gives the same names, labels and errors when promql-parser
    compiles each of its regex matchers (the query as written)."""
    substituted = [promql.substitute_variables(t.target.expr) for d in corpus.values()
                   for t in d.targets]  # fmt: skip
    rewritten = sum(promql._plain_matchers(expr) != expr for expr in substituted)
    assert rewritten > 1000  # of 1,766: dashboards filter by =~"$var"
    monkeypatch.setattr(promql, "_plain_matchers", lambda expr: expr)
    promql.extract_refs.cache_clear()  # each query parsed again, as written
    as_written = {d.file: d for d in read_dashboards(CORPUS / "dashboards").dashboards}
    promql.extract_refs.cache_clear()
    assert as_written == corpus
