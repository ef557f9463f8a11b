"""The ``dashgen`` command. Exit codes: 0 clean, 1 findings or drift, 2 bad input.

Annotations here are evaluated where they stand, not postponed: typer reads every command's
signature on each run, and turning postponed (string) annotations back into types costs it
about 15 ms per run instead of 4.
"""

import gc
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.text import Text

from dashgen.build.write import Drift, diff_digests, tidy, write_tree
from dashgen.config import Config, load_config
from dashgen.errors import DashgenError
from dashgen.memo import (
    Declarations,
    Expected,
    expected_output,
    generated,
    recalled,
    remember_build,
)
from dashgen.pipelines import PipelineName
from dashgen.verify.annotations import lines_in, to_github, to_junit, to_sarif
from dashgen.verify.baseline import write_baseline as write_baseline_file
from dashgen.verify.contract import Finding
from dashgen.verify.report import render_human, render_live_human, to_json
from dashgen.verify.stages import LiveOptions, recording_coverage
from dashgen.verify.stages import verify as run_verify

app = typer.Typer(
    help="Keep Grafana dashboards and OpenTelemetry metric code from drifting apart.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False)

SourcesOption = Annotated[
    Path | None,
    typer.Option("--sources", help="Dir of dashboard sources [default: from [tool.dashgen]]."),
]
OutputOption = Annotated[
    Path | None,
    typer.Option("--output", help="Dir of generated files [default: from [tool.dashgen]]."),
]
InstrumentsOption = Annotated[
    str | None,
    typer.Option(
        "--instruments",
        help="module:function that creates plain OTel instruments; use instead of the "
        "dashgen sources, for code that knows nothing of dashgen.",
    ),
]
NoCacheOption = Annotated[
    bool,
    typer.Option(
        "--no-cache",
        help="Neither read nor write .dashgen/cache/, where dashgen remembers what the exporter "
        "and renderer made of unchanged inputs (or set [tool.dashgen] cache = false).",
    ),
]
PipelineOption = Annotated[
    PipelineName | None,
    typer.Option(
        "--pipeline",
        help="The export path the app is deployed with, which decides the stored names "
        "[default: [tool.dashgen] pipeline, else prometheus-exporter].",
        show_default=False,
    ),
]
ExcludeOption = Annotated[
    list[str] | None,
    typer.Option(
        "--exclude",
        metavar="GLOB",
        help="Leave out dashboard files whose path under the dir matches (* also crosses /); "
        "repeatable [default: [tool.dashgen] exclude_dashboards].",
        show_default=False,
    ),
]
ConfigDirOption = Annotated[
    Path,
    typer.Option(
        "--project", help="Where to look for pyproject.toml (and its parents).", show_default=False
    ),
]


def run() -> None:
    """The ``dashgen`` command (``python -m dashgen`` too). A command lives seconds, and
    most of what it makes lives until it ends, so the cyclic collector stays off: each
    collection traced every parsed query or planned panel again (0.06 s after a large
    build). At the end, what is left is frozen, so that the interpreter's teardown does not
    trace it all once more (0.05 s); everything else about the exit is Python's own."""
    gc.disable()
    try:
        app(prog_name="dashgen")
    finally:
        gc.freeze()


def _dashgen_version() -> str:
    from importlib.metadata import version  # 30 ms of imports that most runs do not need

    return version("dashgen")


def _show_version(asked: bool) -> None:
    if asked:
        out.print(f"dashgen {_dashgen_version()}")
        raise typer.Exit()


@app.callback()
def main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version",
            callback=_show_version,
            is_eager=True,
            help="Show dashgen's version and exit.",
        ),
    ] = False,
) -> None:
    """Generate Grafana dashboards from OTel metric declarations, and verify any dashboards
    against what the code really exports.

    Exit codes: 0 clean, 1 findings or out-of-date files, 2 bad input or usage.
    """


def _config(project: Path, **overrides: object) -> Config:
    config = load_config(project, overrides)
    if config.defaulted_at is not None:
        sources = _display(config.sources, config.root)
        output = _display(config.output, config.root)
        err.print(
            f"warning: no [tool.dashgen] in {config.defaulted_at}: using the defaults (sources "
            f"{sources}, output {output}, datasource {config.prometheus_url})",
            markup=False,
            soft_wrap=True,
        )
    return config


