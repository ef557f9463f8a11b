"""``dashgen verify`` as its stages: code side -> dashboards -> PromQL -> contract findings.

The code side is either the catalog through the real exporter (dashgen sources), or a
user callable that creates plain OTel instruments (adoption on an existing codebase).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from dashgen.build.identity import declared
from dashgen.build.rules import RULES_DIR
from dashgen.build.write import Drift, diff_digests, owned
from dashgen.catalog import Catalog
from dashgen.config import Config
from dashgen.errors import DashgenError
from dashgen.families import Family
from dashgen.isolate import run_isolated
from dashgen.memo import expected_output, exported_families, remembered_dashboards
from dashgen.pipelines import FROM_THE_APP, Pipeline, PipelineName
from dashgen.record.coverage import (
    CodeInstrument,
    Coverage,
    created_instruments,
    declared_instruments,
    learn_labels,
    measure,
    with_recorded_values,
    with_recording,
)
from dashgen.record.recording import DEFAULT_PATH, ExportedInstrument, read_recording
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
from dashgen.verify.dashboard_files import read_dashboards, read_file
from dashgen.verify.dashboards import DashboardQueries
from dashgen.verify.rule_files import recorded_families
from dashgen.verify.upgrade import with_upgrade

if TYPE_CHECKING:
    from dashgen.live.stages import LiveResult

_DRIFT_KINDS = {"stale": STALE_FILE, "missing": MISSING_FILE, "orphan": ORPHAN_FILE}


@dataclass(frozen=True)
class CodeSide:
    families: tuple[Family, ...]
    drift: tuple[Drift, ...] | None
    """Stale/missing/orphan files of the output dir; ``None`` when not checked."""
    catalog: Catalog | None = None
    """The declarations, when the code side is dashgen sources."""
    instruments: tuple[CodeInstrument, ...] = ()
    """The declared or created instruments, for a recording to be matched against."""
    excluded: Mapping[str, str] = field(default_factory=dict)
    """Families of declarations marked ``exclude=``: family name -> reason."""

    def rules(self, config: Config) -> ContractRules:
        """The configured rules, plus the exclusions the declarations themselves carry."""
        rules = config.rules()
        return replace(rules, excluded={**self.excluded, **rules.excluded})


def code_side(config: Config, directory: Path) -> CodeSide:
    """What the code exports; for dashgen sources also whether ``directory`` is stale."""
    if config.pipeline.name in FROM_THE_APP:
        return CodeSide(_families_from_the_app(config), None)
    if config.instruments:
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
    catalog = declared(config)
    drift = None
    if directory.resolve() == config.output.resolve():
        expected = expected_output(config, catalog)
        drift = tuple(diff_digests(config.output, expected.digests))
    else:
        expected = exported_families(config, catalog)
    excluded = {
        expected.family_of[spec.name]: spec.exclude_reason
        for spec in catalog.metrics
        if spec.exclude_reason is not None
    }
    return CodeSide(
        expected.families,
        drift,
        catalog,
        declared_instruments(catalog.metrics, expected.family),
        excluded,
    )


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
    code = code_side(config, directory)
    is_output = directory.resolve() == config.output.resolve()
    found = remembered_dashboards(
        directory.resolve(), config.root, config.cache, config.exclude_dashboards, is_output
    )
    dashboards = found.dashboards
    recording = exported_recording(config, config.recorded) if config.recorded else None
    families = code.families if recording is None else learn_labels(code.families, recording)
    generated_rules = _generated_rules(config, is_output)
    families = (*families, *recorded_families([*dashboards, *generated_rules]))
    static = check_contract(dashboards, families, code.rules(config), found.notes)
    if recording is not None:
        coverage = measure(code.instruments, recording, dashboards, config.unrecorded)
        static = with_recording(static, coverage, dashboards)
    static = _with_drift(static, code, directory, config)
    if code.catalog is not None:
        static = with_other_pipelines(static, code.catalog, config.pipeline)
    if config.exporter_version is not None:
        static = _with_exporter_version(static, code, dashboards, config, config.exporter_version)
    if config.baseline is not None:
        static = without_known(static, read_baseline(config.baseline), config.baseline)
    if live is None:
        return Verified(static)
    from dashgen.live.stages import run_live  # servers and the SDK: only for --live

    catalog = code.catalog
    if catalog is not None and recording is not None:
        catalog = with_recorded_values(catalog, recording)
    outcome = run_live(
        catalog, code.families, dashboards, live, progress, config.pipeline, generated_rules
    )
    return Verified(static, outcome)


def _generated_rules(config: Config, is_output: bool) -> list[DashboardQueries]:
    """The build's rule groups, whose recording rules hand-written dashboards may query
    (when the output dir itself is checked, its rules are read with its dashboards)."""
    rules_dir = config.output / RULES_DIR
    if is_output or not rules_dir.is_dir():
        return []
    found = (read_file(path, config.root)[0] for path in sorted(rules_dir.glob("*.yaml")))
    return [group for groups in found for group in groups if group.rules]


def _with_exporter_version(
    result: VerifyResult,
    code: CodeSide,
    dashboards: Sequence[DashboardQueries],
    config: Config,
    version: str,
) -> VerifyResult:
    """The queries that another version of the pull exporter would break."""
    if code.catalog is None or config.pipeline.name is not PipelineName.PROMETHEUS_EXPORTER:
        raise DashgenError(
            "--exporter-version",
            "compares the pull exporter's names for dashgen sources (pipeline "
            "prometheus-exporter); on OTLP paths the server names the metrics, not the SDK",
        )
    from dashgen.pipelines.exporter_version import export_at  # a venv and pip: only here

    theirs = export_at(version, code.catalog.metrics, config.root / ".dashgen" / "exporters")
    ours = config.pipeline.export(code.catalog.metrics)
    return with_upgrade(result, dashboards, ours, theirs, version)


def with_other_pipelines(result: VerifyResult, catalog: Catalog, ours: Pipeline) -> VerifyResult:
    """An unknown metric that another export path would store under that name gets a hint
    saying so: the dashboard was written for a deployment other than the configured one.

    The other paths run only when there is such a finding to explain."""
    unknown = {f.subject for f in result.findings if f.kind == UNKNOWN_METRIC}
    if not unknown:
        return result
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
    recording = exported_recording(config, config.recorded or config.root / DEFAULT_PATH)
    if directory is not None and not directory.is_dir():
        raise DashgenError(str(directory), "dashboards dir not found")
    shown = directory or (config.output if config.output.is_dir() else None)
    has_code = config.instruments or config.sources.is_dir()
    code = code_side(config, shown or config.output).instruments if has_code else ()
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
