"""A ``promtool test rules`` test for each alert, from series shaped by what it watches.

The series carry the names and labels the export path gives the metric. Each test holds
the watched value on the quiet side of the threshold, then past it: the alert must not
fire while quiet, must still be pending before its ``for`` has passed, and must fire, with
its labels and its annotations as Prometheus expands them, once it has. A ratio (an error
ratio, an SLO burn rate) gets a numerator and a denominator series. An alert whose query
reads the output of a recording rule of its group runs on the rule's series (promtool
evaluates both). An alert over another group's recording rule, or whose query filters by
a regex that is no list of literals, or whose labels are stored dotted, gets no test; the
test file names those in a comment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from opentelemetry.sdk.metrics._internal.aggregation import (
    _DEFAULT_EXPLICIT_BUCKET_HISTOGRAM_AGGREGATION_BOUNDARIES as SDK_BUCKETS,
)

from dashgen.build.plan import grouping
from dashgen.build.rule_files import document_bytes
from dashgen.build.rules import AlertPlan, RecordingPlan, RuleGroupPlan, number
from dashgen.errors import DashgenError
from dashgen.expr import Expr, Ratio, Recorded, Scaled, Selection
from dashgen.families import ExportedMetric
from dashgen.hints import Average, Current, Increase, Quantiles, Rate
from dashgen.rules import DURATION, RULE_WINDOW

Shape = Literal["gauge", "rate", "increase", "mean", "quantile"]
_LEGACY_LABEL = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LITERALS = re.compile(r"[A-Za-z0-9_.:-]+(?:\|[A-Za-z0-9_.:-]+)*")
_TEMPLATE = re.compile(r"\{\{\s*(.*?)\s*\}\}")
_LABEL_REF = re.compile(r"\$labels\.([A-Za-z_][A-Za-z0-9_]*)")
_COUNTER_START = 1000.0
"""Counters start above zero, so that ``rate`` does not extrapolate towards zero."""
_DEFAULT_VALUE = "example"
_REST = "other"
"""The value a ratio's left-out series takes for the labels its numerator filters by."""


@dataclass(frozen=True)
class _Watched:
    """What an alert's query reads, as far as a test needs it."""

    shape: Shape
    metric: ExportedMetric
    series_labels: tuple[tuple[str, str], ...]
    """Stored label -> value of the one synthetic series."""
    result_labels: tuple[tuple[str, str], ...]
    """The labels of the query's result (what ``by (...)`` keeps), with their values."""
    window: float
    """Seconds of the query's rate or increase window."""
    quantile: float = 0.0
    share: _Share | None = None
    """When the alert watches a ratio: its denominator."""


@dataclass(frozen=True)
class _Share:
    """The denominator of ``numerator / denominator / divisor`` (an error ratio, an SLO's
    burn rate): another metric's series, held at 1; or, when both sides read one metric,
    the series the numerator's filter leaves out, so the ratio is ``hit / (hit + rest)``."""

    metric: ExportedMetric
    series_labels: tuple[tuple[str, str], ...]
    same_metric: bool
    divisor: float


def seconds(duration: str) -> float:
    """A Prometheus duration (checked by the declaration) in seconds."""
    match = DURATION.fullmatch(duration)
    assert match is not None
    units = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)
    return sum(
        int(part[:-2] if part.endswith("ms") else part[:-1]) * unit
        for part, unit in zip(match.groups(), units, strict=True)
        if part
    )


def rule_tests(group: RuleGroupPlan, metrics: Mapping[str, ExportedMetric]) -> bytes | None:
    """The test file of ``group``'s alerts (None when it has none)."""
    if not group.alerts:
        return None
    tests = []
    untested = []
    recorded = [rule.name for rule in group.rules if isinstance(rule, RecordingPlan)]
    for alert in group.alerts:
        watched = _watched(alert, metrics, recorded)
        if watched is None:
            untested.append(alert.name)
        else:
            tests.append(_test(alert, watched))
    document = {
        "rule_files": [f"../{group.name}.yaml"],
        "evaluation_interval": "1m",
        "tests": tests,
    }
    comment = "".join(
        f"# No test for {name}: dashgen cannot shape series for its query.\n" for name in untested
    )
    return document_bytes(document, comment)


