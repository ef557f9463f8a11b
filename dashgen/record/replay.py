"""Recorded instruments through the real export path: the names they are stored under.

On the pull exporter (the default) every instrument gets a meter scope of its own on a
private provider, so that the exporter's output says which family, sample and label came
from which instrument; each records once with every attribute key the app used (a value it
used for each), and one the app never recorded records once without attributes (dashgen's
trigger: it names the family, proves no labels). On another path the instruments become
declarations and that path's real export runs.

Used when a recording is read (``verify --recorded``, ``dashgen coverage``) and for an
``--instruments`` callable; the test run that records never loads the SDK.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric as PromFamily

from dashgen.declare import MetricSpec
from dashgen.errors import DashgenError
from dashgen.families import Family
from dashgen.hints import Kind
from dashgen.pipelines import Pipeline
from dashgen.pipelines.prometheus_client_registry import collectors
from dashgen.pipelines.prometheus_exporter import private_pipeline
from dashgen.record.capture import FACTORIES, PROVIDER, install_global
from dashgen.record.recording import (
    ExportedInstrument,
    RecordedFamily,
    RecordedInstrument,
    from_snapshot,
    merge,
)

SCOPE_LABEL = "otel_scope_name"
_SCOPE_PREFIX = "dashgen.record.capture."
_RECORD = {
    Kind.COUNTER: "add",
    Kind.UP_DOWN_COUNTER: "add",
    Kind.HISTOGRAM: "record",
    Kind.GAUGE: "set",
}


@dataclass(frozen=True)
class CaptureExport:
    families: list[Family]
    """Every family as exported; label sets unknown (``None``): dashgen never guesses them."""
    instruments: list[ExportedInstrument]
    """One per instrument identity (see ``recording.merge``), in the recording's order."""


@dataclass
class _Names:
    """What the exporter named for one instrument."""

    family: str
    type: str
    samples: set[str]
    labels: set[str]


def export_recorded(
    instruments: Sequence[RecordedInstrument], pipeline: Pipeline | None = None
) -> CaptureExport:
    """The names of recorded instruments (merged: one per identity) along ``pipeline``
    (default: the pull exporter)."""
    merged = merge(instruments)
    if pipeline is None or pipeline == Pipeline():
        return _replayed(merged)
    return _declared_on(pipeline, merged)


def _replayed(instruments: Sequence[RecordedInstrument]) -> CaptureExport:
    """Replay every instrument on one private provider and collect once.

    Instruments that the exporter merges into one family (two created under one name, or
    names it sanitises alike) are read again each on its own: it pairs their label names and
    values by position, so the scope label no longer says whose sample is whose.
    """
    names, owners, unowned = _read(_collect(instruments))
    shared = {index for group in owners.values() if len(group) > 1 for index in group}
    for index in shared | (set(range(len(instruments))) - names.keys()):
        names[index] = _read(_collect([instruments[index]]))[0][0]
    by_family: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for index, found in names.items():
        samples, family_sites = by_family.setdefault((found.family, found.type), (set(), set()))
        samples.update(found.samples)
        family_sites.add(instruments[index].site)
    families = [
        Family(name, kind, tuple(sorted(samples)), None, ", ".join(sorted(family_sites)))
        for (name, kind), (samples, family_sites) in by_family.items()
    ]
    families += [
        Family(p.name, p.type, tuple(sorted({s.name for s in p.samples})), None) for p in unowned
    ]
    return CaptureExport(
        sorted(families, key=lambda f: (f.name, f.type)),
        [_exported(item, names[i]) for i, item in enumerate(instruments)],
    )


def _collect(instruments: Sequence[RecordedInstrument]) -> list[PromFamily]:
    registry, provider = private_pipeline()
    try:
        for index, item in enumerate(instruments):
            try:
                _replay(provider.get_meter(f"{_SCOPE_PREFIX}{index}"), item)
            except Exception as error:
                raise DashgenError(
                    item.site, f"the OpenTelemetry SDK rejects {item.name!r}: {error}"
                ) from None
        return list(registry.collect())
    finally:
        provider.shutdown()


