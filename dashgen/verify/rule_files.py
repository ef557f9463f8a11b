"""Prometheus rule files -> their expressions as targets, checked like panel queries.

Rules live beside dashboards: plain rule files (``groups: [{rules: [...]}]``, also what
Mimir's ruler and vmalert load), and Kubernetes ``PrometheusRule`` resources (``spec.groups``).
Each group becomes one :class:`DashboardQueries` whose targets are its rules: an alert's or
a recording rule's ``expr``, named by the rule. An alert's annotations name labels with
``{{ $labels.x }}``: those are its "legend", checked against what the expression keeps.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from dashgen.families import RECORDED, Family
from dashgen.verify.dashboards import (
    ALERT_RULE,
    RECORDING_RULE,
    DashboardQueries,
    ParsedTarget,
    SkippedTarget,
    Target,
)
from dashgen.verify.promql import PromQLError, extract_refs

_LABEL_REF = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")
#: String literals, and a pipe outside them: PromQL has no ``|``, LogQL's line filters
#: (``|=``, ``|~``) and parsers (``| json``) are made of it. Loki's ruler takes rule files
#: of the same format, so a group of LogQL rules beside the Prometheus ones is not PromQL.
_STRINGS = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
LOGQL = "LogQL (a Loki rule), not PromQL"


@dataclass(frozen=True)
class _Rule:
    group: str
    name: str
    place: str
    expr: str
    labels: dict[str, str]
    annotations: dict[str, str]


def rule_groups(document: object, file: str) -> list[DashboardQueries]:
    """One entry per rule group of a rule file or ``PrometheusRule`` resource (or a
    ``List`` of them); none for any other document."""
    found = []
    for group in _groups(document):
        name = str(group.get("name", ""))
        rules = list(_rules(group, name))
        parsed = [_parsed(_target(file, rule)) for rule in rules]
        logql = [p for p in parsed if p.refs is None and "|" in _STRINGS.sub("", p.target.expr)]
        found.append(
            DashboardQueries(
                file=file,
                title=f"rule group {name}",
                uid="",
                panels=tuple(rule.name for rule in rules),
                targets=tuple(p for p in parsed if p not in logql),
                skipped=tuple(SkippedTarget(p.target, LOGQL) for p in logql),
                rules=True,
            )
        )
    return found


def recorded_families(dashboards: Sequence[DashboardQueries], source: str = "") -> list[Family]:
    """What the recording rules among ``dashboards`` write: a family each, with the labels
    their expression keeps when PromQL's rules say so (else unknown)."""
    families = []
    for dashboard in dashboards:
        for parsed in dashboard.targets:
            target = parsed.target
            if target.place != RECORDING_RULE:
                continue
            result = parsed.refs.result if parsed.refs is not None else None
            labels = None
            if result is not None and result.exact is not None:
                labels = tuple(sorted(result.exact))
            where = source or f"{target.file}: {dashboard.title}"
            families.append(Family(target.panel, RECORDED, (target.panel,), labels, where))
    return families


def _groups(document: object) -> Iterator[dict[str, object]]:
    if not isinstance(document, dict):
        return
    if document.get("kind") == "List":
        for item in document.get("items") or ():
            yield from _groups(item)
        return
    if document.get("kind") == "PrometheusRule":
        spec = document.get("spec")
        groups = spec.get("groups") if isinstance(spec, dict) else None
    elif "apiVersion" in document:  # Grafana's alerting provisioning has groups too
        return
    else:
        groups = document.get("groups")
    if not isinstance(groups, list):
        return
    for group in groups:
        rules = group.get("rules") if isinstance(group, dict) else None
        if isinstance(rules, list) and all(isinstance(r, dict) and "expr" in r for r in rules):
            yield group


def _rules(group: dict[str, object], name: str) -> Iterator[_Rule]:
    rules = group.get("rules")
    assert isinstance(rules, list)
    for rule in rules:
        alert, record = rule.get("alert"), rule.get("record")
        place = ALERT_RULE if alert is not None else RECORDING_RULE
        labels = rule.get("labels") if isinstance(rule.get("labels"), dict) else {}
        annotations = rule.get("annotations")
        yield _Rule(
            group=name,
            name=str(alert if alert is not None else record),
            place=place,
            expr=str(rule.get("expr", "")),
            labels={str(k): str(v) for k, v in (labels or {}).items()},
            annotations={
                str(k): str(v)
                for k, v in (annotations if isinstance(annotations, dict) else {}).items()
            },
        )


def _target(file: str, rule: _Rule) -> Target:
    named = sorted(
        {label for text in rule.annotations.values() for label in _LABEL_REF.findall(text)}
    )
    legend = " ".join(f"{{{{{label}}}}}" for label in named)
    return Target(
        file=file,
        dashboard=f"rule group {rule.group}",
        panel=rule.name,
        panel_id=None,
        ref_id="",
        expr=rule.expr,
        legend=legend,
        datasource="prometheus",
        place=rule.place,
    )


def _parsed(target: Target) -> ParsedTarget:
    try:
        return ParsedTarget(target, extract_refs(target.expr), None)
    except PromQLError as error:
        return ParsedTarget(target, None, str(error))
