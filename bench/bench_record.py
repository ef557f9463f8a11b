"""Benchmark recording mode: one test suite, with and without `--dashgen-record`, in one run.

    python bench/bench_record.py [--measurements 100000] [--tests 500] [--rounds 7]

The suite is an app that records through dashgen declarations (counter, histogram, up-down
counter, gauge) and a plain OTel counter, with three attributes per measurement, plus an
observable gauge; ``--tests`` tests share ``--measurements`` measurements. Without recording
mode its instruments are the OTel API's no-ops, the cheapest an app's tests can be, and the
tests do nothing but record: the worst case for the overhead.

Baseline: plain ``pytest`` with plugin autoloading off (no dashgen, hypothesis or xdist
plugin loaded, as in a lean app venv); the measured run is the same lean pytest with only
dashgen's plugin loaded (``-p dashgen.pytest_plugin --dashgen-record``). The two alternate
round-robin in fresh processes (``measure.py``); ratios are medians of per-round ratios. CPU
counts pytest and its children. Targets: at most +10% wall and +20% CPU. What is measured
is the installed tally: the C one wherever the install had a compiler (the fallback in
Python is about +25%).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from measure import LEAN, Command, alternate, load_note, median_ratio, median_wall

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measurements", type=int, default=100_000)
    parser.add_argument("--tests", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=7)
    options = parser.parse_args()
    pytest = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_suite(root, options.measurements, options.tests)
        runs = alternate(
            {
                "plain": Command(pytest, env=LEAN, cwd=root),
                "recording": Command(
                    [*pytest, "-p", "dashgen.pytest_plugin", "--dashgen-record"],
                    env=LEAN,
                    cwd=root,
                ),
            },
            options.rounds,
        )
        document = json.loads((root / ".dashgen/recorded.json").read_text())
    counted = {i["name"]: i["measurements"] for i in document["instruments"]}
    synchronous = sum(n for name, n in counted.items() if name != "bench.queue")
    plain, recording = runs["plain"], runs["recording"]
    print(
        f"suite: {options.tests} tests, {synchronous} measurements recorded "
        f"(+{counted['bench.queue']} observations), {len(counted)} instruments; {load_note()}"
    )
    print(f"pytest (lean):             {median_wall(plain):.3f} s wall (median)")
    wall = median_ratio(recording, plain) - 1
    cpu = median_ratio(recording, plain, cpu=True) - 1
    print(
        f"pytest --dashgen-record:   {median_wall(recording):.3f} s wall (median): "
        f"{wall:+.1%} wall (target <= +10%), {cpu:+.1%} CPU (target <= +20%)"
    )


if __name__ == "__main__":
    main()
