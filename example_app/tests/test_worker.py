"""The worker pool's behaviour: runs, retries and failures."""

from __future__ import annotations

import pytest

from example_app.worker import Job, TransientError, WorkerPool


@pytest.fixture
def pool() -> WorkerPool:
    return WorkerPool(max_attempts=3)


def test_jobs_run_in_order_and_are_counted(pool: WorkerPool) -> None:
    ran: list[str] = []
    pool.submit("default", Job("email", lambda: ran.append("a")))
    pool.submit("default", Job("email", lambda: ran.append("b")))
    pool.submit("bulk", Job("export", lambda: None))
    assert pool.run_next("default")
    assert ran == ["a"]
    assert pool.run_next("default")
    assert not pool.run_next("default")
    assert ran == ["a", "b"]
    assert pool.done == {"email": 2}
    assert len(pool.queues["bulk"]) == 1


def test_transient_errors_are_retried(pool: WorkerPool) -> None:
    attempts: list[int] = []

    def flaky() -> None:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientError("timeout")

    pool.submit("default", Job("sync", flaky))
    pool.run_next("default")
    assert len(attempts) == 3
    assert pool.done == {"sync": 1}
    assert pool.failed == []


def test_failures_keep_their_reason(pool: WorkerPool) -> None:
    def always_times_out() -> None:
        raise TransientError("timeout")

    broken = Job("report", lambda: 1 / 0)
    pool.submit("default", broken)
    pool.submit("default", Job("sync", always_times_out))
    pool.run_next("default")
    pool.run_next("default")
    assert [reason for _, reason in pool.failed] == ["ZeroDivisionError", "retries exhausted"]
    assert pool.failed[0][0] is broken
    assert not pool.done