def _watched(
    alert: AlertPlan, metrics: Mapping[str, ExportedMetric], recorded: Sequence[str]
) -> _Watched | None:
    """What the alert's query reads; None when no series can be shaped for it. ``recorded``:
    the names the group's own recording rules write."""
    spec = alert.spec
    if spec.expr is None:
        assert alert.hint is not None and spec.metric is not None
        hint = alert.hint
        shapes: dict[type, Shape] = {
            Rate: "rate",
            Increase: "increase",
            Average: "mean",
            Quantiles: "quantile",
            Current: "gauge",
        }
        metric = metrics[spec.metric]
        window = seconds(spec.window)
        quantile = hint.quantiles[-1] if isinstance(hint, Quantiles) else 0.0
        labels = _labels(metric, hint.by, ())
        if labels is None:
            return None
        return _Watched(shapes[type(hint)], metric, *labels, window, quantile)
    if isinstance(spec.expr, Recorded):
        return _over_recorded(alert, spec.expr, metrics, recorded)
    return _of_query(alert, spec.expr, metrics)


def _of_query(
    alert: AlertPlan, query: Expr, metrics: Mapping[str, ExportedMetric]
) -> _Watched | None:
    if isinstance(query, Ratio | Scaled):
        return _ratio(alert, query, metrics)
    if not isinstance(query, Selection):
        return None
    selection = query
    metric = metrics[selection.metric]
    labels = _labels(metric, selection.by, selection.where)
    if labels is None:
        return None
    span = selection.window if not selection.window.startswith("$") else RULE_WINDOW
    shape: Shape = "gauge" if selection.function == "current" else selection.function
    return _Watched(shape, metric, *labels, seconds(span))


def _over_recorded(
    alert: AlertPlan,
    query: Recorded,
    metrics: Mapping[str, ExportedMetric],
    recorded: Sequence[str],
) -> _Watched | None:
    """An alert over a recording rule of its own group: promtool evaluates the rule too, so
    the series are those of the rule's query, and the result keeps what the alert groups by."""
    if not any(name in alert.query for name in recorded):
        return None
    watched = _of_query(alert, query.source, metrics)
    if watched is None:
        return None
    where = query.source.where if isinstance(query.source, Selection) else ()
    regrouped = _labels(watched.metric, query.by, where)
    return None if regrouped is None else replace(watched, result_labels=regrouped[1])


def _ratio(
    alert: AlertPlan, query: Ratio | Scaled, metrics: Mapping[str, ExportedMetric]
) -> _Watched | None:
    """A ratio of two selections of one kind and window, grouped alike; else no test. Of
    one metric, the numerator's share must stay below 1 both quiet and in breach."""
    divisor = 1.0
    expr: object = query
    if isinstance(query, Scaled):
        divisor, expr = query.divisor, query.expr
    if not isinstance(expr, Ratio):
        return None
    top, bottom = expr.numerator, expr.denominator
    if not isinstance(top, Selection) or not isinstance(bottom, Selection):
        return None
    if (top.function, top.window, top.by) != (bottom.function, bottom.window, bottom.by):
        return None
    metric = metrics[top.metric]
    labels = _labels(metric, top.by, top.where)
    if labels is None:
        return None
    series, result = labels
    span = seconds(top.window if not top.window.startswith("$") else RULE_WINDOW)
    shape: Shape = "gauge" if top.function == "current" else top.function
    if bottom.metric == top.metric:
        values = _values(alert, shape)
        shares = [values.breach, *([] if values.quiet is None else [values.quiet])]
        if bottom.where or not top.where or not all(0 <= v * divisor < 1 for v in shares):
            return None
        keys = {metric.labels[key] for key, _ in top.where}
        if any(_REST in regex.split("|") for _, regex in top.where):
            return None
        rest = tuple(sorted((label, _REST if label in keys else v) for label, v in series))
        share = _Share(metric, rest, True, divisor)
    else:
        other = metrics[bottom.metric]
        by_labels = [metric.labels[key] for key in top.by]
        own = _labels(other, (), bottom.where)
        if own is None or not all(_LEGACY_LABEL.fullmatch(other.labels[k]) for k in bottom.by):
            return None
        given = dict(series)
        pairs = zip(bottom.by, by_labels, strict=True)
        grouped = [(other.labels[key], given[label]) for key, label in pairs]
        share = _Share(other, tuple(sorted([*own[0], *grouped])), False, divisor)
    return _Watched(shape, metric, series, result, span, share=share)


