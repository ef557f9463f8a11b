"""Pipelines that read the families from the app: ``prometheus-client`` (the app's own
prometheus_client registries, filled by its callable) and ``scrape`` (exposition text from
a real HTTP server or a saved file, parsed by prometheus_client's parsers)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter, start_http_server
from prometheus_client.exposition import generate_latest

from tests.conftest import Project

APP = """
from prometheus_client import CollectorRegistry, Counter, Enum, Gauge, Histogram, Info, Summary

def metrics():
    registry = CollectorRegistry()
    Counter("vllm:prompt_tokens", "tokens", ["model_name"], registry=registry).labels("m").inc()
    Counter("router_requests", "requests", registry=registry).inc()
    Gauge("queue_depth", "queued", ["queue"], registry=registry)
    Histogram("vllm:e2e_request_latency_seconds", "latency", ["model_name"],
              registry=registry).labels("m").observe(0.2)
    Summary("batch_size", "batch", registry=registry).observe(3)
    Info("build", "build", registry=registry).info({"version": "1"})
    Enum("state", "state", states=["up", "down"], registry=registry)
    return registry

def only_queue():
    registry = CollectorRegistry()
    Gauge("queue_depth", "queued", ["queue"], registry=registry)
    return registry

def on_global():
    Counter("global_requests", "requests").inc()
