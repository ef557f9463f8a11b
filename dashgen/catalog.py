"""Stage 1: import the user's sources and collect their declarations as plain data.

This is the only stage that runs user code. Everything it returns is frozen data, checked
for the mistakes that can be seen without the exporter: duplicate names, hints that do not
fit the instrument, hint labels that were never declared, unsafe or duplicate uids, and
metrics that no dashboard places.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import itertools
import marshal
import math
import os
import re
import sys
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import CodeType, ModuleType
from typing import TypeGuard, get_args

from dashgen.cache import read_entry, write_entry
from dashgen.declare import (
    Dashboard,
    DeclarationError,
    Metric,
    MetricSpec,
    PanelSpec,
    describe_value,
)
from dashgen.errors import DashgenError
from dashgen.expr import selections
from dashgen.hints import (
    Aggregation,
    Average,
    Current,
    CurrentStyle,
    Heatmap,
    Hint,
    Quantiles,
)
from dashgen.isolate import Pending, start_isolated
from dashgen.query_checks import check_queries
from dashgen.rule_catalog import rule_groups
from dashgen.rules import RuleGroup, RuleGroupSpec
from dashgen.source_reads import SourceReads, watched
from dashgen.units import contradiction, panel_unit
from dashgen.vocabulary import color_problem, unit_problem

UID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: Label names that PromQL reads as numbers inside ``by (...)``, whatever their case.
_NUMBER_WORDS = frozenset({"inf", "nan"})


@dataclass(frozen=True)
class RowSpec:
    title: str
    metrics: tuple[str, ...]
    """The metrics whose hints are the row's panels, in order."""
    collapsed: bool
    entries: tuple[str | PanelSpec, ...] = ()
    """The row in order: a metric's name (its hints' panels) or a custom panel."""

    @property
    def shown(self) -> tuple[str, ...]:
        """Every metric the row shows: its own and those its custom panels query."""
        queried = [
            s.metric
            for e in self.entries
            if isinstance(e, PanelSpec)
            for x in e.exprs
            for s in selections(x)
        ]
        return tuple(dict.fromkeys([*self.metrics, *queried]))


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str
    description: str
    tags: tuple[str, ...]
    refresh: str
    time_from: str
    rows: tuple[RowSpec, ...]
    file: str
    line: int
    folder: str = ""
    """The Grafana folder it is provisioned into; "" for General."""
    filters: tuple[str, ...] = ()
    """Declared attribute keys its panels filter by, through a variable each."""
    key: str = ""
    """Who the dashboard is across edits: its file and the variable that holds it (or its
    title, when no module variable does); the uid lock is keyed by it."""
    uid_declared: bool = True
    """``uid=`` was given; else ``uid`` is the title's slug, until the lock says otherwise."""


@dataclass(frozen=True)
class Catalog:
    """Every declaration found under the sources dir, metrics sorted by name."""

    metrics: tuple[MetricSpec, ...]
    dashboards: tuple[DashboardSpec, ...]
    rule_groups: tuple[RuleGroupSpec, ...] = ()
    """Alerts and recording rules, by group name."""
    reads: SourceReads = field(default_factory=SourceReads, compare=False)
    """What importing the sources read: a memo of this catalog holds while they hold."""

    def metric(self, name: str) -> MetricSpec:
        return next(m for m in self.metrics if m.name == name)


def load_catalog(sources: Path, cache: Path | None = None) -> Catalog:
    """Import every ``*.py`` under ``sources`` and collect what they declare, in a child
    process (see :mod:`dashgen.isolate`): the sources run there, never in dashgen itself.

    ``cache``: dashgen's cache dir, to keep each source's code compiled from its exact text.
    """
    with start_loading(sources, cache) as pending:
        return pending.result()


def start_loading(sources: Path, cache: Path | None = None) -> Pending[Catalog]:
    """:func:`load_catalog`, begun now in its child, so that the caller can work meanwhile."""
    if not sources.is_dir():
        raise DashgenError(str(sources), "sources dir not found (set [tool.dashgen] sources)")
    shown = _relative_file(str(sources), sources.resolve().parent)
    return start_isolated(shown, "its declarations", _collect_declarations, sources, cache)


