"""Test-suite health: test durations, timing violations, size distribution, CI duration.

The dashboard and the alert rules described in the pytest-test-categories monitoring
guide, code-first: two alerts sit on the panels they watch, three are free queries.
"""

from dashgen import (
    Alert,
    AlertRule,
    Counter,
    Dashboard,
    Gauge,
    Histogram,
    RecordingRule,
    Row,
    RuleGroup,
    expr,
    hints,
)

SIZE = "test.size"
SIZES = ["small", "medium", "large", "xlarge"]
OUTCOME = "test.outcome"
PROJECT = "project"
BRANCH = "branch"

TEST_DURATION = Histogram(
    "pytest.test.duration",
    unit="s",
    description="Duration of one test, by size (small/medium/large/xlarge) and outcome.",
    labels=[SIZE, OUTCOME, PROJECT],
    buckets=[0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
    hint=[
        hints.Quantiles(title="Test duration by size", by=(SIZE,), quantiles=(0.5, 0.99)),
        hints.Heatmap(title="Test duration distribution"),
        hints.Rate(title="Tests per second by outcome", by=(OUTCOME,)),
    ],
)

TIMING_VIOLATIONS = Counter(
    "pytest.timing.violations",
    unit="{violation}",
    description="Tests that exceeded the time limit of their size.",
    labels=[SIZE, PROJECT],
    hint=[
        hints.Increase(
            title="Timing violations in range", by=(SIZE,), thresholds=((1, "orange"), (10, "red"))
        ),
        hints.Rate(title="Timing violations per second", by=(SIZE,)),
    ],
)

SIZE_DISTRIBUTION = Gauge(
    "pytest.test.size.distribution",
    unit="1",
    description="Share of the suite's tests in each size class.",
    labels=[SIZE, PROJECT, BRANCH],
    values={SIZE: SIZES},
    hint=hints.Current(
        title="Test size distribution", style="bargauge", by=(SIZE,), agg="max", unit="percentunit"
    ),
)

ENGINEERING = {"team": "engineering"}

COVERAGE_BELOW_TARGET = Alert(
    "CoverageBelowTarget",
    below=100,
    for_="5m",
    severity="critical",
    labels=ENGINEERING,
    summary="Test coverage below target",
    description="Coverage is {{ $value }}%, target is 100%",
)

CI_SUITE_SLOW = Alert(
    "CITestSuiteSlow",
    for_="1h",
    labels=ENGINEERING,
    summary="CI test suite slow on {{ $labels.branch }}",
    description="Mean test suite duration: {{ $value | humanize }}s",
)

COVERAGE = Gauge(
    "pytest.coverage",
    unit="%",
    description="Line coverage of the last run.",
    labels=[PROJECT, BRANCH],
    hint=hints.Current(
        title="Coverage",
        style="stat",
        agg="min",
        thresholds=((90, "orange"), (100, "green")),
        width=6,
        alert=COVERAGE_BELOW_TARGET,
    ),
)

SUITE_DURATION = Histogram(
    "ci.test_suite.duration",
    unit="s",
    description="Wall time of the whole CI test job.",
    labels=[PROJECT, BRANCH],
    buckets=[30, 60, 120, 300, 600, 900, 1800],
    hint=[
        hints.Average(
            title="Mean CI suite duration",
            by=(BRANCH,),
            thresholds=((300, "red"),),
            alert=CI_SUITE_SLOW,
        ),
        hints.Quantiles(title="CI suite duration p90", quantiles=(0.9,)),
    ],
)

DASHBOARD = Dashboard(
    "Test suite health",
    uid="test-suite-health",
    description="Test pyramid, timing and CI performance of the test suite.",
    tags=["example", "ci"],
    rows=[
        Row("Distribution", [SIZE_DISTRIBUTION, COVERAGE]),
        Row("Timing", [TEST_DURATION, TIMING_VIOLATIONS]),
        Row("CI pipeline", [SUITE_DURATION], collapsed=True),
    ],
)

TEST_QUALITY = RuleGroup(
    "test_quality",
    [
        AlertRule(
            "TestPyramidDegraded",
            expr.current(SIZE_DISTRIBUTION, where={SIZE: "small"}, by=(PROJECT,), agg="min"),
            below=0.5,
            for_="1h",
            severity="critical",
            labels=ENGINEERING,
            summary="Test pyramid degraded for {{ $labels.project }}",
            description="Small test percentage is {{ $value | humanizePercentage }}, "
            "should be >80%",
            runbook="https://github.com/mikelane/pytest-test-categories/wiki/TestPyramidRunbook",
        ),
        AlertRule(
            "TooManyLargeTests",
            expr.current(
                SIZE_DISTRIBUTION, where={SIZE: "large|xlarge"}, by=(PROJECT, BRANCH), agg="sum"
            ),
            above=0.1,
            for_="2h",
            labels=ENGINEERING,
            summary="Excessive large tests in {{ $labels.project }}",
            description="Large/XLarge tests are {{ $value | humanizePercentage }}, should be <8%",
        ),
        AlertRule(
            "FrequentTimingViolations",
            expr.rate(TIMING_VIOLATIONS, by=(SIZE, PROJECT), window="1h"),
            above=0.1,
            for_="30m",
            labels=ENGINEERING,
            summary="Frequent timing violations in {{ $labels.project }}",
            description="{{ $value }} violations per second in {{ $labels.test_size }} tests",
        ),
        CI_SUITE_SLOW,
        COVERAGE_BELOW_TARGET,
        RecordingRule(expr.rate(TIMING_VIOLATIONS, by=(SIZE,), window="5m")),
    ],
    interval="5m",
)
