"""``dashgen verify`` as its stages: code side -> dashboards -> PromQL -> contract findings.

The code side is either the catalog through the real exporter (dashgen sources), or a
user callable that creates plain OTel instruments (adoption on an existing codebase).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from dashgen.build import generate
from dashgen.capture import families_from_callable
from dashgen.catalog import Catalog
from dashgen.config import Config
from dashgen.contract import (
    MISSING_FILE,
    ORPHAN_FILE,
    STALE_FILE,
    Finding,
    VerifyResult,
    check_contract,
)
from dashgen.dashboards import DashboardQueries, read_dashboards
from dashgen.errors import DashgenError
from dashgen.families import Family
from dashgen.feed import feed_catalog
from dashgen.live import LiveResult, Timings, Window, run_queries, stopwatch
from dashgen.tsdb import (
    Engine,
    ExistingEndpoint,
    PrometheusServer,
    VictoriaMetricsServer,
    window_end_ms,
)
from dashgen.write import Drift, diff_tree

LIVE_SCRAPES = 20
LIVE_STEP_S = 15
ENGINES = {"prometheus": PrometheusServer, "victoria-metrics": VictoriaMetricsServer}
_DRIFT_KINDS = {"stale": STALE_FILE, "missing": MISSING_FILE, "orphan": ORPHAN_FILE}


@dataclass(frozen=True)
class CodeSide:
    families: tuple[Family, ...]
    drift: tuple[Drift, ...] | None
    """Stale/missing/orphan files of the output dir; ``None`` when not checked."""
    catalog: Catalog | None = None
    """The declarations, when the code side is dashgen sources."""


def code_side(config: Config, directory: Path) -> CodeSide:
    """What the code exports; for dashgen sources also whether ``directory`` is stale."""
    if config.instruments:
        return CodeSide(tuple(families_from_callable(config.instruments, config.root)), None)
    built = generate(config)
    drift = None
    if directory.resolve() == config.output.resolve():
        drift = tuple(diff_tree(config.output, built.files))
    return CodeSide(built.exported.families, drift, built.catalog)


@dataclass(frozen=True)
class LiveOptions:
    engine: str = "prometheus"
    url: str | None = None
    token_env: str | None = None


@dataclass(frozen=True)
class Verified:
    static: VerifyResult
    live: LiveResult | None = None

    @property
    def ok(self) -> bool:
        return self.static.ok and (self.live is None or self.live.ok)


def verify(
    config: Config,
    directory: Path,
    live: LiveOptions | None = None,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Verified:
    """The static contract checks, then (with ``live``) every query against a real TSDB."""
    if not directory.is_dir():
        raise DashgenError(str(directory), "dashboards dir not found")
    code = code_side(config, directory)
    dashboards = read_dashboards(directory.resolve(), config.root)
    static = _with_drift(
        check_contract(dashboards, code.families, config.rules()), code, directory, config
    )
    if live is None:
        return Verified(static)
    return Verified(static, run_live(code, dashboards, live, progress))


def run_live(
    code: CodeSide,
    dashboards: list[DashboardQueries],
    options: LiveOptions,
    progress: Callable[[int, int], None],
) -> LiveResult:
    """Embedded server fed from the catalog, or an existing endpoint over its last hour."""
    timings: dict[str, float] = {}
    if options.url is not None:
        end = time.time()
        window = Window(start_s=end - 3600, end_s=end, step_s=60)
        endpoint: Engine = ExistingEndpoint(options.url, options.token_env)
        with stopwatch(timings, "queries"):
            outcomes = run_queries(dashboards, code.families, endpoint, window, progress)
        return LiveResult(endpoint.name, outcomes, Timings(queries_s=timings["queries"]))
    if code.catalog is None:
        raise DashgenError(
            "--live",
            "the embedded server is fed from dashgen declarations; with --instruments, "
            "point --url at a server that holds your app's series",
        )
    end_ms = window_end_ms()
    window = Window(
        start_s=end_ms / 1000 - (LIVE_SCRAPES - 1) * LIVE_STEP_S,
        end_s=end_ms / 1000,
        step_s=LIVE_STEP_S,
    )
    with stopwatch(timings, "ingest"):
        series = feed_catalog(
            code.catalog.metrics, scrapes=LIVE_SCRAPES, step_s=LIVE_STEP_S, end_ms=end_ms
        )
    with ExitStack() as stack:
        with stopwatch(timings, "start"):
            server = stack.enter_context(ENGINES[options.engine](series))
        with stopwatch(timings, "queries"):
            outcomes = run_queries(dashboards, code.families, server, window, progress)
    return LiveResult(
        options.engine,
        outcomes,
        Timings(start_s=timings["start"], ingest_s=timings["ingest"], queries_s=timings["queries"]),
    )


def _with_drift(
    result: VerifyResult, code: CodeSide, directory: Path, config: Config
) -> VerifyResult:
    if not code.drift:
        return result
    shown = _shown(directory, config.root)
    drift_findings = tuple(
        Finding(
            kind=_DRIFT_KINDS[item.kind],
            file=f"{shown}/{item.path}",
            dashboard="",
            panel="",
            ref_id="",
            subject=item.path,
            message=f"{shown}/{item.path} {item.describe()}",
            hint="run `dashgen build` and commit the result",
        )
        for item in code.drift
    )
    findings = sorted(result.findings + drift_findings, key=Finding.sort_key)
    return replace(result, findings=tuple(findings))


def _shown(path: Path, root: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(path)
