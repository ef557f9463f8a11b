"""`dashgen verify`: the example is clean, and every kind of drift is caught by its finding."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SCRAPED_IN_JSON, Project


def findings(project: Project, *args: str) -> tuple[int, list[dict[str, Any]]]:
    result = project.run("verify", *args, "--format", "json")
    report = json.loads(result.stdout)
    assert report["version"] == 1
    return result.exit_code, report["findings"]


def kinds_and_subjects(items: list[dict[str, Any]]) -> set[tuple[str, str]]:
    return {(f["kind"], f["subject"]) for f in items}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_unmodified_example_is_clean(example: Project) -> None:
    code, items = findings(example)
    assert (code, items) == (0, [])
    human = example.run("verify")
    assert human.exit_code == 0
    assert "no findings" in human.stdout


def test_renamed_metric_in_source_without_rebuilding(example: Project) -> None:
    edit(example.root / "dashboards_src/worker.py", '"worker.job.retries"', '"worker.job.retry"')
    code, items = findings(example)
    assert code == 1
    found = kinds_and_subjects(items)
    assert ("unknown-metric", "worker_job_retries_total") in found
    assert ("unpanelled-family", "worker_job_retry") in found
    assert ("stale-file", "job-worker.json") in found
    unknown = next(f for f in items if f["kind"] == "unknown-metric")
    assert unknown["file"] == "generated/job-worker.json"
    assert unknown["panel"] == "Retries per second by type"
    assert unknown["ref_id"] == "A"
    assert "worker_job_retry_total" in unknown["hint"]


def test_changed_unit(example: Project) -> None:
    edit(
        example.root / "dashboards_src/http_api.py",
        'unit="s",\n    description="Time from',
        'unit="ms",\n    description="Time from',
    )
    code, items = findings(example)
    assert code == 1
    unknown = [f for f in items if f["kind"] == "unknown-metric"]
    assert {f["subject"] for f in unknown} == {
        "http_server_request_duration_seconds_bucket",
        "http_server_request_duration_seconds_count",
        "http_server_request_duration_seconds_sum",
    }
    assert all("milliseconds" in f["hint"] for f in unknown)
    # One cause, one finding per query site: the new family is named in each hint as the
    # rename it is, not reported again as unpanelled.
    assert all(
        "no panel reads it, so it is most likely the name meant here" in f["hint"] for f in unknown
    )
    assert {f["kind"] for f in items} == {"unknown-metric", "stale-file"}


def test_counter_changed_to_up_down_counter(example: Project) -> None:
    edit(
        example.root / "dashboards_src/worker.py",
        'RETRIES = Counter(\n    "worker.job.retries"',
        'RETRIES = UpDownCounter(\n    "worker.job.retries"',
    )
    edit(
        example.root / "dashboards_src/worker.py",
        "    Row,\n    expr,",
        "    Row,\n    UpDownCounter,\n    expr,",
    )
    # A rate over an up-down counter is refused at build time, so the hint changes too.
    edit(
        example.root / "dashboards_src/worker.py",
        'hint=hints.Rate(title="Retries per second by type", by=(JOB_TYPE,)),',
        'hint=hints.Current(title="Retries", by=(JOB_TYPE,)),',
    )
    code, items = findings(example)
    assert code == 1
    unknown = next(f for f in items if f["kind"] == "unknown-metric")
    assert unknown["subject"] == "worker_job_retries_total"
    assert "worker_job_retries" in unknown["hint"]


def test_renamed_label(example: Project) -> None:
    edit(example.root / "dashboards_src/worker.py", 'REASON = "failure.reason"', 'REASON = "cause"')
    code, items = findings(example)
    assert code == 1
    labels = [f for f in items if f["kind"] == "unknown-label"]
    assert {f["subject"] for f in labels} == {"failure_reason"}
    assert {f["panel"] for f in labels} == {"Failures per second by reason", "Failures in range"}


def test_deleted_declaration(example: Project) -> None:
    source = example.root / "dashboards_src/http_api.py"
    edit(source, 'Row("Traffic", [REQUESTS, RESPONSE_BYTES])', 'Row("Traffic", [REQUESTS])')
    text = source.read_text()
    source.write_text(re.sub(r"RESPONSE_BYTES = Counter\(.*?\n\)\n", "", text, flags=re.S))
    code, items = findings(example)
    assert code == 1
    assert ("unknown-metric", "http_server_response_body_size_bytes_total") in kinds_and_subjects(
        items
    )


def test_added_declaration_without_building(example: Project) -> None:
    source = example.root / "dashboards_src/worker.py"
    edit(source, "from dashgen import (", "from dashgen import (\n    Gauge,")
    edit(
        source,
        "DASHBOARD = Dashboard(",
        'LAG = Gauge("worker.queue.lag", unit="s", labels=[QUEUE])\n\nDASHBOARD = Dashboard(',
    )
    edit(
        source,
        'Row("Backlog", [QUEUE_DEPTH, BUSY_WORKERS])',
        'Row("Backlog", [QUEUE_DEPTH, BUSY_WORKERS, LAG])',
    )
    code, items = findings(example)
    assert code == 1
    found = kinds_and_subjects(items)
    assert ("unpanelled-family", "worker_queue_lag_seconds") in found
    assert ("stale-file", "job-worker.json") in found


def test_hand_edited_generated_expr(example: Project) -> None:
    edit(
        example.generated / "http-api.json",
        f"rate(http_server_requests_total{SCRAPED_IN_JSON}[$__rate_interval])",
        f"rate(http_server_request_total{SCRAPED_IN_JSON}[$__rate_interval])",
    )
    code, items = findings(example)
    assert code == 1
    found = kinds_and_subjects(items)
    assert ("unknown-metric", "http_server_request_total") in found
    assert ("stale-file", "http-api.json") in found


def test_removed_panel_from_generated_json(example: Project) -> None:
    path = example.generated / "http-api.json"
    dashboard = json.loads(path.read_text())
    dashboard["panels"] = [
        p for p in dashboard["panels"] if p.get("title") != "Response throughput by route"
    ]
    path.write_text(json.dumps(dashboard, indent=2))
    code, items = findings(example)
    assert code == 1
    found = kinds_and_subjects(items)
    assert ("unpanelled-family", "http_server_response_body_size_bytes") in found
    assert ("stale-file", "http-api.json") in found


def test_stray_file_in_generated(example: Project) -> None:
    (example.generated / "notes.txt").write_text("scratch\n")
    code, items = findings(example)
    assert code == 1
    assert kinds_and_subjects(items) == {("orphan-file", "notes.txt")}
    assert items[0]["hint"] == (
        "move it out of generated/: build replaces that dir and refuses to delete it"
    )


def test_human_report_names_dashboard_panel_and_fix(example: Project) -> None:
    edit(example.root / "dashboards_src/worker.py", '"worker.job.retries"', '"worker.job.retry"')
    result = example.run("verify")
    assert result.exit_code == 1
    assert "generated/job-worker.json" in result.stdout
    assert "Retries per second by type" in result.stdout
    assert "worker_job_retries_total" in result.stdout
    assert "did you mean" in result.stdout


def test_other_dir_of_dashboards_skips_the_staleness_check(example: Project) -> None:
    other = example.root / "handwritten"
    other.mkdir()
    (other / "copy.json").write_bytes((example.generated / "http-api.json").read_bytes())
    code, items = findings(example, str(other))
    assert code == 1
    found = kinds_and_subjects(items)
    # Only the families of the other two dashboards are missing; no file findings.
    assert {kind for kind, _ in found} == {"unpanelled-family"}
    assert ("unpanelled-family", "worker_job_retries") in found


def test_a_bad_dashboard_file_is_one_finding_and_the_rest_are_checked(example: Project) -> None:
    (example.generated / "broken.json").write_text('{"panels": [')
    before = example.snapshot()
    code, items = findings(example)
    assert code == 1
    unreadable = [f for f in items if f["kind"] == "unreadable-file"]
    assert [(f["file"], f["message"]) for f in unreadable] == [
        ("generated/broken.json", "not valid JSON: Expecting value at line 1 column 13")
    ]
    # The broken file is also one build does not own, and nothing else is wrong.
    assert {f["kind"] for f in items} == {"unreadable-file", "orphan-file"}
    assert example.snapshot() == before


def test_a_dir_of_only_bad_dashboards_is_an_input_error(project: Project) -> None:
    project.source("m.py", "from dashgen import Gauge\nG = Gauge('g', exclude='no panel')\n")
    project.write("dashboards/broken.json", '{"panels": [')
    project.write("dashboards/also.json", "[]")
    result = project.run("verify", str(project.root / "dashboards"))
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
    assert "broken.json: not valid JSON" in result.stderr


def names_new_family(items: list[dict[str, Any]], family: str) -> bool:
    """The family no panel reads is reported: as unpanelled, or, when a dead query takes it
    for its new name, in that query's hint (one cause, one finding)."""
    if ("unpanelled-family", family) in kinds_and_subjects(items):
        return True
    return any(
        f["kind"] == "unknown-metric"
        and f"`{family}" in f["hint"]
        and "most likely the name meant here" in f["hint"]
        for f in items
    )