def _labels(
    metric: ExportedMetric, by: Sequence[str], where: Sequence[tuple[str, str]]
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]] | None:
    """The synthetic series' labels and the result's, or None when a filter is a regex no
    value can be read from (only literals and alternations of literals can), or a label
    is stored dotted (as VictoriaMetrics keeps OTLP's)."""
    values = {key: listed[0] for key, listed in metric.spec.label_values}
    for key, regex in where:
        if not _LITERALS.fullmatch(regex):
            return None
        values[key] = regex.split("|")[0]
    keys = sorted({*by, *(key for key, _ in where)})
    if not all(_LEGACY_LABEL.fullmatch(metric.labels[key]) for key in keys):
        return None  # promtool's series notation takes no dotted label names
    series = tuple(sorted((metric.labels[key], values.get(key, _DEFAULT_VALUE)) for key in keys))
    grouped = grouping(metric, by)
    result = []
    for key, label in zip(by, grouped.labels, strict=True):
        result.append((label, values.get(key, _DEFAULT_VALUE)))
    return series, tuple(sorted(result))


@dataclass(frozen=True)
class _Values:
    quiet: float | None
    """The watched value before the breach; None: no samples move (a rate of 0, no
    observations), which never crosses a threshold from below."""
    breach: float


def _values(alert: AlertPlan, shape: Shape) -> _Values:
    operator, threshold = alert.comparison
    above = operator != "<"
    rates = shape != "gauge"
    if above:
        breach = threshold * 2 if threshold > 0 else threshold + 1
        quiet = threshold / 2 if threshold > 0 else (None if rates else threshold - 1)
        return _Values(quiet, breach)
    if rates and threshold <= 0:
        raise DashgenError(
            alert.spec.where,
            f"alerts when a {shape} is below {number(threshold)}, which it never is",
        )
    return _Values(threshold * 2 if threshold > 0 else threshold + 1, threshold / 2)


def _test(alert: AlertPlan, watched: _Watched) -> dict[str, Any]:
    """Quiet for the window and ten minutes, then past the threshold for as long as the
    window, the ``for`` and ten minutes more."""
    values = _values(alert, watched.shape)
    window_minutes = math.ceil(watched.window / 60)
    for_minutes = math.ceil(seconds(alert.for_) / 60)
    quiet_minutes = window_minutes + 10
    breach_minutes = window_minutes + for_minutes + 10
    series = _series(alert, watched, values, quiet_minutes, breach_minutes)
    expected_value = _expected_value(alert, watched, values.breach)
    labels = dict(watched.result_labels)
    fired = {
        "exp_labels": dict(sorted({**labels, **dict(alert.labels)}.items())),
    }
    annotations = {
        key: expand(alert, key, text, labels, expected_value) for key, text in alert.annotations
    }
    if annotations:
        fired["exp_annotations"] = annotations
    cases = [
        _case(quiet_minutes - 1, alert.name, []),
        _case(quiet_minutes + max(for_minutes - 1, 0), alert.name, [] if for_minutes else None),
        _case(quiet_minutes + window_minutes + for_minutes + 2, alert.name, [fired]),
    ]
    operator, threshold = alert.comparison
    return {
        "name": f"{alert.name}: fires after {alert.for_} {operator} {number(threshold)}",
        "interval": "1m",
        "input_series": series,
        "alert_rule_test": [case for case in cases if case is not None],
    }


