"""PromQL over declared metrics, by object: the queries of custom panels (``Panel``).

An error ratio or an SLO burn rate is a query over several metrics that no single hint
draws. Written as a string it spells Prometheus names by hand, and a rename leaves it dead;
written with these builders it names the declarations, and the plan stage puts in the names
the export path gives them, with the dashboard's variables, like every generated query::

    errors = expr.rate(REQUESTS, where={"http.response.status_code": "5.."})
    Panel("Error ratio", expr.ratio(errors, expr.rate(REQUESTS)), unit="percentunit")

The builders keep each metric's name, not the object, so that the expression is plain data
that crosses from the isolated sources process like every other declaration.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from dashgen.hints import Aggregation

if TYPE_CHECKING:
    from dashgen.declare import Metric
    from dashgen.rules import RecordingRule

Function = Literal["rate", "increase", "current"]
RATE_WINDOW = "$__rate_interval"


@dataclass(frozen=True)
class Selection:
    """One metric's series: its per-second rate, its increase, or its current value,
    aggregated (``sum`` by default) by ``by``, filtered by ``where`` (attribute -> regex)."""

    function: Function
    metric: str
    where: tuple[tuple[str, str], ...] = ()
    by: tuple[str, ...] = ()
    agg: Aggregation = "sum"
    window: str = RATE_WINDOW


@dataclass(frozen=True)
class Ratio:
    numerator: Expr
    denominator: Expr


@dataclass(frozen=True)
class Scaled:
    """``expr / divisor``: an SLO's error ratio over its error budget is its burn rate."""

    expr: Expr
    divisor: float


@dataclass(frozen=True)
class Recorded:
    """The series a recording rule stores (``job:x:rate5m``), aggregated again by ``by``:
    a panel or an alert over the rule's output instead of the raw metric."""

    source: Expr
    """The rule's query; the plan stage names the rule from it, as the rule stage does."""
    name: str | None
    by: tuple[str, ...] = ()
    agg: Aggregation = "sum"


Expr = Selection | Ratio | Scaled | Recorded


def rate(
    metric: Metric,
    *,
    where: Mapping[str, str] | None = None,
    by: Sequence[str] = (),
    window: str = RATE_WINDOW,
) -> Selection:
    """Per-second rate of a counter or of a histogram's observations."""
    return Selection("rate", _name(metric), _where(where), tuple(by), "sum", window)


def increase(
    metric: Metric,
    *,
    where: Mapping[str, str] | None = None,
    by: Sequence[str] = (),
    window: str = "$__range",
) -> Selection:
    """How much a counter grew over ``window`` (default: the dashboard's range)."""
    return Selection("increase", _name(metric), _where(where), tuple(by), "sum", window)


def current(
    metric: Metric,
    *,
    where: Mapping[str, str] | None = None,
    by: Sequence[str] = (),
    agg: Aggregation = "sum",
) -> Selection:
    """The current value of a gauge or an up-down counter."""
    return Selection("current", _name(metric), _where(where), tuple(by), agg)


def ratio(numerator: Expr, denominator: Expr) -> Ratio:
    return Ratio(numerator, denominator)


def slo_burn(bad: Selection, total: Selection, *, objective: float) -> Scaled:
    """How fast the error budget burns: the bad share of ``total`` over ``1 - objective``
    (1 spends the budget exactly over the SLO period, 14.4 over an hour of 30 days)."""
    if not 0 < objective < 1:
        raise ValueError(f"objective is a share such as 0.999, got {objective!r}")
    return Scaled(Ratio(bad, total), round(1 - objective, 12))


def recorded(rule: RecordingRule, *, by: Sequence[str] = (), agg: Aggregation = "sum") -> Recorded:
    """What ``rule`` stores, summed (or ``agg``) by ``by``, a subset of what it keeps."""
    spec = getattr(rule, "spec", None)
    source = getattr(spec, "expr", None)
    if not isinstance(source, Selection | Ratio | Scaled):
        raise TypeError(f"expr.recorded takes a RecordingRule, got {rule!r}")
    return Recorded(source, getattr(spec, "name", None), tuple(by), agg)


def selections(expression: Expr) -> list[Selection]:
    """Every metric selection in ``expression``, left to right."""
    match expression:
        case Selection():
            return [expression]
        case Ratio():
            return [*selections(expression.numerator), *selections(expression.denominator)]
        case Scaled():
            return selections(expression.expr)
        case Recorded():
            return selections(expression.source)


def _name(metric: Metric) -> str:
    name = getattr(metric, "name", None)
    if not isinstance(name, str) or not hasattr(metric, "spec"):
        raise TypeError(f"expr builders take a metric declaration, got {metric!r}")
    return name


def _where(where: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((where or {}).items()))
