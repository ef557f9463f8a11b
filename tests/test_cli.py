"""The CLI's own manners: version, help, what build says it did, warnings and formats."""

from __future__ import annotations

import json
from importlib.metadata import version

from typer.testing import CliRunner

from dashgen.cli import app
from dashgen.hints import Kind
from dashgen.record.coverage import CodeInstrument, measure, render_table, to_json
from dashgen.record.recording import ExportedInstrument, RecordedFamily, RecordedInstrument
from tests.conftest import Project

SOURCE = """
from dashgen import Counter, Dashboard, Row

REQUESTS = Counter("app.requests")
BOARD = Dashboard("App", rows=[Row("Traffic", [REQUESTS])])
"""


def test_version_and_help() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert (result.exit_code, result.stdout) == (0, f"dashgen {version('dashgen')}\n")
    listing = CliRunner().invoke(app, ["--help"]).stdout
    for line in ("--version", "build ", "verify ", "coverage "):
        assert line in listing
    commands = listing.split("Commands:")[1].splitlines()
    assert not [line for line in commands if line.rstrip().endswith("...")]  # none cut off


def test_build_says_what_it_added_updated_and_removed(project: Project) -> None:
    project.source("app.py", SOURCE)
    first = project.run("build").stdout.splitlines()
    assert "  added generated/app.json" in first
    project.source("app.py", SOURCE.replace('"App"', '"App v2"').replace("BOARD", "OTHER"))
    second = project.run("build").stdout.splitlines()
    assert second[1:] == [
        "  added generated/app-v2.json",
        "  removed generated/app.json",
        "  updated generated/dashgen.lock",
    ]


def test_a_missing_tool_dashgen_table_is_warned_about(project: Project) -> None:
    project.write("pyproject.toml", '[project]\nname = "app"\n')
    project.write("dashboards_src/app.py", SOURCE)
    result = project.run("build")
    assert result.exit_code == 0
    assert result.stderr.startswith("warning: no [tool.dashgen] in ")
    assert "using the defaults (sources dashboards_src, output generated, datasource " in (
        result.stderr
    )
    project.write("pyproject.toml", '[tool.dashgen]\nsources = "dashboards_src"\n')
    assert project.run("build").stderr == ""


def exported(name: str, production: int, measurements: int) -> ExportedInstrument:
    instrument = RecordedInstrument(
        name=name,
        kind=Kind.COUNTER,
        unit="",
        scope="app",
        site="app.py:1",
        measurements=measurements,
        attribute_keys=("a.very.long.attribute.key", "another.long.attribute.key"),
        production=production,
    )
    family = name.replace(".", "_")
    return ExportedInstrument(
        instrument, RecordedFamily(family, "counter", (f"{family}_total",), None)
    )


def test_coverage_as_json_and_as_a_table_that_fits_the_terminal() -> None:
    code = [CodeInstrument("app.jobs", Kind.COUNTER, "", "app.py:1", ("app_jobs_total",), None)]
    report = measure(code, [exported("app.jobs", 0, 3)], [], {})
    document = json.loads(to_json(report))
    assert document["summary"] == {
        "dead": 0,
        "excluded": 0,
        "percent": 0.0,
        "recorded": 0,
        "test-only": 1,
    }
    (row,) = document["instruments"]
    assert (row["name"], row["status"], row["production"], row["measurements"]) == (
        "app.jobs",
        "test-only",
        0,
        3,
    )
    wide = render_table(report)
    narrow = render_table(report, 80)
    assert max(map(len, wide.splitlines())) > 80
    assert max(map(len, narrow.splitlines())) <= 80
    assert "a.very.long.attribute.key, another…" not in wide and "…" in narrow
