"""Remember what the exporter and the renderer made of a catalog, so that verifying an
unchanged project needs neither, nor even an import of the sources.

The families the real exporter gives and the files a build writes are a pure function of
the declarations, the config, the ``OTEL_*`` environment, the interpreter and the code that
ran (dashgen, the OTel SDK and exporter, grafanalib). The declarations in turn are a
function of what importing the sources read (:mod:`dashgen.source_reads`). So the memo is
keyed by the config and environment, and stores, with its result, the size and mtime of
every module file loaded when it was made and the fingerprint of every read the import
made. A change to any of these is a miss and the real pipeline runs again: the memo only
ever answers for inputs it has seen.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import promql_parser

from dashgen import collector
from dashgen.build.layout import LOCK
from dashgen.build.write import digest
from dashgen.cache import read_entry, write_entry
from dashgen.config import Config, remember_valid_table
from dashgen.families import Exported, Family
from dashgen.isolate import Pending, dumps_plain, interrupts_held, loads_plain, start_isolated
from dashgen.source_reads import SourceReads
from dashgen.verify import dashboard_files, dashboards, promql, rule_files
from dashgen.verify.contract import VerifyResult
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
    from dashgen.catalog import Catalog

_MEMO_FILE = "code-side.memo"
_CHECK_FILE = "contract.memo"
_FORMAT = 3


@dataclass(frozen=True)
class Expected:
    """What verify and build need from the sources, the exporter and the renderer, small
    enough to remember."""

    families: tuple[Family, ...]
    family_of: Mapping[str, str]
    """Declared metric name -> the name of the family the exporter made of it."""
    digests: Mapping[str, str]
    """Output-relative path -> sha256 of the exact bytes a build writes there; empty when
    nothing was rendered."""
    excluded: Mapping[str, str]
    """Family name -> the reason its declaration gives in ``exclude=``."""
    dashboards: int
    """How many dashboards the sources declare."""
    identity: str = field(default="", compare=False)
    """The digest of the memo entry it was recalled from or stored as ("" when in none):
    what a memo of a check against it is keyed by."""

    @classmethod
    def of(cls, catalog: Catalog, exported: Exported, digests: Mapping[str, str]) -> Expected:
        family_of = {name: m.family.name for name, m in exported.metrics.items()}
        return cls(
            families=exported.families,
            family_of=family_of,
            digests=digests,
            excluded={
                family_of[spec.name]: spec.exclude_reason
                for spec in catalog.metrics
                if spec.exclude_reason is not None
            },
            dashboards=len(catalog.dashboards),
        )

    def family(self, metric: str) -> Family:
        return self._by_name[self.family_of[metric]]

    @cached_property
    def _by_name(self) -> dict[str, Family]:
        return {family.name: family for family in self.families}


class Declarations:
    """The sources' declarations, imported when first asked for and then kept: a memo hit
    never asks, so it imports neither the sources nor the stage that reads them."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._pending: Pending[Catalog] | None = None
        self._catalog: Catalog | None = None

    @contextmanager
    def loading(self) -> Iterator[None]:
        """Import the sources, in their child, while the block runs: a step that will ask
        for them overlaps that with its own imports (grafanalib and the SDK, ~0.4 s)."""
        if self._catalog is not None:
            yield
            return
        from dashgen.catalog import start_loading

        with start_loading(self._config.sources, self._config.cache) as self._pending:
            try:
                yield
            finally:
                self._pending = None

    def __call__(self) -> Catalog:
        if self._catalog is None:
            from dashgen.build.identity import declared, with_locked_uids

            pending, self._pending = self._pending, None
            if pending is None:
                self._catalog = declared(self._config)
            else:
                self._catalog = with_locked_uids(pending.result(), self._config.output)
        return self._catalog


def recalled(config: Config) -> Expected | None:
    """What a run on these very inputs computed, if one did (the sources are not imported)."""
    key = memo_key(config)
    return None if key is None else recall(config, key)


