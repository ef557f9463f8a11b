"""Alert and recording rules from the declarations: written as Prometheus rule files,
checked and tested by the real promtool, and read back by verify like panels."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from dashgen.build.rule_tests import go_float, humanize
from tests.conftest import Project

PROMTOOL = shutil.which("promtool")

SHOP = """
from dashgen import (
    Alert, AlertRule, Counter, Dashboard, Gauge, Histogram, Panel, RecordingRule, Row,
    RuleGroup, expr, hints,
)

ERRORS_HIGH = Alert("ErrorsHigh", above=0.5, for_="10m", summary="{{ $labels.http_route }} fails")
SLOW = Alert("CheckoutSlow", for_="15m", description="p99 is {{ $value | humanize }}s")
MEAN_SLOW = Alert("CheckoutMeanSlow", above=2, for_="5m")
BIG_HOUR = Alert("ManyOrdersThisHour", above=1000, window="1h", for_="0")
LOW_STOCK = Alert("StockLow", below=10, for_="30m", severity="critical",
                  summary="{{ $labels.warehouse }} has {{ $value }} left")

REQUESTS = Counter("shop.requests", unit="{request}", labels=["http.route", "code"],
                   values={"code": ["200", "500"]},
                   hint=hints.Rate(by=("http.route",), alert=ERRORS_HIGH))
ORDERS = Counter("shop.orders", unit="{order}", hint=hints.Increase(alert=BIG_HOUR))
LATENCY = Histogram("shop.checkout.duration", unit="s", buckets=[0.1, 0.5, 1, 2, 5, 10],
                    hint=[hints.Quantiles(quantiles=(0.5, 0.99),
                                          thresholds=((0.5, "orange"), (1, "red")), alert=SLOW),
                          hints.Average(alert=MEAN_SLOW)])
STOCK = Gauge("shop.stock", unit="{item}", labels=["warehouse"],
              hint=hints.Current(by=("warehouse",), agg="min", alert=LOW_STOCK))

FAILED = expr.rate(REQUESTS, where={"code": "500"}, by=("http.route",))
FAILURES = RecordingRule(FAILED)
RATIO = RecordingRule(expr.ratio(FAILED, expr.rate(REQUESTS, by=("http.route",))),
                      name="http_route:shop_requests_failed:ratio_rate5m")

BOARD = Dashboard("Shop", rows=[
    Row("Traffic", [REQUESTS, ORDERS,
                    Panel("Failures per route", expr.recorded(FAILURES, by=("http.route",)))]),
    Row("Checkout", [LATENCY, STOCK]),
])

