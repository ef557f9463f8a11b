"""Stage 1: import the user's sources and collect their declarations as plain data.

This is the only stage that runs user code. Everything it returns is frozen data, checked
for the mistakes that can be seen without the exporter: duplicate names, hints that do not
fit the instrument, hint labels that were never declared, unsafe or duplicate uids, and
metrics that no dashboard places.
"""

from __future__ import annotations

import hashlib
import importlib
import itertools
import re
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import ModuleType

from dashgen.declare import Dashboard, Metric, MetricSpec
from dashgen.errors import DashgenError

UID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,40}")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class RowSpec:
    title: str
    metrics: tuple[str, ...]
    collapsed: bool


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


@dataclass(frozen=True)
class Catalog:
    """Every declaration found under the sources dir, metrics sorted by name."""

    metrics: tuple[MetricSpec, ...]
    dashboards: tuple[DashboardSpec, ...]

    def metric(self, name: str) -> MetricSpec:
        return next(m for m in self.metrics if m.name == name)


def load_catalog(sources: Path) -> Catalog:
    """Import every ``*.py`` under ``sources`` and collect what they declare."""
    if not sources.is_dir():
        raise DashgenError(str(sources), "sources dir not found (set [tool.dashgen] sources)")
    modules = _import_sources(sources)
    metrics: dict[int, Metric] = {}
    dashboards: dict[int, Dashboard] = {}
    for module in modules:
        for value in vars(module).values():
            if isinstance(value, Metric):
                metrics.setdefault(id(value), value)
            elif isinstance(value, Dashboard):
                dashboards.setdefault(id(value), value)
    for dashboard in dashboards.values():
        for row in dashboard.rows:
            for metric in row.metrics:
                metrics.setdefault(id(metric), metric)
    root = sources.resolve().parent
    specs = sorted((_relative(metric.spec(), root) for metric in metrics.values()), key=_spec_order)
    _check_unique_names(specs)
    for spec in specs:
        check_hints(spec)
    dashboard_specs = sorted(
        (_dashboard_spec(d, root) for d in dashboards.values()), key=lambda d: d.uid
    )
    _check_dashboards(dashboard_specs, specs)
    return Catalog(metrics=tuple(specs), dashboards=tuple(dashboard_specs))


def where(spec: MetricSpec) -> str:
    return f"{spec.file}:{spec.line}: metric '{spec.name}'"


def check_hints(spec: MetricSpec) -> None:
    """A hint must fit the instrument and may only group by attributes the metric declares."""
    for hint in spec.hints:
        hint_name = type(hint).__name__
        if spec.kind not in hint.fits:
            fits = ", ".join(sorted(kind.value for kind in hint.fits))
            raise DashgenError(
                where(spec), f"hint {hint_name} does not fit a {spec.kind.value} (it fits {fits})"
            )
        for label in hint.by:
            if label not in spec.labels:
                raise DashgenError(
                    where(spec),
                    f"hint {hint_name} groups by '{label}', which is not among the declared "
                    f"labels {list(spec.labels)}",
                )
        if hint.width < 1 or hint.width > 24 or hint.height < 1:
            raise DashgenError(where(spec), f"hint {hint_name} needs 1 <= width <= 24, height >= 1")


def _spec_order(spec: MetricSpec) -> tuple[str, str, int]:
    return (spec.name, spec.file, spec.line)


def _relative(spec: MetricSpec, root: Path) -> MetricSpec:
    return replace(spec, file=_relative_file(spec.file, root))


def _relative_file(file: str, root: Path) -> str:
    path = Path(file).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name


def _check_unique_names(specs: list[MetricSpec]) -> None:
    for first, second in itertools.pairwise(specs):
        if first.name == second.name:
            raise DashgenError(
                where(second), f"declared twice (first at {first.file}:{first.line})"
            )


def default_uid(title: str) -> str:
    """A readable slug of the title; long titles keep a hash so that uids stay unique."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    if len(slug) > 40:
        digest = hashlib.sha256(title.encode()).hexdigest()[:8]
        slug = f"{slug[:31].rstrip('-')}-{digest}"
    return slug


def _dashboard_spec(dashboard: Dashboard, root: Path) -> DashboardSpec:
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
            RowSpec(row.title, tuple(m.name for m in row.metrics), row.collapsed)
            for row in dashboard.rows
        ),
        file=file,
        line=dashboard.line,
    )


def _check_dashboards(dashboards: list[DashboardSpec], specs: list[MetricSpec]) -> None:
    seen: dict[str, DashboardSpec] = {}
    for dashboard in dashboards:
        if dashboard.uid in seen:
            first = seen[dashboard.uid]
            raise DashgenError(
                f"{dashboard.file}:{dashboard.line}: dashboard '{dashboard.title}'",
                f"uid '{dashboard.uid}' is already used by '{first.title}' "
                f"({first.file}:{first.line}); pass a distinct uid=",
            )
        seen[dashboard.uid] = dashboard
    placed = {name for d in dashboards for row in d.rows for name in row.metrics}
    for spec in specs:
        if spec.exclude_reason is not None:
            if spec.name in placed:
                raise DashgenError(where(spec), "is marked exclude= but a dashboard places it")
            if not spec.exclude_reason.strip():
                raise DashgenError(where(spec), "exclude= needs a reason")
        elif spec.name not in placed:
            raise DashgenError(
                where(spec),
                "no dashboard places it: add it to a Row, or declare it with exclude='<reason>'",
            )


def _import_sources(sources: Path) -> list[ModuleType]:
    """Import each source file; a package dir is imported as that package."""
    sources = sources.resolve()
    is_package = (sources / "__init__.py").is_file()
    search_path = sources.parent if is_package else sources
    prefix = f"{sources.name}." if is_package else ""
    files = sorted(p for p in sources.glob("*.py") if p.name != "__init__.py")
    names = [prefix + p.stem for p in files]
    with _isolated_imports(str(search_path), [n.split(".")[0] for n in names]):
        modules = []
        for path, name in zip(files, names, strict=True):
            modules.append(_import_one(path, name))
        return modules


def _import_one(path: Path, name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except SyntaxError as error:
        raise DashgenError(
            f"{error.filename or path}:{error.lineno}", f"syntax error: {error.msg}"
        ) from None
    except Exception as error:
        frame = _innermost_frame_in(error, path.parent)
        location = f"{frame.filename}:{frame.lineno}" if frame else str(path)
        raise DashgenError(
            location, f"importing {path.name} failed: {type(error).__name__}: {error}"
        ) from None


def _innermost_frame_in(error: BaseException, directory: Path) -> traceback.FrameSummary | None:
    frames = [
        frame
        for frame in traceback.extract_tb(error.__traceback__)
        if Path(frame.filename).resolve().is_relative_to(directory)
    ]
    return frames[-1] if frames else None


@contextmanager
def _isolated_imports(search_path: str, top_names: list[str]) -> Iterator[None]:
    """Import user sources fresh, and put ``sys.modules`` back as it was afterwards.

    Two builds in one process (tests, the pytest plugin) must not see each other's modules,
    and an app that already imported its declarations keeps its own objects.
    """
    roots = set(top_names)

    def take() -> dict[str, ModuleType]:
        return {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] in roots}

    saved = take()
    sys.path.insert(0, search_path)
    importlib.invalidate_caches()
    try:
        yield
    finally:
        sys.path.remove(search_path)
        take()
        sys.modules.update(saved)
