"""dashgen: keep Grafana dashboards and OpenTelemetry metric code in step.

Declare metrics with panel hints, group them into dashboards, and ``dashgen build``
generates the Grafana JSON from the names the real exporter produces.
"""

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
