"""Real TSDBs for ``verify --live``: embedded Prometheus / VictoriaMetrics, or an existing URL.

Every panel query is sent over HTTP to a real engine, because only the engine knows whether an
expression parses and returns data. The embedded servers listen on 127.0.0.1 only, keep their
data in a temp dir, get their history once when they start, and are stopped by PID whatever
happens (context manager, then an ``atexit`` net for anything left behind). On Linux the
kernel also stops them when dashgen itself dies, even by SIGKILL.
"""

from __future__ import annotations

import abc
import atexit
import ctypes
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, Literal, Protocol, Self
from urllib.error import HTTPError, URLError

from dashgen.errors import DashgenError
from dashgen.live.scrape import Series

_READY_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 5.0
_QUERY_TIMEOUT_S = 30.0
_PORT_ATTEMPTS = 5


@dataclass(frozen=True)
class QueryResult:
    """What one query gave: the label sets of the result series and how many points.

    ``values`` holds each series' ``(unix s, value)`` points, in the order of ``series``.
    ``values_count`` leaves out NaN points (Grafana draws nothing for them, and Prometheus
    returns them where VictoriaMetrics drops them), so a panel that only gets NaN counts as
    empty. A scalar result is one series with no labels; a string result has no values.
    """

    status: Literal["success", "error"]
    error: str | None
    series: tuple[dict[str, str], ...]
    values_count: int
    values: tuple[tuple[tuple[float, float], ...], ...] = ()


class Engine(Protocol):
    """A Prometheus-compatible query API; used as a context manager so it is always released."""

    name: str

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def query(self, expr: str, time_s: float) -> QueryResult: ...

    def query_range(
        self, expr: str, start_s: float, end_s: float, step_s: float
    ) -> QueryResult: ...


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect on the query API is a misconfigured URL: report it, never follow it."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: object,
        code: int,
        msg: str,
        headers: object,
        newurl: str,
    ) -> None:
        return None


class _QueryApi:
    """The ``/api/v1/query`` and ``/api/v1/query_range`` client both kinds of engine share."""

    name: str

    def __init__(self, opener: urllib.request.OpenerDirector) -> None:
        self._opener = opener
        self._base_url = ""
        self._auth: dict[str, str] = {}

    def query(self, expr: str, time_s: float) -> QueryResult:
        """Instant query at ``time_s`` (unix seconds)."""
        return self._query("/api/v1/query", {"query": expr, "time": _num(time_s)})

    def query_range(self, expr: str, start_s: float, end_s: float, step_s: float) -> QueryResult:
        """Range query, as a Grafana time series panel sends it."""
        params = {"query": expr, "start": _num(start_s), "end": _num(end_s), "step": _num(step_s)}
        return self._query("/api/v1/query_range", params)

    def _query(self, path: str, params: Mapping[str, str]) -> QueryResult:
        status, body = self._request(path, urllib.parse.urlencode(params).encode())
        payload = _json_object(body)
        if payload.get("status") == "error":
            return QueryResult("error", str(payload.get("error", "")), (), 0)
        data = payload.get("data")
        if status != 200 or payload.get("status") != "success" or not isinstance(data, dict):
            hint = "; check the bearer token" if status in (401, 403) else ""
            raise DashgenError(
                self.name, f"no Prometheus API answer from {path} (HTTP {status}){hint}"
            )
        return _result(data)

    def _request(
        self,
        path: str,
        body: bytes | None = None,
        timeout_s: float = _QUERY_TIMEOUT_S,
        content_type: str | None = None,
    ) -> tuple[int, bytes]:
        """POST ``body`` (GET when None); any HTTP status comes back, only transport fails."""
        request = urllib.request.Request(self._base_url + path, data=body)
        if content_type is not None:
            request.add_header("Content-Type", content_type)
        for header, value in self._auth.items():
            request.add_unredirected_header(header, value)
        try:
            with self._opener.open(request, timeout=timeout_s) as response:
                return int(response.status), bytes(response.read())
        except HTTPError as error:
            with error:
                return error.code, error.read()
        except (URLError, OSError) as error:
            reason = getattr(error, "reason", error)
            raise DashgenError(self.name, f"cannot reach {path}: {reason}") from None