class _Terminated(BaseException):
    """SIGTERM (a CI timeout, ``kill``) unwinds like Ctrl-C, so servers and temp dirs go."""


def _terminate(signum: int, frame: object) -> None:
    raise _Terminated


@contextmanager
def _guarded() -> Iterator[None]:
    """Bad input: one line, exit 2. Ctrl-C or SIGTERM: exit 130 or 143, with nothing
    written and no server left running.

    The message is plain text, so that PromQL like ``x[5m]`` is never read as markup.
    """
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _terminate) if in_main_thread else None
    try:
        yield
    except DashgenError as error:
        err.print(Text.assemble(("error:", "bold red"), f" {error}"), soft_wrap=True)
        raise typer.Exit(2) from None
    except (KeyboardInterrupt, _Terminated) as stop:
        err.print(Text("interrupted: nothing was written", style="bold red"), soft_wrap=True)
        raise typer.Exit(143 if isinstance(stop, _Terminated) else 130) from None
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


@app.command(short_help="Generate dashboards and Grafana provisioning from the sources.")
def build(
    check: Annotated[
        bool,
        typer.Option("--check", help="Write nothing; exit 1 if generated files are out of date."),
    ] = False,
    sources: SourcesOption = None,
    output: OutputOption = None,
    prometheus_url: Annotated[
        str | None,
        typer.Option("--prometheus-url", help="Datasource URL for the provisioning YAML."),
    ] = None,
    allow_empty: Annotated[
        bool,
        typer.Option(
            "--allow-empty",
            help="Let a build with no dashboards delete the dashboards in the output dir.",
        ),
    ] = False,
    pipeline: PipelineOption = None,
    no_cache: NoCacheOption = False,
    project: ConfigDirOption = Path("."),
) -> None:
    """Generate dashboard JSON and Grafana provisioning from the sources.

    Writes atomically: a failing build leaves the output dir exactly as it was.
    """
    with _guarded():
        config = _config(
            project,
            sources=sources,
            output=output,
            prometheus_url=prometheus_url,
            pipeline=pipeline,
            cache=False if no_cache else None,
        )
        if check:
            _check_output(config)
            return
        tidy(config.output)
        known = recalled(config)
        if known is not None and not diff_digests(config.output, known.digests):
            drift: list[Drift] = []  # built from these very inputs: nothing to do
        else:
            drift, known = _write_build(config, allow_empty)
    shown = _display(config.output, config.root)
    dashboards = known.dashboards
    families = len(known.family_of)
    if drift:
        out.print(
            f"wrote {shown}/: {dashboards} dashboards, {families} metric families, "
            f"{len(drift)} file(s) changed"
        )
        for item in drift:
            out.print(f"  {_WRITTEN[item.kind]} {shown}/{item.path}", markup=False)
    else:
        out.print(f"{shown}/ already up to date ({dashboards} dashboards, {families} families)")


#: What a build did to a file the output dir lacked, held stale, or held but no longer makes.
_WRITTEN = {"missing": "added", "stale": "updated", "orphan": "removed"}


def _write_build(config: Config, allow_empty: bool) -> tuple[list[Drift], Expected]:
    result = generated(config, Declarations(config))
    drift = write_tree(config.output, result.files, result.digests, allow_empty)
    # Remembered, so that the `dashgen verify` that follows is a memo hit.
    return drift, remember_build(config, result)


def _check_output(config: Config) -> None:
    """``build --check``: compare the output dir with what a build would write; exit 1 if
    it differs. A memo hit needs neither the exporter nor the renderer for this."""
    expected = expected_output(config, Declarations(config))
    drift = diff_digests(config.output, expected.digests)
    shown = _display(config.output, config.root)
    for item in drift:
        out.print(f"{item.kind}: {shown}/{item.path} {item.describe()}")
    if drift:
        out.print(f"{len(drift)} file(s) out of date: run `dashgen build`")
        raise typer.Exit(1)
    out.print(f"{shown}/ is up to date ({len(expected.digests)} files)")


