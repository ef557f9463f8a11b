"""Test-suite health: a CI job reports its test results, coverage and wall time, and the
suite's shape and timing are recorded for the "Test suite health" dashboard."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from dashboards_src.ci_health import (
    BRANCH,
    COVERAGE,
    OUTCOME,
    PROJECT,
    SIZE,
    SIZE_DISTRIBUTION,
    SUITE_DURATION,
    TEST_DURATION,
    TIMING_VIOLATIONS,
)

#: Seconds a test of each size may take (the pytest-test-categories limits).
TIME_LIMITS = {"small": 1.0, "medium": 300.0, "large": 900.0, "xlarge": 1800.0}


@dataclass(frozen=True)
class CaseResult:
    """One test's outcome as the CI job saw it."""

    nodeid: str
    size: str
    outcome: str
    duration_s: float


@dataclass(frozen=True)
class RunSummary:
    violations: tuple[str, ...]
    """Node ids of the tests that exceeded the limit of their size."""
    size_shares: dict[str, float]


def report_run(
    project: str,
    branch: str,
    results: Sequence[CaseResult],
    coverage_percent: float,
    wall_time_s: float,
) -> RunSummary:
    """Record one CI run; refuses sizes without a time limit rather than mislabel them."""
    unknown = sorted({r.size for r in results} - TIME_LIMITS.keys())
    if unknown:
        raise ValueError(f"unknown test sizes {unknown}: use one of {sorted(TIME_LIMITS)}")
    violations = []
    for result in results:
        TEST_DURATION.record(
            result.duration_s, {SIZE: result.size, OUTCOME: result.outcome, PROJECT: project}
        )
        if result.duration_s > TIME_LIMITS[result.size]:
            violations.append(result.nodeid)
            TIMING_VIOLATIONS.add(1, {SIZE: result.size, PROJECT: project})
    counts = Counter(r.size for r in results)
    shares = {size: counts[size] / len(results) if results else 0.0 for size in TIME_LIMITS}
    for size, share in shares.items():
        SIZE_DISTRIBUTION.set(share, {SIZE: size, PROJECT: project, BRANCH: branch})
    COVERAGE.set(coverage_percent, {PROJECT: project, BRANCH: branch})
    SUITE_DURATION.record(wall_time_s, {PROJECT: project, BRANCH: branch})
    return RunSummary(tuple(violations), shares)