def expected_output(
    config: Config, declarations: Declarations, meanwhile: Callable[[], None] | None = None
) -> Expected:
    """The exporter's families and the digests of the files a build writes: remembered from
    a run on these very inputs, else computed (and remembered) from ``declarations()``;
    with ``meanwhile``, computed in a child while ``meanwhile()`` runs here."""
    return _recalled_or(config, partial(_built, config, declarations), meanwhile)


def _built(config: Config, declarations: Declarations) -> Expected:
    # Remembered by the process that generated it, whose modules are the code that ran.
    return remember_build(config, generated(config, declarations))


def generated(config: Config, declarations: Declarations) -> BuildResult:
    """What a build computes. Its stage is imported only now (grafanalib and the OTel SDK,
    ~0.4 s that a memo hit never pays), while the sources load in their child."""
    with declarations.loading():
        with interrupts_held():
            from dashgen.build.stages import generate

        return generate(config, declarations())


def exported_families(
    config: Config, declarations: Declarations, meanwhile: Callable[[], None] | None = None
) -> Expected:
    """What verify of a dir other than the output dir needs: the families, remembered or
    from the exporter alone (no render: no file of that dir is compared with a build);
    with ``meanwhile``, computed in a child as for :func:`expected_output`."""
    return _recalled_or(config, partial(_exported, config, declarations), meanwhile)


def _exported(config: Config, declarations: Declarations) -> Expected:
    with declarations.loading():  # the export path's imports meanwhile
        with interrupts_held():
            config.pipeline.imported()
        catalog = declarations()
    return Expected.of(catalog, config.pipeline.export(catalog.metrics), {})


def _recalled_or(
    config: Config, compute: Callable[[], Expected], meanwhile: Callable[[], None] | None
) -> Expected:
    """The memo's answer, else ``compute()``: here, or in a child while ``meanwhile()``
    (other work of the same command) uses this process's core; an error of the child's
    comes as it would here."""
    known = recalled(config)
    if known is not None:
        return known
    if meanwhile is None:
        return compute()
    with start_isolated("dashgen", "what the sources export", compute) as pending:
        meanwhile()
        return pending.result()


def memo_key(config: Config) -> str | None:
    """A digest of every input besides code files and what the sources read; ``None`` when
    the cache is off or an input cannot be written down exactly (then there is no memo,
    never a guess)."""
    if config.cache is None:
        return None
    otel_environment = sorted((k, v) for k, v in os.environ.items() if k.startswith("OTEL_"))
    # Not sys.executable nor sys.path[0], the script's dir: `dashgen` and `python -m dashgen`
    # run the same code from the same environment and must share one memo.
    search_path = [os.path.abspath(entry or ".") for entry in sys.path[1:]]
    try:
        lock = digest((config.output / LOCK).read_bytes())  # the uids the dashboards keep
    except OSError:
        lock = None
    material = [_FORMAT, sys.version, sys.prefix, search_path, otel_environment, lock]
    try:
        text = json.dumps([*material, config], default=_canonical, sort_keys=True)
    except (TypeError, ValueError):
        return None
    return digest(text.encode())


def recall(config: Config, key: str) -> Expected | None:
    """The remembered result for ``key``, if no code file changed since it was made and
    every read of the sources' import still reads the same."""
    found = _recalled_entry(config, _MEMO_FILE, key)
    if found is None:
        return None
    (reads, expected), identity = found
    if not isinstance(reads, SourceReads) or not isinstance(expected, Expected):
        return None
    return dataclasses.replace(expected, identity=identity) if reads.still_true() else None


def remember(config: Config, key: str, expected: Expected, reads: SourceReads) -> Expected:
    """Store ``expected`` for ``key``, with the state of every code file that made it and
    of every read that made its declarations; it comes back with its entry's identity."""
    remember_valid_table(config)
    identity = _remembered_entry(config, _MEMO_FILE, key, reads, expected)
    return dataclasses.replace(expected, identity=identity)


