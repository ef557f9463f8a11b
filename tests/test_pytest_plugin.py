"""The pytest plugin, run the way a user runs it: pytest in their project, in a subprocess."""

from __future__ import annotations

import shutil

import pytest

from tests.conftest import REPO

pytest_plugins = ["pytester"]

USER_TEST = """
import pytest

@pytest.mark.grafana_contract
def test_my_own_contract_check(exported_families, dashboard_queries, rule_queries):
    names = {family.name for family in exported_families}
    assert "http_server_requests" in names
    assert sorted(d.file for d in dashboard_queries) == [
        "generated/http-api.json", "generated/job-worker.json", "generated/test-suite-health.json"
    ]
    assert [(g.file, len(g.targets)) for g in rule_queries] == [
        ("generated/rules/test_quality.yaml", 6)
    ]
"""


@pytest.fixture
def user_project(pytester: pytest.Pytester) -> pytest.Pytester:
    shutil.copytree(REPO / "dashboards_src", pytester.path / "dashboards_src")
    shutil.copytree(REPO / "generated", pytester.path / "generated")
    pytester.makepyprojecttoml(
        """
        [tool.dashgen]
        sources = "dashboards_src"
        output = "generated"

        [tool.pytest.ini_options]
        dashgen_contract = true
        """
    )
    pytester.makepyfile(test_user=USER_TEST)
    return pytester


def test_contract_passes_on_the_example(user_project: pytest.Pytester) -> None:
    result = user_project.runpytest_subprocess("-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*dashgen_contract PASSED*"])


def test_contract_fails_with_findings_after_a_rename(user_project: pytest.Pytester) -> None:
    source = user_project.path / "dashboards_src/worker.py"
    source.write_text(source.read_text().replace('"worker.job.retries"', '"worker.job.retry"'))
    result = user_project.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*2 dashboard contract finding(s):*",
            "*unknown-metric worker_job_retries_total (generated/job-worker.json"
            " / Retries per second by type / A)*",
            "*fix: did you mean `worker_job_retry_total`*",
        ]
    )


def test_marker_selects_and_deselects_the_contract(user_project: pytest.Pytester) -> None:
    user_project.runpytest_subprocess("-m", "grafana_contract").assert_outcomes(passed=2)
    user_project.runpytest_subprocess("-m", "not grafana_contract").assert_outcomes(deselected=2)


def test_contract_is_off_unless_configured(user_project: pytest.Pytester) -> None:
    user_project.makepyprojecttoml(
        '[tool.dashgen]\nsources = "dashboards_src"\noutput = "generated"\n'
    )
    user_project.runpytest_subprocess().assert_outcomes(passed=1)
