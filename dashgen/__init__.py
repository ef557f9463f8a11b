"""dashgen: keep Grafana dashboards and OpenTelemetry metric code in step.

Declare metrics with panel hints, group them into dashboards, and ``dashgen build``
generates the Grafana JSON from the names the real exporter produces.

The declaration API is imported on first use (``from dashgen import Counter``), so that
the ``dashgen`` command, which imports this package first, pays for it only when it
reads the sources.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dashgen import expr, hints
    from dashgen.declare import (
        Counter,
        Dashboard,
        Gauge,
        Histogram,
        Metric,
        ObservableCounter,
        ObservableGauge,
        ObservableUpDownCounter,
        Panel,
        Row,
        UpDownCounter,
    )
    from dashgen.rules import Alert, AlertRule, RecordingRule, RuleGroup

#: The public names defined outside ``dashgen.declare``: two modules, and the rule API.
_MODULES = frozenset({"expr", "hints"})
_RULES = frozenset({"Alert", "AlertRule", "RecordingRule", "RuleGroup"})

__all__ = [
    "Alert",
    "AlertRule",
    "Counter",
    "Dashboard",
    "Gauge",
    "Histogram",
    "Metric",
    "ObservableCounter",
    "ObservableGauge",
    "ObservableUpDownCounter",
    "Panel",
    "RecordingRule",
    "Row",
    "RuleGroup",
    "UpDownCounter",
    "expr",
    "hints",
]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module 'dashgen' has no attribute {name!r}")
    if name in _MODULES:
        value = importlib.import_module(f"dashgen.{name}")
    else:
        home = "dashgen.rules" if name in _RULES else "dashgen.declare"
        value = getattr(importlib.import_module(home), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
