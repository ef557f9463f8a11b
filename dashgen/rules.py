"""Alerting and recording rules, declared over the same metrics as the panels.

A rename that breaks a panel breaks the alert on the same metric, and an alert on a metric
nobody exports never fires. So rules are declared like panels: an ``Alert`` on a hint
(its query, its thresholds), or a free ``AlertRule`` / ``RecordingRule`` over
``dashgen.expr`` queries, gathered in ``RuleGroup``s. The build writes them as Prometheus
rule files with the names the export path gives the metrics, and a ``promtool test rules``
test for each alert::

    HIGH = Alert("CheckoutSlow", for_="10m", summary="p99 above 1 s")
    LATENCY = Histogram("checkout.duration", unit="s",
                        hint=hints.Quantiles(thresholds=((1, "red"),), alert=HIGH))
    RULES = RuleGroup("checkout", [HIGH])
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TypedDict, Unpack

from dashgen.declare import _caller_origin, _Checked, _subject, describe_value
from dashgen.errors import DashgenError
from dashgen.expr import Expr, Ratio, Scaled, Selection
from dashgen.hints import Hint
from dashgen.vocabulary import implied_base, severity

#: Prometheus' duration syntax (``1h30m``, ``5m``, ``0``), as its rule loader reads ``for:``.
DURATION = re.compile(r"0|(?=\d)(\d+y)?(\d+w)?(\d+d)?(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")
_ALERT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
#: ``level:metric:operation``, the Prometheus convention for recording rule names.
RECORDING_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_]+")
_GROUP_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_RESERVED_LABELS = frozenset({"alertname", "severity", "__name__"})
RULE_WINDOW = "5m"
"""The window a rule's rates take where the query says a Grafana one (``$__rate_interval``,
``$__range``): Prometheus evaluates rules without Grafana's variables."""


@dataclass(frozen=True)
class AlertSpec:
    """An alert as plain data: its condition is a query (the hint's, or ``expr``) compared
    with a threshold; ``above``/``below`` both None means "from the hint's thresholds"."""

    name: str
    above: float | None
    below: float | None
    for_: str
    severity: str
    summary: str
    description: str
    runbook: str | None
    labels: tuple[tuple[str, str], ...]
    window: str
    file: str
    line: int
    expr: Expr | None = None
    """A free alert's query; None for an alert on a hint."""
    metric: str | None = None
    """For an alert on a hint: the metric, and the hint's position among its hints."""
    hint: int = 0

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}: alert '{self.name}'"

    @property
    def annotations(self) -> tuple[tuple[str, str], ...]:
        pairs = [
            ("summary", self.summary),
            ("description", self.description),
            ("runbook_url", self.runbook or ""),
        ]
        return tuple((key, text) for key, text in pairs if text)


@dataclass(frozen=True)
class RecordingSpec:
    expr: Expr
    name: str | None
    """``level:metric:operation``; None: derived from the query (see the plan stage)."""
    labels: tuple[tuple[str, str], ...]
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}: recording rule '{self.name or 'unnamed'}'"


RuleSpec = AlertSpec | RecordingSpec
Comparison = tuple[str, float]
"""(``>``, ``>=`` or ``<``, value): how an alert's query is compared with its threshold."""


def alert_condition(alert: AlertSpec, hint: Hint | None) -> Comparison:
    """``above=``/``below=``, or the red band of the hint's thresholds: the alert fires
    exactly when the panel shows red (Grafana colours a value from its step up)."""
    if alert.above is not None:
        return (">", alert.above)
    if alert.below is not None:
        return ("<", alert.below)
    steps = tuple(sorted(hint.thresholds, key=lambda step: step[0])) if hint else ()
    if hint is None or not steps:
        raise DashgenError(
            alert.where, "needs above= or below=, or thresholds on its hint to alert in the red"
        )
    bands = [hint.base or implied_base(steps), *(color for _, color in steps)]
    red = [index for index, color in enumerate(bands) if severity(color) == 3]
    if red == [len(bands) - 1]:
        return (">=", steps[-1][0])
    if red == [0]:
        return ("<", steps[0][0])
    raise DashgenError(
        alert.where,
        "its hint's thresholds have no one red band at the top or the bottom to alert in: "
        "give above= or below=",
    )


@dataclass(frozen=True)
class RuleGroupSpec:
    name: str
    interval: str | None
    rules: tuple[RuleSpec, ...]
    file: str
    line: int

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}: rule group '{self.name}'"


class _Rule:
    """What alerts on hints, free alerts and recording rules check alike."""

    def __init__(self, noun: str, name: object) -> None:
        self.file, self.line = _caller_origin()
        self.check = _Checked((self.file, self.line), _subject(noun, name))

    def duration(self, option: str, value: object) -> str:
        text: str = self.check.text(option, value)
        if not DURATION.fullmatch(text):
            raise self.check.fail(f"{option}= takes a Prometheus duration such as '5m' or '1h30m'")
        return text

    def labels(self, value: object) -> tuple[tuple[str, str], ...]:
        if not isinstance(value, Mapping):
            raise self.check.fail(
                f"labels= takes a mapping of strings, got {describe_value(value)}"
            )
        checked = []
        for key, text in sorted(value.items(), key=lambda item: str(item[0])):
            if not isinstance(key, str) or not _LABEL_NAME.fullmatch(key):
                raise self.check.fail(f"labels= has {key!r}, which is no Prometheus label name")
            if key in _RESERVED_LABELS:
                raise self.check.fail(f"labels= sets '{key}', which the rule sets itself")
            checked.append((key, self.check.text(f"labels['{key}']", text)))
        return tuple(checked)

    def threshold(self, option: str, value: object) -> float | None:
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.check.fail(f"{option}= takes a number, got {describe_value(value)}")
        return float(value)