def remember_build(config: Config, built: BuildResult) -> Expected:
    """Remember what a build computed, so that the verify that follows it is a hit."""
    expected = Expected.of(built.catalog, built.exported, built.digests)
    key = memo_key(config)
    return expected if key is None else remember(config, key, expected, built.catalog.reads)


def remembered_check(
    config: Config,
    code: Expected,
    files: Sequence[Path],
    notes: Sequence[str],
    check: Callable[[], VerifyResult],
) -> VerifyResult:
    """``check()``, the contract check of ``files`` against ``code``, remembered by both: the
    same code side (the memo entry it was recalled from) and the same bytes in every file
    the check reads give the same findings, and a hit neither parses nor checks a query."""
    if config.cache is None or not code.identity:
        return check()
    contents = [(str(path), _content_digest(path)) for path in files]
    key = digest(json.dumps([_FORMAT, code.identity, notes, contents]).encode())
    found = _recalled_entry(config, _CHECK_FILE, key)
    if found is not None and isinstance(result := found[0][0], VerifyResult):
        return result
    result = check()
    _remembered_entry(config, _CHECK_FILE, key, result)
    return result


def _recalled_entry(config: Config, name: str, key: str) -> tuple[list[Any], str] | None:
    """The payload stored under ``name`` for ``key`` and the entry's digest, if no code file
    changed since it was stored."""
    data = read_entry(config.cache, name) if config.cache is not None else None
    if data is None:
        return None
    try:
        stored_key, code, *payload = loads_plain(data)
    except Exception:  # a memo this version cannot read: compute afresh
        return None
    if stored_key != key or any(_stat(path) != stat for path, stat in code):
        return None
    return payload, digest(data)


def _remembered_entry(config: Config, name: str, key: str, *payload: object) -> str:
    """Store ``payload`` for ``key`` under ``name``; the entry's digest ("" with no cache)."""
    if config.cache is None:
        return ""
    data = dumps_plain((key, _loaded_code(), *payload))
    write_entry(config.cache, name, data)
    return digest(data)


def _content_digest(path: Path) -> str | None:
    try:
        return digest(path.read_bytes())
    except OSError:
        return None  # the check says why it cannot read it


def _loaded_code() -> list[tuple[str, tuple[int, int]]]:
    """``(path, (mtime_ns, size))`` of every module file this process has loaded, as the
    file was when this process first listed that module: the code that ran, even if the
    file was edited since (a later run then misses). A long-lived process (a test suite, the
    pytest plugin) lists its modules once, not once per memo entry."""
    found: dict[str, tuple[int, int]] = {}
    for module in list(sys.modules.values()):
        try:
            seen = _FIRST_SEEN.get(module)
        except TypeError:  # not a module: anything may sit in sys.modules
            continue
        if seen is None:
            file = getattr(module, "__file__", None)
            seen = (file, _stat(file)) if isinstance(file, str) else None
            with suppress(TypeError):
                _FIRST_SEEN[module] = seen
        if seen is not None and seen[1] is not None:
            found[seen[0]] = seen[1]
    return sorted(found.items())


_FIRST_SEEN: weakref.WeakKeyDictionary[Any, tuple[str, tuple[int, int] | None] | None] = (
    weakref.WeakKeyDictionary()
)


def _stat(path: str) -> tuple[int, int] | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return (status.st_mtime_ns, status.st_size)


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
    most of a verify of an unchanged project. A file that does not read is never remembered.
    Every parsed query lives on, so the cyclic collector is paused meanwhile."""
    with collector.paused():
        return _remembered_dashboards(directory, root, cache, exclude, allow_empty)


def _remembered_dashboards(
    directory: Path, root: Path, cache: Path | None, exclude: Sequence[str], allow_empty: bool
) -> DashboardSet:
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
