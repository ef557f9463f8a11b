"""Captured instruments through the real OTel -> Prometheus pipeline: the exported names.

Every snapshot gets a meter scope of its own on a private provider, so that the exporter's
output says which family, sample and label came from which instrument. Each records once
per attribute set the app used, with the app's own attributes; one the app never recorded
records once without attributes (dashgen's trigger: it names the family, proves no labels).

Also the helper process of recording mode (``python -m dashgen.replay``): the pytest plugin
starts it when the session starts, so that importing the SDK and the exporter overlaps the
test run; at the end it receives the snapshots on stdin, writes the recording file and
answers with a summary on stdout.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from opentelemetry.metrics import CallbackOptions, Meter, Observation
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import Metric as PromFamily

from dashgen.capture import FACTORIES, PROVIDER, Snapshot, install_global
from dashgen.config import load_config
from dashgen.declare import MetricSpec
from dashgen.errors import DashgenError
from dashgen.families import Family
from dashgen.hints import Kind
from dashgen.pipelines import Pipeline
from dashgen.pipelines.prometheus_client_registry import collectors
from dashgen.pipelines.prometheus_exporter import private_pipeline
from dashgen.recording import (
    DEFAULT_PATH,
    RecordedFamily,
    RecordedInstrument,
    bounded_sites,
    merge,
    project_path,
    sum_known,
    write_recording,
)

SCOPE_LABEL = "otel_scope_name"
_SCOPE_PREFIX = "dashgen.capture."
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
    instruments: list[RecordedInstrument]
    """One per instrument identity (see ``recording.merge``), sites relative to the root."""


@dataclass
class _Names:
    """What the exporter named for one instrument."""

    family: str
    type: str
    samples: set[str]
    labels: set[str]


def export_snapshots(snapshots: Sequence[Snapshot], root: Path) -> CaptureExport:
    """Replay every instrument on one private provider and collect once.

    Snapshots of one instrument are replayed as one. Instruments that the exporter merges
    into one family (two created under one name, or names it sanitises alike) are read again
    each on its own: it pairs their label names and values by position, so the scope label
    no longer says whose sample is whose.
    """
    instruments = _one_per_instrument(snapshots)
    sites = [f"{project_path(s.file, root)}:{s.line}" for s in instruments]
    names, owners, unowned = _read(_collect(instruments, sites))
    shared = {index for group in owners.values() if len(group) > 1 for index in group}
    for index in shared | (set(range(len(instruments))) - names.keys()):
        names[index] = _read(_collect([instruments[index]], [sites[index]]))[0][0]
    by_family: dict[tuple[str, str], tuple[set[str], set[str]]] = {}
    for index, found in names.items():
        samples, family_sites = by_family.setdefault((found.family, found.type), (set(), set()))
        samples.update(found.samples)
        family_sites.add(sites[index])
    families = [
        Family(name, kind, tuple(sorted(samples)), None, ", ".join(sorted(family_sites)))
        for (name, kind), (samples, family_sites) in by_family.items()
    ]
    families += [
        Family(p.name, p.type, tuple(sorted({s.name for s in p.samples})), None) for p in unowned
    ]
    return CaptureExport(
        sorted(families, key=lambda f: (f.name, f.type)),
        merge(_recorded(s, sites[i], names[i]) for i, s in enumerate(instruments)),
    )


def _one_per_instrument(snapshots: Sequence[Snapshot]) -> list[Snapshot]:
    """Snapshots of one instrument (from several processes, or created several times at one
    site) as one: measurements add up, attribute sets unite."""
    merged: dict[tuple[object, ...], Snapshot] = {}
    for snapshot in snapshots:
        key = (
            snapshot.name,
            snapshot.kind,
            snapshot.unit,
            snapshot.scope,
            snapshot.file,
            snapshot.line,
        )
        seen = merged.get(key)
        if seen is None:
            merged[key] = snapshot
            continue
        sets = {tuple(a): a for a in (*snapshot.attribute_sets, *seen.attribute_sets)}
        merged[key] = replace(
            seen,
            measurements=seen.measurements + snapshot.measurements,
            attribute_sets=tuple(sets.values()),
            production=sum_known(seen.production, snapshot.production),
            production_sites=bounded_sites({*seen.production_sites, *snapshot.production_sites}),
            test_sites=bounded_sites({*seen.test_sites, *snapshot.test_sites}),
        )
    return list(merged.values())


def _collect(instruments: Sequence[Snapshot], sites: Sequence[str]) -> list[PromFamily]:
    registry, provider = private_pipeline()
    try:
        for index, snapshot in enumerate(instruments):
            try:
                _replay(provider.get_meter(f"{_SCOPE_PREFIX}{index}"), snapshot)
            except Exception as error:
                raise DashgenError(
                    sites[index], f"the OpenTelemetry SDK rejects {snapshot.name!r}: {error}"
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


def _replay(meter: Meter, snapshot: Snapshot) -> None:
    attribute_sets = snapshot.attribute_sets or ({},)
    factory = getattr(meter, FACTORIES[snapshot.kind])
    common = {"name": snapshot.name, "unit": snapshot.unit, "description": snapshot.description}
    if snapshot.kind not in _RECORD:
        observations = [Observation(1, attributes) for attributes in attribute_sets]

        def observe(_: CallbackOptions) -> list[Observation]:
            return observations

        factory(**common, callbacks=[observe])
        return
    record = getattr(factory(**common), _RECORD[snapshot.kind])
    for attributes in attribute_sets:
        record(1, attributes)


def _recorded(snapshot: Snapshot, site: str, names: _Names) -> RecordedInstrument:
    return RecordedInstrument(
        name=snapshot.name,
        kind=snapshot.kind,
        unit=snapshot.unit,
        scope=snapshot.scope,
        site=site,
        measurements=snapshot.measurements,
        attribute_keys=tuple(sorted({key for a in snapshot.attribute_sets for key in a})),
        exported=RecordedFamily(
            family=names.family,
            type=names.type,
            samples=tuple(sorted(names.samples)),
            labels=tuple(sorted(names.labels)) if snapshot.measurements else None,
        ),
        production=snapshot.production,
        production_sites=snapshot.production_sites,
        test_sites=snapshot.test_sites,
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
    if pipeline is None or pipeline == Pipeline():
        return export_snapshots(session.snapshots(), search_path)
    return export_on(pipeline, session.snapshots(), search_path)


def export_on(pipeline: Pipeline, snapshots: Sequence[Snapshot], root: Path) -> CaptureExport:
    """Plain OTel instruments on another export path: each instrument's name, kind, unit
    and attribute keys, as a declaration would give them, through that path's real export.
    Instruments of one name are one there too (their attribute keys united)."""
    instruments = _one_per_instrument(snapshots)
    specs: dict[str, MetricSpec] = {}
    for snapshot in instruments:
        keys = {key for attributes in snapshot.attribute_sets for key in attributes}
        seen = specs.get(snapshot.name)
        specs[snapshot.name] = MetricSpec(
            name=snapshot.name,
            kind=snapshot.kind if seen is None else seen.kind,
            unit=snapshot.unit if seen is None else seen.unit,
            description=snapshot.description,
            labels=tuple(sorted(keys | set(seen.labels if seen else ()))),
            buckets=None,
            hints=(),
            exclude_reason=None,
            file=project_path(snapshot.file, root),
            line=snapshot.line,
        )
    exported = pipeline.export(list(specs.values()))
    recorded = []
    measured: set[str] = set()
    for snapshot in instruments:
        family = exported.metrics[snapshot.name].family
        names = _Names(family.name, family.type, set(family.samples), set(family.labels or ()))
        site = f"{project_path(snapshot.file, root)}:{snapshot.line}"
        recorded.append(_recorded(snapshot, site, names))
        if snapshot.measurements:
            measured.add(family.name)
    # An instrument the app never recorded into proves no label set, as on the pull path.
    families = [f if f.name in measured else replace(f, labels=None) for f in exported.families]
    return CaptureExport(families, merge(recorded))


def write_session(rootpath: Path, snapshots: Sequence[Snapshot]) -> dict[str, object]:
    """Recording mode's last step: export, write the recording file, sum it up."""
    config = load_config(rootpath)
    path = config.recorded or config.root / DEFAULT_PATH
    instruments = export_snapshots(snapshots, config.root).instruments
    write_recording(path, instruments)
    return {
        "path": path.relative_to(config.root).as_posix()
        if path.is_relative_to(config.root)
        else str(path),
        "instruments": len(instruments),
        "recorded": sum(i.recorded for i in instruments),
        "dead": sorted({i.name for i in instruments if not i.recorded}),
        "test_only": sorted({i.name for i in instruments if i.test_only}),
    }


def main() -> None:
    """The helper: one JSON request on stdin (nothing: the session wrote nothing), one JSON
    answer on stdout, ``{"error": ...}`` for bad input."""
    request = sys.stdin.read()
    if not request:
        return
    data = json.loads(request)
    try:
        answer = write_session(
            Path(data["rootpath"]), [Snapshot.from_json(s) for s in data["instruments"]]
        )
    except DashgenError as error:
        answer = {"error": str(error)}
    json.dump(answer, sys.stdout)


if __name__ == "__main__":
    main()
    sys.stdout.flush()
    # The answer is out and the file is closed; the interpreter's teardown with the SDK
    # loaded takes longer than the export itself, and the test session waits for it.
    os._exit(0)