SHOP_RULES = RuleGroup("shop", [
    ERRORS_HIGH, SLOW, MEAN_SLOW, BIG_HOUR, LOW_STOCK,
    AlertRule("FailuresHigh", FAILED, above=0.2, for_="5m",
              summary="{{ $labels.http_route }}: {{ $value | humanizePercentage }}"),
    AlertRule("FailureRatioHigh", expr.recorded(RATIO, by=("http.route",)), above=0.05),
    AlertRule("ErrorRatioHigh", expr.ratio(FAILED, expr.rate(REQUESTS, by=("http.route",))),
              above=0.05, summary="{{ $labels.http_route }} fails {{ $value }}"),
    AlertRule("BudgetBurnFast",
              expr.slo_burn(expr.rate(REQUESTS, where={"code": "500"}, window="1h"),
                            expr.rate(REQUESTS, window="1h"), objective=0.999),
              above=14.4, for_="2m"),
    AlertRule("OrdersPerRequestHigh", expr.ratio(expr.rate(ORDERS), expr.rate(REQUESTS)),
              above=0.5),
    AlertRule("ServerErrors", expr.rate(REQUESTS, where={"code": "5[0-9]+"}), above=1),
    FAILURES,
    RATIO,
], interval="1m")
"""


def rule_file(project: Project, group: str = "shop") -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(
        (project.generated / "rules" / f"{group}.yaml").read_text()
    )
    return loaded


def rules_by_name(project: Project, group: str = "shop") -> dict[str, dict[str, Any]]:
    (only,) = rule_file(project, group)["groups"]
    return {rule.get("alert") or rule["record"]: rule for rule in only["rules"]}


def promtool(*arguments: str | Path) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL, "promtool is installed with prometheus (.ci/run installs it)"
    return subprocess.run(
        [PROMTOOL, *map(str, arguments)], capture_output=True, text=True, check=False
    )


@pytest.fixture
def shop(project: Project) -> Project:
    project.source("shop.py", SHOP)
    result = project.run("build")
    assert result.exit_code == 0, result.stderr
    return project


def test_rules_are_written_with_the_exported_names(shop: Project) -> None:
    rules = rules_by_name(shop)
    assert list(rules) == [
        "ErrorsHigh",
        "CheckoutSlow",
        "CheckoutMeanSlow",
        "ManyOrdersThisHour",
        "StockLow",
        "FailuresHigh",
        "FailureRatioHigh",
        "ErrorRatioHigh",
        "BudgetBurnFast",
        "OrdersPerRequestHigh",
        "ServerErrors",
        "job_instance_http_route:shop_requests:rate5m",
        "http_route:shop_requests_failed:ratio_rate5m",
    ]
    assert rules["ErrorsHigh"]["expr"] == (
        "sum by (http_route) (rate(shop_requests_total[5m])) > 0.5"
    )
    # From the hint's thresholds: red from 1 s up, on its last quantile.
    assert rules["CheckoutSlow"]["expr"] == (
        "histogram_quantile(0.99, sum by (le) "
        "(rate(shop_checkout_duration_seconds_bucket[5m]))) >= 1"
    )
    assert rules["ManyOrdersThisHour"]["expr"] == "sum(increase(shop_orders_total[1h])) > 1000"
    assert rules["StockLow"] == {
        "alert": "StockLow",
        "expr": "min by (warehouse) (shop_stock) < 10",
        "for": "30m",
        "labels": {"severity": "critical"},
        "annotations": {"summary": "{{ $labels.warehouse }} has {{ $value }} left"},
    }
    recorded = rules["job_instance_http_route:shop_requests:rate5m"]
    assert recorded == {
        "record": "job_instance_http_route:shop_requests:rate5m",
        "expr": 'sum by (job, instance, http_route) (rate(shop_requests_total{code=~"500"}[5m]))',
    }
    assert rules["FailureRatioHigh"]["expr"] == (
        "sum by (http_route) (http_route:shop_requests_failed:ratio_rate5m) > 0.05"
    )
    assert rule_file(shop)["groups"][0]["interval"] == "1m"


def test_a_panel_over_a_recording_rule_queries_its_output_with_the_dashboards_filters(
    shop: Project,
) -> None:
    board = json.loads((shop.generated / "shop.json").read_text())
    panels = {p["title"]: p for row in board["panels"] for p in [row, *row.get("panels", [])]}
    (target,) = panels["Failures per route"]["targets"]
    assert target["expr"] == (
        "sum by (http_route) "
        '(job_instance_http_route:shop_requests:rate5m{job=~"$job", instance=~"$instance"})'
    )
    assert shop.run("verify").exit_code == 0


def test_promtool_checks_every_generated_rule_file(shop: Project) -> None:
    result = promtool("check", "rules", shop.generated / "rules" / "shop.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 13 rules found" in result.stdout


def test_the_generated_promtool_tests_pass(shop: Project) -> None:
    tests = shop.generated / "rules" / "tests" / "shop.test.yaml"
    result = promtool("test", "rules", tests)
    assert result.returncode == 0, result.stdout + result.stderr
    written = yaml.safe_load(tests.read_text())
    named = [test["name"].split(":")[0] for test in written["tests"]]
    assert named == [
        "ErrorsHigh",
        "CheckoutSlow",
        "CheckoutMeanSlow",
        "ManyOrdersThisHour",
        "StockLow",
        "FailuresHigh",
        "FailureRatioHigh",
        "ErrorRatioHigh",
        "BudgetBurnFast",
        "OrdersPerRequestHigh",
    ]
    # No value is read off a regex such as "5[0-9]+": no series to shape, and it says so.
    assert "# No test for ServerErrors" in tests.read_text()


def test_each_test_checks_quiet_pending_and_firing(shop: Project) -> None:
    tests = yaml.safe_load((shop.generated / "rules" / "tests" / "shop.test.yaml").read_text())
    low = next(t for t in tests["tests"] if t["name"].startswith("StockLow"))
    assert low["input_series"] == [
        {"series": '{__name__="shop_stock", warehouse="example"}', "values": "20+0x14 5+0x45"}
    ]
    quiet, pending, fired = low["alert_rule_test"]
    assert (quiet["eval_time"], quiet["exp_alerts"]) == ("14m", [])
    assert (pending["eval_time"], pending["exp_alerts"]) == ("44m", [])
    assert fired["eval_time"] == "52m"
    assert fired["exp_alerts"] == [
        {
            "exp_labels": {"severity": "critical", "warehouse": "example"},
            "exp_annotations": {"summary": "example has 5 left"},
        }
    ]


@pytest.mark.parametrize(
    ("old", "new", "why"),
    [
        ("> 0.5", "> 5", "a threshold off by ten never fires on the series"),
        ("for: 10m", "for: 0s", "an alert without its for fires while it should be pending"),
        ("< 10", "> 10", "the comparison turned round fires while quiet"),
        ("shop_stock", "shop_stock_items", "a renamed metric never fires"),
    ],
)
def test_the_generated_tests_fail_when_the_rule_drifts(
    shop: Project, old: str, new: str, why: str
) -> None:
    rules = shop.generated / "rules" / "shop.yaml"
    text = rules.read_text()
    assert old in text
    rules.write_text(text.replace(old, new, 1))
    result = promtool("test", "rules", shop.generated / "rules" / "tests" / "shop.test.yaml")
    assert result.returncode == 1, why
    assert "FAILED" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("pipeline", "selected"),
    [("otlp", "rate(shop_requests_total[5m])"), ("victoriametrics", '{__name__="shop.requests"}')],
)
def test_rules_take_the_names_of_the_configured_path(
    project: Project, pipeline: str, selected: str
) -> None:
    project.write(
        "pyproject.toml",
        f'[tool.dashgen]\nsources = "src"\noutput = "generated"\npipeline = "{pipeline}"\n',
    )
    project.source("shop.py", SHOP)
    assert project.run("build").exit_code == 0
    rules = rules_by_name(project)
    assert selected in rules["ErrorsHigh"]["expr"]
    assert promtool("check", "rules", project.generated / "rules" / "shop.yaml").returncode == 0
    tests = project.generated / "rules" / "tests" / "shop.test.yaml"
    result = promtool("test", "rules", tests)
    assert result.returncode == 0, result.stdout + result.stderr


VALUES = [0.5, 0.25, 3, 1234567.0, 0.00001234, 250000.0, 1e21, 0.1 + 0.2]


@pytest.mark.parametrize("value", VALUES)
def test_annotation_values_are_expanded_as_prometheus_expands_them(
    project: Project, value: float
) -> None:
    """The promtool test expects each annotation exactly as Prometheus' templates write it:
    promtool passing proves the formatting of $value, humanize and humanizePercentage."""
    project.source(
        "m.py",
        f"""
        from dashgen import Alert, Dashboard, Gauge, Row, hints
        HOT = Alert("Hot", above={value / 2!r}, for_="1m",
                    summary="{{{{ $value }}}} {{{{ $value | humanize }}}} "
                            "{{{{ $value | humanizePercentage }}}}")
        G = Gauge("g", hint=hints.Current(alert=HOT))
        D = Dashboard("D", rows=[Row("r", [G])])
        """,
    )
    assert project.run("build").exit_code == 0
    result = promtool("test", "rules", project.generated / "rules" / "tests" / "m.test.yaml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_go_formatting_of_values() -> None:
    assert [go_float(v) for v in (600.0, 1e6, 123456789.0, 0.0001, 0.00001, -2.5)] == [
        "600",
        "1e+06",
        "1.23456789e+08",
        "0.0001",
        "1e-05",
        "-2.5",
    ]
    assert [humanize(v) for v in (0.0, 1234.0, 0.002, 5.0)] == ["0", "1.234k", "2m", "5"]


def test_alert_on_hint_goes_to_a_group_named_after_its_file(project: Project) -> None:
    project.source(
        "billing.py",
        """
        from dashgen import Alert, Counter, Dashboard, Row, hints
        C = Counter("billing.failures", hint=hints.Rate(alert=Alert("BillingFails", above=1)))
        D = Dashboard("Billing", rows=[Row("r", [C])])
        """,
    )
    assert project.run("build").exit_code == 0
    assert list(rules_by_name(project, "billing")) == ["BillingFails"]


def test_grafana_alerting_provisioning_is_an_option(shop: Project) -> None:
    assert not (shop.generated / "provisioning" / "alerting").exists()
    shop.write(
        "pyproject.toml",
        '[tool.dashgen]\nsources = "src"\noutput = "generated"\ngrafana_alerting = true\n',
    )
    assert shop.run("build").exit_code == 0
    document = yaml.safe_load((shop.generated / "provisioning/alerting/dashgen.yaml").read_text())
    (group,) = document["groups"]
    rules = {rule["title"]: rule for rule in group["rules"]}
    low = rules["StockLow"]
    query, condition = low["data"]
    assert query["model"]["expr"] == "min by (warehouse) (shop_stock)"
    assert query["datasourceUid"] == "prometheus"
    assert condition["model"] == {"refId": "B", "type": "math", "expression": "$A < 10"}
    assert (low["condition"], low["for"], low["labels"]) == ("B", "30m", {"severity": "critical"})
    assert len({rule["uid"] for rule in group["rules"]}) == len(group["rules"]) == 11
    assert shop.run("verify").exit_code == 0  # the provisioning file holds no rule to check


def test_rules_are_deterministic_and_covered_by_build_check(shop: Project) -> None:
    before = shop.snapshot()
    assert shop.run("build").exit_code == 0
    assert shop.snapshot() == before
    rules = shop.generated / "rules" / "shop.yaml"
    rules.write_text(rules.read_text().replace("> 0.5", "> 0.6"))
    result = shop.run("build", "--check")
    assert result.exit_code == 1
    assert "rules/shop.yaml" in result.stdout + result.stderr


def test_rules_of_removed_groups_are_removed(shop: Project) -> None:
    shop.source(
        "shop.py",
        """
        from dashgen import Counter, Dashboard, Row
        C = Counter("shop.requests")
        D = Dashboard("Shop", rows=[Row("r", [C])])
        """,
    )
    result = shop.run("build")
    assert result.exit_code == 0, result.stderr
    assert "removed generated/rules/shop.yaml" in result.stdout
    assert not (shop.generated / "rules").exists()


# --- verify reads rules ------------------------------------------------------------------


def verify_json(project: Project, directory: Path) -> tuple[int, dict[str, Any]]:
    result = project.run("verify", str(directory), "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def kinds(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["kind"], f["panel"], f["subject"]) for f in report["findings"]}


def handwritten_rules(project: Project, text: str) -> Path:
    """The generated dashboards in a dir of their own, beside a hand-written rule file."""
    directory = project.root / "monitoring"
    shutil.copytree(project.generated, directory, ignore=shutil.ignore_patterns("rules"))
    (directory / "alerts.yaml").write_text(text)
    return directory


def test_verify_checks_the_generated_rules(shop: Project) -> None:
    code, report = verify_json(shop, shop.generated)
    assert code == 0, report["findings"]
    assert report["summary"]["rule_groups"] == 1
    assert report["summary"]["dashboards"] == 1


def test_each_finding_kind_on_a_hand_written_rule_file(shop: Project) -> None:
    directory = handwritten_rules(
        shop,
        """
        groups:
        - name: hand
          rules:
          - alert: Renamed
            expr: sum(rate(shop_request_total[5m])) > 1
          - alert: NoSuchLabel
            expr: sum by (region) (rate(shop_requests_total[5m])) > 1
          - alert: LostLabel
            expr: sum(rate(shop_requests_total[5m])) > 1
            annotations: {summary: "{{ $labels.http_route }} fails"}
          - alert: Broken
            expr: sum(rate(shop_requests_total[5m]) > 1
          - alert: NoMatch
            expr: count({__name__=~"shop_orderz.*"}) > 1
          - record: route:stock:min
            expr: min by (warehouse) (shop_stock)
          - alert: OnRecorded
            expr: route:stock:min{warehouse="a", zone="b"} < 1
        """.replace("\n        ", "\n"),
    )
    code, report = verify_json(shop, directory)
    assert code == 1
    assert kinds(report) == {
        ("unknown-metric", "Renamed", "shop_request_total"),
        ("unknown-label", "NoSuchLabel", "region"),
        ("legend-label-missing", "LostLabel", "http_route"),
        ("unparsable-query", "Broken", "sum(rate(shop_requests_total[5m]) > 1"),
        ("unmatched-regex", "NoMatch", "shop_orderz.*"),
        ("unknown-label", "OnRecorded", "zone"),
    }
    renamed = next(f for f in report["findings"] if f["panel"] == "Renamed")
    assert renamed["place"] == "alert rule"
    assert renamed["dashboard"] == "rule group hand"
    assert "shop_requests_total" in renamed["hint"]
    lost = next(f for f in report["findings"] if f["panel"] == "LostLabel")
    assert "an annotation uses {{ $labels.http_route }}" in lost["message"]


def test_a_rename_in_code_is_caught_in_the_rules_that_use_the_old_name(shop: Project) -> None:
    directory = handwritten_rules(
        shop,
        "groups:\n- name: hand\n  rules:\n  - alert: StockGone\n    expr: min(shop_stock) < 1\n",
    )
    assert verify_json(shop, directory)[0] == 0
    source = shop.root / "src" / "shop.py"
    source.write_text(source.read_text().replace('"shop.stock"', '"shop.inventory"'))
    code, report = verify_json(shop, directory)
    assert code == 1
    assert ("unknown-metric", "StockGone", "shop_stock") in kinds(report)


def test_prometheus_rule_resources_are_read(shop: Project) -> None:
    directory = handwritten_rules(
        shop,
        """
        apiVersion: monitoring.coreos.com/v1
        kind: PrometheusRule
        metadata: {name: shop}
        spec:
          groups:
          - name: operator
            rules:
            - alert: Gone
              expr: absent(shop_stok)
        """.replace("\n        ", "\n"),
    )
    code, report = verify_json(shop, directory)
    assert code == 1
    assert kinds(report) == {("unknown-metric", "Gone", "shop_stok")}


def test_a_metric_only_an_alert_reads_is_still_on_no_dashboard(project: Project) -> None:
    project.source(
        "m.py",
        """
        from dashgen import Counter, Dashboard, Row
        A = Counter("a.total.things")
        B = Counter("b.things")
        D = Dashboard("D", rows=[Row("r", [A, B])])
        """,
    )
    assert project.run("build").exit_code == 0
    directory = project.root / "hand"
    directory.mkdir()
    board = json.loads((project.generated / "d.json").read_text())
    board["panels"][0]["panels"] = [
        p for p in board["panels"][0].get("panels", []) if "b_things" not in json.dumps(p)
    ]
    board["panels"] = [p for p in board["panels"] if "b_things" not in json.dumps(p)]
    (directory / "d.json").write_text(json.dumps(board))
    (directory / "alerts.yaml").write_text(
        "groups:\n- name: g\n  rules:\n  - alert: B\n    expr: rate(b_things_total[5m]) > 1\n"
    )
    code, report = verify_json(project, directory)
    assert code == 1
    assert kinds(report) == {("unpanelled-family", "", "b_things")}


def test_panels_may_query_the_output_of_hand_written_and_generated_recording_rules(
    shop: Project,
) -> None:
    directory = handwritten_rules(
        shop,
        "groups:\n- name: hand\n  rules:\n"
        "  - record: warehouse:shop_stock:min\n    expr: min by (warehouse) (shop_stock)\n",
    )
    board = json.loads((directory / "shop.json").read_text())
    everything = [p for row in board["panels"] for p in [row, *row.get("panels", [])]]
    panel = next(p for p in everything if p["title"] == "Failures per route")
    panel["targets"] = [
        {"refId": "A", "expr": 'warehouse:shop_stock:min{warehouse="a"}'},
        {
            "refId": "B",
            "expr": "sum by (http_route) (http_route:shop_requests_failed:ratio_rate5m)",
        },
        {"refId": "C", "expr": "warehouse:shop_stock:min{http_route='x'}"},
    ]
    (directory / "shop.json").write_text(json.dumps(board))
    code, report = verify_json(shop, directory)
    assert code == 1
    assert kinds(report) == {("unknown-label", panel["title"], "http_route")}


def test_live_evaluates_every_rule(shop: Project) -> None:
    """The watched side of each alert must draw data (the alert itself, quiet, has none);
    a recording rule must record something."""
    directory = handwritten_rules(
        shop,
        """
        groups:
        - name: hand
          rules:
          - alert: NeverFires
            expr: sum(rate(shop_requests_total[5m])) > 1e12
          - alert: WatchesNothing
            expr: sum(rate(shop_requests_total{code="418"}[5m])) > 1
          - alert: AbsentIsFine
            expr: absent(shop_stock{warehouse="nowhere"})
          - record: code:shop_requests:rate5m
            expr: sum by (code) (rate(shop_requests_total{code="999"}[5m]))
        """.replace("\n        ", "\n"),
    )
    result = shop.run("verify", str(directory), "--live", "--format", "json")
    report = json.loads(result.stdout)
    live = {(f["kind"], f["panel"]) for f in report["live"]["findings"]}
    assert live == {("no-data", "WatchesNothing"), ("no-data", "code:shop_requests:rate5m")}


@pytest.mark.parametrize(
    ("thresholds", "expected"),
    [
        ("((0.5, 'orange'), (1, 'red'))", "min(g) >= 1"),
        ("((90, 'orange'), (100, 'green'))", "min(g) < 90"),  # implied red base
        ("((10, 'green'),)", "min(g) < 10"),
        (
            "((1, 'red'), (2, 'green'))",
            "error: src/m.py:3: alert 'X': its hint's thresholds have no one red band at the "
            "top or the bottom to alert in: give above= or below=",
        ),
    ],
)
def test_an_alert_without_a_threshold_takes_the_red_band_of_its_hint(
    project: Project, thresholds: str, expected: str
) -> None:
    project.source(
        "m.py",
        f"""
        from dashgen import Alert, Dashboard, Gauge, Row, hints
        X = Alert("X")
        G = Gauge("g", hint=hints.Current(agg="min", thresholds={thresholds}, alert=X))
        D = Dashboard("D", rows=[Row("r", [G])])
        """,
    )
    result = project.run("build")
    if expected.startswith("error: "):
        assert (result.exit_code, result.stderr.strip()) == (2, expected)
    else:
        assert result.exit_code == 0, result.stderr
        assert rules_by_name(project, "m")["X"]["expr"] == expected


def test_loki_rules_beside_prometheus_ones_are_skipped_not_reported(shop: Project) -> None:
    """Loki's ruler reads rule files of the same format, in LogQL: no false finding."""
    directory = handwritten_rules(
        shop,
        """
        groups:
        - name: logs
          rules:
          - alert: ErrorLogs
            expr: sum(rate({app="shop"} |= "error" [5m])) > 10
          - record: app:log_lines:rate1m
            expr: sum by (app) (rate({app="shop"} | json | level="warn" [1m]))
          - alert: StockGone
            expr: min(shop_stock) < 1
        """.replace("\n        ", "\n"),
    )
    code, report = verify_json(shop, directory)
    assert code == 0, report["findings"]
    assert report["summary"]["skipped_reasons"] == {"LogQL (a Loki rule), not PromQL": 2}
