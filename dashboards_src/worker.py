"""A background job worker: backlog, throughput, duration, retries and failures."""

from dashgen import (
    Counter,
    Dashboard,
    Histogram,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    Panel,
    Row,
    expr,
    hints,
)

QUEUE = "queue"
JOB_TYPE = "job.type"
REASON = "failure.reason"

QUEUE_DEPTH = ObservableGauge(
    "worker.queue.depth",
    unit="{job}",
    description="Jobs waiting in each queue, read from the broker at collection time.",
    labels=[QUEUE],
    hint=[
        hints.Current(title="Backlog by queue", style="bargauge", by=(QUEUE,), agg="max", width=9),
        hints.Current(title="Backlog over time", by=(QUEUE,), agg="max", width=9),
    ],
)

BUSY_WORKERS = ObservableUpDownCounter(
    "worker.busy",
    unit="{worker}",
    description="Worker processes currently running a job.",
    hint=hints.Current(
        title="Busy workers", style="gauge", thresholds=((6, "orange"), (8, "red")), width=6
    ),
)

JOBS_PROCESSED = ObservableCounter(
    "worker.jobs.processed",
    unit="{job}",
    description="Jobs finished, as counted by the worker pool.",
    labels=[JOB_TYPE],
    hint=hints.Rate(title="Jobs per second by type", by=(JOB_TYPE,)),
)

JOB_DURATION = Histogram(
    "worker.job.duration",
    unit="s",
    description="Wall time of one job run, retries excluded.",
    labels=[JOB_TYPE],
    buckets=[0.1, 0.5, 1, 5, 10, 30, 60, 300],
    hint=[
        hints.Quantiles(title="Job duration by type", by=(JOB_TYPE,), quantiles=(0.5, 0.95)),
        hints.Heatmap(title="Job duration distribution"),
    ],
)

RETRIES = Counter(
    "worker.job.retries",
    unit="{retry}",
    description="Job runs that were retried.",
    labels=[JOB_TYPE],
    hint=hints.Rate(title="Retries per second by type", by=(JOB_TYPE,)),
)

FAILURES = Counter(
    "worker.job.failures",
    unit="{job}",
    description="Jobs that failed for good, by reason.",
    labels=[JOB_TYPE, REASON],
    hint=[
        hints.Rate(title="Failures per second by reason", by=(REASON,)),
        hints.Increase(title="Failures in range", by=(REASON,)),
    ],
)

CANCELLED = Counter(
    "worker.jobs.cancelled",
    unit="{job}",
    description="Jobs cancelled before they ran.",
    labels=[JOB_TYPE],
    hint=hints.Increase(title="Cancelled in range", by=(JOB_TYPE,)),
)


#: Custom panels: queries over the declarations above, by object, which the build renders
#: with the names the export path gives them (and verify checks like any other query).
FAILURE_RATIO = Panel(
    "Failed share of job runs",
    expr.ratio(expr.rate(FAILURES), expr.rate(JOB_DURATION)),
    description="Jobs that failed for good, per job run.",
    unit="percentunit",
    thresholds=((0.01, "orange"), (0.05, "red")),
)
FAILURE_BUDGET_BURN = Panel(
    "Failure budget burn (99% of runs succeed)",
    expr.slo_burn(
        expr.rate(FAILURES, window="1h"), expr.rate(JOB_DURATION, window="1h"), objective=0.99
    ),
    description="How fast failures spend the error budget: 1 spends it exactly over the period.",
    thresholds=((1, "orange"), (14.4, "red")),
    style="stat",
)


class WorkerMetrics:
    """The worker's recordings behind methods, as many codebases keep them (a
    ``BaseMetrics`` class beside the instruments). dashgen's recording mode counts a
    measurement made through these methods for whoever called the method: the pool is
    production, a unit test calling a method directly is not."""

    def retried(self, job_type: str) -> None:
        RETRIES.add(1, {JOB_TYPE: job_type})

    def failed(self, job_type: str, reason: str) -> None:
        FAILURES.add(1, {JOB_TYPE: job_type, REASON: reason})

    def cancelled(self, job_type: str) -> None:
        """No production code cancels jobs yet: only the metrics class's own test records
        this, which ``dashgen coverage`` reports as test-only (the nox session checks it)."""
        CANCELLED.add(1, {JOB_TYPE: job_type})


DASHBOARD = Dashboard(
    "Job worker",
    uid="job-worker",
    description="Backlog, throughput and failures of the background job worker.",
    tags=["example", "worker"],
    filters=[QUEUE],
    rows=[
        Row("Backlog", [QUEUE_DEPTH, BUSY_WORKERS]),
        Row("Throughput", [JOBS_PROCESSED, JOB_DURATION]),
        Row("Errors", [RETRIES, FAILURES, CANCELLED, FAILURE_RATIO, FAILURE_BUDGET_BURN]),
    ],
)
