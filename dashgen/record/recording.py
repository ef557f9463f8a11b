"""The recording file: what the app's own test run created and recorded, instrument by instrument.

Written by the pytest plugin in recording mode (``pytest --dashgen-record``), read by
``dashgen verify --recorded`` and ``dashgen coverage``. It holds what the run did, not what
an exporter makes of it: the readers put it through the configured export path (the real
one) when they read it, so that the test run never loads the SDK and the names always follow
the pipeline of the check. Deterministic so that it can be committed or kept as a CI
artifact: keys and entries sorted, sites relative to the project, no timestamps, two-space
indentation, one trailing newline. Format, version 2::

    {
      "instruments": [                   # sorted by name, site, kind, unit, scope
        {
          "attribute_keys": [str],       # every attribute key the app recorded, sorted
          "kind": str,                   # Counter, Histogram, ObservableGauge, ...
          "measurements": int,           # measurements the app recorded (observations for
                                         # observables)
          "name": str,                   # instrument name as created
          "production": int | null,      # of those, made by the project's non-test code
                                         # (null: recorded without caller attribution)
          "production_sites": [str],     # "path:line" of production callers (at most 10)
          "recorded": bool,              # measurements > 0
          "scope": str,                  # meter name the app asked for
          "site": str,                   # "path:line" of the creation (the declaration for
                                         # dashgen metrics), relative to the project root
                                         # (to site-packages for a library's own code)
          "test_sites": [str],           # "path:line" of tests that recorded it directly
          "unit": str,
          "values": {str: [value]}       # a few recorded values per key (at most 5, sorted)
        }
      ],
      "version": 2
    }

The same instrument created at the same site in several processes (pytest-xdist workers) or
several times in one process is one entry: measurements add up, keys, sites and values unite.
Under pytest-xdist the values sampled may differ from run to run (which worker saw what).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashgen.errors import DashgenError
from dashgen.hints import Kind
from dashgen.record.capture import Snapshot

FORMAT_VERSION = 2
DEFAULT_PATH = ".dashgen/recorded.json"
MAX_SITES = 10
MAX_VALUES = 5


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
    values: Mapping[str, tuple[Any, ...]] = field(default_factory=dict)
    """Attribute key -> a few values the app recorded with it (plain JSON values, sorted)."""
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

    @property
    def module(self) -> str:
        """The file that creates the instrument: findings of an adoption run group by it."""
        return self.site.rpartition(":")[0]

    def key(self) -> tuple[str, str, str, str, str]:
        """Identity across processes, and the sort order of the file."""
        return (self.name, self.site, self.kind.value, self.unit, self.scope)


@dataclass(frozen=True)
class RecordedFamily:
    """The exporter's names for one instrument; ``labels`` None when the app never recorded."""

    family: str
    type: str
    samples: tuple[str, ...]
    labels: tuple[str, ...] | None


@dataclass(frozen=True)
class ExportedInstrument:
    """A recorded instrument and what the configured export path names it."""

    instrument: RecordedInstrument
    exported: RecordedFamily


def from_snapshot(snapshot: Snapshot, root: Path) -> RecordedInstrument:
    """What the capture counted of one instrument, as the file keeps it."""
    values: dict[str, list[Any]] = {}
    for attributes in (*snapshot.attribute_sets, *snapshot.samples):
        for key, value in attributes.items():
            values.setdefault(key, []).append(value)
    return RecordedInstrument(
        name=snapshot.name,
        kind=snapshot.kind,
        unit=snapshot.unit,
        scope=snapshot.scope,
        site=f"{project_path(snapshot.file, root)}:{snapshot.line}",
        measurements=snapshot.measurements,
        attribute_keys=tuple(sorted(values)),
        values={key: _bounded_values(found) for key, found in values.items()},
        production=snapshot.production,
        production_sites=bounded_sites(snapshot.production_sites),
        test_sites=bounded_sites(snapshot.test_sites),
    )


_PACKAGE_DIRS = ("site-packages", "dist-packages")
_STDLIB = Path(os.path.dirname(os.__file__))


