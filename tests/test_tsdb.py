"""The live TSDB layer against real servers fed by the real OTel Prometheus exporter.

One window of measurements is scraped once; each engine gets it once (module-scoped fixture)
and every query test runs against both. Expectations are computed from what the test
recorded, never read back from the pipeline.
"""

from __future__ import annotations

import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from dashgen.errors import DashgenError
from dashgen.live import tsdb
from dashgen.live.scrape import Series, scrape_window
from dashgen.live.tsdb import (
    Engine,
    ExistingEndpoint,
    PrometheusServer,
    VictoriaMetricsServer,
    openmetrics_text,
    window_end_ms,
)

SCRAPES = 10
STEP_S = 15
BOUNDS = (0.1, 0.5, 1.0)
# Recorded at every tick: counter increments per route, histogram observations.
INCREMENTS = {"/a": 3, "/b": 1}
OBSERVATIONS = (0.05, 0.2, 0.3, 0.6, 0.7, 0.8, 0.9, 0.95)
WIDE = {f"attribute_{n:02d}": "value" for n in range(40)}  # VictoriaMetrics keeps 30 by default
AWKWARD = 'say "hi" C:\\new\nnext line'
BROKEN = "sum(rate(x_total[1m])"
# Each engine words a parse error its own way: the message must be the server's.
PARSE_ERROR = {PrometheusServer: "unclosed left parenthesis", VictoriaMetricsServer: "unexpected"}

LocalServer = PrometheusServer | VictoriaMetricsServer


@dataclass
class Window:
    """What was recorded, tick by tick, and what the exporter gave for it."""

    end_s: float = 0.0
    ticks: list[int] = field(default_factory=list)
    gauge: list[float] = field(default_factory=list)
    updown: list[float] = field(default_factory=list)
    observed: list[float] = field(default_factory=list)
    series: list[Series] = field(default_factory=list)


@pytest.fixture(scope="module")
def window() -> Window:
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry)], shutdown_on_exit=False
    )
    meter = provider.get_meter("dashgen.test", "1.0")
    counter = meter.create_counter("x")
    histogram = meter.create_histogram("h", unit="s", explicit_bucket_boundaries_advisory=BOUNDS)
    gauge = meter.create_gauge("g")
    updown = meter.create_up_down_counter("u")
    recorded = Window()

    def observe(_: CallbackOptions) -> list[Observation]:
        return [Observation(recorded.observed[-1], {"room": "lab"})]

    meter.create_observable_gauge("og", callbacks=[observe])
    wide, quoted = meter.create_gauge("wide"), meter.create_gauge("quoted")

    def tick(i: int) -> None:
        recorded.ticks.append(i)
        # Set on every scrape: SDKs before 1.45 export a synchronous gauge only after a set.
        wide.set(1, WIDE)
        quoted.set(1, {"text": AWKWARD})
        for route, increment in INCREMENTS.items():
            counter.add(increment, {"route": route})
        for value in OBSERVATIONS:
            histogram.record(value)
        recorded.gauge.append(1.5 * i)
        gauge.set(recorded.gauge[-1])
        updown.add(5)
        updown.add(-2)
        recorded.updown.append(3.0 * (i + 1))
        recorded.observed.append(100.0 - i)

    end_ms = window_end_ms()
    recorded.series = scrape_window(registry, tick, scrapes=SCRAPES, step_s=STEP_S, end_ms=end_ms)
    recorded.end_s = end_ms / 1000
    provider.shutdown()
    return recorded


@pytest.fixture(scope="module", params=[PrometheusServer, VictoriaMetricsServer])
def engine(request: pytest.FixtureRequest, window: Window) -> Iterator[LocalServer]:
    server: LocalServer = request.param(window.series)
    with server:
        yield server


