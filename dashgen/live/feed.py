"""History for ``verify --live``: the catalog recorded through the real pipeline over time.

Each declaration gets the same private instrument the build exports, records values that
move between scrapes (so ``rate()``, ``increase()`` and ``histogram_quantile()`` have
data) under two values of every label (so grouped panels get more than one series), and
the exporter's registry is read once per synthetic scrape.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
)
from opentelemetry.sdk.resources import Resource

from dashgen.declare import MetricSpec
from dashgen.hints import Kind
from dashgen.live.scrape import Series, scrape_window
from dashgen.pipelines import Pipeline
from dashgen.pipelines.otlp import sending_provider
from dashgen.pipelines.prometheus_exporter import SCOPE_LABEL, private_pipeline
from dashgen.pipelines.sdk import (
    create_instrument,
    declaration_meter,
    declaration_of_scope,
    record,
)

#: Observations spread over five orders of magnitude, so any bucket layout gets filled.
_SPREAD = (0.002, 0.03, 0.2, 0.7, 3.0, 8.0, 40.0, 300.0, 4000.0)
_LABEL_VALUES = 2


def label_sets(spec: MetricSpec) -> list[dict[str, str]]:
    """Two attribute sets per declaration, or one per declared real value (``values=``) of
    the label with the most, so that a matcher on any of them finds its series; a label
    without real values takes made-up ones."""
    real = dict(spec.label_values)

    def value(label: str, k: int) -> str:
        known = real.get(label)
        return known[k % len(known)] if known else f"{label}-{k}"

    count = max([_LABEL_VALUES, *(len(values) for values in real.values())])
    return [{label: value(label, k) for label in spec.labels} for k in range(count)]


class _Feeder:
    """The instruments of one declaration and how its values move with the scrape."""

    def __init__(self, spec: MetricSpec, index: int, provider: Any) -> None:
        self.spec = spec
        self.sets = label_sets(spec)
        self.tick = 0
        meter = declaration_meter(provider, index)
        self.instrument = create_instrument(meter, spec, self.observe)

    def value(self, k: int) -> float:
        """Level at the current tick: counters grow, everything else goes up and down."""
        tick = self.tick
        if self.spec.kind is Kind.OBSERVABLE_COUNTER:
            return float((tick + 1) * (k + 2))
        return float(10 + k * 5 + (tick % 4) * (1 if tick % 8 < 4 else -1))

    def observe(self, _: CallbackOptions) -> Iterable[Observation]:
        return [Observation(self.value(k), attributes) for k, attributes in enumerate(self.sets)]

    def advance(self, tick: int) -> None:
        self.tick = tick
        kind = self.spec.kind
        for k, attributes in enumerate(self.sets):
            match kind:
                case Kind.COUNTER:
                    record(self.instrument, kind, 1 + k + tick % 3, attributes)
                case Kind.UP_DOWN_COUNTER:
                    record(self.instrument, kind, 2 + k if tick % 2 == 0 else -1, attributes)
                case Kind.GAUGE:
                    record(self.instrument, kind, self.value(k), attributes)
                case Kind.HISTOGRAM:
                    for offset in range(3):
                        spot = _SPREAD[(tick + offset + k) % len(_SPREAD)]
                        record(self.instrument, kind, spot, attributes)


def feed_catalog(
    specs: Sequence[MetricSpec], *, scrapes: int, step_s: int, end_ms: int
) -> list[Series]:
    """Every declaration's samples at ``scrapes`` synthetic scrapes ending at ``end_ms``."""
    registry, provider = private_pipeline()
    try:
        feeders = [_Feeder(spec, index, provider) for index, spec in enumerate(specs)]

        def tick(i: int) -> None:
            for feeder in feeders:
                feeder.advance(i)

        return scrape_window(registry, tick, scrapes=scrapes, step_s=step_s, end_ms=end_ms)
    finally:
        provider.shutdown()


def feed_otlp(
    specs: Sequence[MetricSpec], *, scrapes: int, step_s: int, end_ms: int
) -> list[bytes]:
    """The same history as OTLP: at each synthetic scrape, the request the real OTLP
    exporter sends, its points stamped with that scrape's time (the SDK stamps "now")."""
    with sending_provider() as (provider, bodies):
        feeders = [_Feeder(spec, index, provider) for index, spec in enumerate(specs)]
        for i in range(scrapes):
            for feeder in feeders:
                feeder.advance(i)
            provider.force_flush()
        sent = bodies[:scrapes]
    start_ms = end_ms - (scrapes - 1) * step_s * 1000
    return [
        _stamped(body, start_ms + i * step_s * 1000, start_ms - step_s * 1000)
        for i, body in enumerate(sent)
    ]


def _stamped(body: bytes, at_ms: int, start_ms: int) -> bytes:
    request = ExportMetricsServiceRequest()
    request.ParseFromString(body)
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                for point in getattr(metric, kind).data_points if kind else ():
                    point.time_unix_nano = at_ms * 1_000_000
                    point.start_time_unix_nano = start_ms * 1_000_000
    stamped = request.SerializeToString()
    assert isinstance(stamped, bytes)
    return stamped


def as_stored_by(
    series: Sequence[Series], specs: Sequence[MetricSpec], pipeline: Pipeline
) -> list[Series]:
    """The fed series as ``pipeline``'s server stores them: the same points, under the
    sample and label names that path gives each declaration (both from real exports)."""
    if pipeline == Pipeline():
        return list(series)
    pulled = Pipeline().export(specs).metrics
    stored = pipeline.export(specs).metrics
    job = str(Resource.create().attributes.get("service.name", "unknown_service"))
    renamed = []
    for one in series:
        labels = dict(one.labels)
        index = declaration_of_scope(labels.get(SCOPE_LABEL, ""))
        if index is None:
            continue  # target_info and the like: the other path has its own
        name = specs[index].name
        theirs, mine = pulled[name], stored[name]
        samples = {
            theirs.value_sample: mine.value_sample,
            theirs.bucket_sample: mine.bucket_sample,
            theirs.sum_sample: mine.sum_sample,
        }
        label_names = {theirs.labels[key]: mine.labels[key] for key in theirs.labels}
        kept = [
            (label_names.get(label, label), value)
            for label, value in one.labels
            if not label.startswith("otel_scope_")
        ]
        renamed.append(
            replace(
                one,
                name=samples[one.name] or one.name,
                family=mine.family.name,
                labels=tuple(sorted([*kept, ("job", job)])),
            )
        )
    return renamed