"""


def board(*exprs: str) -> str:
    targets = [{"refId": chr(65 + i), "expr": e} for i, e in enumerate(exprs)]
    panel = {"type": "timeseries", "title": "P", "targets": targets,
             "datasource": {"type": "prometheus", "uid": "x"}}  # fmt: skip
    return json.dumps({"title": "Hand", "uid": "hand", "panels": [panel]})


def verify(project: Project, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    result = project.run("verify", str(project.root / "dashboards"), "--format", "json", *args)
    findings = json.loads(result.stdout)["findings"] if result.stdout else []
    return result.exit_code, findings, result.stderr


GOOD = board(
    "sum by (model_name) (rate(vllm:prompt_tokens_total[5m]))",
    "rate(router_requests_total[5m])",
    "max by (queue) (queue_depth)",
    "histogram_quantile(0.9, sum by (le) (rate(vllm:e2e_request_latency_seconds_bucket[5m])))",
    "rate(batch_size_sum[5m]) / rate(batch_size_count[5m])",
    "build_info",
    'state{state="up"}',
)


def test_prometheus_client_registry_from_the_users_callable(project: Project) -> None:
    project.write("app.py", APP)
    project.write("dashboards/hand.json", GOOD)
    args = ("--pipeline", "prometheus-client", "--instruments", "app:metrics")
    code, findings, stderr = verify(project, *args)
    assert (code, stderr) == (0, ""), findings

    project.write("dashboards/hand.json", board(
        "rate(vllm:prompt_tokens[5m])",  # the family name, not the _total sample
        'sum by (model) (rate(vllm:prompt_tokens_total[5m]))',
    ))  # fmt: skip
    code, findings, _ = verify(project, *args)
    assert code == 1
    assert {(f["kind"], f["subject"]) for f in findings} >= {
        ("unknown-metric", "vllm:prompt_tokens"),
        ("unknown-label", "model"),
    }


def test_an_unobserved_labelled_metric_has_unknown_labels_not_none(project: Project) -> None:
    """``queue_depth`` has no child yet: its label names cannot be known, so no label
    finding is made up for it."""
    project.write("app.py", APP)
    project.write("dashboards/hand.json", board("max by (anything) (queue_depth)"))
    code, findings, _ = verify(project, "--pipeline", "prometheus-client", "--instruments",
                               "app:only_queue")  # fmt: skip
    assert (code, findings) == (0, [])


def test_the_global_registry_is_read_when_nothing_is_returned(project: Project) -> None:
    project.write("app.py", APP)
    project.write("dashboards/hand.json", board("rate(global_requests_total[5m])"))
    _, findings, _ = verify(project, "--pipeline", "prometheus-client", "--instruments",
                            "app:on_global")  # fmt: skip
    unpanelled = {f["subject"] for f in findings if f["kind"] == "unpanelled-family"}
    assert "global_requests" not in unpanelled
    assert not [f for f in findings if f["kind"] == "unknown-metric"]


def test_prometheus_client_code_on_the_otel_path_is_told_which_pipeline(
    project: Project,
) -> None:
    project.write("app.py", APP)
    project.write("dashboards/hand.json", GOOD)
    code, _, stderr = verify(project, "--instruments", "app:on_global")
    assert code == 2
    assert stderr == (
        "error: app:on_global: created no OpenTelemetry instruments but 1 prometheus_client "
        'collectors: use pipeline = "prometheus-client"\n'
    )


@pytest.fixture
def app_server() -> Iterator[str]:
    """A real prometheus_client HTTP server on 127.0.0.1, as a running app serves /metrics."""
    registry = CollectorRegistry()
    Counter("shop_orders", "orders", ["region"], registry=registry).labels("eu").inc()
    server, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        thread.join()


def test_scrape_a_running_app_over_http(project: Project, app_server: str) -> None:
    project.write("dashboards/hand.json", board("sum by (region) (rate(shop_orders_total[5m]))"))
    code, findings, stderr = verify(project, "--scrape", app_server)
    assert (code, findings, stderr) == (0, [], "")
    project.write("dashboards/hand.json", board("sum by (zone) (rate(shop_orders_total[5m]))"))
    code, findings, _ = verify(project, "--scrape", app_server)
    assert code == 1 and [f["subject"] for f in findings] == ["zone"]


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_scrape_a_saved_file(project: Project, openmetrics: bool) -> None:
    registry = CollectorRegistry()
    Counter("jobs", "jobs", ["kind"], registry=registry).labels("a").inc()
    if openmetrics:
        from prometheus_client.openmetrics.exposition import generate_latest as om_latest

        text = om_latest(registry)  # type: ignore[no-untyped-call]
    else:
        text = generate_latest(registry)
    (project.root / "metrics.txt").write_bytes(text)
    project.write("dashboards/hand.json", board("sum by (kind) (rate(jobs_total[5m]))"))
    code, findings, stderr = verify(project, "--scrape", "metrics.txt")
    assert (code, findings, stderr) == (0, [], "")


class _Answers(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            threading.Event().wait(3)
        body = b"<html>not metrics</html>" if self.path != "/404" else b""
        self.send_response(404 if self.path == "/404" else 200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def odd_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_bad_scrapes_are_one_line(
    project: Project, odd_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dashgen.pipelines import exposition_text

    monkeypatch.setattr(exposition_text, "TIMEOUT_S", 1)
    project.write("dashboards/hand.json", board("up"))
    closed = "http://127.0.0.1:9"  # discard port: nothing listens there
    cases = {
        closed: "cannot be scraped: [Errno 111] Connection refused",
        f"{odd_server}/404": "answered HTTP 404 Not Found",
        f"{odd_server}/html": "is not Prometheus or OpenMetrics text",
        f"{odd_server}/slow": "cannot be scraped: timed out",
        "missing.txt": "cannot be read: No such file or directory",
    }
    for source, message in cases.items():
        code, _, stderr = verify(project, "--scrape", source)
        assert code == 2, source
        assert stderr.startswith(f"error: {source}: {message}"), stderr
        assert stderr.count("\n") == 1


def test_build_refuses_a_pipeline_that_reads_the_app(project: Project) -> None:
    project.source(
        "m.py",
        "from dashgen import Counter, Dashboard, Row\n"
        "D = Dashboard('D', rows=[Row('r', [Counter('c')])])\n",
    )
    result = project.run("build", "--pipeline", "scrape")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: pipeline=scrape: reads the families from the app")