class ExistingEndpoint(_QueryApi):
    """A running Prometheus-compatible endpoint (``--url``): queries only, nothing ingested.

    The bearer token is read from the environment variable named ``token_env`` so it never
    appears on a command line, and is kept out of messages and ``repr``.
    """

    def __init__(self, url: str, token_env: str | None = None) -> None:
        # Unlike the embedded servers, a remote endpoint may need the environment's proxy.
        super().__init__(urllib.request.build_opener(_NoRedirect))
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise DashgenError("--url", "expected an http(s) base URL like http://127.0.0.1:9090")
        if parts.username is not None or parts.query or parts.fragment:
            raise DashgenError(
                "--url",
                "give a base URL without credentials, query or fragment; pass a bearer token"
                " through an environment variable instead",
            )
        self.name = urllib.parse.urlunsplit(parts).rstrip("/")
        self._base_url = self.name
        self._token_env = token_env
        if token_env is not None:
            token = os.environ.get(token_env, "")
            if not token:
                raise DashgenError("--url", f"environment variable {token_env} is empty or unset")
            self._auth["Authorization"] = f"Bearer {token}"

    def __repr__(self) -> str:
        return f"ExistingEndpoint({self.name!r}, token_env={self._token_env!r})"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None


class LocalServer(_QueryApi, abc.ABC):
    """An engine binary run as a child on 127.0.0.1 with a temp data dir, stopped by PID."""

    _binary: ClassVar[str]
    _binary_env: ClassVar[str]
    _package: ClassVar[str]
    _ready_path: ClassVar[str]

    def __init__(self, series: Sequence[Series]) -> None:
        # Embedded servers are local: never go through an HTTP proxy from the environment.
        super().__init__(urllib.request.build_opener(urllib.request.ProxyHandler({}), _NoRedirect))
        self.name = self._binary
        self._series = tuple(series)
        self._executable = self._find_executable()
        self._root: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """Base URL of the running server (``http://127.0.0.1:PORT``)."""
        return self._base_url

    @property
    def pid(self) -> int | None:
        """PID of the running server, None when stopped."""
        return None if self._process is None else self._process.pid

    def __enter__(self) -> Self:
        if self._process is not None:
            raise RuntimeError(f"{self.name} is already running")
        try:
            _sweep_orphans(self.name)
            self._root = Path(tempfile.mkdtemp(prefix=f"dashgen-{self.name}-"))
            (self._root / _OWNER).write_text(str(os.getpid()), encoding="ascii")
            (self._root / "data").mkdir()
            self._before_start(self._root)
            self._start()
            self._after_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Terminate, wait, kill if it lingers; remove the temp dir. Safe to call twice."""
        process = self._process
        if process is not None:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(_STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            self._process = None
        _RUNNING.discard(self)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    def _find_executable(self) -> str:
        return _find_binary(self._binary, self._binary_env, self._package)

    @abc.abstractmethod
    def _argv(self, root: Path, port: int) -> list[str]:
        """The server's command line for this data dir and port."""

    def _start_failure(self, log_text: str) -> str:
        """What to tell the user when the server exited as it started."""
        return f"exited at start: {_tail(log_text)}"

    def _before_start(self, root: Path) -> None:
        """Ingest that needs the data dir before the server opens it."""

    def _after_ready(self) -> None:
        """Ingest through the running server."""

    def _start(self) -> None:
        """Start on a free port; another process may grab it first, so retry on a new one."""
        assert self._root is not None
        log_path = self._root / "server.log"
        for _ in range(_PORT_ATTEMPTS):
            self.port = _free_port()
            self._base_url = f"http://127.0.0.1:{self.port}"
            argv = self._argv(self._root, self.port)
            try:
                with log_path.open("wb") as log:
                    self._process = subprocess.Popen(
                        argv,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        cwd=self._root,
                        start_new_session=True,
                        preexec_fn=_stop_with_parent(),
                    )
            except OSError as error:
                raise DashgenError(self.name, f"cannot run {argv[0]}: {error}") from None
            _RUNNING.add(self)
            if self._wait_ready(self._process):
                return
            log_text = log_path.read_text(errors="replace")
            if "address already in use" not in log_text:
                raise DashgenError(self.name, self._start_failure(log_text))
        raise DashgenError(self.name, f"no free port after {_PORT_ATTEMPTS} attempts")

    def _wait_ready(self, process: subprocess.Popen[bytes]) -> bool:
        """True when ready, False when it exited; DashgenError when it hangs."""
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                return False
            try:
                status, _ = self._request(self._ready_path, timeout_s=0.5)
            except DashgenError:
                status = 0
            if status == 200:
                return True
            time.sleep(0.01)
        raise DashgenError(self.name, f"not ready after {_READY_TIMEOUT_S:g} s on {self.url}")