def _case(minute: int, name: str, alerts: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    if alerts is None:
        return None
    return {"eval_time": f"{minute}m", "alertname": name, "exp_alerts": alerts}


def _series(
    alert: AlertPlan, watched: _Watched, values: _Values, quiet: int, breach: int
) -> list[dict[str, str]]:
    metric = watched.metric
    labels = watched.series_labels
    if watched.share is not None:
        return _shares(watched, watched.share, values, quiet, breach)
    if watched.shape in ("gauge", "rate", "increase"):
        return [_one(metric.value_sample, labels, _moving(watched, values, quiet, breach))]
    if watched.shape == "mean":
        count = _Values(None if values.quiet is None else 1, 1)
        assert metric.sum_sample is not None
        return [
            _one(metric.value_sample, labels, _counter(count, 60, quiet, breach)),
            _one(metric.sum_sample, labels, _counter(values, 60, quiet, breach)),
        ]
    return _buckets(alert, watched, values, quiet, breach)


def _shares(
    watched: _Watched, share: _Share, values: _Values, quiet: int, breach: int
) -> list[dict[str, str]]:
    """The numerator's series and the denominator's, so that the ratio over the divisor is
    the watched value: quiet, then in breach."""
    hit = _Values(
        None if values.quiet is None else values.quiet * share.divisor,
        values.breach * share.divisor,
    )
    quiet_rest = 1.0 if hit.quiet is None else 1 - hit.quiet
    rest = _Values(quiet_rest, 1 - hit.breach) if share.same_metric else _Values(1, 1)
    texts = [_moving(watched, hit, quiet, breach), _moving(watched, rest, quiet, breach)]
    names = [watched.metric.value_sample, share.metric.value_sample]
    labels = [watched.series_labels, share.series_labels]
    return [_one(name, own, text) for name, own, text in zip(names, labels, texts, strict=True)]


def _moving(watched: _Watched, values: _Values, quiet: int, breach: int) -> str:
    """One series whose value (a gauge) or rate (a counter) is ``values``."""
    if watched.shape == "gauge":
        calm = 0.0 if values.quiet is None else values.quiet
        return f"{number(calm)}+0x{quiet - 1} {number(values.breach)}+0x{breach}"
    per_second = 1.0 if watched.shape == "rate" else 1 / watched.window
    return _counter(values, per_second * 60, quiet, breach)


def _counter(values: _Values, scale: float, quiet: int, breach: int) -> str:
    """A counter growing ``value * scale`` a minute, quiet then in breach."""
    step = 0.0 if values.quiet is None else values.quiet * scale
    last = _COUNTER_START + step * (quiet - 1)
    faster = values.breach * scale
    return (
        f"{number(_COUNTER_START)}+{number(step)}x{quiet - 1} "
        f"{number(last + faster)}+{number(faster)}x{breach - 1}"
    )


def _buckets(
    alert: AlertPlan, watched: _Watched, values: _Values, quiet: int, breach: int
) -> list[dict[str, str]]:
    """Every observation in the first bucket whose lower bound is past the threshold: the
    quantile is then inside it, past the threshold too."""
    metric = watched.metric
    bounds = list(metric.spec.buckets if metric.spec.buckets is not None else SDK_BUCKETS)
    operator, threshold = alert.comparison
    if operator == "<":
        raise DashgenError(alert.spec.where, "a quantile alert needs above=, not below=")
    lowers = [0.0, *bounds[:-1]]
    chosen = next((i for i, low in enumerate(lowers) if low >= threshold), None)
    if chosen is None:
        raise DashgenError(
            alert.spec.where,
            f"alerts on p{watched.quantile * 100:g} past {number(threshold)}, but the largest "
            f"bucket bound is {number(bounds[-1])}: the quantile never passes it, so the "
            "alert never fires (add buckets)",
        )
    assert metric.bucket_sample is not None
    series = []
    for index, bound in [*enumerate(bounds), (len(bounds), math.inf)]:
        moving = _Values(None, 1 if index >= chosen else 0)
        le = "+Inf" if bound == math.inf else number(bound)
        text = _counter(moving, 60, quiet, breach)
        series.append(_one(metric.bucket_sample, (*watched.series_labels, ("le", le)), text))
    return series


def _one(name: str, labels: Sequence[tuple[str, str]], values: str) -> dict[str, str]:
    matchers = ", ".join(f'{label}="{value}"' for label, value in labels)
    selector = f'{{__name__="{name}", {matchers}}}' if matchers else f'{{__name__="{name}"}}'
    return {"series": selector, "values": values}


def _expected_value(alert: AlertPlan, watched: _Watched, breach: float) -> float:
    if watched.shape != "quantile":
        return breach
    metric = watched.metric
    bounds = list(metric.spec.buckets if metric.spec.buckets is not None else SDK_BUCKETS)
    lowers = [0.0, *bounds[:-1]]
    _, threshold = alert.comparison
    index = next(i for i, low in enumerate(lowers) if low >= threshold)
    return lowers[index] + (bounds[index] - lowers[index]) * watched.quantile


def expand(alert: AlertPlan, key: str, text: str, labels: Mapping[str, str], value: float) -> str:
    """An annotation as Prometheus' templates expand it, for the forms dashgen can
    predict: ``$labels.name``, ``$value``, ``$value | humanize``, ``humanizePercentage``."""

    def one(match: re.Match[str]) -> str:
        inner = match.group(1)
        label = _LABEL_REF.fullmatch(inner)
        if label is not None:
            name = label.group(1)
            if name not in labels:
                have = f"they have {', '.join(sorted(labels))}" if labels else "they have none"
                raise DashgenError(
                    alert.spec.where,
                    f"{key} names $labels.{name}, which its series do not have ({have}): "
                    "Prometheus would write <no value>",
                )
            return labels[name]
        forms = {
            "$value": go_float,
            "$value | humanize": humanize,
            "humanize $value": humanize,
            "$value | humanizePercentage": humanize_percentage,
            "humanizePercentage $value": humanize_percentage,
        }
        form = forms.get(re.sub(r"\s+", " ", inner))
        if form is None:
            raise DashgenError(
                alert.spec.where,
                f"{key} uses {{{{ {inner} }}}}, which dashgen cannot expand for the alert's "
                "promtool test: use $labels.<name>, $value, humanize or humanizePercentage",
            )
        return form(value)

    return _TEMPLATE.sub(one, text)


def go_float(value: float) -> str:
    """``fmt.Sprint`` of a float64, as ``{{ $value }}`` prints it: the shortest digits
    that read back exactly, in exponent form below 1e-4 and from 1e6 up."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, digits))
    point = len(text) + exponent - 1
    prefix = "-" if sign else ""
    if point < -4 or point >= 6:
        mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
        return f"{prefix}{mantissa}e{'-' if point < 0 else '+'}{abs(point):02d}"
    if exponent >= 0:
        return prefix + text + "0" * exponent
    whole = len(text) + exponent
    if whole > 0:
        return f"{prefix}{text[:whole]}.{text[whole:]}"
    return f"{prefix}0.{'0' * -whole}{text}"


def humanize(value: float) -> str:
    """Prometheus' ``humanize``: four significant digits and an SI prefix."""
    if value == 0 or not math.isfinite(value):
        return f"{value:.4g}"
    prefix = ""
    if abs(value) >= 1:
        for unit in ("k", "M", "G", "T", "P", "E", "Z", "Y"):
            if abs(value) < 1000:
                break
            prefix, value = unit, value / 1000
    else:
        for unit in ("m", "u", "n", "p", "f", "a", "z", "y"):
            if abs(value) >= 1:
                break
            prefix, value = unit, value * 1000
    return f"{value:.4g}{prefix}"


def humanize_percentage(value: float) -> str:
    return f"{value * 100:.4g}%"