def _read(
    collected: Sequence[PromFamily],
) -> tuple[dict[int, _Names], dict[str, set[int]], list[PromFamily]]:
    """Names by instrument index, instrument indices by family name, and the families of
    no instrument (``target_info``)."""
    names: dict[int, _Names] = {}
    owners: dict[str, set[int]] = {}
    unowned = []
    for prom in collected:
        found: set[int] = set()
        for sample in prom.samples:
            scope = sample.labels.get(SCOPE_LABEL, "")
            if scope.startswith(_SCOPE_PREFIX):
                index = int(scope[len(_SCOPE_PREFIX) :])
                found.add(index)
                entry = names.setdefault(index, _Names(prom.name, prom.type, set(), set()))
                entry.samples.add(sample.name)
                entry.labels.update(sample.labels)
        if found:
            owners.setdefault(prom.name, set()).update(found)
        else:
            unowned.append(prom)
    return names, owners, unowned


def _replay(meter: Meter, item: RecordedInstrument) -> None:
    attributes = {key: item.values[key][0] for key in item.attribute_keys if item.values.get(key)}
    factory = getattr(meter, FACTORIES[item.kind])
    if item.kind not in _RECORD:
        observation = Observation(1, attributes)

        def observe(_: CallbackOptions) -> list[Observation]:
            return [observation]

        factory(name=item.name, unit=item.unit, callbacks=[observe])
        return
    getattr(factory(name=item.name, unit=item.unit), _RECORD[item.kind])(1, attributes)


def _exported(item: RecordedInstrument, names: _Names) -> ExportedInstrument:
    return ExportedInstrument(
        item,
        RecordedFamily(
            family=names.family,
            type=names.type,
            samples=tuple(sorted(names.samples)),
            labels=tuple(sorted(names.labels)) if item.measurements else None,
        ),
    )


def export_callable(
    target: str, search_path: Path, pipeline: Pipeline | None = None
) -> CaptureExport:
    """Run ``module:function`` under dashgen's provider and export what it created, along
    ``pipeline`` (default: the pull exporter, which the replay runs itself).

    The module is looked up from ``search_path`` (the project root) first, as the app's
    own test runner would find it.
    """
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise DashgenError("--instruments", f"expected 'module:function', got {target!r}")
    install_global()  # before the capture: instruments made earlier elsewhere stay out of it
    collectors_before = len(collectors(REGISTRY))
    with PROVIDER.capturing() as session:
        sys.path.insert(0, str(search_path))
        try:
            function = getattr(importlib.import_module(module_name), function_name)
            function()
        except DashgenError:
            raise
        except Exception as error:
            raise DashgenError(
                target, f"creating the instruments failed: {type(error).__name__}: {error}"
            ) from None
        finally:
            sys.path.remove(str(search_path))
    if not session.instruments:
        created = len(collectors(REGISTRY)) - collectors_before
        if created > 0:
            raise DashgenError(
                target,
                f"created no OpenTelemetry instruments but {created} prometheus_client "
                'collectors: use pipeline = "prometheus-client"',
            )
        raise DashgenError(target, "created no instruments through the global MeterProvider")
    return export_recorded([from_snapshot(s, search_path) for s in session.snapshots()], pipeline)


def _declared_on(pipeline: Pipeline, instruments: Sequence[RecordedInstrument]) -> CaptureExport:
    """Plain OTel instruments on another export path: each instrument's name, kind, unit
    and attribute keys, as a declaration would give them, through that path's real export.
    Instruments of one name are one there too (their attribute keys united)."""
    specs: dict[str, MetricSpec] = {}
    for item in instruments:
        seen = specs.get(item.name)
        file, _, line = item.site.rpartition(":")
        specs[item.name] = MetricSpec(
            name=item.name,
            kind=item.kind if seen is None else seen.kind,
            unit=item.unit if seen is None else seen.unit,
            description="",
            labels=tuple(sorted({*item.attribute_keys, *(seen.labels if seen else ())})),
            buckets=None,
            hints=(),
            exclude_reason=None,
            file=file,
            line=int(line),
        )
    exported = pipeline.export(list(specs.values()))
    named = []
    measured: set[str] = set()
    for item in instruments:
        family = exported.metrics[item.name].family
        names = _Names(family.name, family.type, set(family.samples), set(family.labels or ()))
        named.append(_exported(item, names))
        if item.measurements:
            measured.add(family.name)
    # An instrument the app never recorded into proves no label set, as on the pull path.
    families = [f if f.name in measured else replace(f, labels=None) for f in exported.families]
    return CaptureExport(families, named)