class PrometheusServer(LocalServer):
    """Prometheus with the window backfilled as TSDB blocks by promtool before it starts."""

    _binary = "prometheus"
    _binary_env = "DASHGEN_PROMETHEUS_BIN"
    _package = "prometheus"
    _ready_path = "/-/ready"

    def __init__(self, series: Sequence[Series]) -> None:
        super().__init__(series)
        self._promtool = _find_binary("promtool", "DASHGEN_PROMTOOL_BIN", "prometheus")

    def _before_start(self, root: Path) -> None:
        (root / "prometheus.yml").write_text("scrape_configs: []\n")
        if not self._series:
            return
        source = root / "window.om"
        source.write_text(openmetrics_text(self._series))
        paths = (str(source), str(root / "data"))
        done = subprocess.run(
            [self._promtool, "tsdb", "create-blocks-from", "openmetrics", "--quiet", *paths],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=300,
            check=False,
            preexec_fn=_stop_with_parent(),  # a killed dashgen takes its backfill with it
        )
        if done.returncode != 0:
            output = (done.stderr or done.stdout).decode(errors="replace")
            raise DashgenError("promtool", f"backfill failed: {_tail(output)}")

    def _argv(self, root: Path, port: int) -> list[str]:
        # Retention counts back from the newest block, not from now; 10y only makes sure a
        # long window is never cut.
        return [
            self._executable,
            f"--config.file={root / 'prometheus.yml'}",
            f"--storage.tsdb.path={root / 'data'}",
            "--storage.tsdb.retention.time=10y",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ]


class VictoriaMetricsServer(LocalServer):
    """VictoriaMetrics fed through its Prometheus-text import API once it is up."""

    _binary = "victoria-metrics"
    _binary_env = "DASHGEN_VICTORIA_METRICS_BIN"
    _package = "victoria-metrics"
    _ready_path = "/health"

    def _argv(self, root: Path, port: int) -> list[str]:
        # latencyOffset=0: the last 30 s before "now" are not held back from queries.
        # The default cap of 30 labels would silently drop labels a panel may filter on.
        return [
            self._executable,
            f"-httpListenAddr=127.0.0.1:{port}",
            f"-storageDataPath={root / 'data'}",
            "-retentionPeriod=100y",
            "-search.latencyOffset=0s",
            "-maxLabelsPerTimeseries=1000",
            "-loggerLevel=ERROR",
        ]

    def _after_ready(self) -> None:
        if not self._series:
            return
        status, body = self._request("/api/v1/import/prometheus", _import_text(self._series))
        if status != 204:
            raise DashgenError(self.name, f"import failed (HTTP {status}): {_tail(body.decode())}")
        self._flush()
        # The import answers 204 even when it drops samples (too far in the future, older
        # than the retention), which would make every panel look empty. The count may be a
        # little high (documented), never low, so only a shortfall is an error.
        _, body = self._request("/api/v1/series/count")
        kept = _json_object(body).get("data")
        count = int(kept[0]) if isinstance(kept, list) and kept else 0
        wanted = {(one.name, tuple(item for item in one.labels if item[1])) for one in self._series}
        if count < len(wanted):
            raise DashgenError(
                self.name,
                f"kept {count} of {len(wanted)} imported series; the window must end near now"
                " (see window_end_ms)",
            )

    def _flush(self) -> None:
        """Make what was just ingested searchable now, not within the next second."""
        status, body = self._request("/internal/force_flush")
        if status != 200:
            raise DashgenError(self.name, f"flush failed (HTTP {status}): {_tail(body.decode())}")


#: Where ``scripts/install-tools`` unpacks a VictoriaMetrics that takes OTLP, in a project.
OTLP_VICTORIA_METRICS_TOOL = Path(".tools/victoria-metrics/usr/bin/victoria-metrics")
_OTLP_INSTALL_HINT = (
    "VictoriaMetrics takes OTLP from 1.92 on (Debian 13 ships 1.112): run dashgen's "
    "scripts/install-tools, or set DASHGEN_VICTORIA_METRICS_OTLP_BIN to such a binary"
)


