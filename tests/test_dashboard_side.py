"""verify reads every query a dashboard runs, wherever the dashboard lives.

Each case is a hand-written dashboard against the bundled example's real export, with the
exact finding expected; the clean twin of each must give none.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project

JSONObject = dict[str, Any]


def board(*panels: JSONObject, **extra: Any) -> JSONObject:
    return {"title": "Hand", "uid": "hand", "panels": list(panels), **extra}


def panel(title: str, *exprs: str, **extra: Any) -> JSONObject:
    targets = [{"refId": chr(65 + i), "expr": expr} for i, expr in enumerate(exprs)]
    return {"type": "timeseries", "title": title, "targets": targets, **extra}


#: A panel on every family of the example, so that only the case's own findings remain.
EVERYTHING = panel(
    "All",
    'count({__name__=~"ci_.*|http_.*|pytest_.*|worker_.*"})',
)


def verify(example: Project, files: dict[str, str], *args: str) -> tuple[int, list[JSONObject]]:
    root = example.root / "dashboards"
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    result = example.run("verify", str(root), "--format", "json", *args)
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)["findings"]


def found(items: list[JSONObject]) -> set[tuple[str, str, str, str]]:
    return {(f["kind"], f["place"], f["panel"], f["subject"]) for f in items}


def variable(name: str, query: object, **extra: Any) -> JSONObject:
    return {"name": name, "type": "query", "query": query, **extra}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("label_values(renamed_total, route)", ("unknown-metric", "renamed_total")),
        ("label_values(worker_jobs_processed_total, route)", ("unknown-label", "route")),
        ("label_values(no_such_label)", ("unknown-label", "no_such_label")),
        ("query_result(sum(rate(renamed_total[5m])))", ("unknown-metric", "renamed_total")),
        ("metrics(^renamed_)", ("unmatched-regex", ".*(?:^renamed_).*")),
        ({"query": "label_values(renamed_total, route)", "refId": "V"}, None),
        ('{__name__="renamed_total"}', ("unknown-metric", "renamed_total")),
    ],
)
def test_template_variable_queries_are_checked(
    example: Project, query: object, expected: tuple[str, str] | None
) -> None:
    dashboard = board(EVERYTHING, templating={"list": [variable("pick", query)]})
    code, items = verify(example, {"hand.json": json.dumps(dashboard)})
    kind, subject = expected or ("unknown-metric", "renamed_total")  # the object form
    assert (code, found(items)) == (1, {(kind, "variable", "$pick", subject)})


@pytest.mark.parametrize(
    "query",
    [
        "label_values(worker_jobs_processed_total, job_type)",
        "label_values(job_type)",
        "label_values(job)",  # a scrape label: always there
        'label_values(worker_jobs_processed_total{job_type=~"$other"}, $label)',
        "query_result(topk(3, sum by (job_type) (rate(worker_jobs_processed_total[5m]))))",
        "metrics(worker_jobs)",
        "label_names()",
        {"query": "label_values(http_server_requests_total, http_route)", "qryType": 1},
    ],
)
def test_valid_variable_queries_stay_clean(example: Project, query: object) -> None:
    dashboard = board(EVERYTHING, templating={"list": [variable("pick", query)]})
    assert verify(example, {"hand.json": json.dumps(dashboard)}) == (0, [])


def test_annotation_queries_are_checked_in_both_forms(example: Project) -> None:
    annotations = {
        "list": [
            {"builtIn": 1, "datasource": {"type": "grafana", "uid": "grafana"}, "name": "Alerts"},
            {"name": "Deploys", "expr": "changes(renamed_total[5m]) > 0"},
            {
                "name": "Restarts",
                "datasource": {"type": "prometheus", "uid": "prom"},
                "target": {"refId": "Anno", "expr": "worker_busy{pod=~'.+'}"},
            },
            {"name": "Fine", "expr": "changes(worker_busy[5m]) > 0"},
        ]
    }
    code, items = verify(
        example, {"hand.json": json.dumps(board(EVERYTHING, annotations=annotations))}
    )
    assert code == 1
    assert {(f["kind"], f["place"], f["panel"], f["ref_id"], f["subject"]) for f in items} == {
        ("unknown-metric", "annotation", "Deploys", "", "renamed_total"),
        ("unknown-label", "annotation", "Restarts", "Anno", "pod"),
    }


def test_library_panels_kept_in_the_file_are_checked(example: Project) -> None:
    dashboard = board(
        EVERYTHING,
        {"title": "Shared", "libraryPanel": {"uid": "lib1", "name": "Shared"}},
        __elements={
            "lib1": {
                "name": "Shared",
                "kind": 1,
                "model": panel("Shared", "rate(renamed_total[5m])"),
            }
        },
    )
    code, items = verify(example, {"hand.json": json.dumps(dashboard)})
    assert (code, found(items)) == (
        1,
        {("unknown-metric", "library panel", "Shared", "renamed_total")},
    )


def test_the_human_report_names_the_place(example: Project) -> None:
    dashboard = board(EVERYTHING, templating={"list": [variable("route", "label_values(gone, x)")]})
    (example.root / "dashboards").mkdir()
    (example.root / "dashboards/hand.json").write_text(json.dumps(dashboard))
    result = example.run("verify", str(example.root / "dashboards"))
    assert result.exit_code == 1
    assert '  variable "$route"' in result.stdout.splitlines()


CONFIGMAP = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: dashboards
  labels: {grafana_dashboard: "1"}
data:
  good.json: |
    {"title": "Good", "panels": [{"title": "All", "targets": [{"refId": "A",
      "expr": "count({__name__=~\\"ci_.*|http_.*|pytest_.*|worker_.*\\"})"}]}]}
  renamed.json: |
    {"title": "Renamed", "panels": [{"title": "Old", "targets": [{"refId": "A",
      "expr": "rate(renamed_total[5m])"}]}]}
  broken.json: '{"panels": ['
  README: not a dashboard
"""