PLAIN_OTEL_APP = """
from opentelemetry import metrics

def create_instruments():
    meter = metrics.get_meter("shop.checkout", "1.0")
    meter.create_counter("shop.orders", unit="{order}", description="Orders placed")
    meter.create_histogram("shop.checkout.duration", unit="s")
    meter.create_up_down_counter("shop.carts.open")
    meter.create_gauge("shop.stock.level", unit="{item}")

    def observe(options):
        return [metrics.Observation(12, {"warehouse": "north"})]

    meter.create_observable_gauge("shop.warehouse.temperature", [observe], unit="Cel")
"""

HANDWRITTEN = {
    "uid": "shop",
    "title": "Shop",
    "templating": {"list": [{"name": "datasource", "type": "datasource", "query": "prometheus"}]},
    "panels": [
        {
            "title": "Orders",
            "type": "timeseries",
            "datasource": {"type": "prometheus", "uid": "${datasource}"},
            "targets": [
                {"refId": "A", "expr": "sum by (job) (rate(shop_orders_total[$__rate_interval]))"}
            ],
        },
        {
            "title": "Checkout p99",
            "type": "timeseries",
            "datasource": "$datasource",
            "targets": [
                {
                    "refId": "A",
                    "expr": "histogram_quantile(0.99, sum by (le) "
                    "(rate(shop_checkout_duration_seconds_bucket[5m])))",
                }
            ],
        },
        {
            "title": "Carts, stock and temperature",
            "type": "timeseries",
            "targets": [
                {"refId": "A", "expr": "shop_carts_open"},
                {"refId": "B", "expr": 'shop_stock_level{sku="abc"}'},
                {"refId": "C", "expr": "max(shop_warehouse_temperature_celsius)"},
            ],
        },
        {
            "title": "Logs",
            "type": "logs",
            "datasource": {"type": "loki", "uid": "loki"},
            "targets": [{"refId": "A", "expr": '{app="shop"} |= "error"'}],
        },
    ],
}