def _collect_declarations(sources: Path, cache: Path | None) -> Catalog:
    root = sources.resolve().parent
    with watched() as watch:
        modules = _import_sources(sources, root, cache)
    metrics: dict[int, Metric] = {}
    dashboards: dict[int, Dashboard] = {}
    variables: dict[int, str] = {}
    groups: dict[int, RuleGroup] = {}
    for module in modules:
        for name, value in vars(module).items():
            if isinstance(value, Metric):
                metrics.setdefault(id(value), value)
            elif isinstance(value, Dashboard):
                dashboards.setdefault(id(value), value)
                variables.setdefault(id(value), name)
            elif isinstance(value, RuleGroup):
                groups.setdefault(id(value), value)
    for dashboard in dashboards.values():
        for row in dashboard.rows:
            for metric in row.metrics:
                metrics.setdefault(id(metric), metric)
    shown: dict[str, str] = {}  # resolving a path is slow, and declarations share few files
    unsorted = []
    for metric in metrics.values():
        spec = metric.spec()
        if spec.file not in shown:
            shown[spec.file] = _relative_file(spec.file, root)
        unsorted.append(replace(spec, file=shown[spec.file]))
    specs = sorted(unsorted, key=_spec_order)
    _check_unique_names(specs)
    for spec in specs:
        check_spec(spec)
    specs = [_map_hints(spec, _plain_hint) for spec in specs]
    dashboard_specs = sorted(
        (_dashboard_spec(d, root, variables.get(id(d))) for d in dashboards.values()),
        key=lambda d: d.uid,
    )
    check_unique_uids(dashboard_specs)
    _check_placed(dashboard_specs, specs)
    panels = [
        entry
        for dashboard in dashboard_specs
        for row in dashboard.rows
        for entry in row.entries
        if isinstance(entry, PanelSpec)
    ]
    groups_found = rule_groups(
        groups.values(), specs, panels, lambda file: _relative_file(file, root)
    )
    # The alerts now live in their groups, naming their hint by position; the hints keep
    # only how to draw, as plain data.
    specs = [_map_hints(spec, _without_alert) for spec in specs]
    return Catalog(
        metrics=tuple(specs),
        dashboards=tuple(dashboard_specs),
        rule_groups=groups_found,
        reads=watch.written_down(ignore=cache),
    )


def check_spec(spec: MetricSpec) -> None:
    """What the SDK does not check but a dashboard needs: sane labels, buckets and hints."""
    for label in spec.labels:
        if not isinstance(label, str) or not label:
            raise DashgenError(
                spec.where, f"labels= takes non-empty strings, got {describe_value(label)}"
            )
    if spec.buckets is not None:
        finite = all(math.isfinite(b) for b in spec.buckets)
        if not finite or any(a >= b for a, b in itertools.pairwise(spec.buckets)):
            raise DashgenError(
                spec.where,
                f"buckets must be finite and strictly increasing, got {list(spec.buckets)}",
            )
        if spec.buckets and spec.buckets[0] < 0:
            raise DashgenError(
                spec.where,
                f"buckets start below 0 ({spec.buckets[0]:g}): the Prometheus exporter then "
                "drops the histogram's _count and _sum, which its panels need",
            )
    if not spec.hints and spec.exclude_reason is None:
        raise DashgenError(
            spec.where,
            "hint=[] gives it no panel: pass a hint, leave hint= out for the default one, "
            "or declare it with exclude='<reason>'",
        )
    check_hints(spec)


def check_hints(spec: MetricSpec) -> None:
    """A hint must fit the instrument and may only group by attributes the metric declares."""
    for hint in spec.hints:
        if not isinstance(hint, Hint):
            # hint="rate" arrives letter by letter: name the type, not the letter.
            got = "a string" if isinstance(hint, str) else describe_value(hint)
            raise DashgenError(
                spec.where, f"hint= takes dashgen.hints objects such as hints.Rate(), got {got}"
            )
        hint_name = type(hint).__name__
        for option in ("title", "description", "unit", "legend"):
            value = getattr(hint, option)
            if value is not None and not isinstance(value, str):
                raise DashgenError(
                    spec.where,
                    f"hint {hint_name} takes a string for {option}=, got {describe_value(value)}",
                )
        if isinstance(hint.by, str) or not isinstance(hint.by, tuple | list):
            raise DashgenError(
                spec.where,
                f"hint {hint_name} takes a list of labels for by=, got {describe_value(hint.by)}",
            )
        if spec.kind not in hint.fits:
            fits = ", ".join(sorted(kind.value for kind in hint.fits))
            raise DashgenError(
                spec.where, f"hint {hint_name} does not fit a {spec.kind.value} (it fits {fits})"
            )
        for label in hint.by:
            if label not in spec.labels:
                raise DashgenError(
                    spec.where,
                    f"hint {hint_name} groups by '{label}', which is not among the declared "
                    f"labels {list(spec.labels)}",
                )
            if label.lower() in _NUMBER_WORDS:
                raise DashgenError(
                    spec.where,
                    f"hint {hint_name} groups by '{label}', which PromQL reads as a number "
                    "in by (...): rename the attribute",
                )
        if len(set(hint.by)) != len(hint.by):
            raise DashgenError(spec.where, f"hint {hint_name} names a label twice in by={hint.by}")
        _check_size(spec.where, f"hint {hint_name}", hint.width, hint.height)
        _check_look(spec.where, f"hint {hint_name}", hint.unit, hint.thresholds, hint.base)
        _check_hint_options(spec, hint)