class AlertOptions(TypedDict, total=False):
    """What every alert takes besides its name, its query and its threshold."""

    for_: str
    severity: str
    summary: str
    description: str
    runbook: str | None
    labels: Mapping[str, str] | None


class Alert:
    """An alert on the value a panel draws: give it to a hint (``alert=``) and list it in
    a ``RuleGroup`` (else it goes to a group named after its file). It fires when the hint's
    query is ``above`` or ``below`` a value, or else in the hint's red threshold band;
    ``window`` replaces the hint's Grafana windows (``$__rate_interval``)."""

    def __init__(
        self,
        name: str,
        *,
        above: float | None = None,
        below: float | None = None,
        window: str = RULE_WINDOW,
        **options: Unpack[AlertOptions],
    ) -> None:
        rule = _Rule("alert", name)
        check = rule.check
        self.spec = AlertSpec(
            name=check.text("name", name),
            above=rule.threshold("above", above),
            below=rule.threshold("below", below),
            for_=rule.duration("for_", options.get("for_", "5m")),
            severity=check.text("severity", options.get("severity", "warning")),
            summary=check.text("summary", options.get("summary", "")),
            description=check.text("description", options.get("description", "")),
            runbook=check.text("runbook", options.get("runbook"), optional=True),
            labels=rule.labels(options.get("labels") or {}),
            window=rule.duration("window", window),
            file=rule.file,
            line=rule.line,
        )
        if not _ALERT_NAME.fullmatch(self.spec.name):
            raise check.fail("alert names are one word such as HighErrorRate")
        if above is not None and below is not None:
            raise check.fail("give above= or below=, not both")

    def __repr__(self) -> str:
        return f"Alert({self.spec.name!r})"


class AlertRule(Alert):
    """An alert on a query written with ``dashgen.expr`` (a ratio, an SLO burn rate); its
    rates take their own ``window=``."""

    def __init__(
        self,
        name: str,
        expr: Expr,
        *,
        above: float | None = None,
        below: float | None = None,
        **options: Unpack[AlertOptions],
    ) -> None:
        super().__init__(name, above=above, below=below, **options)
        check = _Checked((self.spec.file, self.spec.line), _subject("alert", name))
        if not isinstance(expr, Expr):
            raise check.fail(f"expr takes a dashgen.expr query, got {describe_value(expr)}")
        if above is None and below is None:
            raise check.fail("a free alert needs above= or below=")
        self.spec = replace(self.spec, expr=expr)


class RecordingRule:
    """A query Prometheus evaluates ahead of time and stores as ``level:metric:operation``;
    panels query it with ``expr.recorded(RULE)``."""

    def __init__(
        self,
        expr: Expr,
        *,
        name: str | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        rule = _Rule("recording rule", name or "unnamed")
        check = rule.check
        if not isinstance(expr, Selection | Ratio | Scaled):
            raise check.fail(f"expr takes a dashgen.expr query, got {describe_value(expr)}")
        self.spec = RecordingSpec(
            expr=expr,
            name=check.text("name", name, optional=True),
            labels=rule.labels(labels or {}),
            file=rule.file,
            line=rule.line,
        )
        if self.spec.name is not None and not RECORDING_NAME.fullmatch(self.spec.name):
            raise check.fail(
                "name= takes a level:metric:operation name such as 'job:http_requests:rate5m'"
            )
        if self.spec.name is None and not isinstance(expr, Selection):
            raise check.fail("a rule over a ratio needs its name: name='level:metric:operation'")

    def __repr__(self) -> str:
        return f"RecordingRule({self.spec.name or 'unnamed'!r})"


class RuleGroup:
    """One group of a Prometheus rule file, ``generated/rules/<name>.yaml``: its rules are
    evaluated together every ``interval`` (None: the server's global interval)."""

    def __init__(
        self,
        name: str,
        rules: Sequence[Alert | RecordingRule],
        *,
        interval: str | None = None,
    ) -> None:
        rule = _Rule("rule group", name)
        check = rule.check
        self.name: str = check.text("name", name)
        if not _GROUP_NAME.fullmatch(self.name):
            raise check.fail("group names are words of letters, digits, '_', '.' and '-'")
        self.rules: tuple[Alert | RecordingRule, ...] = check.items(
            "rules", rules, Alert | RecordingRule, "Alert, AlertRule or RecordingRule objects"
        )
        self.interval = None if interval is None else rule.duration("interval", interval)
        self.file, self.line = rule.file, rule.line

    def __repr__(self) -> str:
        return f"RuleGroup({self.name!r})"