OPERATOR = """\
apiVersion: grafana.integreatly.org/v1beta1
kind: GrafanaDashboard
metadata:
  name: worker
spec:
  instanceSelector: {matchLabels: {dashboards: grafana}}
  json: >
    {"title": "Worker", "panels": [{"title": "Retries", "targets": [{"refId": "A",
    "expr": "rate(worker_job_retry_total[5m])"}]}]}
"""

PROVISIONING = "apiVersion: 1\nproviders:\n  - name: default\n    options: {path: /dashboards}\n"


def test_dashboards_in_subfolders_configmaps_and_operator_resources(example: Project) -> None:
    code, items = verify(
        example,
        {
            "k8s/configmap.yaml": CONFIGMAP,
            "k8s/operator/worker.yml": OPERATOR,
            "k8s/provisioning.yaml": PROVISIONING,
            "notes/values.yaml": "replicas: 3\n",
        },
    )
    assert code == 1
    assert {(f["kind"], f["file"], f["subject"]) for f in items} == {
        ("unknown-metric", "dashboards/k8s/configmap.yaml#renamed.json", "renamed_total"),
        (
            "unreadable-file",
            "dashboards/k8s/configmap.yaml#broken.json",
            "dashboards/k8s/configmap.yaml#broken.json",
        ),
        (
            "unknown-metric",
            "dashboards/k8s/operator/worker.yml#worker.spec.json",
            "worker_job_retry_total",
        ),
    }
    result = example.run("verify", str(example.root / "dashboards"), "--format", "json")
    report = json.loads(result.stdout)
    assert report["summary"]["dashboards"] == 3
    assert report["info"] == [
        "dashboards/notes/values.yaml: YAML holding no Grafana dashboard (in a ConfigMap or "
        "GrafanaDashboard) and no rules, left out"
    ]


def test_exclude_leaves_files_out_from_the_cli_or_the_config(example: Project) -> None:
    files = {
        "team/good.json": json.dumps(board(EVERYTHING)),
        "legacy/old.json": json.dumps(board(panel("Old", "rate(renamed_total[5m])"))),
    }
    assert verify(example, files)[0] == 1
    assert verify(example, {}, "--exclude", "legacy/*") == (0, [])
    config = (example.root / "pyproject.toml").read_text()
    (example.root / "pyproject.toml").write_text(
        config.replace("[tool.dashgen]\n", '[tool.dashgen]\nexclude_dashboards = ["*/old.json"]\n')
    )
    assert verify(example, {}) == (0, [])


