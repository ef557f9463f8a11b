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

__all__ = [
    "Counter",
    "Dashboard",
    "Gauge",
    "Histogram",
    "Metric",
    "ObservableCounter",
    "ObservableGauge",
    "ObservableUpDownCounter",
    "Panel",
    "Row",
    "UpDownCounter",
    "expr",
    "hints",
]
