"""The worker's metrics class, tested on its own: the kind of unit test that records an
instrument no production code records, and so would hide a dead panel from a coverage
that counted every measurement."""

from __future__ import annotations

from dashboards_src.worker import WorkerMetrics


def test_the_metrics_class_records_without_error() -> None:
    metrics = WorkerMetrics()
    metrics.retried("email")
    metrics.failed("email", "retries exhausted")
    metrics.cancelled("email")