def test_a_dir_with_no_dashboards_is_one_line_and_exit_2(example: Project) -> None:
    empty = example.root / "dashboards"
    (empty / "sub").mkdir(parents=True)
    (empty / "sub" / "notes.txt").write_text("nothing here")
    result = example.run("verify", str(empty))
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == (
        f"error: {empty.as_posix()}: no dashboards here (*.json, or YAML holding dashboards)\n"
    )


def test_a_symlink_loop_is_a_note_and_the_rest_is_checked(example: Project) -> None:
    root = example.root / "dashboards"
    (root / "a").mkdir(parents=True)
    (root / "a" / "loop").symlink_to(root)
    (root / "a" / "good.json").write_text(json.dumps(board(EVERYTHING)))
    result = example.run("verify", str(root), "--format", "json")
    assert result.exit_code == 0, result.stdout
    report = json.loads(result.stdout)
    assert report["summary"]["dashboards"] == 1
    assert report["info"] == [
        f"{(root / 'a' / 'loop').as_posix()}: a symlink loop, not followed again"
    ]


def test_an_unreadable_entry_names_its_file_and_the_rest_are_checked(
    example: Project, tmp_path: Path
) -> None:
    root = example.root / "dashboards"
    root.mkdir()
    (root / "gone.json").symlink_to(tmp_path / "nowhere.json")
    (root / "bad.yaml").write_text("kind: ConfigMap\ndata: [unclosed\n")
    code, items = verify(example, {"good.json": json.dumps(board(EVERYTHING))})
    assert code == 1
    assert {(f["kind"], f["file"], f["message"]) for f in items} == {
        ("unreadable-file", "dashboards/gone.json", "cannot read: No such file or directory"),
        (
            "unreadable-file",
            "dashboards/bad.yaml",
            "not valid YAML: expected ',' or ']', but got '<stream end>' at line 3 column 1",
        ),
    }


@pytest.mark.parametrize(
    "expr",
    [
        # One branch on a live name: the panel draws (old and new names during a rename).
        "rate(worker_jobs_processed_total[5m]) or rate(worker_jobs_done_total[5m])",
        'sum({__name__=~"worker_jobs_processed_total|worker_jobs_done_total"}) or sum(gone)',
        '{__name__="worker_busy" or __name__="worker_idle"}',
        # RE2 that Prometheus takes and Python's re does not.
        '{__name__=~"worker_[[:alpha:]_]+_total"}',
        '{__name__=~"\\\\Qworker_busy\\\\E"}',
        # An aggregation or a function from a variable.
        "$agg by (job_type) (rate(worker_jobs_processed_total[5m]))",
        "${fn}(worker_jobs_processed_total[5m])",
    ],
)
def test_valid_promql_is_not_reported_broken(example: Project, expr: str) -> None:
    dashboard = board(EVERYTHING, panel("Case", expr))
    assert verify(example, {"hand.json": json.dumps(dashboard)}) == (0, [])


def test_every_branch_of_an_or_on_a_dead_name_is_still_reported(example: Project) -> None:
    dashboard = board(EVERYTHING, panel("Case", "rate(gone_total[5m]) or rate(also_gone[5m])"))
    code, items = verify(example, {"hand.json": json.dumps(dashboard)})
    assert (code, found(items)) == (
        1,
        {
            ("unknown-metric", "panel", "Case", "gone_total"),
            ("unknown-metric", "panel", "Case", "also_gone"),
        },
    )


def test_a_prometheus_datasource_named_like_logs_is_checked(example: Project) -> None:
    dashboard = board(
        EVERYTHING,
        panel("Log lines", "rate(log_lines_total[5m])", datasource="app-logs"),
        panel("Loki", '{app="shop"} |= "error"', datasource="app-logs"),
    )
    code, items = verify(example, {"hand.json": json.dumps(dashboard)})
    assert (code, found(items)) == (
        1,
        {("unknown-metric", "panel", "Log lines", "log_lines_total")},
    )


def test_escape_sequences_in_titles_are_shown_not_obeyed(example: Project) -> None:
    dashboard = board(
        EVERYTHING, panel("\x1b[2J\x1b[31mRed", "rate(gone_total[5m])"), title="T\x07"
    )
    (example.root / "dashboards").mkdir()
    (example.root / "dashboards/hand.json").write_text(json.dumps(dashboard))
    result = example.run("verify", str(example.root / "dashboards"))
    assert result.exit_code == 1
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert '  panel "\\x1b[2J\\x1b[31mRed"' in result.stdout.splitlines()
    assert "dashboards/hand.json  T\\x07" in result.stdout.splitlines()


