"""Pipeline ``prometheus-exporter``: the Python pull exporter, run for real.

The declarations go through the OTel SDK and ``PrometheusMetricReader``, as an app that
serves ``/metrics`` with ``opentelemetry-exporter-prometheus`` exports them.

Nothing here knows how OpenTelemetry names become Prometheus names. Each declaration gets
its own meter scope and every attribute a marker value, so that the exporter's own output
says which family, sample and label came from which declaration and attribute.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from sys import intern

from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry
from prometheus_client.metrics_core import Metric as PromFamily

from dashgen import collector
from dashgen.declare import MetricSpec
from dashgen.errors import DashgenError
from dashgen.families import Exported, ExportedMetric, Family
from dashgen.hints import Kind
from dashgen.pipelines import Pipeline
from dashgen.pipelines.sdk import (
    HISTOGRAM_PROBE,
    declaration_of_scope,
    marker,
    private_provider,
    trigger_all,
)

SCOPE_LABEL = "otel_scope_name"
#: Labels a Prometheus scrape attaches to every series of the target; a metric's own label
#: of the same name is renamed ``exported_<name>`` (``honor_labels`` off, the default).
SCRAPE_TARGET_LABELS = frozenset({"job", "instance"})


def export(specs: Sequence[MetricSpec], pipeline: Pipeline | None = None) -> Exported:
    """Register every declaration on a private provider, trigger each, collect once.

    The cyclic garbage collector is off meanwhile: the SDK allocates many small objects
    that live until the collection, and tracing them cost a fifth of the export's time.
    """
    with collector.paused():
        collected = _collect(specs)
        if specs and not any(SCOPE_LABEL in s.labels for f in collected for s in f.samples):
            return _read_families(specs, _collected_alone(specs))
        return _read_families(specs, [(_owners(family), family) for family in collected])


def _collected_alone(specs: Sequence[MetricSpec]) -> list[tuple[list[int], PromFamily]]:
    """Each declaration exported on its own, for exporters before 0.64b0, which write no
    ``otel_scope_*`` labels to say whose a sample is (slower: one collection each)."""
    return [
        ([index], family)
        for index, spec in enumerate(specs)
        for family in _collect([spec])
        if family.type != "info"
    ]


def private_pipeline() -> tuple[CollectorRegistry, MeterProvider]:
    """A MeterProvider whose only reader exports into a registry of its own.

    Kept off prometheus_client's global REGISTRY, so that builds, tests and the app's own
    metrics never see each other.
    """
    registry = CollectorRegistry()
    return registry, private_provider([_reader_into(registry)])


def _reader_into(registry: CollectorRegistry) -> PrometheusMetricReader:
    """A reader exporting into ``registry``. Exporters before 0.63b0 take no registry: their
    collector goes into the global one as they are made, and out again at shutdown (which
    ``_collect`` always does); ``registry`` gets it too, and is what dashgen reads."""
    try:
        return PrometheusMetricReader(registry=registry)
    except TypeError:
        reader = PrometheusMetricReader()
        registry.register(reader._collector)
        return reader


def _collect(specs: Sequence[MetricSpec]) -> list[PromFamily]:
    registry, provider = private_pipeline()
    try:
        trigger_all(provider, specs)
        return list(registry.collect())
    finally:
        provider.shutdown()


def _read_families(
    specs: Sequence[MetricSpec], collected: list[tuple[list[int], PromFamily]]
) -> Exported:
    """The families, each with the declarations (by index) whose samples it holds."""
    by_spec: dict[int, list[tuple[PromFamily, Family]]] = defaultdict(list)
    sample_owner: dict[str, int] = {}
    families: list[Family] = []
    for owners, prom in collected:
        if len(owners) > 1:
            first, second = (specs[i] for i in owners[:2])
            raise DashgenError(
                second.where,
                f"collides with '{first.name}' ({first.file}:{first.line}): both export as "
                f"Prometheus family '{prom.name}'",
            )
        if not owners:
            families.append(_family(prom, ""))
            continue
        owner = owners[0]
        spec = specs[owner]
        family = _family(prom, f"{spec.file}:{spec.line}", spec.unit)
        by_spec[owner].append((prom, family))
        families.append(family)
        for sample in family.samples:
            other = sample_owner.setdefault(sample, owner)
            if other != owner:
                raise DashgenError(
                    spec.where,
                    f"collides with '{specs[other].name}' ({specs[other].file}:"
                    f"{specs[other].line}): both export the sample '{sample}'",
                )
    for index, spec in enumerate(specs):
        if not by_spec[index]:
            _explain_lost(spec, specs, by_spec)
    exported = {spec.name: _exported(spec, by_spec[i]) for i, spec in enumerate(specs)}
    return Exported(metrics=exported, families=tuple(sorted(families, key=lambda f: f.name)))


def _explain_lost(
    spec: MetricSpec,
    specs: Sequence[MetricSpec],
    by_spec: Mapping[int, list[tuple[PromFamily, Family]]],
) -> None:
    """A declaration without a family of its own was merged into another one.

    When two instruments with different attributes merge into one family, the exporter
    pairs label names and values by position, so the scope label cannot say whose sample
    is whose. Exporting the lost declaration alone tells its family name; the other
    declaration with that family name is the one it collides with.
    """
    alone = [f.name for f in _collect([spec]) if f.type != "info"]
    for index, families in by_spec.items():
        if any(family.name in alone for _, family in families):
            other = specs[index]
            raise DashgenError(
                spec.where,
                f"collides with '{other.name}' ({other.file}:{other.line}): both export as "
                f"Prometheus family '{alone[0]}'",
            )
    raise DashgenError(spec.where, "the exporter produced no family for it")


def _owners(prom: PromFamily) -> list[int]:
    scopes = {declaration_of_scope(s.labels.get(SCOPE_LABEL, "")) for s in prom.samples}
    return sorted(owner for owner in scopes if owner is not None)


def _family(prom: PromFamily, source: str, unit: str = "") -> Family:
    return Family(
        name=prom.name,
        type=prom.type,
        samples=tuple(sorted({s.name for s in prom.samples})),
        # Interned: thousands of families share a few label names, which are then held,
        # and pickled across processes, once.
        labels=tuple(sorted({intern(label) for s in prom.samples for label in s.labels})),
        source=source,
        unit=unit,
    )


def _exported(spec: MetricSpec, found: list[tuple[PromFamily, Family]]) -> ExportedMetric:
    ((prom, family),) = found
    labels = _attribute_labels(spec, prom)
    if spec.kind is not Kind.HISTOGRAM:
        return ExportedMetric(spec, family, labels, value_sample=prom.samples[0].name)
    bucket = next(s.name for s in prom.samples if "le" in s.labels)
    plain = [s for s in prom.samples if "le" not in s.labels]
    count = next(s.name for s in plain if s.value == 1)
    total = next(s.name for s in plain if s.value == HISTOGRAM_PROBE)
    return ExportedMetric(
        spec, family, labels, value_sample=count, bucket_sample=bucket, sum_sample=total
    )


def _attribute_labels(spec: MetricSpec, prom: PromFamily) -> dict[str, str]:
    """Find each attribute's exported label by its marker value; a lost marker is a clash."""
    sample_labels = prom.samples[0].labels
    by_value = {value: label for label, value in sample_labels.items()}
    labels: dict[str, str] = {}
    for index, attribute in enumerate(spec.labels):
        label = by_value.get(marker(index))
        if label is None:
            clashing = [a for a in spec.labels if a != attribute]
            raise DashgenError(
                spec.where,
                f"attribute '{attribute}' is lost in export: it collides with another "
                f"attribute or a reserved label (declared: {[*clashing, attribute]})",
            )
        if label in SCRAPE_TARGET_LABELS:
            raise DashgenError(
                spec.where,
                f"attribute '{attribute}' exports as label '{label}', which the Prometheus "
                f"scrape sets itself (it would store yours as 'exported_{label}'): rename "
                "the attribute",
            )
        labels[attribute] = label
    return labels
