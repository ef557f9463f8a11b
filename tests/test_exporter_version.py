"""`dashgen verify --exporter-version`: what an upgrade (or downgrade) of the pull exporter
would rename, from dashgen's own export stage run in a venv of that version.

opentelemetry-exporter-prometheus 0.44b0 wrote units as given (`_s`, `_{violation}`); from
0.46b0 on, UCUM units are translated (`_seconds`) and annotations dropped. The installed
exporter names the example's families the new way.
"""

from __future__ import annotations

import json
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Project

OLD = "0.44b0"


@pytest.fixture(scope="session")
def exporters(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One home for the exporter venvs of every test: each version installs once."""
    return tmp_path_factory.mktemp("exporters")


def check(project: Project, exporters: Path, version: str) -> tuple[int, dict[str, Any]]:
    home = project.root / ".dashgen" / "exporters"
    home.parent.mkdir(exist_ok=True)
    if not home.exists():
        home.symlink_to(exporters)
    result = project.run("verify", "--exporter-version", version, "--format", "json")
    assert result.stdout, result.stderr
    return result.exit_code, json.loads(result.stdout)


def test_an_older_exporter_renames_what_the_dashboards_query(
    example: Project, exporters: Path
) -> None:
    code, report = check(example, exporters, OLD)
    assert code == 1
    findings = report["findings"]
    assert {f["kind"] for f in findings} == {"renamed-by-exporter"}
    messages = {f["message"] for f in findings}
    assert (
        "`pytest_test_duration_seconds_count` is `pytest_test_duration_s_count` with "
        f"opentelemetry-exporter-prometheus {OLD}"
    ) in messages
    assert (
        "`pytest_timing_violations_total` is `pytest_timing_violations_{violation}_total` with "
        f"opentelemetry-exporter-prometheus {OLD}"
    ) in messages
    # The generated rules read the same names, so they break the same way.
    assert any(f["place"] == "alert rule" for f in findings)
    assert all(f["file"].startswith("generated/") for f in findings)


def test_only_the_queries_of_renamed_names_are_reported(project: Project, exporters: Path) -> None:
    project.source(
        "m.py",
        """
        from dashgen import Counter, Dashboard, Histogram, Row
        PLAIN = Counter("jobs.done")
        LATENCY = Histogram("job.latency", unit="s")
        D = Dashboard("Jobs", rows=[Row("r", [PLAIN, LATENCY])])
        """,
    )
    assert project.run("build").exit_code == 0
    code, report = check(project, exporters, OLD)
    assert code == 1
    assert {(f["panel"], f["subject"]) for f in report["findings"]} == {
        ("Job latency p50/p90/p99", "job_latency_seconds_bucket")
    }


def test_the_installed_version_renames_nothing(example: Project, exporters: Path) -> None:
    installed = metadata.version("opentelemetry-exporter-prometheus")
    code, report = check(example, exporters, installed)
    assert code == 0, report["findings"]


@pytest.mark.parametrize(
    ("version", "message"),
    [
        ("latest", "--exporter-version: 'latest' is no version, such as 0.59b0"),
        ("0.0.0", "opentelemetry-exporter-prometheus==0.0.0: cannot install it: "),
    ],
)
def test_a_version_that_is_not_one_is_one_line(
    example: Project, exporters: Path, version: str, message: str
) -> None:
    home = example.root / ".dashgen" / "exporters"
    home.parent.mkdir(exist_ok=True)
    home.symlink_to(exporters)
    result = example.run("verify", "--exporter-version", version)
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"error: {message}")


def test_otlp_paths_are_named_by_the_server_not_the_sdk(example: Project) -> None:
    text = (example.root / "pyproject.toml").read_text()
    (example.root / "pyproject.toml").write_text(
        text.replace('output = "generated"', 'output = "generated"\npipeline = "otlp"')
    )
    result = example.run("verify", "--exporter-version", OLD)
    assert result.exit_code == 2
    assert "on OTLP paths the server names the metrics" in result.stderr
