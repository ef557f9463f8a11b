"""``dashgen verify`` as its stages: code side -> dashboards -> PromQL -> contract findings.

The code side is either the catalog through the real exporter (dashgen sources), or a
user callable that creates plain OTel instruments (adoption on an existing codebase).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

from dashgen.build.layout import RULES_DIR
from dashgen.build.write import Drift, diff_digests, owned
from dashgen.config import Config
from dashgen.errors import DashgenError
from dashgen.families import Family
from dashgen.isolate import run_isolated, second_core
from dashgen.memo import (
    Declarations,
    Expected,
    expected_output,
    exported_families,
    remembered_check,
    remembered_dashboards,
)
from dashgen.pipelines import FROM_THE_APP, Pipeline, PipelineName
from dashgen.verify.accepted import ContractRules
from dashgen.verify.baseline import read_baseline, without_known
from dashgen.verify.contract import (
    MISSING_FILE,
    ORPHAN_FILE,
    STALE_FILE,
    UNKNOWN_METRIC,
    Finding,
    VerifyResult,
    check_contract,
)
from dashgen.verify.dashboard_files import (
    DashboardSet,
    dashboard_paths,
    read_dashboards,
    read_file,
)
from dashgen.verify.dashboards import DashboardQueries
from dashgen.verify.rule_files import recorded_families
from dashgen.verify.upgrade import with_upgrade

if TYPE_CHECKING:
    from dashgen.catalog import Catalog
    from dashgen.live.stages import LiveResult
    from dashgen.record.coverage import CodeInstrument, Coverage
    from dashgen.record.recording import ExportedInstrument

_DRIFT_KINDS = {"stale": STALE_FILE, "missing": MISSING_FILE, "orphan": ORPHAN_FILE}


@dataclass(frozen=True)
class CodeSide:
    families: tuple[Family, ...]
    drift: tuple[Drift, ...] | None
    """Stale/missing/orphan files of the output dir; ``None`` when not checked."""
    expected: Expected | None = None
    """What the declarations export, when the code side is dashgen sources."""
    instruments: tuple[CodeInstrument, ...] = ()
    """The instruments an ``--instruments`` callable created."""

    def rules(self, config: Config) -> ContractRules:
        """The configured rules, plus the exclusions the declarations themselves carry."""
        rules = config.rules()
        excluded = {} if self.expected is None else self.expected.excluded
        return replace(rules, excluded={**excluded, **rules.excluded})

    def code_instruments(self, declarations: Callable[[], Catalog]) -> tuple[CodeInstrument, ...]:
        """The instruments a recording is matched against: created, or declared."""
        if self.expected is None:
            return self.instruments
        from dashgen.record.coverage import declared_instruments  # only for a recording

        return declared_instruments(declarations().metrics, self.expected.family)


def code_side(
    config: Config,
    directory: Path,
    declarations: Declarations | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> CodeSide:
    """What the code exports; for dashgen sources also whether ``directory`` is stale.
    ``declarations`` loads the sources when the memo does not answer (by default through
    a fresh :class:`Declarations`); then, with ``meanwhile``, the exporter (and renderer)
    run in a child while ``meanwhile()`` runs here."""
    if config.pipeline.name in FROM_THE_APP:
        return CodeSide(_families_from_the_app(config), None)
    if config.instruments:
        from dashgen.record.coverage import created_instruments
        from dashgen.record.replay import export_callable  # the OTel SDK: only this path needs it

        created = run_isolated(
            config.instruments,
            "its instruments",
            export_callable,
            config.instruments,
            config.root,
            config.pipeline,
        )
        return CodeSide(
            tuple(created.families), None, instruments=created_instruments(created.instruments)
        )
    declarations = declarations or Declarations(config)
    if directory.resolve() == config.output.resolve():
        expected = expected_output(config, declarations, meanwhile)
        drift: tuple[Drift, ...] | None = tuple(diff_digests(config.output, expected.digests))
    else:
        expected = exported_families(config, declarations, meanwhile)
        drift = None
    return CodeSide(expected.families, drift, expected)


def _families_from_the_app(config: Config) -> tuple[Family, ...]:
    """Pipelines ``prometheus-client`` (the user's callable fills registries, in a child
    process) and ``scrape`` (exposition text from a URL or a file)."""
    if config.pipeline.name is PipelineName.SCRAPE:
        if config.scrape is None:
            raise DashgenError("pipeline=scrape", "needs --scrape URL|FILE")
        from dashgen.pipelines.exposition_text import scraped_families

        return scraped_families(config.scrape, config.root)
    if config.instruments is None:
        raise DashgenError(
            "pipeline=prometheus-client",
            "needs --instruments module:function, which registers the app's collectors",
        )
    from dashgen.pipelines.prometheus_client_registry import registry_families

    return run_isolated(
        config.instruments, "its collectors", registry_families, config.instruments, config.root
    )


@dataclass(frozen=True)
class LiveOptions:
    engine: str | None = None
    """The embedded server; ``None``: the one the pipeline stores in (Prometheus, or
    VictoriaMetrics for ``victoriametrics``)."""
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
    # Each input is read only if a step needs it: a memo hit needs neither the sources'
    # declarations nor the dashboards' parsed queries. A miss, which needs both, can read
    # the dashboards here while the sources load, export and render in a child.
    is_output = directory.resolve() == config.output.resolve()
    found = cache(
        partial(
            remembered_dashboards,
            directory.resolve(),
            config.root,
            config.cache,
            config.exclude_dashboards,
            is_output,
        )
    )
    return _verified(config, directory, is_output, found, live, progress)


#: Bytes of dashboards from which reading them here while the code side runs in a child
#: saves more than the fork costs (about 0.1 s of parsing per megabyte).
READ_BESIDE_FROM = 1 << 20


def _read_beside(
    config: Config, directory: Path, found: Callable[[], DashboardSet], live: LiveOptions | None
) -> Callable[[], None] | None:
    """What to do here while the code side runs in a child on a memo miss: read the
    dashboards, when there are enough of them to be worth a core of their own. Not when
    the declarations themselves are needed here later (a recording, --live,
    --exporter-version): loading them twice would cost more."""
    needs_declarations = config.recorded or live or config.exporter_version is not None
    if needs_declarations or not second_core():
        return None
    paths, _ = dashboard_paths(directory.resolve(), config.exclude_dashboards)
    if sum(_size(path) for path in paths) < READ_BESIDE_FROM:
        return None

    def read() -> None:
        with suppress(DashgenError):  # raised again where the dashboards are needed: after
            found()  # the code side's own errors, as when both are read in turn

    return read


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0  # the read says why it cannot


def _verified(
    config: Config,
    directory: Path,
    is_output: bool,
    found: Callable[[], DashboardSet],
    live: LiveOptions | None,
    progress: Callable[[int, int], None],
) -> Verified:
    declarations = Declarations(config)
    code = code_side(config, directory, declarations, _read_beside(config, directory, found, live))
    recording = exported_recording(config, config.recorded) if config.recorded else None
    if recording is not None:  # the recording's own checks: imported only for one
        from dashgen.record.coverage import (
            learn_labels,
            measure,
            with_recorded_values,
            with_recording,
        )
    rule_paths = _generated_rule_paths(config, is_output)
    generated_rules = cache(partial(_generated_rules, rule_paths, config.root))

    def contract() -> VerifyResult:
        dashboards = found().dashboards
        families = code.families if recording is None else learn_labels(code.families, recording)
        families = (*families, *recorded_families([*dashboards, *generated_rules()]))
        result = check_contract(dashboards, families, code.rules(config), found().notes)
        if code.expected is None:
            return result
        return with_other_pipelines(result, declarations, config.pipeline)

    if recording is None and code.expected is not None:
        paths, notes = dashboard_paths(directory.resolve(), config.exclude_dashboards)
        static = remembered_check(config, code.expected, [*paths, *rule_paths], notes, contract)
    else:
        static = contract()
    if recording is not None:
        instruments = code.code_instruments(declarations)
        coverage = measure(instruments, recording, found().dashboards, config.unrecorded)
        static = with_recording(static, coverage, found().dashboards)
    static = _with_drift(static, code, directory, config)
    if config.exporter_version is not None:
        static = _with_exporter_version(
            static, code, declarations, found().dashboards, config, config.exporter_version
        )
    if config.baseline is not None:
        static = without_known(static, read_baseline(config.baseline), config.baseline)
    if live is None:
        return Verified(static)
    from dashgen.live.stages import run_live  # servers and the SDK: only for --live

    catalog = declarations() if code.expected is not None else None
    if catalog is not None and recording is not None:
        catalog = with_recorded_values(catalog, recording)
    outcome = run_live(
        catalog,
        code.families,
        found().dashboards,
        live,
        progress,
        config.pipeline,
        generated_rules(),
    )
    return Verified(static, outcome)


def _generated_rule_paths(config: Config, is_output: bool) -> list[Path]:
    """The build's rule files, whose recording rules hand-written dashboards may query
    (when the output dir itself is checked, its rules are read with its dashboards)."""
    rules_dir = config.output / RULES_DIR
    if is_output or not rules_dir.is_dir():
        return []
    return sorted(rules_dir.glob("*.yaml"))


def _generated_rules(paths: Sequence[Path], root: Path) -> list[DashboardQueries]:
    found = (read_file(path, root)[0] for path in paths)
    return [group for groups in found for group in groups if group.rules]


def _with_exporter_version(
    result: VerifyResult,
    code: CodeSide,
    declarations: Callable[[], Catalog],
    dashboards: Sequence[DashboardQueries],
    config: Config,
    version: str,
) -> VerifyResult:
    """The queries that another version of the pull exporter would break."""
    if code.expected is None or config.pipeline.name is not PipelineName.PROMETHEUS_EXPORTER:
        raise DashgenError(
            "--exporter-version",
            "compares the pull exporter's names for dashgen sources (pipeline "
            "prometheus-exporter); on OTLP paths the server names the metrics, not the SDK",
        )
    from dashgen.pipelines.exporter_version import export_at  # a venv and pip: only here

    metrics = declarations().metrics
    theirs = export_at(version, metrics, config.root / ".dashgen" / "exporters")
    ours = config.pipeline.export(metrics)
    return with_upgrade(result, dashboards, ours, theirs, version)


def with_other_pipelines(
    result: VerifyResult, declarations: Callable[[], Catalog], ours: Pipeline
) -> VerifyResult:
    """An unknown metric that another export path would store under that name gets a hint
    saying so: the dashboard was written for a deployment other than the configured one.

    The other paths (and the sources, after a memo hit) run only when there is such a
    finding to explain."""
    unknown = {f.subject for f in result.findings if f.kind == UNKNOWN_METRIC}
    if not unknown:
        return result
    catalog = declarations()
    mine = ours.export(catalog.metrics).metrics
    by_name: dict[str, tuple[Pipeline, str, str]] = {}
    for other in other_pipelines(ours):
        try:
            theirs = other.export(catalog.metrics).metrics
        except DashgenError:
            continue  # that path refuses a declaration this one takes: no hint from it
        for name, metric in theirs.items():
            for sample in metric.family.samples:
                if sample in unknown and sample not in mine[name].family.samples:
                    ours_sample = _same_role(sample, metric.family, mine[name].family)
                    by_name.setdefault(sample, (other, name, ours_sample))
    findings = []
    for finding in result.findings:
        if finding.kind == UNKNOWN_METRIC and finding.subject in by_name:
            other, name, ours_sample = by_name[finding.subject]
            hint = (
                f"`{finding.subject}` is what {other.describe()} stores for '{name}'; with "
                f"{ours.describe()} it is `{ours_sample}` (set [tool.dashgen] pipeline to the "
                "path the app is deployed with)"
            )
            finding = replace(finding, hint=hint)
        findings.append(finding)
    return replace(result, findings=tuple(findings))


def other_pipelines(ours: Pipeline) -> list[Pipeline]:
    """The paths a dashboard written elsewhere most likely assumed."""
    candidates = [Pipeline(), Pipeline(PipelineName.OTLP)]
    return [candidate for candidate in candidates if candidate != ours]


def _same_role(sample: str, theirs: Family, mine: Family) -> str:
    """``x_bucket`` there is ``y_bucket`` here: the sample with the same histogram suffix."""
    for suffix in ("_bucket", "_count", "_sum"):
        if sample.endswith(suffix) and sample == f"{theirs.name}{suffix}":
            return f"{mine.name}{suffix}"
    return mine.samples[0] if len(mine.samples) == 1 else mine.name


def recording_coverage(config: Config, directory: Path | None) -> Coverage:
    """``dashgen coverage``: the recording against the code's instruments (when there are
    dashgen sources or an ``--instruments`` callable) and the panels in ``directory``
    (given, or else the output dir when there is one: adoption projects have none)."""
    from dashgen.record.coverage import measure
    from dashgen.record.recording import DEFAULT_PATH

    recording = exported_recording(config, config.recorded or config.root / DEFAULT_PATH)
    if directory is not None and not directory.is_dir():
        raise DashgenError(str(directory), "dashboards dir not found")
    shown = directory or (config.output if config.output.is_dir() else None)
    has_code = config.instruments or config.sources.is_dir()
    declarations = Declarations(config)
    code = (
        code_side(config, shown or config.output, declarations).code_instruments(declarations)
        if has_code
        else ()
    )
    dashboards: tuple[DashboardQueries, ...] = ()
    if shown is not None:
        found = read_dashboards(
            shown.resolve(), config.root, config.exclude_dashboards, allow_empty=True
        )
        dashboards = found.dashboards
    return measure(code, recording, dashboards, config.unrecorded)


def exported_recording(config: Config, path: Path) -> list[ExportedInstrument]:
    """A recording and the names its instruments get along the configured path (the pull
    exporter for pipelines that read the app's own registries)."""
    from dashgen.record.recording import read_recording
    from dashgen.record.replay import export_recorded  # the OTel SDK: only a recording needs it

    pipeline = None if config.pipeline.name in FROM_THE_APP else config.pipeline
    return export_recorded(read_recording(path), pipeline).instruments


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
            hint="run `dashgen build` and commit the result"
            if owned(item.path)
            else f"move it out of {shown}/: build replaces that dir and refuses to delete it",
        )
        for item in code.drift
    )
    findings = sorted(result.findings + drift_findings, key=Finding.sort_key)
    return replace(result, findings=tuple(findings))


def _shown(path: Path, root: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(path)