def _check_look(
    where: str,
    what: str,
    unit: str | None,
    thresholds: Sequence[tuple[float, str]],
    base: object,
) -> None:
    """Thresholds as (number, colour) pairs, and units and colours Grafana knows: it takes
    any string and shows a misspelt one wrong."""
    for threshold in thresholds:
        if not _is_threshold(threshold):
            raise DashgenError(
                where, f"{what} has threshold {threshold!r}: use (number, 'colour') pairs"
            )
    if base is not None and not isinstance(base, str):
        raise DashgenError(where, f"{what} takes a colour name for base=, got {base!r}")
    colors = [(f"threshold {value:g}", color) for value, color in thresholds]
    if base is not None:
        colors.append(("base", base))
    for step, color in colors:
        problem = color_problem(color)
        if problem is not None:
            raise DashgenError(where, f"{what} {step}: {problem}")
    if unit is not None:
        problem = unit_problem(unit)
        if problem is not None:
            raise DashgenError(where, f"{what} unit=: {problem}")


_STYLES = ("timeseries", "stat", "gauge", "bargauge")


def check_panel(panel: PanelSpec, metrics: Mapping[str, MetricSpec]) -> None:
    """A custom panel's queries must select declared metrics in ways that fit them, by
    labels they declare; its look, like a hint's, must be Grafana's."""
    check_queries(panel.where, panel.exprs, metrics)
    if panel.style not in _STYLES:
        raise DashgenError(panel.where, f"style= takes one of {', '.join(_STYLES)}")
    _check_size(panel.where, "panel", panel.width, panel.height)
    _check_look(panel.where, "panel", panel.unit, panel.thresholds, panel.base)


def _check_size(where: str, what: str, width: object, height: object) -> None:
    """Whole grid cells, at most the 24 columns of a line; an unset width fits any line."""
    width = 12 if width is None else width
    if not _is_int(width) or not _is_int(height):
        raise DashgenError(where, f"{what} needs whole numbers for width, height")
    if not 1 <= width <= 24 or height < 1:
        raise DashgenError(where, f"{what} needs 1 <= width <= 24, height >= 1")


def _check_hint_options(spec: MetricSpec, hint: Hint) -> None:
    """The options that become PromQL or a panel type must be ones Grafana and PromQL know."""
    if isinstance(hint, Heatmap) and hint.by:
        raise DashgenError(
            spec.where,
            "hint Heatmap draws one distribution of all series: it takes no by= "
            "(use Quantiles(by=...) for one line per group)",
        )
    if isinstance(hint, Quantiles):
        if not hint.quantiles:
            raise DashgenError(spec.where, "hint Quantiles needs at least one quantile")
        for quantile in hint.quantiles:
            if not _is_number(quantile) or not 0 <= quantile <= 1:
                raise DashgenError(
                    spec.where, f"hint Quantiles has quantile {quantile!r}: use 0 <= q <= 1"
                )
        if len(set(hint.quantiles)) != len(hint.quantiles):
            raise DashgenError(spec.where, f"hint Quantiles repeats a quantile: {hint.quantiles}")
    if isinstance(hint, Current | Quantiles | Average) and isinstance(hint.unit, str):
        # These panels show the values as they are: a unit that contradicts the metric's
        # draws them wrong (`unit="s"` on a millisecond gauge: 1000x off).
        wrong = contradiction(spec.unit, hint.unit)
        if wrong is not None:
            right = panel_unit(spec.unit, "short")
            raise DashgenError(
                spec.where,
                f"hint {type(hint).__name__}(unit={hint.unit!r}): {wrong[0]}; use "
                f"unit={right!r}, or leave unit= out",
            )
    if isinstance(hint, Current):
        styles, aggregations = get_args(CurrentStyle), get_args(Aggregation)
        if hint.style not in styles:
            raise DashgenError(
                spec.where, f"hint Current has style={hint.style!r}: use one of {list(styles)}"
            )
        if hint.agg not in aggregations:
            raise DashgenError(
                spec.where, f"hint Current has agg={hint.agg!r}: use one of {list(aggregations)}"
            )


