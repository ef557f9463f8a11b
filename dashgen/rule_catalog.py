"""Stage 1, rules: the ``RuleGroup``s and hint alerts of the sources, as checked plain data.

Runs in the sources process beside the metric catalog: it needs the declaration objects
themselves, to tell which hint an ``Alert`` object was given to.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from dashgen.declare import MetricSpec, PanelSpec, describe_value
from dashgen.errors import DashgenError
from dashgen.expr import Expr
from dashgen.hints import Heatmap
from dashgen.query_checks import check_queries, recorded_nodes
from dashgen.rules import (
    Alert,
    AlertSpec,
    RecordingRule,
    RecordingSpec,
    RuleGroup,
    RuleGroupSpec,
    RuleSpec,
    alert_condition,
)


def rule_groups(
    groups: Iterable[RuleGroup],
    specs: Sequence[MetricSpec],
    panels: Sequence[PanelSpec],
    relative: Callable[[str], str],
) -> tuple[RuleGroupSpec, ...]:
    """Every group, sorted by name; an alert on a hint that no group lists goes to a group
    named after the file that declares its metric. ``relative`` names files as reports do."""
    by_name = {spec.name: spec for spec in specs}
    on_hints = _alerts_on_hints(specs)
    declared: dict[str, RuleGroupSpec] = {}
    listed: dict[int, str] = {}
    for group in groups:
        where = f"{relative(group.file)}:{group.line}: rule group '{group.name}'"
        if group.name in declared:
            first = declared[group.name]
            raise DashgenError(where, f"a second group of that name (first at {first.where})")
        rules: list[RuleSpec] = []
        for rule in group.rules:
            if id(rule) in listed:
                raise DashgenError(where, f"{rule!r} is also in group '{listed[id(rule)]}'")
            listed[id(rule)] = group.name
            rules.append(_placed(rule, on_hints, relative))
        declared[group.name] = RuleGroupSpec(
            group.name, group.interval, tuple(rules), relative(group.file), group.line
        )
    for alert_id, (metric, index, alert) in on_hints.items():
        if alert_id not in listed:
            spec = replace(alert.spec, metric=metric, hint=index, file=relative(alert.spec.file))
            stem = Path(by_name[metric].file).stem
            group_spec = declared.get(stem) or RuleGroupSpec(stem, None, (), spec.file, spec.line)
            declared[stem] = replace(group_spec, rules=(*group_spec.rules, spec))
    result = tuple(declared[name] for name in sorted(declared))
    recordings = [r for g in result for r in g.rules if isinstance(r, RecordingSpec)]
    for group_spec in result:
        _check_group(group_spec, by_name, recordings)
    for panel in panels:
        check_recorded(panel.where, panel.exprs, recordings)
    return result


def _alerts_on_hints(specs: Sequence[MetricSpec]) -> dict[int, tuple[str, int, Alert]]:
    """id of each ``Alert`` given to a hint -> (metric, hint position, the alert)."""
    found: dict[int, tuple[str, int, Alert]] = {}
    for spec in specs:
        for index, hint in enumerate(spec.hints):
            alert = hint.alert
            if alert is None:
                continue
            name = type(hint).__name__
            if not isinstance(alert, Alert) or alert.spec.expr is not None:
                got = describe_value(alert)
                raise DashgenError(
                    spec.where, f"hint {name} takes an Alert(...) for alert=, got {got}"
                )
            if isinstance(hint, Heatmap):
                raise DashgenError(
                    spec.where,
                    "hint Heatmap draws no one value to alert on: put the alert on "
                    "a Quantiles or Average hint",
                )
            if id(alert) in found:
                raise DashgenError(spec.where, f"{alert!r} is given to two hints")
            found[id(alert)] = (spec.name, index, alert)
    return found


def _placed(
    rule: Alert | RecordingRule,
    on_hints: Mapping[int, tuple[str, int, Alert]],
    relative: Callable[[str], str],
) -> RuleSpec:
    spec = replace(rule.spec, file=relative(rule.spec.file))
    if not isinstance(spec, AlertSpec) or spec.expr is not None:
        return spec
    if id(rule) not in on_hints:
        raise DashgenError(
            spec.where,
            "is on no hint: give it to a hint (alert=...), or write AlertRule(name, query, ...)",
        )
    metric, index, _ = on_hints[id(rule)]
    return replace(spec, metric=metric, hint=index)


def _check_group(
    group: RuleGroupSpec,
    metrics: Mapping[str, MetricSpec],
    recordings: Sequence[RecordingSpec],
) -> None:
    """Alert names unique in the group; every query over declared metrics, fitting them;
    every alert's condition clear."""
    seen: dict[str, AlertSpec] = {}
    for rule in group.rules:
        if isinstance(rule, RecordingSpec):
            check_queries(rule.where, (rule.expr,), metrics)
            continue
        first = seen.setdefault(rule.name, rule)
        if first is not rule:
            raise DashgenError(
                rule.where,
                f"a second alert of that name in group '{group.name}' (first at "
                f"{first.file}:{first.line}): Prometheus would show them as one",
            )
        if rule.expr is not None:
            check_queries(rule.where, (rule.expr,), metrics)
            check_recorded(rule.where, (rule.expr,), recordings)
            alert_condition(rule, None)
        else:
            assert rule.metric is not None
            alert_condition(rule, metrics[rule.metric].hints[rule.hint])


def check_recorded(where: str, exprs: Sequence[Expr], recordings: Sequence[RecordingSpec]) -> None:
    """A query over a recording rule's output needs that rule in a group, or Prometheus
    never writes the series."""
    known = {(rule.expr, rule.name) for rule in recordings}
    for expression in exprs:
        for node in recorded_nodes(expression):
            if (node.source, node.name) not in known:
                raise DashgenError(
                    where, "queries a recording rule that no RuleGroup lists: add the rule to one"
                )