@pytest.fixture
def plain_app(project: Project) -> tuple[Project, str]:
    """An app that knows nothing of dashgen, and a hand-written dashboard for it."""
    module = f"shop_metrics_{uuid.uuid4().hex[:8]}"
    project.write(f"{module}.py", PLAIN_OTEL_APP)
    project.write("dashboards/shop.json", json.dumps(HANDWRITTEN))
    return project, f"{module}:create_instruments"


def test_adoption_mode_checks_handwritten_dashboards_against_plain_otel(
    plain_app: tuple[Project, str],
) -> None:
    project, target = plain_app
    code, items = findings(project, str(project.root / "dashboards"), "--instruments", target)
    assert (code, items) == (0, [])
    report = json.loads(
        project.run(
            "verify", str(project.root / "dashboards"), "--instruments", target, "--format", "json"
        ).stdout
    )
    assert report["summary"]["skipped"] == 1
    assert any("label set unknown" in line for line in report["info"])


def test_adoption_mode_catches_a_renamed_instrument(plain_app: tuple[Project, str]) -> None:
    project, target = plain_app
    module = project.root / f"{target.split(':')[0]}.py"
    # The code renames the counter; the hand-written dashboard still uses the old name.
    module.write_text(module.read_text().replace('"shop.orders"', '"shop.orders.placed"'))
    renamed = f"{target.split(':')[0]}_v2"
    module.rename(project.root / f"{renamed}.py")
    code, items = findings(
        project, str(project.root / "dashboards"), "--instruments", f"{renamed}:create_instruments"
    )
    assert code == 1
    found = kinds_and_subjects(items)
    assert ("unknown-metric", "shop_orders_total") in found
    assert names_new_family(items, "shop_orders_placed")