def _expected_quantile(
    q: float, observations: tuple[float, ...], bounds: tuple[float, ...]
) -> float:
    """Prometheus' bucket interpolation, done by hand on the raw observations."""
    rank = q * len(observations)
    lower, below = 0.0, 0
    for upper in bounds:
        cumulative = sum(1 for value in observations if value <= upper)
        if cumulative >= rank:
            return lower + (upper - lower) * (rank - below) / (cumulative - below)
        lower, below = upper, cumulative
    raise AssertionError("the rank falls in the +Inf bucket: pick other observations")


def _one_value(engine: Engine, expr: str, time_s: float) -> float:
    result = engine.query(expr, time_s)
    assert result.status == "success", result.error
    assert result.values_count == 1, result
    return result.values[0][0][1]


def test_scrape_window_reads_every_scrape_with_its_own_timestamp(window: Window) -> None:
    assert window.ticks == list(range(SCRAPES))
    end_ms = int(window.end_s * 1000)
    stamps = tuple(end_ms - (SCRAPES - 1 - i) * STEP_S * 1000 for i in range(SCRAPES))
    assert all(tuple(t for t, _ in one.points) == stamps for one in window.series)
    keys = [(one.name, one.labels) for one in window.series]
    assert keys == sorted(keys)
    by_key = {(one.name, dict(one.labels).get("route")): one for one in window.series}
    # tick(i) runs before scrape i, so the first point already holds one increment.
    counts = [INCREMENTS["/a"] * (i + 1) for i in range(SCRAPES)]
    assert [v for _, v in by_key["x_total", "/a"].points] == counts
    assert by_key["x_total", "/a"].family == "x"
    assert by_key["x_total", "/a"].family_type == "counter"
    assert {one.family_type for one in window.series if one.name == "target_info"} == {"info"}


def test_scrape_window_refuses_two_instruments_with_one_name() -> None:
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry)], shutdown_on_exit=False
    )
    meter = provider.get_meter("dashgen.test")
    dotted, underscored = meter.create_counter("a.b"), meter.create_counter("a_b")

    def tick(_: int) -> None:
        dotted.add(1)
        underscored.add(1)

    with pytest.raises(DashgenError, match="a_b_total"):
        scrape_window(registry, tick, scrapes=2, step_s=STEP_S, end_ms=window_end_ms())
    provider.shutdown()


@pytest.mark.parametrize(("scrapes", "step_s"), [(0, STEP_S), (SCRAPES, 0)])
def test_scrape_window_needs_a_real_window(scrapes: int, step_s: int) -> None:
    with pytest.raises(ValueError, match="need scrapes >= 1 and step_s >= 1"):
        scrape_window(CollectorRegistry(), lambda _: None, scrapes=scrapes, step_s=step_s, end_ms=0)


def _strictly_parsed(series: list[Series]) -> set[tuple[str, tuple[tuple[str, str], ...], int]]:
    """Every (name, labels, ms) in the OpenMetrics text, read by a strict parser.

    prometheus_client's parser enforces OpenMetrics grouping and ordering rules that promtool
    2.42 lets through, so passing it means the text is OpenMetrics, not merely accepted.
    """
    families = text_string_to_metric_families(openmetrics_text(series))  # type: ignore[no-untyped-call]
    return {
        (sample.name, tuple(sorted(sample.labels.items())), round(float(sample.timestamp) * 1000))
        for family in families
        for sample in family.samples
        if sample.timestamp is not None
    }


def _points(series: list[Series]) -> set[tuple[str, tuple[tuple[str, str], ...], int]]:
    return {(one.name, one.labels, t) for one in series for t, _ in one.points}


def test_openmetrics_text_is_strict_openmetrics(window: Window) -> None:
    # That parser (0.26.0) drops a histogram's later points as "duplicates" (its per-timestamp
    # set is only reset when the label group changes), so histograms are read one scrape at a
    # time; every other family is read whole, which checks grouping and time order too.
    for stamp, _ in window.series[0].points:
        one_scrape = [
            replace(one, points=tuple(p for p in one.points if p[0] == stamp))
            for one in window.series
        ]
        assert _strictly_parsed(one_scrape) == _points(one_scrape)
    whole = [one for one in window.series if one.family_type != "histogram"]
    assert _strictly_parsed(whole) == _points(whole)
    assert {one.family_type for one in whole} == {"counter", "gauge", "info"}