class OtlpVictoriaMetricsServer(VictoriaMetricsServer):
    """VictoriaMetrics as the OTLP receiver of ``pipeline = victoriametrics``: it names what
    it stores itself, dotted as sent or, with ``prometheus_naming``, in Prometheus style."""

    _binary_env = "DASHGEN_VICTORIA_METRICS_OTLP_BIN"

    def __init__(
        self, series: Sequence[Series], *, prometheus_naming: bool, otlp: Sequence[bytes] = ()
    ) -> None:
        self._prometheus_naming = prometheus_naming
        self._otlp = tuple(otlp)
        super().__init__(series)

    def _after_ready(self) -> None:
        super()._after_ready()
        for body in self._otlp:
            self.push_otlp(body)

    def _find_executable(self) -> str:
        """The override, else a ``.tools`` copy (in this dir or a parent, or in the checkout
        dashgen runs from), else PATH; whether it takes OTLP shows when it starts."""
        override = os.environ.get(self._binary_env)
        if override:
            if not (os.path.isfile(override) and os.access(override, os.X_OK)):
                raise DashgenError(
                    self._binary_env, f"{override} is not an executable file; {_OTLP_INSTALL_HINT}"
                )
            return override
        here = Path.cwd()
        for directory in (here, *here.parents, Path(__file__).resolve().parents[1]):
            candidate = directory / OTLP_VICTORIA_METRICS_TOOL
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return str(candidate)
        found = shutil.which(self._binary)
        if found is None:
            raise DashgenError(self._binary, f"not found; {_OTLP_INSTALL_HINT}")
        return found

    def _start_failure(self, log_text: str) -> str:
        if "flag provided but not defined: -opentelemetry" in log_text:
            return f"{self._executable} takes no OTLP; {_OTLP_INSTALL_HINT}"
        return super()._start_failure(log_text)

    def _argv(self, root: Path, port: int) -> list[str]:
        naming = ["-opentelemetry.usePrometheusNaming"] if self._prometheus_naming else []
        # Every series of a big catalog comes back from one /api/v1/series call.
        return [*super()._argv(root, port), "-search.maxSeries=100000000", *naming]

    def push_otlp(self, body: bytes) -> None:
        """Ingest one ``ExportMetricsServiceRequest`` as an OTLP/HTTP exporter posts it."""
        status, answer = self._request(
            "/opentelemetry/v1/metrics", body, content_type="application/x-protobuf"
        )
        if status == 400 and b"unsupported path" in answer:
            raise DashgenError(self.name, f"{self._executable} takes no OTLP; {_OTLP_INSTALL_HINT}")
        if status not in (200, 204):
            raise DashgenError(
                self.name, f"OTLP ingest failed (HTTP {status}): {_tail(answer.decode())}"
            )
        self._flush()

    def stored_series(self) -> list[tuple[dict[str, str], float]]:
        """Every series it holds: its labels (``__name__`` included) and its last value."""
        # An explicit end: by default it is the current whole second, which leaves out
        # what was pushed within it.
        end = _num(time.time() + 60)
        query = urllib.parse.urlencode({"match[]": '{__name__=~".+"}', "start": "0", "end": end})
        status, body = self._request(f"/api/v1/export?{query}")
        if status != 200:
            raise DashgenError(self.name, f"export failed (HTTP {status}): {_tail(body.decode())}")
        stored = []
        for line in body.splitlines():
            one = json.loads(line)
            stored.append((dict(one["metric"]), float(one["values"][-1])))
        return stored


def window_end_ms() -> int:
    """Where a scraped window should end: a whole second, 10 s ago.

    VictoriaMetrics moves a query time within its last second back by a second and drops
    samples from the future, so a window ending exactly "now" loses its last point there.
    """
    return (int(time.time()) - 10) * 1000


