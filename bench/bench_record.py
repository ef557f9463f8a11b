"""Benchmark recording mode: one test suite, with and without `--dashgen-record`, in one run.

    python bench/bench_record.py [--measurements 100000] [--tests 500] [--repeat 5]

The suite is an app that records through dashgen declarations (counter, histogram, up-down
counter, gauge) and a plain OTel counter, with three attributes per measurement, plus an
observable gauge; ``--tests`` tests share ``--measurements`` measurements. Without recording
mode its instruments are the OTel API's no-ops, the cheapest an app's tests can be, and the
tests do nothing but record: the worst case for the overhead. The two variants alternate,
fresh processes each, and each figure is the best of ``--repeat``. CPU counts pytest and its
children: with recording, the helper that loads the export pipeline in parallel, so wall
time only pays for it when no CPU is free.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

METRICS = """\
from dashgen import Counter, Gauge, Histogram, ObservableGauge, UpDownCounter

REQUESTS = Counter("bench.requests", labels=["route", "method", "status"])
LATENCY = Histogram("bench.latency", unit="s", labels=["route", "method", "status"])
ACTIVE = UpDownCounter("bench.active", labels=["route", "method", "status"])
SIZE = Gauge("bench.size", unit="By", labels=["route", "method", "status"])
QUEUE = ObservableGauge("bench.queue", labels=["route"])
"""

APP = """\
from opentelemetry import metrics
from opentelemetry.metrics import Observation

from app.metrics import ACTIVE, LATENCY, QUEUE, REQUESTS, SIZE

PLAIN = metrics.get_meter("bench.plain").create_counter("bench.plain.requests")
ROUTES = ("/a", "/b", "/c", "/d")
QUEUE.observe(lambda options: [Observation(1, {"route": r}) for r in ROUTES])


def handle(i):
    attributes = {"route": ROUTES[i % 4], "method": "GET", "status": 200 + i % 3}
    ACTIVE.add(1, attributes)
    REQUESTS.add(1, attributes)
    LATENCY.record(0.001 * (i % 50), attributes)
    SIZE.set(i, attributes)
    PLAIN.add(1, attributes)
"""

TESTS = """\
import pytest

from app.metrics import QUEUE
from app.service import handle

QUEUE.start()


@pytest.mark.parametrize("case", range({tests}))
def test_handle(case):
    for i in range({calls}):
        handle(case * {calls} + i)
"""
PER_CALL = 5


def write_suite(root: Path, measurements: int, tests: int) -> None:
    calls = measurements // (tests * PER_CALL)
    (root / "app").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "pyproject.toml").write_text('[tool.dashgen]\nsources = "app"\n')
    (root / "app/__init__.py").write_text("")
    (root / "app/metrics.py").write_text(METRICS)
    (root / "app/service.py").write_text(APP)
    (root / "tests/test_service.py").write_text(TESTS.format(tests=tests, calls=calls))


def timed(root: Path, *extra: str) -> tuple[float, float]:
    """Wall seconds, and CPU seconds of pytest and its children (the helper included)."""
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *extra]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(command, cwd=root, check=True, capture_output=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", type=int, default=100_000)
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_suite(root, options.measurements, options.tests)
        plain: list[tuple[float, float]] = []
        recording: list[tuple[float, float]] = []
        for _ in range(options.repeat):
            plain.append(timed(root))
            recording.append(timed(root, "--dashgen-record"))
        document = json.loads((root / ".dashgen/recorded.json").read_text())
    counted = {i["name"]: i["measurements"] for i in document["instruments"]}
    synchronous = sum(n for name, n in counted.items() if name != "bench.queue")
    (without, without_cpu), (with_, with_cpu) = min(plain), min(recording)
    print(
        f"suite: {options.tests} tests, {synchronous} measurements recorded "
        f"(+{counted['bench.queue']} observations), {len(counted)} instruments; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
    )
    print(f"pytest:                    {without:.3f} s wall, {without_cpu:.3f} s CPU")
    print(
        f"pytest --dashgen-record:   {with_:.3f} s wall, {with_cpu:.3f} s CPU: "
        f"{with_ / without - 1:+.1%} wall time ({with_ - without:+.3f} s; target <= +10%)"
    )


if __name__ == "__main__":
    main()