def test_adoption_mode_bad_target_is_an_input_error(project: Project) -> None:
    project.write("dashboards/empty.json", json.dumps({"title": "E", "panels": []}))
    result = project.run(
        "verify", str(project.root / "dashboards"), "--instruments", "no_such_module_xyz:create"
    )
    assert result.exit_code == 2
    assert "no_such_module_xyz:create" in result.stderr
    assert "ModuleNotFoundError" in result.stderr


def test_external_metrics_are_neither_missing_nor_required(project: Project) -> None:
    project.write(
        "pyproject.toml",
        """
        [tool.dashgen]
        sources = "src"
        output = "generated"

        [[tool.dashgen.external]]
        pattern = "node_.*"
        regex = true
        reason = "node-exporter on every host"
        """,
    )
    project.source(
        "m.py",
        """
        from dashgen import Counter, Dashboard, Row
        R = Counter("app.requests")
        D = Dashboard("App", rows=[Row("r", [R])])
        """,
    )
    assert project.run("build").exit_code == 0
    path = project.generated / "app.json"
    dashboard = json.loads(path.read_text())
    dashboard["panels"][1]["targets"].append(
        {"refId": "B", "expr": "sum(rate(node_cpu_seconds_total[5m]))"}
    )
    (project.root / "handwritten").mkdir()
    (project.root / "handwritten/app.json").write_text(json.dumps(dashboard))
    code, items = findings(project, str(project.root / "handwritten"))
    assert (code, items) == (0, [])


def test_declaration_marked_exclude_is_not_required_on_a_dashboard(project: Project) -> None:
    project.source(
        "m.py",
        """
        from dashgen import Counter, Dashboard, Gauge, Row
        R = Counter("app.requests")
        DEBUG = Gauge("app.debug.entries", exclude="read from /debug, not for dashboards")
        D = Dashboard("App", rows=[Row("r", [R])])
        """,
    )
    assert project.run("build").exit_code == 0
    code, items = findings(project)
    assert (code, items) == (0, [])


@pytest.mark.parametrize(
    ("pipeline", "stored"),
    [
        (["--pipeline", "otlp"], "shop_stock_level"),
        (["--pipeline", "victoriametrics"], "shop.stock.level"),
    ],
)
def test_adoption_mode_follows_the_pipeline(
    plain_app: tuple[Project, str], pipeline: list[str], stored: str
) -> None:
    """Plain OTel instruments on another export path get that path's names: the hand-written
    dashboard (pull-exporter names) holds on otlp, which names these alike, and is dead on a
    VictoriaMetrics that keeps names as sent."""
    project, target = plain_app
    code, items = findings(
        project, str(project.root / "dashboards"), "--instruments", target, *pipeline
    )
    found = kinds_and_subjects(items)
    if stored == "shop_stock_level":
        # The OTLP translator names these as the pull exporter does, units and all.
        assert (code, found) == (0, set())
    else:
        assert code == 1
        assert ("unknown-metric", "shop_orders_total") in found
        assert names_new_family(items, "shop.orders")
        assert names_new_family(items, stored)
