"""The CLI's own manners: version, help, what build says it did, warnings and formats."""

from __future__ import annotations

import json
from importlib.metadata import version

from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from junitparser import JUnitXml
from typer.testing import CliRunner

from dashgen.cli import app
from dashgen.hints import Kind
from dashgen.record.coverage import CodeInstrument, measure, render_table, to_json
from dashgen.record.recording import ExportedInstrument, RecordedFamily, RecordedInstrument
from tests.conftest import REPO, Project

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


def test_verify_annotates_each_finding_for_github_and_as_junit(example: Project) -> None:
    path = example.generated / "http-api.json"
    text = path.read_text()
    path.write_text(text.replace("http_server_requests_total{", "http_server_request_total{"))
    result = example.run("verify", "--format", "github")
    assert result.exit_code == 1
    commands = result.stdout.splitlines()
    assert all(line.startswith("::error ") for line in commands)
    lines = path.read_text().splitlines()
    unknown = [c for c in commands if "title=dashgen unknown-metric" in c]
    assert len(unknown) == 3  # the three panels on http_server_requests_total
    for command in unknown:
        properties = dict(
            p.split("=", 1) for p in command.split(" ", 1)[1].split("::")[0].split(",")
        )
        assert properties["file"] == "generated/http-api.json"
        panel = command.split("::", 2)[2].split(": ")[0].removeprefix("panel ")
        assert f'"title": "{panel}"' in lines[int(properties["line"]) - 1]
    assert any("title=dashgen stale-file" in c for c in commands)

    junit = example.run("verify", "--format", "junit")
    assert junit.exit_code == 1
    report = example.root / "report.xml"
    report.write_text(junit.stdout)
    suite = next(iter(JUnitXml.fromfile(str(report))))
    cases = {case.name: case for case in suite}
    assert (suite.tests, suite.failures) == (4, 4)
    assert set(cases) == {
        "the file",
        "Requests in range",
        "Requests per second by route",
        "Requests per second by status",
    }
    (failure,) = cases["Requests per second by route"].result
    assert failure.type == "unknown-metric"
    assert "did you mean `http_server_requests_total`?" in failure.text


def test_a_clean_verify_is_one_passing_junit_case(example: Project) -> None:
    result = example.run("verify", "--format", "junit")
    assert result.exit_code == 0
    report = example.root / "report.xml"
    report.write_text(result.stdout)
    suite = next(iter(JUnitXml.fromfile(str(report))))
    assert (suite.tests, suite.failures, [case.name for case in suite]) == (
        1,
        0,
        ["dashboard contract"],
    )
    assert example.run("verify", "--format", "github").stdout == ""


SARIF_SCHEMA = REPO / "tests" / "data" / "sarif-2.1.0.schema.json"
"""The SARIF 2.1.0 JSON Schema as Microsoft's SARIF SDK ships it
(``scripts/fetch_sarif_schema.sh`` re-makes it)."""


def sarif_problems(log: object) -> list[str]:
    """Every way ``log`` breaks the SARIF 2.1.0 JSON Schema."""
    schema = json.loads(SARIF_SCHEMA.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    validator = Draft202012Validator(schema)
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(log)]


def test_verify_writes_sarif_that_its_json_schema_accepts(example: Project) -> None:
    path = example.generated / "http-api.json"
    path.write_text(
        path.read_text().replace("http_server_requests_total{", "http_server_request_total{")
    )
    result = example.run("verify", "--format", "sarif")
    assert result.exit_code == 1
    assert sarif_problems(json.loads(result.stdout)) == []
    (run,) = json.loads(result.stdout)["runs"]
    rules = [rule["id"] for rule in run["tool"]["driver"]["rules"]]
    unknown = [r for r in run["results"] if r["ruleId"] == "unknown-metric"]
    assert len(unknown) == 3
    lines = path.read_text().splitlines()
    for found in unknown:
        assert rules[found["ruleIndex"]] == "unknown-metric"
        (location,) = found["locations"]
        physical = location["physicalLocation"]
        assert physical["artifactLocation"]["uri"] == "generated/http-api.json"
        panel = found["message"]["text"].split(": ")[0].removeprefix("panel ")
        assert f'"title": "{panel}"' in lines[physical["region"]["startLine"] - 1]
    assert example.run("build").exit_code == 0  # puts the generated query back
    clean = example.run("verify", "--format", "sarif")
    assert clean.exit_code == 0
    assert json.loads(clean.stdout)["runs"][0]["results"] == []
    assert sarif_problems(json.loads(clean.stdout)) == []


def test_the_sarif_check_catches_an_invalid_log() -> None:
    """The schema check is not a rubber stamp: a level SARIF does not have, a run without
    its tool's driver."""
    bad = {"version": "2.1.0", "runs": [{"tool": {}, "results": [{"level": "fatal"}]}]}
    problems = sarif_problems(bad)
    assert any("'driver' is a required property" in p for p in problems)
    assert any("'fatal' is not one of" in p for p in problems)
