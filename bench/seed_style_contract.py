"""Baseline for bench_verify.py: the contract test of seed 000, as that team wrote it.

pytest + PrometheusMetricReader + a regex tokenizer over every ``expr``. It is here only to
be timed against ``dashgen verify`` on the same catalog; dashgen itself never tokenizes
PromQL with regexes. Run by bench_verify.py with DASHGEN_BENCH_ROOT set.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry

from dashgen.declare import Metric, ObservableCounter, ObservableGauge, ObservableUpDownCounter

OBSERVABLES = (ObservableCounter, ObservableGauge, ObservableUpDownCounter)

ROOT = Path(os.environ["DASHGEN_BENCH_ROOT"])
TOKEN = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
BUILTINS = {
    "sum", "rate", "by", "le", "histogram_quantile", "increase", "max", "min", "avg",
    "without", "on", "ignoring", "group_left", "group_right", "count", "and", "or", "unless",
}  # fmt: skip


def _observation(attributes: dict[str, str]) -> Callable[[CallbackOptions], list[Observation]]:
    return lambda _: [Observation(1, attributes)]


@pytest.fixture(scope="module")
def samples() -> dict[str, set[str]]:
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry)], shutdown_on_exit=False
    )
    sys.path.insert(0, str(ROOT))
    for path in sorted((ROOT / "src").glob("*.py")):
        module = importlib.import_module(f"src.{path.stem}")
        for value in vars(module).values():
            if isinstance(value, OBSERVABLES):  # the callback fires on collect
                value.observe(_observation({label: "x" for label in value.labels}))
                value.start(provider)
            elif isinstance(value, Metric):
                value.bind(provider)
                for method in ("add", "record", "set"):
                    if hasattr(value, method):
                        getattr(value, method)(1, {label: "x" for label in value.labels})
                        break
    return {f.name: {s.name for s in f.samples} for f in registry.collect()}


def dashboard_metrics() -> dict[str, set[str]]:
    found = {}
    for path in sorted((ROOT / "out").glob("*.json")):
        exprs = re.findall(r'"expr": "((?:[^"\\]|\\.)*)"', path.read_text())
        names = set()
        for expr in exprs:
            # Strings, ranges, `by (...)` and (since dashboards filter by $job and $instance)
            # label matchers are not metric names.
            expr = re.sub(
                r'"[^"]*"|\[[^\]]*\]|by \([^)]*\)|\{[^}]*\}', "", expr.replace('\\"', '"')
            )
            names |= {t for t in TOKEN.findall(expr) if t not in BUILTINS}
        found[path.name] = names
    return found


def test_dashboard_metrics_defined_in_code(samples: dict[str, set[str]]) -> None:
    known = set().union(*samples.values())
    missing = {d: n - known for d, n in dashboard_metrics().items() if n - known}
    assert not missing


def test_code_metrics_used_in_dashboards(samples: dict[str, set[str]]) -> None:
    used = set().union(*dashboard_metrics().values())
    unused = [f for f, names in samples.items() if f != "target" and not names & used]
    assert not unused
