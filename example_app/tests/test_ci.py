"""CI run reporting: time-limit violations, size shares, refusal of unknown sizes."""

from __future__ import annotations

import pytest

from example_app.ci import CaseResult, report_run

RESULTS = [
    CaseResult("t::fast", "small", "passed", 0.2),
    CaseResult("t::slow", "small", "failed", 1.5),
    CaseResult("t::db", "medium", "passed", 12.0),
    CaseResult("t::e2e", "large", "passed", 120.0),
]


def test_a_run_reports_violations_and_shares() -> None:
    summary = report_run("shop", "main", RESULTS, coverage_percent=91.5, wall_time_s=240.0)
    assert summary.violations == ("t::slow",)
    assert summary.size_shares == {"small": 0.5, "medium": 0.25, "large": 0.25, "xlarge": 0.0}


def test_unknown_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="huge"):
        report_run("shop", "main", [CaseResult("t::x", "huge", "passed", 1.0)], 90.0, 10.0)
