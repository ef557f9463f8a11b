"""Pipeline ``otlp``: the app pushes OTLP; a Prometheus-compatible server names what it stores.

The declarations go through the real OTel SDK and the real OTLP/HTTP exporter
(``opentelemetry-exporter-otlp-proto-http``), which posts its protobuf payload to a receiver
this module runs on 127.0.0.1 for the length of one export. The payload is read back with
the OTLP protobuf types, and each metric and attribute named as Prometheus' OTLP receiver
(and Mimir, and the Collector's Prometheus exporters) would: by the translator of
:mod:`dashgen.pipelines.otlp_names`, and the server's resource handling (``job`` from
``service.namespace``/``service.name``, ``instance`` from ``service.instance.id``, the rest
on ``target_info``, promoted attributes on every series).
"""

from __future__ import annotations

import gzip
import math
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric as OtlpMetric
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader

from dashgen.declare import MetricSpec
from dashgen.errors import DashgenError
from dashgen.families import Exported, ExportedMetric, Family
from dashgen.pipelines import Pipeline
from dashgen.pipelines.otlp_names import (
    COUNTER,
    GAUGE,
    TranslationError,
    label_name,
    metric_name,
)
from dashgen.pipelines.sdk import declaration_of_scope, private_provider, trigger_all

#: Resource attributes the server turns into ``job`` and ``instance``, not target_info labels.
_IDENTITY = ("service.name", "service.namespace", "service.instance.id")
_NEVER = math.inf  # no export thread: the reader exports when flushed, and at shutdown


def export(specs: Sequence[MetricSpec], pipeline: Pipeline) -> Exported:
    request = ExportMetricsServiceRequest()
    request.ParseFromString(payload(specs))
    return _read(specs, request, pipeline)


def payload(specs: Sequence[MetricSpec]) -> bytes:
    """What the real exporter sends for the declarations (an ``ExportMetricsServiceRequest``),
    as the receiver got it; empty when it sent nothing (each declaration is then missing)."""
    with sending_provider() as (provider, bodies):
        trigger_all(provider, specs)
        provider.force_flush()
    return bodies[0] if bodies else b""  # the flush's export; shutdown's repeats it


@contextmanager
def sending_provider() -> Iterator[tuple[MeterProvider, list[bytes]]]:
    """A MeterProvider whose every ``force_flush`` the real OTLP/HTTP exporter posts to a
    receiver on 127.0.0.1, and the bodies the receiver got, in order."""
    with _receiver() as (url, bodies):
        exporter = OTLPMetricExporter(endpoint=url, timeout=10)
        reader = PeriodicExportingMetricReader(exporter, export_interval_millis=_NEVER)
        provider = private_provider([reader])
        try:
            yield provider, bodies
        finally:
            provider.shutdown()