def openmetrics_text(series: Sequence[Series]) -> str:
    """The window as OpenMetrics text, in the order the format requires.

    One ``# TYPE`` per family; inside it, one group per label set (``le``/``quantile`` set
    aside, so a histogram's buckets, count and sum stay together); inside a group, points
    in time order. Timestamps in seconds with millisecond decimals; ends with ``# EOF``.
    """
    lines: dict[str, list[tuple[tuple[object, ...], str]]] = {}
    types: dict[str, str] = {}
    for one in series:
        types.setdefault(one.family, one.family_type)
        point_label = _POINT_LABEL.get(one.family_type, "")
        group = tuple(item for item in one.labels if item[0] != point_label)
        within = _point_order(dict(one.labels).get(point_label))
        for stamp, value in one.points:
            seconds, millis = divmod(stamp, 1000)
            text = f"{_sample(one.name, one.labels, value)} {seconds}.{millis:03d}"
            lines.setdefault(one.family, []).append(((group, stamp, one.name, within), text))
    out: list[str] = []
    for family in sorted(lines):
        out.append(f"# TYPE {family} {types[family]}")
        out.extend(text for _, text in sorted(lines[family]))
    out.append("# EOF")
    return "\n".join(out) + "\n"


_POINT_LABEL = {"histogram": "le", "gaugehistogram": "le", "summary": "quantile"}


def _point_order(bound: str | None) -> float:
    """Buckets and quantiles must be listed by their numeric bound, not as strings."""
    return 0.0 if bound is None else float(bound)


def _import_text(series: Sequence[Series]) -> bytes:
    """Prometheus text with millisecond timestamps, as ``/api/v1/import/prometheus`` takes."""
    return "".join(
        f"{_sample(one.name, one.labels, value)} {stamp}\n"
        for one in series
        for stamp, value in one.points
    ).encode()


def _sample(name: str, labels: tuple[tuple[str, str], ...], value: float) -> str:
    pairs = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
    return f"{name}{{{pairs}}} {_num(value)}" if labels else f"{name} {_num(value)}"


def _escape(label_value: str) -> str:
    return label_value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _num(value: float) -> str:
    """Go-parsable number: NaN, +Inf, -Inf, else the shortest exact repr."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def _result(data: dict[str, object]) -> QueryResult:
    kind, result = data.get("resultType"), data.get("result")
    items: list[dict[str, Any]]
    if kind == "string":
        return QueryResult("success", None, ({},), 0, ((),))
    if kind == "scalar" and isinstance(result, list):
        items = [{"value": result}]
    elif kind in ("vector", "matrix") and isinstance(result, list):
        items = result
    else:
        raise DashgenError("query", f"malformed result of type {kind!r}")
    labels = tuple({str(k): str(v) for k, v in item.get("metric", {}).items()} for item in items)
    values = tuple(
        tuple((float(t), float(v)) for t, v in item.get("values", [item.get("value")]))
        for item in items
    )
    count = sum(1 for points in values for _, v in points if not math.isnan(v))
    return QueryResult("success", None, labels, count, values)


def _json_object(body: bytes) -> dict[str, object]:
    try:
        payload = json.loads(body)
    except ValueError:
        return {}
    return payload if isinstance(payload, dict) else {}


def _find_binary(name: str, env: str, package: str) -> str:
    hint = f"install it with `apt-get install -y --no-install-recommends {package}`"
    override = os.environ.get(env)
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise DashgenError(env, f"{override} is not an executable file; {hint}")
        return override
    found = shutil.which(name)
    if found is None:
        raise DashgenError(name, f"{name} not found on PATH; {hint} or set {env}")
    return found


_PR_SET_PDEATHSIG = 1
_OWNER = "owner.pid"


def _sweep_orphans(name: str) -> None:
    """Remove the temp dirs of servers whose dashgen was killed before it could (SIGKILL):
    the kernel stopped the server, but nothing was left to delete its data."""
    for root in Path(tempfile.gettempdir()).glob(f"dashgen-{name}-*"):
        try:
            owner = int((root / _OWNER).read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue  # not one of ours, or still being made
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            shutil.rmtree(root, ignore_errors=True)
        except OSError:
            continue  # alive, as another user


def _stop_with_parent() -> Callable[[], None] | None:
    """For a child (a server, promtool's backfill), before exec: have the kernel send it
    SIGTERM when dashgen dies, which ``atexit`` cannot cover (SIGKILL, an OOM kill). Linux only.

    The kernel signals when the thread that started the server ends; dashgen starts servers
    from the thread that runs the command.
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def arm() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # dashgen died before the line above: go now
            os._exit(1)

    return arm


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _tail(text: str, limit: int = 400) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return (lines[-1] if lines else "(no output)")[-limit:]


_RUNNING: set[LocalServer] = set()


@atexit.register
def _stop_all() -> None:
    """Safety net for servers started without a ``with`` (or whose exit was interrupted)."""
    for server in list(_RUNNING):
        server.stop()