def project_path(file: str, root: Path) -> str:
    """A path that reads the same on every machine: an installed library's file relative to
    its site-packages (checked first: the project root may hold the venv), a standard
    library file relative to the standard library, else relative to the project root, else
    the file name."""
    path = Path(os.path.abspath(file))
    packages = [i for i, part in enumerate(path.parts) if part in _PACKAGE_DIRS]
    if packages:
        return Path(*path.parts[packages[-1] + 1 :]).as_posix()
    for base in (_STDLIB, root):
        if path.is_relative_to(base):
            return path.relative_to(base).as_posix()
    return path.name


def merge(instruments: Iterable[RecordedInstrument]) -> list[RecordedInstrument]:
    """One entry per identity, sorted: measurements add up, keys, sites and values unite."""
    merged: dict[tuple[str, ...], RecordedInstrument] = {}
    for item in instruments:
        seen = merged.get(item.key())
        merged[item.key()] = item if seen is None else _merge_two(seen, item)
    return [merged[key] for key in sorted(merged)]


def _merge_two(first: RecordedInstrument, second: RecordedInstrument) -> RecordedInstrument:
    values = {
        key: _bounded_values([*first.values.get(key, ()), *second.values.get(key, ())])
        for key in {*first.values, *second.values}
    }
    return RecordedInstrument(
        name=first.name,
        kind=first.kind,
        unit=first.unit,
        scope=first.scope,
        site=first.site,
        measurements=first.measurements + second.measurements,
        attribute_keys=tuple(sorted({*first.attribute_keys, *second.attribute_keys})),
        values=values,
        production=_sum_known(first.production, second.production),
        production_sites=bounded_sites({*first.production_sites, *second.production_sites}),
        test_sites=bounded_sites({*first.test_sites, *second.test_sites}),
    )


def _sum_known(first: int | None, second: int | None) -> int | None:
    return None if first is None and second is None else (first or 0) + (second or 0)


def bounded_sites(sites: Iterable[str]) -> tuple[str, ...]:
    """The first sites in sorted order, so that every run keeps the same ones."""
    return tuple(sorted(set(sites))[:MAX_SITES])


def _bounded_values(values: Iterable[Any]) -> tuple[Any, ...]:
    """The first distinct values in JSON order (lists are values too, and unhashable)."""
    distinct = {json.dumps(value, sort_keys=True): value for value in values}
    return tuple(distinct[text] for text in sorted(distinct)[:MAX_VALUES])


def to_entry(item: RecordedInstrument) -> dict[str, Any]:
    return {
        "attribute_keys": list(item.attribute_keys),
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
        "values": {key: list(found) for key, found in sorted(item.values.items())},
    }


def from_entry(entry: Mapping[str, Any]) -> RecordedInstrument:
    """Raises KeyError, TypeError or ValueError on anything but a valid entry."""
    values = entry["values"]
    if not isinstance(values, dict) or not all(isinstance(v, list) for v in values.values()):
        raise TypeError(f"values must map keys to lists, got {values!r}")
    return RecordedInstrument(
        name=_text(entry["name"]),
        kind=Kind(entry["kind"]),
        unit=_text(entry["unit"]),
        scope=_text(entry["scope"]),
        site=_text(entry["site"]),
        measurements=_count("measurements", entry["measurements"]),
        attribute_keys=_texts(entry["attribute_keys"]),
        values={_text(key): tuple(found) for key, found in values.items()},
        production=None
        if entry["production"] is None
        else _count("production", entry["production"]),
        production_sites=_texts(entry["production_sites"]),
        test_sites=_texts(entry["test_sites"]),
    )


def _count(what: str, value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{what} must be a count, got {value!r}")
    return value


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
    document = {
        "instruments": [to_entry(i) for i in merge(instruments)],
        "version": FORMAT_VERSION,
    }
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
    version = document.get("version") if isinstance(document, dict) else None
    if version != FORMAT_VERSION:
        older = isinstance(version, int) and version < FORMAT_VERSION
        raise DashgenError(
            str(path),
            f"recording format {version} is an older dashgen's: run `pytest --dashgen-record` again"
            if older
            else f"not a dashgen recording of format version {FORMAT_VERSION}",
        )
    try:
        return merge(from_entry(entry) for entry in document["instruments"])
    except (KeyError, TypeError, ValueError) as error:
        raise DashgenError(str(path), f"malformed recording entry: {error!r}") from None
