"""Test-suite health: test durations, timing violations, size distribution, CI duration.

The dashboard described in the pytest-test-categories monitoring guide, code-first.
"""

from dashgen import Counter, Dashboard, Gauge, Histogram, Row, hints

SIZE = "test.size"
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
    hint=hints.Current(
        title="Test size distribution", style="bargauge", by=(SIZE,), agg="max", unit="percentunit"
    ),
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
    ),
)

SUITE_DURATION = Histogram(
    "ci.test_suite.duration",
    unit="s",
    description="Wall time of the whole CI test job.",
    labels=[PROJECT, BRANCH],
    buckets=[30, 60, 120, 300, 600, 900, 1800],
    hint=[
        hints.Average(title="Mean CI suite duration", by=(BRANCH,), thresholds=((300, "red"),)),
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
