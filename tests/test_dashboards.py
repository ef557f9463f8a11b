"""Reading dashboard JSON: layouts, datasource resolution, targets, malformed input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashgen.errors import DashgenError
from dashgen.verify.dashboards import (
    DashboardQueries,
    ParsedTarget,
    SkippedTarget,
    Target,
    read_dashboard,
)

JSONObject = dict[str, object]


def write(directory: Path, name: str, content: object) -> Path:
    path = directory / name
    path.write_text(content if isinstance(content, str) else json.dumps(content))
    return path


def read(tmp_path: Path, dashboard: JSONObject) -> DashboardQueries:
    return read_dashboard(write(tmp_path, "d.json", dashboard), tmp_path)


def panel(
    title: str, *targets: JSONObject, datasource: object = None, **extra: object
) -> JSONObject:
    result: JSONObject = {"type": "timeseries", "title": title, "targets": list(targets)}
    if datasource is not None:
        result["datasource"] = datasource
    result.update(extra)
    return result


def only(dashboard: DashboardQueries) -> ParsedTarget | SkippedTarget:
    """The one target of a one-target dashboard, parsed or skipped."""
    found = dashboard.targets + dashboard.skipped
    assert len(found) == 1, found
    return found[0]


def test_modern_layout_with_collapsed_rows(tmp_path: Path) -> None:
    dashboard = read(
        tmp_path,
        {
            "title": "Service",
            "uid": "svc",
            "panels": [
                panel("Requests", {"expr": "rate(a_total[5m])", "refId": "A"}, id=1),
                {"type": "row", "title": "Open row", "collapsed": False, "panels": []},
                panel("Latency", {"expr": "b_seconds", "refId": "A"}, id=2),
                {
                    "type": "row",
                    "title": "Closed row",
                    "collapsed": True,
                    "panels": [panel("Nested", {"expr": "c", "refId": "Z"}, id=3)],
                },
                {"type": "text", "title": "Notes"},
            ],
        },
    )
    assert dashboard.title == "Service"
    assert dashboard.uid == "svc"
    assert dashboard.file == "d.json"
    assert dashboard.panels == ("Requests", "Latency", "Nested", "Notes")
    assert [(t.target.panel, t.target.panel_id, t.target.ref_id) for t in dashboard.targets] == [
        ("Requests", 1, "A"),
        ("Latency", 2, "A"),
        ("Nested", 3, "Z"),
    ]
    assert [t.refs.selectors[0].metric for t in dashboard.targets if t.refs] == [
        "a_total",
        "b_seconds",
        "c",
    ]


def test_legacy_rows_layout(tmp_path: Path) -> None:
    dashboard = read(
        tmp_path,
        {
            "title": "Old",
            "schemaVersion": 14,
            "rows": [
                {"title": "R1", "panels": [panel("One", {"expr": "a"}), panel("Two")]},
                {"title": "R2", "panels": [panel("Three", {"expr": "b"}, {"expr": "c"})]},
            ],
        },
    )
    assert dashboard.panels == ("One", "Two", "Three")
    assert [(t.target.panel, t.target.expr) for t in dashboard.targets] == [
        ("One", "a"),
        ("Three", "b"),
        ("Three", "c"),
    ]


def test_target_fields(tmp_path: Path) -> None:
    expr = 'sum by (job) (rate(x_total{job="$job"}[$__rate_interval]))'
    dashboard = read(
        tmp_path,
        {
            "title": "T",
            "panels": [panel("P", {"expr": expr, "legendFormat": "{{job}}", "refId": "Q"}, id=7)],
        },
    )
    assert dashboard.targets[0].target == Target(
        file="d.json",
        dashboard="T",
        panel="P",
        panel_id=7,
        ref_id="Q",
        expr=expr,
        legend="{{job}}",
        datasource="prometheus",
        place="panel",
        panel_type="timeseries",
    )


def test_missing_ref_ids_follow_grafana_order(tmp_path: Path) -> None:
    targets: list[JSONObject] = [{"expr": f"m{i}"} for i in range(28)]
    targets[1]["refId"] = "X"
    dashboard = read(tmp_path, {"panels": [panel("P", *targets)]})
    ref_ids = [t.target.ref_id for t in dashboard.targets]
    assert ref_ids[:4] == ["A", "X", "C", "D"]
    assert ref_ids[25:] == ["Z", "AA", "AB"]


def test_parse_failure_is_recorded_not_raised(tmp_path: Path) -> None:
    dashboard = read(tmp_path, {"panels": [panel("P", {"expr": "sum(rate(x[5m])"})]})
    (parsed,) = dashboard.targets
    assert parsed.refs is None
    assert parsed.error == "unclosed left parenthesis"


@pytest.mark.parametrize(
    ("expr", "reason"),
    [(None, "no expr"), ("  ", "empty expr"), (42, "no expr")],
)
def test_targets_without_a_query_are_skipped(tmp_path: Path, expr: object, reason: str) -> None:
    target: JSONObject = {"refId": "A"} if expr is None else {"refId": "A", "expr": expr}
    skipped = only(read(tmp_path, {"panels": [panel("P", target)]}))
    assert isinstance(skipped, SkippedTarget)
    assert skipped.reason == reason


# Each case: dashboard-level extras, panel datasource, target datasource, expected
# datasource type, and whether the target is parsed.
DATASOURCE_CASES: list[tuple[str, JSONObject, object, object, str, bool]] = [
    ("nothing: dashboard default", {}, None, None, "prometheus", True),
    ("object with type", {}, None, {"type": "prometheus", "uid": "x"}, "prometheus", True),
    (
        "VictoriaMetrics plugin",
        {},
        {"type": "victoriametrics-metrics-datasource", "uid": "vm"},
        None,
        "victoriametrics-metrics-datasource",
        True,
    ),
    (
        "Amazon Managed Prometheus",
        {},
        None,
        {"type": "grafana-amazonprometheus-datasource", "uid": "amp"},
        "grafana-amazonprometheus-datasource",
        True,
    ),
    ("loki object", {}, {"type": "loki", "uid": "l"}, None, "loki", False),
    (
        "VictoriaLogs",
        {},
        None,
        {"type": "victoriametrics-logs-datasource", "uid": "${ds}"},
        "victoriametrics-logs-datasource",
        False,
    ),
    (
        "__inputs string",
        {"__inputs": [{"name": "DS_LOKI", "type": "datasource", "pluginId": "loki"}]},
        "${DS_LOKI}",
        None,
        "loki",
        False,
    ),
    (
        "__inputs uid",
        {"__inputs": [{"name": "DS_P", "type": "datasource", "pluginId": "prometheus"}]},
        None,
        {"uid": "${DS_P}"},
        "prometheus",
        True,
    ),
    (
        "template variable, $name",
        {"templating": {"list": [{"name": "ds", "type": "datasource", "query": "loki"}]}},
        "$ds",
        None,
        "loki",
        False,
    ),
    (
        "template variable, uid ${name}",
        {"templating": {"list": [{"name": "ds", "type": "datasource", "query": "prometheus"}]}},
        {"uid": "${ds}"},
        None,
        "prometheus",
        True,
    ),
    (
        "template variable with format, [[name]]",
        {"templating": {"list": [{"name": "ds", "type": "datasource", "query": "tempo"}]}},
        None,
        "[[ds]]",
        "tempo",
        False,
    ),
    ("unknown variable judged by name", {}, "${lokids}", None, "loki", False),
    ("unknown variable", {}, "$datasource", None, "prometheus", True),
    ("plain name", {}, "Victoria Metrics", None, "prometheus", True),
    ("plain uid", {}, {"uid": "prometheus"}, None, "prometheus", True),
    # "logs" alone does not say Loki: a query there that parses as PromQL is checked.
    ("plain name of a log store", {}, "webstore-logs", None, "named like logs or traces", True),
    ("plain name Elasticsearch", {}, "Elasticsearch", None, "elasticsearch", False),
    ("built-in Grafana", {}, "-- Grafana --", None, "grafana", False),
    ("built-in Grafana uid", {}, {"type": "datasource", "uid": "grafana"}, None, "grafana", False),
    ("dashboard datasource", {}, "-- Dashboard --", None, "dashboard", False),
    ("mixed panel, target unset", {}, "-- Mixed --", None, "prometheus", True),
    (
        "mixed panel object, target loki",
        {},
        {"type": "datasource", "uid": "-- Mixed --"},
        {"type": "loki", "uid": "x"},
        "loki",
        False,
    ),
    ("target wins over panel", {}, {"type": "loki"}, {"type": "prometheus"}, "prometheus", True),
    ("panel when target unset", {}, {"type": "jaeger"}, {}, "jaeger", False),
]


@pytest.mark.parametrize(
    ("extras", "panel_ds", "target_ds", "kind", "is_parsed"),
    [case[1:] for case in DATASOURCE_CASES],
    ids=[case[0] for case in DATASOURCE_CASES],
)
def test_datasource_resolution(
    tmp_path: Path,
    extras: JSONObject,
    panel_ds: object,
    target_ds: object,
    kind: str,
    is_parsed: bool,
) -> None:
    target: JSONObject = {"expr": "up", "refId": "A"}
    if target_ds is not None:
        target["datasource"] = target_ds
    dashboard = read(tmp_path, {**extras, "panels": [panel("P", target, datasource=panel_ds)]})
    found = only(dashboard)
    assert found.target.datasource == kind
    assert isinstance(found, ParsedTarget) == is_parsed
    if isinstance(found, SkippedTarget):
        assert found.reason == f"{kind} datasource"


def test_a_logs_named_datasource_skips_what_is_not_promql(tmp_path: Path) -> None:
    dashboard = read(
        tmp_path,
        {
            "panels": [
                panel(
                    "LogQL", {"expr": '{app="shop"} |= "error"', "refId": "A"}, datasource="Logs"
                ),
                panel(
                    "PromQL", {"expr": "rate(log_lines_total[5m])", "refId": "A"}, datasource="Logs"
                ),
            ]
        },
    )
    assert [(s.target.panel, s.reason) for s in dashboard.skipped] == [
        ("LogQL", "datasource named like logs or traces, not PromQL")
    ]
    assert [t.target.panel for t in dashboard.targets] == ["PromQL"]
    assert dashboard.targets[0].refs is not None


def test_inputs_win_over_a_template_variable_of_the_same_name(tmp_path: Path) -> None:
    dashboard = read(
        tmp_path,
        {
            "__inputs": [{"name": "DS", "type": "datasource", "pluginId": "loki"}],
            "templating": {"list": [{"name": "DS", "type": "datasource", "query": "prometheus"}]},
            "panels": [panel("P", {"expr": "up"}, datasource="${DS}")],
        },
    )
    assert only(dashboard).target.datasource == "loki"


def test_server_side_expression_is_skipped(tmp_path: Path) -> None:
    dashboard = read(
        tmp_path,
        {
            "panels": [
                panel(
                    "P",
                    {"expr": "up", "refId": "A"},
                    {"datasource": {"type": "__expr__", "uid": "x"}, "expression": "$A * 2"},
                    datasource={"type": "prometheus"},
                )
            ]
        },
    )
    assert [t.target.ref_id for t in dashboard.targets] == ["A"]
    assert [(s.target.ref_id, s.reason) for s in dashboard.skipped] == [
        ("B", "server-side expression")
    ]


def test_api_export_wrapper_is_accepted(tmp_path: Path) -> None:
    dashboard = read(
        tmp_path,
        {
            "meta": {"slug": "x"},
            "dashboard": {"title": "W", "panels": [panel("P", {"expr": "up"})]},
        },
    )
    assert dashboard.title == "W"
    assert len(dashboard.targets) == 1


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{\n  "panels": [\n    {,\n  ]\n}', "not valid JSON: Expecting property name enclosed"),
        ('{"panels": [{"title": "x"', "not valid JSON: Expecting ',' delimiter at line 1"),
        ("", "not valid JSON: Expecting value at line 1 column 1"),
        ("[1, 2]", "not a Grafana dashboard: the top level is an array"),
        ('"text"', "not a Grafana dashboard: the top level is a string"),
        ("null", "not a Grafana dashboard: the top level is null"),
        ("true", "not a Grafana dashboard: the top level is a boolean"),
        ("1.5", "not a Grafana dashboard: the top level is a number"),
        ('{"title": "x"}', "not a Grafana dashboard: no 'panels' or 'rows'"),
        ('{"dashboard": {"title": "x"}}', "not a Grafana dashboard: no 'panels' or 'rows'"),
        ('{"panels": {}}', "'panels' is not a list"),
        ('{"panels": [1]}', "'panels' has an item that is not an object"),
        ('{"rows": [{"panels": [[]]}]}', "'rows[].panels' has an item that is not an object"),
        ('{"panels": [{"title": "P", "targets": {}}]}', "panel 'P': 'targets' is not a list"),
        ('{"panels": [{"title": "P", "targets": ["up"]}]}', "panel 'P': a target is not an"),
    ],
)
def test_malformed_input_raises_a_one_line_error(
    tmp_path: Path, content: str, message: str
) -> None:
    path = write(tmp_path, "bad.json", content)
    with pytest.raises(DashgenError) as raised:
        read_dashboard(path, tmp_path)
    assert raised.value.where == "bad.json"
    assert raised.value.message.startswith(message)
    assert "\n" not in str(raised.value)


def test_invalid_json_says_where(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", '{\n  "panels": [\n    {,\n  ]\n}')
    with pytest.raises(DashgenError, match=r"at line 3 column 6$"):
        read_dashboard(path, tmp_path)


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin1.json"
    path.write_bytes('{"title": "caf\u00e9", "panels": []}'.encode("latin-1"))
    with pytest.raises(DashgenError, match=r"^latin1\.json: not UTF-8: byte 0xe9 at offset 14$"):
        read_dashboard(path, tmp_path)


def test_utf8_byte_order_mark_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.json"
    path.write_bytes(b'\xef\xbb\xbf{"title": "B", "panels": []}')
    assert read_dashboard(path, tmp_path).title == "B"


def test_file_outside_root_keeps_its_path(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    path = write(tmp_path / "a", "d.json", {"panels": []})
    assert read_dashboard(path, tmp_path / "b").file == path.as_posix()


def test_deeply_nested_json_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path, "deep.json", "[" * 100_000 + "]" * 100_000)
    with pytest.raises(DashgenError, match="nested too deeply"):
        read_dashboard(path, tmp_path)
