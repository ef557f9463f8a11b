"""Panel hints: how a declared metric should be shown, said next to the metric itself.

A hint names *what* to show (a rate, quantiles, the current value ...) in terms of the
declaration's own attribute keys. It never spells a Prometheus name: those come from the
exporter, and the plan stage puts the two together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from dashgen.rules import Alert


class Kind(StrEnum):
    """The seven OpenTelemetry instrument kinds."""

    COUNTER = "Counter"
    UP_DOWN_COUNTER = "UpDownCounter"
    HISTOGRAM = "Histogram"
    GAUGE = "Gauge"
    OBSERVABLE_COUNTER = "ObservableCounter"
    OBSERVABLE_UP_DOWN_COUNTER = "ObservableUpDownCounter"
    OBSERVABLE_GAUGE = "ObservableGauge"


MONOTONIC = frozenset({Kind.COUNTER, Kind.OBSERVABLE_COUNTER})
LEVELS = frozenset(
    {Kind.GAUGE, Kind.OBSERVABLE_GAUGE, Kind.UP_DOWN_COUNTER, Kind.OBSERVABLE_UP_DOWN_COUNTER}
)

Threshold = tuple[float, str]
"""A step: from this value up, use this colour. Below the first step is the hint's ``base``:
declared, or implied (red when the steps get less alarming as the value grows, else green)."""


@dataclass(frozen=True, kw_only=True)
class Hint:
    """Presentation shared by every hint; ``None`` means "choose from the metric"."""

    title: str | None = None
    description: str | None = None
    unit: str | None = None
    legend: str | None = None
    thresholds: tuple[Threshold, ...] = ()
    base: str | None = None
    """The colour below the first threshold; None: implied from the steps (see Threshold)."""
    width: int | None = None
    """Grid columns of 24; None: share what the line's set widths leave (12 when alone)."""
    height: int = 8
    by: tuple[str, ...] = ()
    alert: Alert | None = None
    """An alert on what the panel draws (``dashgen.rules.Alert``), written into the rules."""

    #: The instrument kinds this hint makes sense for; checked at build time.
    fits: frozenset[Kind] = field(default=frozenset(), init=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Rate(Hint):
    """Per-second rate of a counter (or of a histogram's observations), summed by ``by``."""

    fits: frozenset[Kind] = field(default=MONOTONIC | {Kind.HISTOGRAM}, init=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Increase(Hint):
    """How much a counter grew over the dashboard's time range, as one stat."""

    fits: frozenset[Kind] = field(default=MONOTONIC | {Kind.HISTOGRAM}, init=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Quantiles(Hint):
    """Histogram quantiles over time, one line per quantile (and per ``by`` group)."""

    quantiles: tuple[float, ...] = (0.5, 0.9, 0.99)
    fits: frozenset[Kind] = field(default=frozenset({Kind.HISTOGRAM}), init=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Heatmap(Hint):
    """The bucket distribution of a histogram over time."""

    fits: frozenset[Kind] = field(default=frozenset({Kind.HISTOGRAM}), init=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class Average(Hint):
    """Mean observation of a histogram: rate of the sum over rate of the count."""

    fits: frozenset[Kind] = field(default=frozenset({Kind.HISTOGRAM}), init=False, repr=False)


CurrentStyle = Literal["timeseries", "stat", "gauge", "bargauge"]
Aggregation = Literal["sum", "max", "min", "avg"]


@dataclass(frozen=True, kw_only=True)
class Current(Hint):
    """The current value of a gauge or up-down counter, aggregated with ``agg`` by ``by``."""

    style: CurrentStyle = "timeseries"
    agg: Aggregation = "sum"
    fits: frozenset[Kind] = field(default=LEVELS, init=False, repr=False)


def default_hints(kind: Kind) -> tuple[Hint, ...]:
    """What a bare declaration gets: the panel most teams draw for that kind first."""
    if kind in MONOTONIC:
        return (Rate(),)
    if kind is Kind.HISTOGRAM:
        return (Quantiles(),)
    return (Current(),)