def test_rate_of_a_counter_is_its_increment_per_step(engine: LocalServer, window: Window) -> None:
    rate = _one_value(engine, "sum(rate(x_total[1m]))", window.end_s)
    assert rate == pytest.approx(sum(INCREMENTS.values()) / STEP_S, rel=1e-9)


def test_increase_over_the_window_is_what_was_added(engine: LocalServer, window: Window) -> None:
    increase = _one_value(engine, "sum(increase(x_total[5m]))", window.end_s)
    per_tick = sum(INCREMENTS.values())
    # Between the increase seen from the first sample and the total from zero: engines
    # differ in extrapolation (Prometheus) and in counting from zero (VictoriaMetrics).
    assert per_tick * (SCRAPES - 1) - 1e-9 <= increase <= per_tick * SCRAPES + 1e-9


def test_histogram_quantile_matches_the_observations(engine: LocalServer, window: Window) -> None:
    expr = "histogram_quantile(0.9, sum by (le) (rate(h_seconds_bucket[1m])))"
    p90 = _one_value(engine, expr, window.end_s)
    assert p90 == pytest.approx(_expected_quantile(0.9, OBSERVATIONS, BOUNDS), rel=1e-9)


@pytest.mark.parametrize("name", ["g", "u", "og"])
def test_gauges_show_the_last_recorded_value(
    engine: LocalServer, window: Window, name: str
) -> None:
    last = {"g": window.gauge, "u": window.updown, "og": window.observed}[name][-1]
    assert _one_value(engine, name, window.end_s) == last


def test_query_range_returns_one_series_per_label(engine: LocalServer, window: Window) -> None:
    expr = "sum by (route) (rate(x_total[1m]))"
    result = engine.query_range(expr, window.end_s - 60, window.end_s, STEP_S)
    assert result.status == "success", result.error
    assert sorted(labels["route"] for labels in result.series) == sorted(INCREMENTS)
    assert result.values_count == len(INCREMENTS) * 5
    for labels, points in zip(result.series, result.values, strict=True):
        expected = INCREMENTS[labels["route"]] / STEP_S
        assert [v for _, v in points] == pytest.approx([expected] * 5, rel=1e-9)


def test_label_names_are_the_exporters(engine: LocalServer, window: Window) -> None:
    result = engine.query("x_total", window.end_s)
    assert {labels.get("otel_scope_name") for labels in result.series} == {"dashgen.test"}
    assert engine.query("target_info", window.end_s).values_count == 1


def test_wide_label_sets_are_kept_whole(engine: LocalServer, window: Window) -> None:
    (labels,) = engine.query("wide", window.end_s).series
    assert WIDE.items() <= labels.items()


def test_label_values_survive_escaping(engine: LocalServer, window: Window) -> None:
    assert [labels["text"] for labels in engine.query("quoted", window.end_s).series] == [AWKWARD]


def test_every_point_is_stored_once(engine: LocalServer, window: Window) -> None:
    expr = 'count_over_time(x_total{route="/a"}[10m])'
    assert _one_value(engine, expr, window.end_s) == SCRAPES


def test_a_window_victoriametrics_would_drop_is_an_error(window: Window) -> None:
    days = 3 * 86_400_000
    future = [
        replace(one, points=tuple((t + days, v) for t, v in one.points)) for one in window.series
    ]
    with pytest.raises(DashgenError, match="kept 0 of"), VictoriaMetricsServer(future):
        pass


