"""The recording file: what the app's own test run created and recorded, instrument by instrument.

Written by the pytest plugin in recording mode (``pytest --dashgen-record``), read by
``dashgen verify --recorded`` and ``dashgen coverage``. Deterministic so that it can be
committed or kept as a CI artifact: keys and entries sorted, sites relative to the project,
no timestamps, two-space indentation, one trailing newline. Format, version 1::

    {
      "instruments": [                   # sorted by name, site, kind, unit, scope
        {
          "attribute_keys": [str],       # every attribute key the app recorded, sorted
          "exported": {                  # what the real exporter made of it
            "family": str,               # Prometheus family name
            "labels": [str] | null,      # label names of the app's recordings; null when the
                                         # app never recorded it (dashgen's trigger is no proof)
            "samples": [str],            # sample names, e.g. ["x_total"]
            "type": str                  # counter, gauge, histogram, ...
          },
          "kind": str,                   # Counter, Histogram, ObservableGauge, ...
          "measurements": int,           # measurements the app recorded (observations for
                                         # observables); dashgen's own trigger does not count
          "name": str,                   # instrument name as created
          "recorded": bool,              # measurements > 0
          "scope": str,                  # meter name the app asked for
          "site": str,                   # "path:line" of the creation (the declaration for
                                         # dashgen metrics), relative to the project root
                                         # (to site-packages for a library's own code)
          "unit": str
        }
      ],
      "version": 1
    }

The same instrument created at the same site in several processes (pytest-xdist workers) or
several times in one process is one entry: measurements add up, keys and labels unite.
"""

from __future__ import annotations

import json
import os
import sysconfig
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dashgen.errors import DashgenError
from dashgen.hints import Kind

FORMAT_VERSION = 1
DEFAULT_PATH = ".dashgen/recorded.json"
# Where installed packages live, most specific first (site-packages may be inside stdlib);
# checked before the project root, which may hold the venv.
_LIBRARY_DIRS = tuple(
    Path(p)
    for p in sorted(
        {sysconfig.get_paths()[k] for k in ("purelib", "platlib", "stdlib")}, key=len, reverse=True
    )
)


@dataclass(frozen=True)
class RecordedFamily:
    """The exporter's names for one instrument; ``labels`` None when the app never recorded."""

    family: str
    type: str
    samples: tuple[str, ...]
    labels: tuple[str, ...] | None


@dataclass(frozen=True)
class RecordedInstrument:
    """One instrument of the run and what the app recorded into it."""

    name: str
    kind: Kind
    unit: str
    scope: str
    site: str
    measurements: int
    attribute_keys: tuple[str, ...]
    exported: RecordedFamily
    production: int | None = None
    """Of ``measurements``, those the project's non-test code made; None in a recording
    made without caller attribution (all count as production then)."""
    production_sites: tuple[str, ...] = ()
    test_sites: tuple[str, ...] = ()
    """Where only tests recorded it: the test that called the wrapper or declaration."""

    @property
    def recorded(self) -> bool:
        return self.measurements > 0

    @property
    def test_only(self) -> bool:
        """Recorded, but by tests alone: production never updates it."""
        return self.measurements > 0 and self.production == 0

    def key(self) -> tuple[str, str, str, str, str]:
        """Identity across processes, and the sort order of the file."""
        return (self.name, self.site, self.kind.value, self.unit, self.scope)


def project_path(file: str, root: Path) -> str:
    """A path that reads the same on every machine: relative to the installed-libraries dir
    (an instrumentation library's own code), else to the project root, else the file name."""
    path = Path(os.path.abspath(file))
    for base in (*_LIBRARY_DIRS, root):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return path.name


def merge(instruments: Iterable[RecordedInstrument]) -> list[RecordedInstrument]:
    """One entry per identity, sorted: measurements add up, keys, samples and labels unite."""
    merged: dict[tuple[str, ...], RecordedInstrument] = {}
    for item in instruments:
        seen = merged.get(item.key())
        merged[item.key()] = item if seen is None else _merge_two(seen, item)
    return [merged[key] for key in sorted(merged)]