@pytest.mark.parametrize(
    ("expr", "legend", "expected"),
    [
        # The result keeps only what `by` names.
        ("sum by (http_route) (rate(http_server_requests_total[5m]))", "{{route}}", "route"),
        ("sum(rate(http_server_requests_total[5m]))", "{{http_route}}", "http_route"),
        (
            "histogram_quantile(0.9, sum by (le) (rate(worker_job_duration_seconds_bucket[5m])))",
            "{{job_type}}",
            "job_type",
        ),
        # No series read has it.
        ("rate(worker_jobs_processed_total[5m])", "{{queue}}", "queue"),
        (
            "sum without (job_type) (rate(worker_jobs_processed_total[5m]))",
            "{{job_type}}",
            "job_type",
        ),
    ],
)
def test_a_legend_naming_a_label_the_result_cannot_have(
    example: Project, expr: str, legend: str, expected: str
) -> None:
    case = {
        "type": "timeseries",
        "title": "Case",
        "targets": [{"refId": "A", "expr": expr, "legendFormat": legend}],
    }
    code, items = verify(example, {"hand.json": json.dumps(board(EVERYTHING, case))})
    assert (code, found(items)) == (1, {("legend-label-missing", "panel", "Case", expected)})


@pytest.mark.parametrize(
    ("expr", "legend"),
    [
        ("sum by (http_route) (rate(http_server_requests_total[5m]))", "{{http_route}}"),
        ("rate(worker_jobs_processed_total[5m])", "{{job_type}} {{job}} {{instance}}"),
        (
            'label_replace(sum by (job_type) (rate(worker_jobs_processed_total[5m])), "type", '
            '"$1", "job_type", "(.*)")',
            "{{type}}",
        ),
        ("topk(3, sum by (job_type) (rate(worker_jobs_processed_total[5m])))", "{{job_type}}"),
        ("sum by ($group) (rate(worker_jobs_processed_total[5m]))", "{{job_type}}"),
        ("sum(rate(worker_jobs_processed_total[5m])) * 60", "jobs/min"),
        ("sum by (le) (increase(worker_job_duration_seconds_bucket[5m]))", "{{le}}"),
    ],
)
def test_legends_the_result_can_fill_stay_clean(example: Project, expr: str, legend: str) -> None:
    case = {
        "type": "timeseries",
        "title": "Case",
        "targets": [{"refId": "A", "expr": expr, "legendFormat": legend}],
    }
    assert verify(example, {"hand.json": json.dumps(board(EVERYTHING, case))}) == (0, [])


def test_a_table_panel_names_columns_without_its_legend(example: Project) -> None:
    case = {
        "type": "table",
        "title": "Case",
        "targets": [{"refId": "A", "expr": "sum(worker_busy)", "legendFormat": "{{pod}}"}],
    }
    assert verify(example, {"hand.json": json.dumps(board(EVERYTHING, case))}) == (0, [])


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ('label_replace(worker_busy, "route", "$1", "http_route", "(.*)")', "http_route"),
        ('label_join(worker_jobs_processed_total, "id", "-", "job_type", "jobtype")', "jobtype"),
        ('worker_job_duration_seconds_count{le="0.5"}', "le"),
        ("sum by (le) (rate(worker_job_duration_seconds_sum[5m]))", "le"),
    ],
)
def test_labels_a_function_reads_and_le_off_the_buckets(
    example: Project, expr: str, expected: str
) -> None:
    code, items = verify(example, {"hand.json": json.dumps(board(EVERYTHING, panel("Case", expr)))})
    assert (code, found(items)) == (1, {("unknown-label", "panel", "Case", expected)})


def test_le_on_buckets_and_copied_labels_stay_clean(example: Project) -> None:
    exprs = (
        'worker_job_duration_seconds_bucket{le="0.5"}',
        "sum by (le) (rate(worker_job_duration_seconds_bucket[5m]))",
        'label_replace(worker_jobs_processed_total, "type", "$1", "job_type", "(.*)")',
        'label_join(worker_job_failures_total, "id", "-", "job_type", "failure_reason")',
    )
    assert verify(example, {"hand.json": json.dumps(board(EVERYTHING, panel("Case", *exprs)))}) == (
        0,
        [],
    )