def _map_hints(spec: MetricSpec, change: Callable[[Hint], Hint]) -> MetricSpec:
    """The spec with ``change`` applied to each hint; the same spec where nothing changed
    (a ``replace`` per spec and hint was a third of loading 5,000 declarations)."""
    hints = tuple(change(hint) for hint in spec.hints)
    if all(new is old for new, old in zip(hints, spec.hints, strict=True)):
        return spec
    return replace(spec, hints=hints)


def _without_alert(hint: Hint) -> Hint:
    return hint if hint.alert is None else replace(hint, alert=None)


def _plain_hint(hint: Hint) -> Hint:
    """The hint with plain ``str`` where the user passed a subclass (a ``StrEnum`` member
    becomes its value), as the declarations' own options are."""
    texts = (hint.title, hint.description, hint.unit, hint.legend)
    plain_by = type(hint.by) is tuple and all(type(label) is str for label in hint.by)
    if plain_by and all(text is None or type(text) is str for text in texts):
        return hint

    def plain(text: str | None) -> str | None:
        return None if text is None else str.__str__(text)

    return replace(
        hint,
        title=plain(hint.title),
        description=plain(hint.description),
        unit=plain(hint.unit),
        legend=plain(hint.legend),
        by=tuple(str.__str__(label) for label in hint.by),
    )


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    """A finite real number (bools are not numbers here)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_threshold(value: object) -> bool:
    return (
        isinstance(value, tuple | list)
        and len(value) == 2
        and _is_number(value[0])
        and isinstance(value[1], str)
        and bool(value[1].strip())
    )


def _spec_order(spec: MetricSpec) -> tuple[str, str, int]:
    return (spec.name, spec.file, spec.line)


def _relative_file(file: str, root: Path) -> str:
    path = Path(file).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name


def _check_unique_names(specs: list[MetricSpec]) -> None:
    for first, second in itertools.pairwise(specs):
        if first.name == second.name:
            raise DashgenError(second.where, f"declared twice (first at {first.file}:{first.line})")


def default_uid(title: str) -> str:
    """A readable slug of the title; long titles keep a hash so that uids stay unique."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    if len(slug) > 40:
        digest = hashlib.sha256(title.encode()).hexdigest()[:8]
        slug = f"{slug[:31].rstrip('-')}-{digest}"
    return slug


def _dashboard_spec(dashboard: Dashboard, root: Path, variable: str | None) -> DashboardSpec:
    file = _relative_file(dashboard.file, root)
    location = f"{file}:{dashboard.line}: dashboard '{dashboard.title}'"
    if not dashboard.title.strip() or _CONTROL.search(dashboard.title):
        raise DashgenError(location, "title must be non-empty and free of control characters")
    uid = dashboard.uid if dashboard.uid is not None else default_uid(dashboard.title)
    if not UID_PATTERN.fullmatch(uid):
        raise DashgenError(
            location,
            f"uid {uid!r} is not safe as a file name and Grafana uid: use 1-40 of A-Z a-z 0-9 _ -",
        )
    return DashboardSpec(
        uid=uid,
        title=dashboard.title,
        description=dashboard.description,
        tags=dashboard.tags,
        refresh=dashboard.refresh,
        time_from=dashboard.time_from,
        rows=tuple(
            RowSpec(
                row.title,
                tuple(m.name for m in row.metrics),
                row.collapsed,
                tuple(
                    e.name
                    if isinstance(e, Metric)
                    else replace(e.spec, file=_relative_file(e.spec.file, root))
                    for e in row.entries
                ),
            )
            for row in dashboard.rows
        ),
        file=file,
        line=dashboard.line,
        folder=_folder(dashboard.folder, location),
        filters=dashboard.filters,
        key=f"{file}:{variable if variable is not None else dashboard.title}",
        uid_declared=dashboard.uid is not None,
    )


