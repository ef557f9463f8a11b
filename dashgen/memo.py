"""Remember what the exporter and the renderer made of a catalog, so that verifying an
unchanged project needs neither.

The families the real exporter gives and the files a build writes are a pure function of
the declarations, the config, the ``OTEL_*`` environment, the interpreter and the code that
ran (dashgen, the OTel SDK and exporter, grafanalib). The declarations are imported afresh
on every run, so they are always current; the memo is keyed by them as data and stores, with
its result, the size and mtime of every module file loaded when it was made. A change to any
of these is a miss and the real pipeline runs again: the memo only ever answers for inputs
it has seen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import promql_parser

from dashgen.build.write import digest
from dashgen.cache import read_entry, write_entry
from dashgen.catalog import Catalog
from dashgen.config import Config, remember_valid_table
from dashgen.families import Family
from dashgen.isolate import dumps_plain, loads_plain
from dashgen.verify import dashboard_files, dashboards, promql, rule_files
from dashgen.verify.dashboard_files import (
    DashboardSet,
    LeftOut,
    collected,
    dashboard_paths,
    read_dashboards,
    read_file,
)
from dashgen.verify.dashboards import DashboardQueries

if TYPE_CHECKING:
    from dashgen.build.stages import BuildResult

_MEMO_FILE = "code-side.json"
_FORMAT = 2


@dataclass(frozen=True)
class Expected:
    """What verify needs from the exporter and the renderer, small enough to remember."""

    families: tuple[Family, ...]
    family_of: Mapping[str, str]
    """Declared metric name -> the name of the family the exporter made of it."""
    digests: Mapping[str, str]
    """Output-relative path -> sha256 of the exact bytes a build writes there."""

    @classmethod
    def of(cls, built: BuildResult) -> Expected:
        return cls(
            families=built.exported.families,
            family_of={name: m.family.name for name, m in built.exported.metrics.items()},
            digests={path: digest(data) for path, data in built.files.items()},
        )

    def family(self, metric: str) -> Family:
        return self._by_name[self.family_of[metric]]

    @cached_property
    def _by_name(self) -> dict[str, Family]:
        return {family.name: family for family in self.families}


def recalled(config: Config, catalog: Catalog) -> Expected | None:
    """What a run on these very inputs computed, if one did."""
    key = memo_key(config, catalog)
    return None if key is None else recall(config, key)


def expected_output(config: Config, catalog: Catalog) -> Expected:
    """The exporter's families and the digests of the files a build writes, for ``catalog``:
    remembered from a run on these very inputs, else computed (and remembered)."""
    known = recalled(config, catalog)
    if known is not None:
        return known
    # Imported here: the OTel SDK and grafanalib take ~0.3 s that a memo hit never pays.
    from dashgen.build.stages import generate

    built = generate(config, catalog)
    remember_build(config, built)
    return Expected.of(built)


def exported_families(config: Config, catalog: Catalog) -> Expected:
    """What verify of a dir other than the output dir needs: the families, remembered or
    from the exporter alone (no render: no file of that dir is compared with a build)."""
    known = recalled(config, catalog)
    if known is not None:
        return known
    exported = config.pipeline.export(catalog.metrics)
    return Expected(
        families=exported.families,
        family_of={name: m.family.name for name, m in exported.metrics.items()},
        digests={},
    )


def memo_key(config: Config, catalog: Catalog) -> str | None:
    """A digest of every input besides code files; ``None`` when the cache is off or an input
    cannot be written down exactly (then there is no memo, never a guess)."""
    if config.cache is None:
        return None
    otel_environment = sorted((k, v) for k, v in os.environ.items() if k.startswith("OTEL_"))
    # Not sys.executable nor sys.path[0], the script's dir: `dashgen` and `python -m dashgen`
    # run the same code from the same environment and must share one memo.
    search_path = [os.path.abspath(entry or ".") for entry in sys.path[1:]]
    material = [_FORMAT, sys.version, sys.prefix, search_path, otel_environment]
    try:
        text = json.dumps([*material, config, catalog], default=_canonical, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return digest(text.encode())


def recall(config: Config, key: str) -> Expected | None:
    """The remembered result for ``key``, if no code file changed since it was made."""
    data = read_entry(config.cache, _MEMO_FILE) if config.cache is not None else None
    if data is None:
        return None
    try:
        stored = json.loads(data)
        if stored["format"] != _FORMAT or stored["key"] != key:
            return None
        if any(_stat(path) != [mtime, size] for path, mtime, size in stored["code"]):
            return None
        return Expected(
            families=tuple(
                Family(
                    f["name"],
                    f["type"],
                    tuple(f["samples"]),
                    _labels(f["labels"]),
                    f["source"],
                    f["unit"],
                )
                for f in stored["families"]
            ),
            family_of=dict(stored["family_of"]),
            digests=dict(stored["digests"]),
        )
    except (ValueError, KeyError, TypeError):
        return None  # a memo this version cannot read: compute afresh


def remember(config: Config, key: str, expected: Expected) -> None:
    """Store ``expected`` for ``key``, with the state of every code file that made it."""
    if config.cache is None:
        return
    remember_valid_table(config)
    stored = {
        "format": _FORMAT,
        "key": key,
        "code": _loaded_code(config.sources),
        "families": [dataclasses.asdict(f) for f in expected.families],
        "family_of": dict(expected.family_of),
        "digests": dict(expected.digests),
    }
    write_entry(config.cache, _MEMO_FILE, json.dumps(stored, separators=(",", ":")).encode())


def remember_build(config: Config, built: BuildResult) -> None:
    """Remember what a build computed, so that the verify that follows it is a hit."""
    key = memo_key(config, built.catalog)
    if key is not None:
        remember(config, key, Expected.of(built))


def _loaded_code(sources: Path) -> list[list[Any]]:
    """``[path, mtime_ns, size]`` of every module file this process has loaded, and of the
    sources (imported afresh each run, so no longer loaded): a source could patch code."""
    paths = {
        file
        for module in list(sys.modules.values())
        if isinstance(file := getattr(module, "__file__", None), str)
    }
    paths.update(str(path) for path in sources.glob("*.py"))
    return [[path, *stat] for path in sorted(paths) if (stat := _stat(path)) is not None]


def _stat(path: str) -> list[int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return [status.st_mtime_ns, status.st_size]


def _labels(labels: list[str] | None) -> tuple[str, ...] | None:
    return None if labels is None else tuple(labels)


def _canonical(value: object) -> object:
    """What JSON cannot encode, as data that is the same in every process: dataclasses by
    class and every field (``repr=False`` ones too) but those marked ``memo_key=False``,
    sets sorted. Anything else is refused."""
    kind = type(value)
    if kind not in _FIELDS and dataclasses.is_dataclass(kind):
        fields = dataclasses.fields(kind)
        _FIELDS[kind] = tuple(f.name for f in fields if f.metadata.get("memo_key", True))
    if kind in _FIELDS:
        return [kind.__module__, kind.__qualname__, [getattr(value, f) for f in _FIELDS[kind]]]
    if isinstance(value, set | frozenset):
        try:
            return sorted(value)
        except TypeError:  # items without an order of their own: order them by their text
            return sorted(json.dumps(item, default=_canonical, sort_keys=True) for item in value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot key {kind.__name__}")


_FIELDS: dict[type, tuple[str, ...]] = {}


def remembered_dashboards(
    directory: Path,
    root: Path,
    cache: Path | None,
    exclude: Sequence[str] = (),
    allow_empty: bool = False,
) -> DashboardSet:
    """What :func:`read_dashboards` gives, with each file's queries remembered by the digest
    of its exact bytes (and of the parsing code): parsing the JSON and every PromQL query is
    most of a verify of an unchanged project. A file that does not read is never remembered."""
    if cache is None:
        return read_dashboards(directory, root, exclude, allow_empty)
    code = [
        _stat(module.__file__ or "")
        for module in (dashboards, dashboard_files, rule_files, promql, promql_parser)
    ]
    paths, notes = dashboard_paths(directory, exclude)

    def each_file() -> Iterator[tuple[list[DashboardQueries], LeftOut | None]]:
        for path in paths:
            try:
                data = path.read_bytes()
            except OSError:
                yield read_file(path, root)  # its own error message
                continue
            stamp = hashlib.sha256(json.dumps([_FORMAT, str(path), code]).encode() + data).digest()
            entry = f"dashboards/{hashlib.sha256(str(path).encode()).hexdigest()[:32]}"
            stored = read_entry(cache, entry)
            if stored is not None and stored.startswith(stamp):
                try:
                    yield loads_plain(stored[len(stamp) :])
                    continue
                except Exception:  # a format this version cannot read: parse afresh
                    pass
            found = read_file(path, root)
            if all(queries.error is None for queries in found[0]):
                write_entry(cache, entry, stamp + dumps_plain(found))
            yield found

    return collected(directory, each_file(), notes, allow_empty)