def _display(path: Path, root: Path) -> str:
    """Paths as the project names them: relative to the pyproject.toml dir."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


class Engine(StrEnum):
    prometheus = "prometheus"
    victoria_metrics = "victoria-metrics"


class OutputFormat(StrEnum):
    human = "human"
    json = "json"


class VerifyFormat(StrEnum):
    human = "human"
    json = "json"
    github = "github"
    sarif = "sarif"
    junit = "junit"


@app.command(short_help="Check dashboards against what the code really exports.")
def verify(
    dashboards: Annotated[
        Path | None,
        typer.Argument(
            help="Dir of dashboard JSON to check [default: the configured output dir].",
            show_default=False,
        ),
    ] = None,
    instruments: InstrumentsOption = None,
    scrape: Annotated[
        str | None,
        typer.Option(
            "--scrape",
            help="Read the families from exposition text (Prometheus text or OpenMetrics): the "
            "URL of a running app's /metrics, or a saved file. Implies --pipeline scrape.",
        ),
    ] = None,
    output_format: Annotated[
        VerifyFormat,
        typer.Option(
            "--format",
            help="human; json (schema: docs/verify-json.md); github (workflow annotations on "
            "each finding's file and line); sarif (SARIF 2.1.0, for code-scanning upload); "
            "junit (XML, a failing case per panel).",
        ),
    ] = VerifyFormat.human,
    live: Annotated[
        bool,
        typer.Option(
            "--live",
            help="Also run every query against a real TSDB: an embedded server on 127.0.0.1 "
            "fed by the real export pipeline, or --url.",
        ),
    ] = False,
    engine: Annotated[
        Engine | None,
        typer.Option(
            "--engine",
            help="Embedded server for --live [default: prometheus; victoria-metrics with "
            "pipeline victoriametrics].",
            show_default=False,
        ),
    ] = None,
    url: Annotated[
        str | None,
        typer.Option(
            "--url",
            help="With --live: query this Prometheus-compatible endpoint (Prometheus, Mimir, "
            "Thanos, VictoriaMetrics) over its last hour instead; nothing is ingested.",
        ),
    ] = None,
    token_env: Annotated[
        str | None,
        typer.Option(
            "--token-env",
            help="With --url: name of the environment variable holding a bearer token.",
        ),
    ] = None,
    recorded: Annotated[
        Path | None,
        typer.Option(
            "--recorded",
            help="Recording of the app's test run (pytest --dashgen-record): also find dead "
            "panels, dead instruments and labels the run contradicts [default: [tool.dashgen] "
            "recorded].",
        ),
    ] = None,
    sources: SourcesOption = None,
    output: OutputOption = None,
    pipeline: PipelineOption = None,
    exclude: ExcludeOption = None,
    baseline: Annotated[
        Path | None,
        typer.Option(
            "--baseline",
            help="Report only findings not in this file [default: [tool.dashgen] baseline].",
            show_default=False,
        ),
    ] = None,
    exporter_version: Annotated[
        str | None,
        typer.Option(
            "--exporter-version",
            help="Also report every query whose names change with this version of "
            "opentelemetry-exporter-prometheus (installed once into a venv of its own under "
            ".dashgen/), before you upgrade [default: [tool.dashgen] exporter_version].",
            show_default=False,
        ),
    ] = None,
    write_baseline: Annotated[
        Path | None,
        typer.Option(
            "--write-baseline",
            help="Write the current findings to this file (sorted, to commit) and exit 0.",
        ),
    ] = None,
    no_cache: NoCacheOption = False,
    project: ConfigDirOption = Path("."),
) -> None:
    """Check dashboards against what the code really exports.

    Every metric and label a query uses must exist in code, every family in code must be on
    a dashboard, and (when checking the output dir) generated files must not be stale.
    Exit 0 clean, 1 findings, 2 bad input.
    """
    options = LiveOptions(engine.value if engine else None, url, token_env) if live else None
    with _guarded():
        if (url or token_env) and not live:
            raise DashgenError("--url", "--url and --token-env go with --live")
        config = _config(
            project,
            sources=sources,
            output=output,
            instruments=instruments,
            scrape=scrape,
            recorded=recorded.resolve() if recorded else None,
            pipeline=pipeline,
            exclude_dashboards=exclude,
            baseline=baseline.resolve() if baseline else None,
            exporter_version=exporter_version,
            cache=False if no_cache else None,
        )
        if write_baseline is not None:
            config = replace(config, baseline=None)  # the file records every finding
        directory = dashboards if dashboards is not None else config.output
        with _progress(output_format is VerifyFormat.human and live) as advance:
            result = run_verify(config, directory, options, advance)
        if write_baseline is not None:
            count = write_baseline_file(write_baseline, result.static.findings)
            out.print(f"wrote {write_baseline}: {count} findings", markup=False, highlight=False)
            return
    live_findings = result.live.findings if result.live is not None else ()
    every = replace(
        result.static,
        findings=tuple(sorted({*result.static.findings, *live_findings}, key=Finding.sort_key)),
    )
    match output_format:
        case VerifyFormat.json:
            out.print(to_json(result.static, result.live), markup=False, highlight=False)
        case VerifyFormat.github:
            annotations = to_github(every.findings, lines_in(config.root))
            if annotations:
                out.print(annotations, markup=False)
        case VerifyFormat.sarif:
            sarif = to_sarif(every.findings, lines_in(config.root), _dashgen_version())
            out.print(sarif, markup=False, highlight=False, soft_wrap=True)
        case VerifyFormat.junit:
            out.print(to_junit(every), markup=False, highlight=False)
        case VerifyFormat.human:
            render_human(result.static, out)
            if result.live is not None:
                render_live_human(result.live, out)
    if not result.ok:
        raise typer.Exit(1)


@app.command(short_help="Report what the recorded test run recorded, per instrument.")
def coverage(
    dashboards: Annotated[
        Path | None,
        typer.Argument(
            help="Dir of dashboard JSON whose panels to list, as for verify [default: the "
            "configured output dir, when there is one].",
            show_default=False,
        ),
    ] = None,
    recorded: Annotated[
        Path | None,
        typer.Option(
            "--recorded",
            help="Recording to report on, as for verify [default: [tool.dashgen] recorded, "
            "else .dashgen/recorded.json].",
        ),
    ] = None,
    fail_under: Annotated[
        float | None,
        typer.Option(
            "--fail-under",
            min=0,
            max=100,
            help="Exit 1 if less than this percentage of instruments was recorded.",
        ),
    ] = None,
    instruments: InstrumentsOption = None,
    sources: SourcesOption = None,
    exclude: ExcludeOption = None,
    output_format: Annotated[
        OutputFormat,
        typer.Option("--format", help="human (a table as wide as the terminal) or json."),
    ] = OutputFormat.human,
    project: ConfigDirOption = Path("."),
) -> None:
    """Report what the recorded test run really recorded, in the manner of coverage.py.

    One row per instrument: kind, measurements, label keys, the panels that show it, and
    whether the run recorded it; then the share of instruments recorded. Exit 0, 1 below
    --fail-under, 2 bad input.
    """
    with _guarded():
        if dashboards is not None and dashboards.is_file():
            raise DashgenError(
                str(dashboards),
                "is a file: coverage takes the dashboards dir, as verify does; pass the "
                "recording with --recorded FILE",
            )
        config = _config(
            project,
            sources=sources,
            instruments=instruments,
            recorded=recorded.resolve() if recorded else None,
            exclude_dashboards=exclude,
        )
        report = recording_coverage(config, dashboards)
    from dashgen.record.coverage import render_table  # the recording stage: only for coverage
    from dashgen.record.coverage import to_json as coverage_json

    if output_format is OutputFormat.json:
        out.print(coverage_json(report), markup=False, highlight=False)
    else:
        width = out.width if out.is_terminal else None
        out.print(render_table(report, width), markup=False, highlight=False)
    if fail_under is not None and report.percent < fail_under:
        out.print(
            f"coverage failure: {report.percent:.2f}% of instruments recorded is less than "
            f"--fail-under={fail_under:g}"
        )
        raise typer.Exit(1)


@contextmanager
def _progress(shown: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr while live queries run (never in JSON output)."""
    if not shown:
        yield lambda done, total: None
        return
    from rich.progress import Progress  # only live runs show progress

    with Progress(console=err, transient=True, disable=not err.is_terminal) as progress:
        task = progress.add_task("querying", total=None)

        def advance(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        yield advance