_RESERVED_DIRS = ("provisioning", "rules")
_FOLDER = re.compile(r"[^/\\\x00-\x1f\x7f]{1,80}")


def _folder(folder: str | None, location: str) -> str:
    """A folder name that is one safe directory name (Grafana titles the folder with it)."""
    if folder is None:
        return ""
    if not _FOLDER.fullmatch(folder) or folder.strip(". ") == "" or folder in _RESERVED_DIRS:
        raise DashgenError(
            location,
            f"folder {folder!r} cannot be a directory of the output dir: use 1-80 characters, "
            "no '/', '\\' or control characters, not 'provisioning' or 'rules'",
        )
    return folder


def check_unique_uids(dashboards: Sequence[DashboardSpec]) -> None:
    """One file per uid. By case-folded uid: App.json and app.json are one file on macOS
    and Windows."""
    seen: dict[str, DashboardSpec] = {}
    for dashboard in dashboards:
        first = seen.setdefault(dashboard.uid.casefold(), dashboard)
        if first is not dashboard:
            same = (
                "is already used"
                if first.uid == dashboard.uid
                else f"differs only in case from '{first.uid}', used"
            )
            raise DashgenError(
                f"{dashboard.file}:{dashboard.line}: dashboard '{dashboard.title}'",
                f"uid '{dashboard.uid}' {same} by '{first.title}' "
                f"({first.file}:{first.line}); pass a distinct uid=",
            )


def _check_placed(dashboards: Sequence[DashboardSpec], specs: Sequence[MetricSpec]) -> None:
    by_name = {spec.name: spec for spec in specs}
    for dashboard in dashboards:
        for row in dashboard.rows:
            for entry in row.entries:
                if isinstance(entry, PanelSpec):
                    check_panel(entry, by_name)
        shown = {name for row in dashboard.rows for name in row.shown}
        declared = {label for name in shown for label in by_name[name].labels}
        for key in dashboard.filters:
            if key not in declared:
                raise DashgenError(
                    f"{dashboard.file}:{dashboard.line}: dashboard '{dashboard.title}'",
                    f"filters by '{key}', which none of its metrics declares in labels=[...]",
                )
    placed = {name for d in dashboards for row in d.rows for name in row.shown}
    for spec in specs:
        if spec.exclude_reason is not None:
            if spec.name in placed:
                raise DashgenError(spec.where, "is marked exclude= but a dashboard places it")
            if not spec.exclude_reason.strip():
                raise DashgenError(spec.where, "exclude= needs a reason")
        elif spec.name not in placed:
            raise DashgenError(
                spec.where,
                "no dashboard places it: add it to a Row, or declare it with exclude='<reason>'",
            )


def _import_sources(sources: Path, root: Path, cache: Path | None) -> list[ModuleType]:
    """Import each source file; a package dir is imported as that package.

    Messages name files relative to ``root``, as every other build message does.
    """
    sources = sources.resolve()
    is_package = (sources / "__init__.py").is_file()
    search_path = sources.parent if is_package else sources
    prefix = f"{sources.name}." if is_package else ""
    files = sorted(p for p in sources.glob("*.py") if p.name != "__init__.py")
    for path in files:
        if not path.exists():  # os.stat follows the link and fails: a loop or no target
            raise DashgenError(
                _relative_file(str(path.parent), root) + f"/{path.name}",
                "is a symlink that leads to no file (a loop, or a missing target)",
            )
    names = [prefix + p.stem for p in files]
    with _isolated_imports(str(search_path), [n.split(".")[0] for n in names], sources, cache):
        modules = []
        for path, name in zip(files, names, strict=True):
            modules.append(_import_one(path, name, root))
        return modules


def _import_one(path: Path, name: str, root: Path) -> ModuleType:
    """Import one source; anything it raises but Ctrl-C becomes one line naming the file.

    ``sys.exit()`` in a source counts too: letting it through would end ``dashgen build
    --check`` with the source's exit code (0: a silent green) and nothing checked.
    """
    try:
        return importlib.import_module(name)
    except DeclarationError as error:
        raise DashgenError(
            f"{_relative_file(error.file, root)}:{error.line}: {error.subject}", error.message
        ) from None
    except SyntaxError as error:
        file = (
            _relative_file(error.filename, root)
            if error.filename
            else _relative_file(str(path), root)
        )
        line = f":{error.lineno}" if error.lineno is not None else ""
        raise DashgenError(f"{file}{line}", f"syntax error: {error.msg}") from None
    except SystemExit as error:
        raise DashgenError(
            _relative_file(str(path), root),
            f"importing {path.name} called sys.exit({error.code!r}): sources must not exit",
        ) from None
    except BaseException as error:  # KeyboardInterrupt too: in the child, only a source raises it
        frame = _innermost_frame_in(error, path.parent)
        location = (
            f"{_relative_file(frame.filename, root)}:{frame.lineno}"
            if frame
            else _relative_file(str(path), root)
        )
        failure = f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
        raise DashgenError(location, f"importing {path.name} failed: {failure}") from None