@contextmanager
def _receiver() -> Iterator[tuple[str, list[bytes]]]:
    """An OTLP/HTTP endpoint on 127.0.0.1 that keeps every body posted to it."""
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.headers.get("Content-Encoding") == "gzip":
                data = gzip.decompress(data)
            bodies.append(data)
            self.send_response(200)
            self.send_header("Content-Type", "application/x-protobuf")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the receiver is dashgen's own."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    # A short poll, so that shutting the receiver down costs milliseconds, not half a second.
    thread = threading.Thread(target=server.serve_forever, args=(0.005,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/metrics", bodies
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class _Names:
    """How one pipeline's server names things."""

    pipeline: Pipeline

    def metric(self, spec: MetricSpec, otlp_type: str) -> str:
        try:
            return metric_name(spec.name, spec.unit, otlp_type, self.pipeline.translation_strategy)
        except TranslationError as error:
            raise DashgenError(spec.where, f"{self._who} refuses it: {error.message}") from None

    def label(self, key: str, spec: MetricSpec | None = None) -> str:
        try:
            return label_name(key, self.pipeline.translation_strategy)
        except TranslationError as error:
            place = spec.where if spec is not None else "resource"
            raise DashgenError(place, f"{self._who} refuses '{key}': {error.message}") from None

    @property
    def _who(self) -> str:
        return f"the Prometheus OTLP translator ({self.pipeline.translation_strategy})"


def _read(
    specs: Sequence[MetricSpec], request: ExportMetricsServiceRequest, pipeline: Pipeline
) -> Exported:
    names = _Names(pipeline)
    resource: dict[str, str] = {}
    metrics: dict[str, ExportedMetric] = {}
    owner: dict[str, MetricSpec] = {}
    for resource_metrics in request.resource_metrics:
        resource = _attributes(resource_metrics.resource.attributes)
        common = _resource_labels(resource, pipeline, names)
        for scope_metrics in resource_metrics.scope_metrics:
            index = declaration_of_scope(scope_metrics.scope.name)
            if index is None:
                continue
            for metric in scope_metrics.metrics:
                spec = specs[index]
                exported = _exported(spec, metric, common, names)
                pipeline.claim(owner, exported.family.name, spec)
                metrics[spec.name] = exported
    for spec in specs:
        if spec.name not in metrics:
            raise DashgenError(spec.where, "the OTLP exporter sent no metric for it")
    families = [m.family for m in metrics.values()]
    families.append(_target_info(resource, pipeline, names))
    return Exported(
        metrics={spec.name: metrics[spec.name] for spec in specs},  # in declaration order
        families=tuple(sorted(families, key=lambda f: f.name)),
    )


def _attributes(pairs: Sequence[KeyValue]) -> dict[str, str]:
    return {pair.key: pair.value.string_value for pair in pairs}


def _resource_labels(
    resource: Mapping[str, str], pipeline: Pipeline, names: _Names
) -> tuple[str, ...]:
    """Labels every series of the resource carries: job, instance, promoted attributes."""
    labels = []
    if "service.name" in resource:
        labels.append("job")
    if "service.instance.id" in resource:
        labels.append("instance")
    promoted = [key for key in pipeline.promote_resource_attributes if key in resource]
    return tuple([*labels, *(names.label(key) for key in promoted)])


def _target_info(resource: Mapping[str, str], pipeline: Pipeline, names: _Names) -> Family:
    """The info family the server makes of the resource's other attributes."""
    kept = [key for key in resource if key not in _IDENTITY]
    labels = {names.label(key) for key in kept} | set(_resource_labels(resource, pipeline, names))
    return Family("target_info", "gauge", ("target_info",), tuple(sorted(labels)))


def _exported(
    spec: MetricSpec, metric: OtlpMetric, common: tuple[str, ...], names: _Names
) -> ExportedMetric:
    kind = metric.WhichOneof("data") or "gauge"
    points = getattr(metric, kind).data_points
    keys = sorted({pair.key for point in points for pair in point.attributes})
    labels = {key: names.label(key, spec) for key in keys}
    _refuse_merged_labels(spec, labels)
    label_names = sorted({*labels.values(), *common})
    if kind == "sum":
        otlp_type = COUNTER if metric.sum.is_monotonic else "nonmonotonic_counter"
        name = names.metric(spec, otlp_type)
        family_type = "counter" if metric.sum.is_monotonic else "gauge"
        family = Family(name, family_type, (name,), tuple(label_names), _at(spec), spec.unit)
        return ExportedMetric(spec, family, labels, value_sample=name)
    if kind == "histogram":
        base = names.metric(spec, "histogram")
        samples = (f"{base}_bucket", f"{base}_count", f"{base}_sum")
        labelled = tuple(sorted({*label_names, "le"}))
        family = Family(base, "histogram", samples, labelled, _at(spec), spec.unit)
        return ExportedMetric(
            spec, family, labels, samples[1], bucket_sample=samples[0], sum_sample=samples[2]
        )
    name = names.metric(spec, GAUGE)
    family = Family(name, "gauge", (name,), tuple(label_names), _at(spec), spec.unit)
    return ExportedMetric(spec, family, labels, value_sample=name)


def _refuse_merged_labels(spec: MetricSpec, labels: Mapping[str, str]) -> None:
    seen: dict[str, str] = {}
    for key, label in labels.items():
        other = seen.setdefault(label, key)
        if other != key:
            raise DashgenError(
                spec.where,
                f"attributes '{other}' and '{key}' are both stored as label '{label}': rename one",
            )


def _at(spec: MetricSpec) -> str:
    return f"{spec.file}:{spec.line}"