@pytest.mark.parametrize(
    "expr", ['x_total{route="/nowhere"}', "no_such_metric_total", "rate(no_such_total[1m])"]
)
def test_a_query_for_nothing_is_empty_not_an_error(
    engine: LocalServer, window: Window, expr: str
) -> None:
    for result in (
        engine.query(expr, window.end_s),
        engine.query_range(expr, window.end_s - 60, window.end_s, STEP_S),
    ):
        assert result.status == "success", result.error
        assert (result.series, result.values_count) == ((), 0)


def test_a_broken_query_gives_the_servers_message(engine: LocalServer, window: Window) -> None:
    for result in (
        engine.query(BROKEN, window.end_s),
        engine.query_range(BROKEN, window.end_s - 60, window.end_s, STEP_S),
    ):
        assert result.status == "error"
        assert PARSE_ERROR[type(engine)] in (result.error or "")
        assert (result.series, result.values_count) == ((), 0)


def _listening(pid: int) -> set[tuple[str, int]]:
    """(address, port) of every TCP socket ``pid`` listens on, from /proc."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        target = os.readlink(fd)
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table, family in (("/proc/net/tcp", socket.AF_INET), ("/proc/net/tcp6", socket.AF_INET6)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            address, port = fields[1].split(":")
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                raw = bytes.fromhex(address)
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
                found.add((socket.inet_ntop(family, words), int(port, 16)))
    return found


def test_listens_on_loopback_only_in_its_own_session(engine: LocalServer) -> None:
    assert engine.pid is not None
    assert _listening(engine.pid) == {("127.0.0.1", engine.port)}
    # Its own session: a Ctrl-C to the terminal's process group does not reach it.
    assert os.getsid(engine.pid) == engine.pid != os.getsid(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _accepts(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return False
    return True


@pytest.mark.parametrize("server_class", [PrometheusServer, VictoriaMetricsServer])
@pytest.mark.parametrize("interruption", [RuntimeError, KeyboardInterrupt])
def test_server_is_gone_after_the_body_raises(
    server_class: type[LocalServer],
    interruption: type[BaseException],
    window: Window,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    server = server_class(window.series)
    with pytest.raises(interruption), server:
        pid, port = server.pid, server.port
        assert pid is not None and list(tmp_path.iterdir())
        raise interruption("mid-run")
    assert pid is not None
    assert not _alive(pid)
    assert not _accepts(port)
    assert server.pid is None
    assert list(tmp_path.iterdir()) == []


def test_a_taken_port_is_retried_on_another(
    window: Window, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:  # bound is enough to make the server's bind fail
        taken.bind(("127.0.0.1", 0))
        busy = taken.getsockname()[1]
        ports = iter([busy, tsdb._free_port()])
        monkeypatch.setattr(tsdb, "_free_port", lambda: next(ports))
        with PrometheusServer(window.series) as server:
            assert server.port != busy
            assert _one_value(server, "g", window.end_s) == window.gauge[-1]


def test_a_server_that_exits_at_start_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("DASHGEN_VICTORIA_METRICS_BIN", shutil.which("false") or "/bin/false")
    with pytest.raises(DashgenError, match="exited at start"), VictoriaMetricsServer([]):
        pass
    assert list(tmp_path.iterdir()) == []


def test_atexit_stops_a_server_left_running() -> None:
    script = (
        "from dashgen.live.tsdb import PrometheusServer\n"
        "server = PrometheusServer([]).__enter__()\n"
        "print(server.pid, server.port)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    pid, port = map(int, done.stdout.split())
    alive = _alive(pid)
    if alive:  # do not leak it when the safety net is broken
        os.kill(pid, signal.SIGKILL)
    assert not alive
    assert not _accepts(port)


@pytest.mark.parametrize(
    ("server_class", "variable", "package"),
    [
        (PrometheusServer, "DASHGEN_PROMETHEUS_BIN", "prometheus"),
        (PrometheusServer, "DASHGEN_PROMTOOL_BIN", "prometheus"),
        (VictoriaMetricsServer, "DASHGEN_VICTORIA_METRICS_BIN", "victoria-metrics"),
    ],
)
def test_missing_binary_says_how_to_install_it(
    server_class: type[LocalServer],
    variable: str,
    package: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hint = f"apt-get install -y --no-install-recommends {package}"
    monkeypatch.setenv(variable, str(tmp_path / "missing"))
    with pytest.raises(DashgenError, match=variable) as error:
        server_class([])
    assert hint in str(error.value)
    monkeypatch.delenv(variable)
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(DashgenError, match="not found on PATH") as error:
        server_class([])
    assert hint in str(error.value)


class _BearerProxy(BaseHTTPRequestHandler):
    """Stands where an authenticating reverse proxy would, in front of a real server."""

    upstream = ""
    token = ""

    def do_POST(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {self.token}":
            self.send_error(401)
            return
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = urllib.request.Request(self.upstream + self.path, data=body)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def bearer_proxy(engine: LocalServer) -> Iterator[str]:
    handler = type("Handler", (_BearerProxy,), {"upstream": engine.url, "token": "s3cret-t0ken"})
    with ThreadingHTTPServer(("127.0.0.1", 0), handler) as proxy:
        thread = threading.Thread(target=proxy.serve_forever, args=(0.01,), daemon=True)
        thread.start()
        yield f"http://127.0.0.1:{proxy.server_address[1]}/"
        proxy.shutdown()


def test_existing_endpoint_sends_the_token_and_never_shows_it(
    bearer_proxy: str, window: Window, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DASHGEN_TEST_TOKEN", "s3cret-t0ken")
    with ExistingEndpoint(bearer_proxy, "DASHGEN_TEST_TOKEN") as endpoint:
        rate = _one_value(endpoint, "sum(rate(x_total[1m]))", window.end_s)
        assert rate == pytest.approx(sum(INCREMENTS.values()) / STEP_S, rel=1e-9)
        assert endpoint.query(BROKEN, window.end_s).status == "error"
        assert "s3cret" not in repr(endpoint) + endpoint.name
    monkeypatch.setenv("DASHGEN_TEST_TOKEN", "wrong-t0ken")
    with pytest.raises(DashgenError, match="401") as error:
        ExistingEndpoint(bearer_proxy, "DASHGEN_TEST_TOKEN").query("x_total", window.end_s)
    assert "t0ken" not in str(error.value)
    with pytest.raises(DashgenError, match="401"):
        ExistingEndpoint(bearer_proxy).query("x_total", window.end_s)


def test_existing_endpoint_refuses_bad_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASHGEN_TEST_TOKEN", raising=False)
    with pytest.raises(DashgenError, match="DASHGEN_TEST_TOKEN"):
        ExistingEndpoint("http://127.0.0.1:9", "DASHGEN_TEST_TOKEN")
    with pytest.raises(DashgenError) as error:
        ExistingEndpoint("http://admin:hunter2@127.0.0.1:9/")
    assert "hunter2" not in str(error.value)
    with pytest.raises(DashgenError, match="http"):
        ExistingEndpoint("127.0.0.1:9090")


def test_an_unreachable_endpoint_is_a_clear_error() -> None:
    with socket.socket() as probe:  # a port nobody listens on: bound, never listening
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
        with pytest.raises(DashgenError, match="cannot reach"):
            ExistingEndpoint(url).query("up", 0)


def test_nan_points_do_not_count_as_data(engine: LocalServer, window: Window) -> None:
    # The quantile of a histogram that saw nothing in the range: a NaN point on Prometheus,
    # no series at all on VictoriaMetrics. Both are an empty panel.
    expr = "histogram_quantile(0.9, sum by (le) (rate(h_seconds_bucket[1m])) * 0)"
    result = engine.query(expr, window.end_s)
    assert result.status == "success", result.error
    assert result.values_count == 0
    assert all(math.isnan(v) for points in result.values for _, v in points)
