"""A background job worker: queues, a pool that runs jobs with retries, and the three
observables a worker exposes (backlog, busy workers, jobs done), read at collection time."""

from __future__ import annotations

import functools
import time
import weakref
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from opentelemetry.metrics import CallbackOptions, Observation

from dashboards_src.worker import (
    BUSY_WORKERS,
    JOB_DURATION,
    JOB_TYPE,
    JOBS_PROCESSED,
    QUEUE,
    QUEUE_DEPTH,
    WorkerMetrics,
)

#: Every live pool, for the observables to read; a pool that is gone reports nothing.
_POOLS: weakref.WeakSet[WorkerPool] = weakref.WeakSet()


class TransientError(Exception):
    """A failure worth another attempt (a timeout, a lost connection)."""


@dataclass(frozen=True)
class Job:
    type: str
    run: Callable[[], object]


class WorkerPool:
    """Runs jobs from named queues; transient errors are retried up to ``max_attempts``."""

    def __init__(self, max_attempts: int = 3) -> None:
        self.max_attempts = max_attempts
        self.queues: defaultdict[str, deque[Job]] = defaultdict(deque)
        self.busy = 0
        self.done: Counter[str] = Counter()
        self.failed: list[tuple[Job, str]] = []
        self.metrics = WorkerMetrics()
        start_metrics()
        _POOLS.add(self)

    def submit(self, queue: str, job: Job) -> None:
        self.queues[queue].append(job)

    def run_next(self, queue: str) -> bool:
        """Run the oldest job of ``queue``; False when the queue is empty."""
        if not self.queues[queue]:
            return False
        job = self.queues[queue].popleft()
        self.busy += 1
        try:
            self._run(job)
        finally:
            self.busy -= 1
        return True

    def _run(self, job: Job) -> None:
        attributes = {JOB_TYPE: job.type}
        for attempt in range(1, self.max_attempts + 1):
            started = time.perf_counter()
            try:
                job.run()
            except TransientError:
                if attempt < self.max_attempts:
                    self.metrics.retried(job.type)
                    continue
                self._fail(job, "retries exhausted")
            except Exception as error:
                self._fail(job, type(error).__name__)
            else:
                self.done[job.type] += 1
            finally:
                JOB_DURATION.record(time.perf_counter() - started, attributes)
            return

    def _fail(self, job: Job, reason: str) -> None:
        self.failed.append((job, reason))
        self.metrics.failed(job.type, reason)


@QUEUE_DEPTH.observe
def _backlog(_: CallbackOptions) -> Iterator[Observation]:
    depth: Counter[str] = Counter()
    for pool in list(_POOLS):
        for queue, jobs in pool.queues.items():
            depth[queue] += len(jobs)
    for queue, count in sorted(depth.items()):
        yield Observation(count, {QUEUE: queue})


@BUSY_WORKERS.observe
def _busy(_: CallbackOptions) -> Iterator[Observation]:
    pools = list(_POOLS)
    if pools:
        yield Observation(sum(pool.busy for pool in pools))


@JOBS_PROCESSED.observe
def _processed(_: CallbackOptions) -> Iterator[Observation]:
    done: Counter[str] = Counter()
    for pool in list(_POOLS):
        done.update(pool.done)
    for job_type, count in sorted(done.items()):
        yield Observation(count, {JOB_TYPE: job_type})


@functools.cache
def start_metrics() -> None:
    """Create the observables once per process, so that every collection reads them."""
    for observable in (QUEUE_DEPTH, BUSY_WORKERS, JOBS_PROCESSED):
        observable.start()