def _merge_two(first: RecordedInstrument, second: RecordedInstrument) -> RecordedInstrument:
    labels = [e.labels for e in (first.exported, second.exported) if e.labels is not None]
    exported = RecordedFamily(
        family=first.exported.family,
        type=first.exported.type,
        samples=tuple(sorted({*first.exported.samples, *second.exported.samples})),
        labels=tuple(sorted({label for group in labels for label in group})) if labels else None,
    )
    return RecordedInstrument(
        name=first.name,
        kind=first.kind,
        unit=first.unit,
        scope=first.scope,
        site=first.site,
        measurements=first.measurements + second.measurements,
        attribute_keys=tuple(sorted({*first.attribute_keys, *second.attribute_keys})),
        exported=exported,
        production=sum_known(first.production, second.production),
        production_sites=bounded_sites({*first.production_sites, *second.production_sites}),
        test_sites=bounded_sites({*first.test_sites, *second.test_sites}),
    )


_MAX_SITES = 10


def sum_known(first: int | None, second: int | None) -> int | None:
    return None if first is None and second is None else (first or 0) + (second or 0)


def bounded_sites(sites: set[str]) -> tuple[str, ...]:
    """The first sites in sorted order, so that every run keeps the same ones."""
    return tuple(sorted(sites)[:_MAX_SITES])


def to_entry(item: RecordedInstrument) -> dict[str, Any]:
    """Plain JSON data (also what pytest-xdist workers send to the controller)."""
    exported = item.exported
    return {
        "attribute_keys": list(item.attribute_keys),
        "exported": {
            "family": exported.family,
            "labels": None if exported.labels is None else list(exported.labels),
            "samples": list(exported.samples),
            "type": exported.type,
        },
        "kind": item.kind.value,
        "measurements": item.measurements,
        "name": item.name,
        "production": item.production,
        "production_sites": list(item.production_sites),
        "recorded": item.recorded,
        "scope": item.scope,
        "site": item.site,
        "test_sites": list(item.test_sites),
        "unit": item.unit,
    }


def from_entry(entry: Mapping[str, Any]) -> RecordedInstrument:
    """Raises KeyError, TypeError or ValueError on anything but a valid entry."""
    exported = entry["exported"]
    labels = exported["labels"]
    measurements = entry["measurements"]
    if not isinstance(measurements, int) or measurements < 0:
        raise ValueError(f"measurements must be a count, got {measurements!r}")
    production = entry.get("production")
    if production is not None and (not isinstance(production, int) or production < 0):
        raise ValueError(f"production must be a count, got {production!r}")
    return RecordedInstrument(
        name=_text(entry["name"]),
        kind=Kind(entry["kind"]),
        unit=_text(entry["unit"]),
        scope=_text(entry["scope"]),
        site=_text(entry["site"]),
        measurements=measurements,
        attribute_keys=_texts(entry["attribute_keys"]),
        exported=RecordedFamily(
            family=_text(exported["family"]),
            type=_text(exported["type"]),
            samples=_texts(exported["samples"]),
            labels=None if labels is None else _texts(labels),
        ),
        production=production,
        production_sites=_texts(entry.get("production_sites", [])),
        test_sites=_texts(entry.get("test_sites", [])),
    )


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _texts(values: object) -> tuple[str, ...]:
    if not isinstance(values, list):
        raise TypeError(f"expected a list of strings, got {values!r}")
    return tuple(sorted(_text(v) for v in values))


def dumps(instruments: Sequence[RecordedInstrument]) -> str:
    """The file's exact text: merged, sorted, with a trailing newline."""
    document = {"instruments": [to_entry(i) for i in merge(instruments)], "version": 1}
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_recording(path: Path, instruments: Sequence[RecordedInstrument]) -> None:
    """Replace ``path`` in one step, so that a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(dumps(instruments), encoding="utf-8")
        partial.replace(path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DashgenError(str(path), f"cannot write the recording: {error}") from None


def read_recording(path: Path) -> list[RecordedInstrument]:
    """Read and check a recording; anything else is an input error naming the file."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DashgenError(
            str(path), "recording not found: run the tests with `pytest --dashgen-record` first"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DashgenError(str(path), f"cannot read the recording: {error}") from None
    if not isinstance(document, dict) or document.get("version") != FORMAT_VERSION:
        raise DashgenError(str(path), f"not a dashgen recording of format version {FORMAT_VERSION}")
    try:
        return merge(from_entry(entry) for entry in document["instruments"])
    except (KeyError, TypeError, ValueError) as error:
        raise DashgenError(str(path), f"malformed recording entry: {error!r}") from None