def test_a_baseline_reports_only_new_findings(example: Project) -> None:
    old = board(EVERYTHING, panel("Old", "rate(gone_total[5m])", "sum by (pod) (worker_busy)"))
    code, items = verify(example, {"hand.json": json.dumps(old)})
    assert (code, len(items)) == (1, 2)
    baseline = example.root / "dashgen-baseline.json"
    dashboards = str(example.root / "dashboards")
    written = example.run("verify", dashboards, "--write-baseline", str(baseline))
    assert (written.exit_code, written.stdout) == (0, f"wrote {baseline}: 2 findings\n")
    text = baseline.read_text()
    assert text.splitlines()[0] == '{"version": 1, "findings": ['
    assert example.run("verify", dashboards, "--write-baseline", str(baseline)).exit_code == 0
    assert baseline.read_text() == text  # the same findings give the same bytes
    assert verify(example, {}, "--baseline", str(baseline)) == (0, [])
    # A new dead query fails; the known ones stay out; a fixed one is named for removal.
    new = board(EVERYTHING, panel("Old", "rate(gone_total[5m])", "sum(worker_busy)"))
    new["panels"].append(panel("New", "rate(also_gone_total[5m])"))
    code, items = verify(example, {"hand.json": json.dumps(new)}, "--baseline", str(baseline))
    assert (code, found(items)) == (1, {("unknown-metric", "panel", "New", "also_gone_total")})
    report = json.loads(
        example.run("verify", dashboards, "--baseline", str(baseline), "--format", "json").stdout
    )
    assert "1 known findings left out: in the baseline " in report["info"][0]
    assert report["info"][1] == (
        "baseline entry fixed, drop it: unknown-label dashboards/hand.json panel Old B pod"
    )


def test_a_bad_baseline_is_one_line(example: Project) -> None:
    (example.root / "dashboards").mkdir()
    (example.root / "dashboards/hand.json").write_text(json.dumps(board(EVERYTHING)))
    baseline = example.root / "baseline.json"
    for text, message in [
        ("{", "not a dashgen baseline: Expecting property name"),
        ('{"version": 2}', "not a dashgen baseline (version 1)"),
        ('{"version": 1, "findings": [{"kind": 1}]}', "finding 1: needs the strings kind, file"),
    ]:
        baseline.write_text(text)
        result = example.run(
            "verify", str(example.root / "dashboards"), "--baseline", str(baseline)
        )
        assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
        assert message in result.stderr


QUANTILE = "histogram_quantile(0.99, sum by (le) (rate(worker_job_duration_seconds_bucket[5m])))"
MEAN = (
    "sum(rate(worker_job_duration_seconds_sum[5m])) / "
    "sum(rate(worker_job_duration_seconds_count[5m]))"
)


def with_unit(unit: str, *exprs: str) -> JSONObject:
    return panel("Case", *exprs, fieldConfig={"defaults": {"unit": unit}})


@pytest.mark.parametrize(
    ("unit", "expr", "message", "hint"),
    [
        (
            "ms",
            QUANTILE,
            "`worker_job_duration_seconds_bucket`: panel unit `ms` on values in `s` scaled by "
            "1: they are shown 1000x off",
            "set the panel unit to `s`, or scale the query by 1000",
        ),
        (
            "ms",
            MEAN,
            "`worker_job_duration_seconds_sum`: panel unit `ms` on values in `s` scaled by 1: "
            "they are shown 1000x off",
            "set the panel unit to `s`, or scale the query by 1000",
        ),
        (
            "s",
            f"{QUANTILE} * 1000",
            "`worker_job_duration_seconds_bucket`: panel unit `s` on values in `s` scaled by "
            "1000: they are shown 0.001x off",
            "set the panel unit to `ms`, or scale the query by 1 instead of 1000",
        ),
        (
            "bytes",
            QUANTILE,
            "`worker_job_duration_seconds_bucket`: panel unit `bytes` is data, but the values "
            "are time (unit `s`)",
            "use a time unit for the panel, such as `s`",
        ),
    ],
)
def test_a_panel_unit_that_contradicts_the_metric(
    example: Project, unit: str, expr: str, message: str, hint: str
) -> None:
    code, items = verify(
        example, {"hand.json": json.dumps(board(EVERYTHING, with_unit(unit, expr)))}
    )
    assert code == 1
    assert [(f["kind"], f["subject"], f["message"], f["hint"]) for f in items] == [
        ("unit-mismatch", unit, message, hint)
    ]


