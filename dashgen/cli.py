"""The ``dashgen`` command. Exit codes: 0 clean, 1 findings or drift, 2 bad input."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from dashgen.build import generate
from dashgen.config import Config, load_config
from dashgen.errors import DashgenError
from dashgen.report import render_human, to_json
from dashgen.verify import verify as run_verify
from dashgen.write import diff_tree, write_tree

app = typer.Typer(
    help="Keep Grafana dashboards and OpenTelemetry metric code from drifting apart.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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
ConfigDirOption = Annotated[
    Path,
    typer.Option(
        "--project", help="Where to look for pyproject.toml (and its parents).", show_default=False
    ),
]


@app.callback()
def main() -> None:
    """Generate Grafana dashboards from OTel metric declarations, and verify any dashboards
    against what the code really exports.

    Exit codes: 0 clean, 1 findings or out-of-date files, 2 bad input or usage.
    """


def _config(project: Path, **overrides: object) -> Config:
    return load_config(project, overrides)


def _fail(error: DashgenError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {error}", markup=True, soft_wrap=True)
    return typer.Exit(2)


@app.command()
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
    project: ConfigDirOption = Path("."),
) -> None:
    """Generate dashboard JSON and Grafana provisioning from the sources.

    Writes atomically: a failing build leaves the output dir exactly as it was.
    """
    try:
        config = _config(project, sources=sources, output=output, prometheus_url=prometheus_url)
        result = generate(config)
        drift = (
            diff_tree(config.output, result.files)
            if check
            else write_tree(config.output, result.files)
        )
    except DashgenError as error:
        raise _fail(error) from None
    shown = _display(config.output, config.root)
    if check:
        for item in drift:
            out.print(f"{item.kind}: {shown}/{item.path} {item.describe()}")
        if drift:
            out.print(f"{len(drift)} file(s) out of date: run `dashgen build`")
            raise typer.Exit(1)
        out.print(f"{shown}/ is up to date ({len(result.files)} files)")
        return
    dashboards = len(result.catalog.dashboards)
    families = len(result.catalog.metrics)
    if drift:
        out.print(
            f"wrote {shown}/: {dashboards} dashboards, {families} metric families, "
            f"{len(drift)} file(s) changed"
        )
    else:
        out.print(f"{shown}/ already up to date ({dashboards} dashboards, {families} families)")


def _display(path: Path, root: Path) -> str:
    """Paths as the project names them: relative to the pyproject.toml dir."""
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)


class OutputFormat(StrEnum):
    human = "human"
    json = "json"


@app.command()
def verify(
    dashboards: Annotated[
        Path | None,
        typer.Argument(
            help="Dir of dashboard JSON to check [default: the configured output dir].",
            show_default=False,
        ),
    ] = None,
    instruments: Annotated[
        str | None,
        typer.Option(
            "--instruments",
            help="module:function that creates plain OTel instruments; use instead of the "
            "dashgen sources, for code that knows nothing of dashgen.",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat, typer.Option("--format", help="human, or json (schema: docs/verify-json.md).")
    ] = OutputFormat.human,
    sources: SourcesOption = None,
    output: OutputOption = None,
    project: ConfigDirOption = Path("."),
) -> None:
    """Check dashboards against what the code really exports.

    Every metric and label a query uses must exist in code, every family in code must be on
    a dashboard, and (when checking the output dir) generated files must not be stale.
    Exit 0 clean, 1 findings, 2 bad input.
    """
    try:
        config = _config(project, sources=sources, output=output, instruments=instruments)
        result = run_verify(config, dashboards if dashboards is not None else config.output)
    except DashgenError as error:
        raise _fail(error) from None
    if output_format is OutputFormat.json:
        out.print(to_json(result), markup=False, highlight=False)
    else:
        render_human(result, out)
    if not result.ok:
        raise typer.Exit(1)
