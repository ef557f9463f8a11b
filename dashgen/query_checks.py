"""Checks of ``dashgen.expr`` queries against the declarations, wherever a query is written:
a custom panel, a free alert, a recording rule."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from dashgen.declare import MetricSpec
from dashgen.errors import DashgenError
from dashgen.expr import Expr, Ratio, Recorded, Scaled, Selection, selections
from dashgen.hints import LEVELS, MONOTONIC, Kind

_FITS: dict[str, frozenset[Kind]] = {
    "rate": MONOTONIC | {Kind.HISTOGRAM},
    "increase": MONOTONIC | {Kind.HISTOGRAM},
    "current": LEVELS,
}


def check_queries(where: str, exprs: Sequence[Expr], metrics: Mapping[str, MetricSpec]) -> None:
    """Each query must select declared metrics in ways that fit them, by labels they
    declare; a recording rule's output only by the labels the rule keeps."""
    for expression in exprs:
        for selection in selections(expression):
            spec = metrics.get(selection.metric)
            if spec is None:
                raise DashgenError(
                    where, f"queries '{selection.metric}', which no declaration names"
                )
            if spec.kind not in _FITS[selection.function]:
                fits = ", ".join(sorted(k.value for k in _FITS[selection.function]))
                raise DashgenError(
                    where,
                    f"expr.{selection.function}() does not fit the {spec.kind.value} "
                    f"'{spec.name}' (it fits {fits})",
                )
            for key in (*(k for k, _ in selection.where), *selection.by):
                if key not in spec.labels:
                    raise DashgenError(
                        where,
                        f"filters or groups '{spec.name}' by '{key}', which is not among its "
                        f"declared labels {list(spec.labels)}",
                    )
        for node in recorded_nodes(expression):
            kept = kept_keys(node.source)
            for key in node.by:
                if key not in kept:
                    raise DashgenError(
                        where,
                        f"groups a recording rule's output by '{key}', which the rule does "
                        f"not keep (it keeps {list(kept)})",
                    )


def kept_keys(expression: Expr) -> tuple[str, ...]:
    """The attribute keys a query's result still has: those its first selection groups by."""
    match expression:
        case Selection():
            return expression.by
        case Ratio():
            return kept_keys(expression.numerator)
        case Scaled():
            return kept_keys(expression.expr)
        case Recorded():
            return expression.by


def recorded_nodes(expression: Expr) -> list[Recorded]:
    """The recording-rule outputs a query reads."""
    match expression:
        case Selection():
            return []
        case Ratio():
            return [*recorded_nodes(expression.numerator), *recorded_nodes(expression.denominator)]
        case Scaled():
            return recorded_nodes(expression.expr)
        case Recorded():
            return [expression]