@pytest.mark.parametrize(
    ("unit", "expr"),
    [
        ("s", QUANTILE),
        ("ms", f"{QUANTILE} * 1000"),
        ("ms", f"1000 * ({MEAN})"),
        ("dtdurations", MEAN),
        ("µs", f"{QUANTILE} * 1e6"),
        ("ops", "sum(rate(worker_job_duration_seconds_count[5m]))"),  # a count: not judged
        ("percentunit", "rate(worker_job_duration_seconds_sum[5m])"),  # s per s: not judged
        ("short", QUANTILE),  # a unit with no dimension: not judged
    ],
)
def test_panel_units_that_fit_stay_clean(example: Project, unit: str, expr: str) -> None:
    assert verify(example, {"hand.json": json.dumps(board(EVERYTHING, with_unit(unit, expr)))}) == (
        0,
        [],
    )


def test_an_external_pattern_covers_a_name_regex_it_overlaps(example: Project) -> None:
    config = (example.root / "pyproject.toml").read_text()
    external = (
        '\n[[tool.dashgen.external]]\npattern = "node_.*"\nregex = true\nreason = "node-exporter"\n'
    )
    (example.root / "pyproject.toml").write_text(config + external)
    covered = panel("Covered", 'sum(rate({__name__=~"node_cpu_seconds.*"}[5m]))')
    assert verify(example, {"hand.json": json.dumps(board(EVERYTHING, covered))}) == (0, [])
    uncovered = panel("Uncovered", '{__name__=~"process_cpu_.*"}')
    code, items = verify(example, {"hand.json": json.dumps(board(EVERYTHING, uncovered))})
    assert (code, found(items)) == (
        1,
        {("unmatched-regex", "panel", "Uncovered", "process_cpu_.*")},
    )


def test_build_refuses_a_hint_unit_that_contradicts_the_metric(project: Project) -> None:
    project.source(
        "m.py",
        "from dashgen import Dashboard, Gauge, Row, hints\n"
        "G = Gauge('queue.wait', unit='ms', hint=hints.Current(unit='s'))\n"
        "D = Dashboard('D', rows=[Row('r', [G])])\n",
    )
    result = project.run("build")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: src/m.py:2: metric 'queue.wait': hint Current(unit='s'): panel unit `s` on "
        "values in `ms` scaled by 1: they are shown 0.001x off; use unit='ms', or leave "
        "unit= out\n",
    )
    assert not project.generated.exists()


PAYMENTS = """
from dashgen import Counter, Dashboard, Row
PAYMENTS = Counter("shop.payments", labels=["payment_method"]{values})
D = Dashboard("Shop", rows=[Row("r", [PAYMENTS])])
"""


@pytest.mark.parametrize("declared", [True, False])
def test_live_feeds_the_declared_real_label_values(project: Project, declared: bool) -> None:
    """A hand-written matcher on a real value draws data when the declaration names the
    label's values; without them the fed data cannot know it, and live says no data."""
    values = ', values={"payment_method": ["card", "cash"]}' if declared else ""
    project.source("m.py", PAYMENTS.format(values=values))
    assert project.run("build").exit_code == 0
    card = panel("Card", 'sum(rate(shop_payments_total{payment_method="card"}[5m]))')
    (project.root / "dashboards").mkdir()
    (project.root / "dashboards/shop.json").write_text(json.dumps(board(card)))
    result = project.run("verify", str(project.root / "dashboards"), "--live", "--format", "json")
    live = json.loads(result.stdout)["live"]
    if declared:
        assert (result.exit_code, live["findings"]) == (0, [])
    else:
        assert result.exit_code == 1
        assert [f["kind"] for f in live["findings"]] == ["no-data"]


def test_values_must_name_declared_labels(project: Project) -> None:
    project.source("m.py", PAYMENTS.format(values=', values={"method": ["card"]}'))
    result = project.run("build")
    assert (result.exit_code, result.stderr) == (
        2,
        "error: src/m.py:3: metric 'shop.payments': values= names 'method', which is not in "
        "labels=\n",
    )