def _innermost_frame_in(error: BaseException, directory: Path) -> traceback.FrameSummary | None:
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if Path(frame.filename).resolve().is_relative_to(directory)
    ]
    return frames[-1] if frames else None


@contextmanager
def _isolated_imports(
    search_path: str, top_names: list[str], sources: Path | None = None, cache: Path | None = None
) -> Iterator[None]:
    """Import user sources fresh, and put ``sys.modules`` back as it was afterwards.

    Two builds in one process (tests, the pytest plugin) must not see each other's modules,
    and an app that already imported its declarations keeps its own objects.

    Fresh also means from the source text, never from ``__pycache__``: Python trusts a
    cached ``.pyc`` whose recorded mtime (whole seconds) and size match the source, so an
    edit that keeps the size within the same second (``"a.b"`` -> ``"a.c"``) would be
    read as the old code, and verify would pass on what the code no longer says. So the
    modules under ``sources`` (default: ``search_path``) are compiled from their text, or
    taken from ``cache`` where it holds the code compiled from that very text.
    """
    roots = set(top_names)

    def take() -> dict[str, ModuleType]:
        return {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] in roots}

    saved = take()
    fresh = _FreshSources(str(sources) if sources is not None else search_path, cache)
    sys.meta_path.insert(0, fresh)
    sys.path.insert(0, search_path)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        # A source may have emptied either list; what is left to undo is what is there.
        if search_path in sys.path:
            sys.path.remove(search_path)
        if fresh in sys.meta_path:
            sys.meta_path.remove(fresh)
        take()
        sys.modules.update(saved)


class _SourceOnlyLoader(importlib.machinery.SourceFileLoader):
    """Runs the file's current text: never a ``.pyc``, whose check is by mtime and size.

    With a cache, the code compiled from a source is kept beside a sha256 of that source's
    exact bytes, and reused only when the digest matches the text read now.
    """

    def __init__(self, fullname: str, path: str, cache: Path | None) -> None:
        super().__init__(fullname, path)
        self.cache = cache

    def get_code(self, fullname: str) -> CodeType:
        path = self.get_filename(fullname)
        source = self.get_data(path)
        if self.cache is None:
            return self.source_to_code(source, path)
        entry = f"sources/{hashlib.sha256(path.encode()).hexdigest()[:32]}.code"
        stamp = _COMPILER + hashlib.sha256(source).digest()
        stored = read_entry(self.cache, entry)
        if stored is not None and stored.startswith(stamp):
            try:
                code = marshal.loads(stored[len(stamp) :])
            except (EOFError, ValueError, TypeError):
                pass  # damaged: compile afresh
            else:
                if isinstance(code, CodeType):
                    return code
        code = self.source_to_code(source, path)
        write_entry(self.cache, entry, stamp + marshal.dumps(code))
        return code


#: What else the compiled code depends on: the bytecode version and the -O level.
_COMPILER = importlib.util.MAGIC_NUMBER + bytes([sys.flags.optimize])


class _FreshSources(importlib.abc.MetaPathFinder):
    """Loads the modules whose file is under ``directory`` with :class:`_SourceOnlyLoader`.

    Anything else (the app's dependencies) is left to the normal finders and their
    ``.pyc`` files, so importing a large library from a source stays as fast as usual.
    """

    def __init__(self, directory: str, cache: Path | None) -> None:
        self.directory = os.path.abspath(directory)
        self.cache = cache

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if (
            spec is None
            or spec.origin is None
            or not isinstance(spec.loader, importlib.machinery.SourceFileLoader)
            or os.path.commonpath([os.path.abspath(spec.origin), self.directory]) != self.directory
        ):
            return None
        return importlib.util.spec_from_file_location(
            fullname,
            spec.origin,
            loader=_SourceOnlyLoader(fullname, spec.origin, self.cache),
            submodule_search_locations=spec.submodule_search_locations,
        )
