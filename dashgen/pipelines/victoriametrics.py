"""Pipeline ``victoriametrics``: the app pushes OTLP to VictoriaMetrics, which names what it
stores by its own rules (dotted names as sent, or with ``-opentelemetry.usePrometheusNaming``
names and labels in Prometheus style, which differ from the Prometheus translator's).

No naming code of ours: the real exporter's payload is posted to a real VictoriaMetrics on
127.0.0.1 and every stored series read back from its export API. VictoriaMetrics keeps no
meter scope, so before posting each declaration's metrics get a resource of their own, the
app's resource plus one marker attribute; the marker label is read and dropped again. Which
sample of a histogram is the count and which the sum shows in their values, as on the other
paths: the count is 1, the sum the probe.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from dashgen.declare import MetricSpec
from dashgen.errors import DashgenError
from dashgen.families import Exported, ExportedMetric, Family
from dashgen.hints import Kind
from dashgen.live.tsdb import OtlpVictoriaMetricsServer
from dashgen.pipelines import Pipeline
from dashgen.pipelines.otlp import payload
from dashgen.pipelines.sdk import HISTOGRAM_PROBE, declaration_of_scope, marker

_DECLARATION_MARKER = "dashgen-declaration-"
_FAMILY_TYPES = {
    Kind.COUNTER: "counter",
    Kind.OBSERVABLE_COUNTER: "counter",
    Kind.HISTOGRAM: "histogram",
}

Stored = list[tuple[dict[str, str], float]]


def export(specs: Sequence[MetricSpec], pipeline: Pipeline) -> Exported:
    body = marked_by_declaration(payload(specs))
    with OtlpVictoriaMetricsServer((), prometheus_naming=pipeline.prometheus_naming) as server:
        server.push_otlp(body)
        stored = server.stored_series()
    return _read(specs, stored, pipeline)


def marked_by_declaration(body: bytes) -> bytes:
    """The payload with each declaration's scope under a resource of its own, marked."""
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    marked = ExportMetricsServiceRequest()
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            index = declaration_of_scope(scope_metrics.scope.name)
            if index is None:
                continue
            one = marked.resource_metrics.add()
            one.resource.CopyFrom(resource_metrics.resource)
            value = AnyValue(string_value=f"{_DECLARATION_MARKER}{index}")
            one.resource.attributes.append(KeyValue(key="dashgen.declaration", value=value))
            one.scope_metrics.append(scope_metrics)
    body = marked.SerializeToString()
    assert isinstance(body, bytes)
    return body


def _read(specs: Sequence[MetricSpec], stored: Stored, pipeline: Pipeline) -> Exported:
    by_declaration: dict[int, Stored] = {}
    for labels, value in stored:
        index = _declaration(labels)
        if index is not None:
            by_declaration.setdefault(index, []).append((labels, value))
    metrics: dict[str, ExportedMetric] = {}
    owner: dict[str, MetricSpec] = {}
    for index, spec in enumerate(specs):
        if index not in by_declaration:
            raise DashgenError(spec.where, "VictoriaMetrics stored no series for it")
        exported = _exported(spec, by_declaration[index])
        pipeline.claim(owner, exported.family.name, spec)
        metrics[spec.name] = exported
    families = sorted((m.family for m in metrics.values()), key=lambda f: f.name)
    return Exported(metrics=metrics, families=tuple(families))


def _declaration(labels: dict[str, str]) -> int | None:
    """Whose series this is, by the marker label (whatever VictoriaMetrics named it),
    which is then dropped."""
    for label, value in labels.items():
        if value.startswith(_DECLARATION_MARKER):
            del labels[label]
            return int(value[len(_DECLARATION_MARKER) :])
    return None


def _exported(spec: MetricSpec, stored: Stored) -> ExportedMetric:
    markers = {marker(i): key for i, key in enumerate(spec.labels)}
    found = {
        markers[value]: label
        for series, _ in stored
        for label, value in series.items()
        if value in markers
    }
    labels = dict(sorted(found.items()))
    label_names = tuple(sorted({label for series, _ in stored for label in series} - {"__name__"}))
    names = {series["__name__"] for series, _ in stored}
    source = f"{spec.file}:{spec.line}"
    family_type = _FAMILY_TYPES.get(spec.kind, "gauge")
    if spec.kind is not Kind.HISTOGRAM:
        (name,) = names
        family = Family(name, family_type, (name,), label_names, source, spec.unit)
        return ExportedMetric(spec, family, labels, value_sample=name)
    bucket = next(series["__name__"] for series, _ in stored if "le" in series)
    count = next(series["__name__"] for series, v in stored if "le" not in series and v == 1)
    total = next(
        series["__name__"] for series, v in stored if "le" not in series and v == HISTOGRAM_PROBE
    )
    same = itertools.takewhile(
        lambda chars: len(set(chars)) == 1, zip(bucket, count, total, strict=False)
    )
    base = "".join(chars[0] for chars in same).rstrip("_.")
    family = Family(base, family_type, (bucket, count, total), label_names, source, spec.unit)
    return ExportedMetric(spec, family, labels, count, bucket_sample=bucket, sum_sample=total)
