"""`dashgen verify --live`: real Prometheus and VictoriaMetrics, fed by the real exporter."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from dashgen.catalog import load_catalog
from dashgen.live import stages as live_module
from dashgen.live.feed import feed_catalog
from dashgen.live.tsdb import PrometheusServer, VictoriaMetricsServer, window_end_ms
from tests.conftest import SCRAPED_IN_JSON, Project

ENGINES = ["prometheus", "victoria-metrics"]


def live(project: Project, *args: str) -> tuple[int, dict[str, Any]]:
    result = project.run("verify", *args, "--live", "--format", "json")
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def handwritten_copy(project: Project, edits: dict[str, tuple[str, str]]) -> Path:
    """The generated dashboards copied to another dir (so not stale), with edits applied."""
    target = project.root / "handwritten"
    shutil.copytree(project.generated, target, ignore=shutil.ignore_patterns("provisioning"))
    for name, (old, new) in edits.items():
        path = target / name
        text = path.read_text()
        assert old in text, old
        path.write_text(text.replace(old, new, 1))
    return target


def live_kinds(report: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(f["kind"], f["panel"], f["ref_id"]) for f in report["live"]["findings"]}


@pytest.mark.parametrize("engine", ENGINES)
def test_example_passes_live(example: Project, engine: str) -> None:
    code, report = live(example, "--engine", engine)
    assert code == 0, report["live"]["findings"]
    assert report["summary"]["ok"]
    assert report["live"]["engine"] == engine
    # Every panel query and rule runs; the 7 variable queries (label_values) are no PromQL.
    assert (report["live"]["queries"], report["summary"]["parsed"]) == (39, 46)
    assert report["live"]["with_data"] == 39


@pytest.mark.parametrize("engine", ENGINES)
def test_matcher_on_existing_label_with_no_series_is_caught_live_only(
    example: Project, engine: str
) -> None:
    other = handwritten_copy(
        example,
        {
            "http-api.json": (
                f"rate(http_server_requests_total{SCRAPED_IN_JSON}[$__rate_interval])",
                'rate(http_server_requests_total{http_route=\\"/no-such-route\\"}'
                "[$__rate_interval])",
            )
        },
    )
    static = example.run("verify", str(other), "--format", "json")
    assert static.exit_code == 0, static.stdout
    code, report = live(example, str(other), "--engine", engine)
    assert code == 1
    assert live_kinds(report) == {("no-data", "Requests per second by route", "A")}
    assert report["findings"] == []


def test_each_live_finding_is_caught(example: Project) -> None:
    other = handwritten_copy(
        example,
        {
            "http-api.json": (
                '"legendFormat": "{{http_response_status_code}}"',
                '"legendFormat": "{{http_request_method}}"',
            ),
            "job-worker.json": (
                f"sum by (job_type) (rate(worker_job_retries_total{SCRAPED_IN_JSON}"
                "[$__rate_interval]))",
                "label_replace(sum by (job_type) "
                "(rate(worker_job_retries_total[$__rate_interval])),"
                ' \\"x\\", \\"$1\\", \\"job_type\\", \\"(\\")',
            ),
            "test-suite-health.json": (
                f"sum by (test_size) (rate(pytest_timing_violations_total{SCRAPED_IN_JSON}"
                "[$__rate_interval]))",
                "sum by (test_size) (rate(pytest_test_size_distribution[$__rate_interval]))",
            ),
        },
    )
    path = other / "http-api.json"
    path.write_text(
        path.read_text().replace(
            "sum by (le, http_route) (rate(http_server_request_duration_seconds_bucket",
            "sum by (http_route) (rate(http_server_request_duration_seconds_bucket",
            1,
        )
    )
    code, report = live(example, str(other))
    assert code == 1
    found = live_kinds(report)
    assert ("legend-label-missing", "Requests per second by status", "A") in found
    assert ("query-error", "Retries per second by type", "A") in found
    assert ("kind-mismatch", "Timing violations per second", "A") in found
    assert ("kind-mismatch", "Latency p50/p90/p99 by route", "A") in found
    error = next(f for f in report["live"]["findings"] if f["kind"] == "query-error")
    assert "invalid regular expression" in error["message"]


def test_url_mode_queries_an_existing_server_without_ingesting(
    example: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = load_catalog(example.root / "dashboards_src")
    series = feed_catalog(catalog.metrics, scrapes=20, step_s=15, end_ms=window_end_ms())
    monkeypatch.setenv("DASHGEN_TEST_TOKEN", "s3cret-token-value")
    with PrometheusServer(series) as server:
        result = example.run(
            "verify", "--live", "--url", server.url, "--token-env", "DASHGEN_TEST_TOKEN"
        )
    assert result.exit_code == 0, result.stdout
    assert f"live check on {server.url}" in result.stdout
    assert "s3cret" not in result.stdout + result.stderr


def test_url_mode_error_never_shows_the_token(
    example: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHGEN_TEST_TOKEN", "s3cret-token-value")
    result = example.run(
        "verify", "--live", "--url", "http://127.0.0.1:9", "--token-env", "DASHGEN_TEST_TOKEN"
    )
    assert result.exit_code == 2
    assert "127.0.0.1:9" in result.stderr
    assert "s3cret" not in result.stdout + result.stderr


def test_missing_server_binary_says_how_to_install(
    example: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHGEN_VICTORIA_METRICS_BIN", "/nonexistent/victoria-metrics")
    result = example.run("verify", "--live", "--engine", "victoria-metrics")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "apt-get install -y --no-install-recommends victoria-metrics" in result.stderr


@pytest.mark.parametrize("engine", ENGINES)
def test_server_is_gone_after_a_failure_mid_run(
    example: Project, monkeypatch: pytest.MonkeyPatch, engine: str
) -> None:
    started: list[int] = []
    base = live_module.ENGINES[engine]

    class Recording(base):  # type: ignore[valid-type,misc]
        def __enter__(self) -> Any:
            entered = super().__enter__()
            started.append(self.pid)
            return entered

    def failing_queries(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setitem(live_module.ENGINES, engine, Recording)
    monkeypatch.setattr(live_module, "run_queries", failing_queries)
    result = example.run("verify", "--live", "--engine", engine)
    assert result.exit_code == 130
    assert len(started) == 1  # no panel reads the example's recording rule: one start
    with pytest.raises(ProcessLookupError):
        os.kill(started[0], 0)


def test_live_servers_listen_on_loopback_only() -> None:
    for server_class in (PrometheusServer, VictoriaMetricsServer):
        with server_class([]) as server:
            assert server.url.startswith("http://127.0.0.1:")
            assert server.pid is not None
            listening = _listening_addresses(server.pid)
            assert listening, server_class.__name__
            assert all(address.startswith("127.0.0.1:") for address in listening), listening


def _listening_addresses(pid: int) -> set[str]:
    """Local addresses of the TCP sockets ``pid`` listens on, from /proc (no ss needed).

    The server keeps opening and closing files (its data dir) while this reads: an fd that
    is gone between the listing and its readlink was no listening socket."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state == "0A" and inode in inodes:  # 0A: LISTEN
                host, port = local.split(":")
                if len(host) == 8:
                    octets = [str(int(host[i : i + 2], 16)) for i in (6, 4, 2, 0)]
                    found.add(f"{'.'.join(octets)}:{int(port, 16)}")
                else:
                    found.add(f"[{host}]:{int(port, 16)}")
    return found
