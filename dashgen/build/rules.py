"""Stage 3, rules: each declared alert and recording rule as PromQL over the exported names.

An alert on a hint watches what the hint's panel draws (its last query: a Quantiles
hint's last quantile), unfiltered by any dashboard's variables; a free rule is rendered like
a custom panel's query. Grafana's windows become the rule's window, since Prometheus
evaluates rules without Grafana.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from dashgen.build.layout import RULES_DIR
from dashgen.build.plan import Matcher, hint_targets, recording_name, render_query
from dashgen.catalog import Catalog
from dashgen.families import Exported, ExportedMetric
from dashgen.hints import Hint
from dashgen.rules import RULE_WINDOW, AlertSpec, Comparison, RecordingSpec, alert_condition

_GRAFANA_WINDOWS = ("$__rate_interval", "$__range")
"""The output dir's subdir of rule files (``<group>.yaml``) and their tests (``tests/``)."""


@dataclass(frozen=True)
class AlertPlan:
    name: str
    query: str
    """What is compared with the threshold: the hint's query, or the free alert's."""
    comparison: Comparison
    for_: str
    labels: tuple[tuple[str, str], ...]
    """``severity`` and the declared labels, sorted."""
    annotations: tuple[tuple[str, str], ...]
    spec: AlertSpec
    hint: Hint | None
    """The hint it watches; None for a free alert."""

    @property
    def expr(self) -> str:
        operator, value = self.comparison
        return f"{self.query} {operator} {number(value)}"


@dataclass(frozen=True)
class RecordingPlan:
    name: str
    expr: str
    labels: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class RuleGroupPlan:
    name: str
    interval: str | None
    rules: tuple[AlertPlan | RecordingPlan, ...]

    @property
    def path(self) -> str:
        """The rule file's path in the output dir."""
        return f"{RULES_DIR}/{self.name}.yaml"

    @property
    def test_path(self) -> str:
        """Its promtool test file, which names the rule file relative to itself."""
        return f"{RULES_DIR}/tests/{self.name}.test.yaml"

    @property
    def alerts(self) -> tuple[AlertPlan, ...]:
        return tuple(rule for rule in self.rules if isinstance(rule, AlertPlan))


def number(value: float) -> str:
    """A number as PromQL reads it back exactly: ``300``, ``0.1``, ``1e-07``."""
    text = repr(float(value))
    return text.removesuffix(".0")


def plan_rules(
    catalog: Catalog, exported: Exported, levels: Sequence[str]
) -> tuple[RuleGroupPlan, ...]:
    """Every rule group, its rules in declared order. ``levels``: the scrape labels that
    recording rules keep, so that dashboards can still filter their output by them."""
    metrics = exported.metrics
    unfiltered: dict[str, tuple[Matcher, ...]] = {name: () for name in metrics}
    groups = []
    for group in catalog.rule_groups:
        rules: list[AlertPlan | RecordingPlan] = []
        for rule in group.rules:
            if isinstance(rule, RecordingSpec):
                expr = render_query(rule.expr, metrics, unfiltered, levels, RULE_WINDOW, True)
                name = recording_name(rule.expr, rule.name, metrics, levels)
                rules.append(RecordingPlan(name, expr, rule.labels))
            else:
                rules.append(_alert(rule, metrics, unfiltered, levels))
        groups.append(RuleGroupPlan(group.name, group.interval, tuple(rules)))
    return tuple(groups)


def _alert(
    spec: AlertSpec,
    metrics: Mapping[str, ExportedMetric],
    unfiltered: Mapping[str, tuple[Matcher, ...]],
    levels: Sequence[str],
) -> AlertPlan:
    hint: Hint | None = None
    if spec.expr is not None:
        query = render_query(spec.expr, metrics, unfiltered, levels, RULE_WINDOW)
    else:
        assert spec.metric is not None  # the catalog placed every alert on a hint
        metric = metrics[spec.metric]
        hint = metric.spec.hints[spec.hint]
        query = hint_targets(metric, hint)[-1].expr
        for variable in _GRAFANA_WINDOWS:
            query = query.replace(variable, spec.window)
    labels = tuple(sorted([("severity", spec.severity), *spec.labels]))
    return AlertPlan(
        name=spec.name,
        query=query,
        comparison=alert_condition(spec, hint),
        for_=spec.for_,
        labels=labels,
        annotations=spec.annotations,
        spec=spec,
        hint=hint,
    )
