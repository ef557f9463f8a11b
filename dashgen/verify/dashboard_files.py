"""Where dashboards live: every file under a dir that holds Grafana dashboard JSON.

Teams keep dashboards in folders, in Kubernetes ConfigMaps (the Grafana sidecar's
``data: {name.json: ...}``) and in Grafana operator ``GrafanaDashboard`` resources
(``spec.json``). Each of those becomes one :class:`DashboardQueries`. A file that cannot be
read becomes one with ``error`` set, so that the rest are still checked; a file that holds
no dashboard is left out with a note; only a dir with no dashboard at all is an error.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from dashgen.errors import DashgenError
from dashgen.verify.dashboards import (
    NOT_A_DASHBOARD,
    DashboardQueries,
    dashboard_queries,
    load_dashboard,
    read_dashboard,
    shown_path,
)
from dashgen.verify.rule_files import rule_groups

_JSON = (".json",)
_YAML = (".yaml", ".yml")
#: Keys of files that sit beside dashboards (and in generated/) and hold no query: Grafana's
#: own provisioning, and promtool's rule tests.
_COMPANION_KEYS = frozenset(
    {"providers", "datasources", "deleteDatasources", "rule_files", "contactPoints", "policies"}
)


@dataclass(frozen=True)
class DashboardSet:
    """Everything read under one dir."""

    dashboards: tuple[DashboardQueries, ...]
    """Read ones and unreadable ones (``error`` set), in path order."""
    notes: tuple[str, ...]
    """Files left out because they hold no dashboard, and symlink loops, one line each."""


#: A file left out: its name and why (it holds no dashboard).
LeftOut = tuple[str, str]


def dashboard_paths(directory: Path, exclude: Sequence[str] = ()) -> tuple[list[Path], list[str]]:
    """The JSON and YAML files under ``directory`` (symlinked dirs followed once), sorted by
    path, but for those whose path relative to it matches an ``exclude`` glob (``*`` also
    crosses ``/``). Also a note for each symlink loop met."""
    if not directory.is_dir():
        raise DashgenError(directory.as_posix(), "not a directory")
    found: list[Path] = []
    notes: list[str] = []
    seen: set[tuple[int, int]] = set()
    for path in _walk(directory, seen, notes):
        relative = path.relative_to(directory).as_posix()
        if not any(fnmatch.fnmatchcase(relative, pattern) for pattern in exclude):
            found.append(path)
    return sorted(found, key=lambda p: p.relative_to(directory).parts), notes


def _walk(directory: Path, seen: set[tuple[int, int]], notes: list[str]) -> Iterator[Path]:
    try:
        status = directory.stat()
    except OSError as error:
        notes.append(f"{directory.as_posix()}: cannot read: {error.strerror}")
        return
    if (status.st_dev, status.st_ino) in seen:
        notes.append(f"{directory.as_posix()}: a symlink loop, not followed again")
        return
    seen.add((status.st_dev, status.st_ino))
    try:
        entries = sorted(os.scandir(directory), key=lambda entry: entry.name)
    except OSError as error:
        notes.append(f"{directory.as_posix()}: cannot list: {error.strerror}")
        return
    for entry in entries:
        path = Path(entry.path)
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        if is_dir:
            if not entry.name.startswith("."):  # .git, .dashgen, .generated.new-*
                yield from _walk(path, seen, notes)
        elif entry.name.endswith(_JSON + _YAML):
            yield path


def read_dashboards(
    directory: Path,
    root: Path | None = None,
    exclude: Sequence[str] = (),
    allow_empty: bool = False,
) -> DashboardSet:
    """Every dashboard under ``directory``. File names in the results are relative to
    ``root``, by default ``directory`` itself. Raises :class:`DashgenError` when there is
    no dashboard at all to check, unless ``allow_empty`` (the output dir, whose missing
    files are findings of their own)."""
    paths, notes = dashboard_paths(directory, exclude)
    shown_root = directory if root is None else root
    files = (read_file(path, shown_root) for path in paths)
    return collected(directory, files, notes, allow_empty)


def collected(
    directory: Path,
    files: Iterator[tuple[list[DashboardQueries], LeftOut | None]],
    notes: list[str],
    allow_empty: bool = False,
) -> DashboardSet:
    """The dashboards of each file, and notes, checked for "nothing to check"."""
    dashboards: list[DashboardQueries] = []
    left_out: list[LeftOut] = []
    for found, reason in files:
        dashboards.extend(found)
        left_out.extend([reason] if reason else [])
    notes = [*notes, *(f"{file}: {why}, left out" for file, why in left_out)]
    readable = [d for d in dashboards if d.error is None]
    if not readable and not (allow_empty and not dashboards):
        if len(left_out) == 1 and not dashboards:  # the one file there is no dashboard
            raise DashgenError(*left_out[0])
        if dashboards:
            first = dashboards[0]
            more = f" (and {len(dashboards) - 1} more unreadable)" if len(dashboards) > 1 else ""
            raise DashgenError(first.file, f"{first.error}{more}")
        others = f" ({len(left_out)} files, none a dashboard)" if left_out else ""
        raise DashgenError(
            directory.as_posix(),
            f"no dashboards here (*.json, or YAML holding dashboards){others}",
        )
    return DashboardSet(tuple(dashboards), tuple(notes))


def read_file(path: Path, root: Path) -> tuple[list[DashboardQueries], LeftOut | None]:
    """The dashboards one file holds (an unreadable one is an entry with ``error``), or
    why it holds none."""
    file = shown_path(path, root)
    if path.name.endswith(_JSON):
        try:
            return [read_dashboard(path, root)], None
        except DashgenError as error:
            if error.message.startswith(NOT_A_DASHBOARD):  # package.json and the like
                return [], (file, error.message)
            return [_unreadable(file, error.message)], None
    return _read_yaml(path, file)


def _unreadable(file: str, message: str) -> DashboardQueries:
    return DashboardQueries(file, "", "", (), (), (), error=message)


def _read_yaml(path: Path, file: str) -> tuple[list[DashboardQueries], LeftOut | None]:
    import yaml  # 25 ms of imports that a dir of JSON dashboards never needs

    try:
        documents = list(yaml.safe_load_all(path.read_bytes()))
    except OSError as error:
        return [_unreadable(file, f"cannot read: {error.strerror}")], None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1} column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        return [_unreadable(file, f"not valid YAML: {problem}{where}")], None
    found: list[DashboardQueries] = []
    held = False
    for document in documents:
        groups = rule_groups(document, file)
        held = held or bool(groups)
        found.extend(groups)
        for name, text in _held_dashboards(document):
            held = True
            entry = f"{file}#{name}"
            try:
                found.append(dashboard_queries(load_dashboard(text, entry), entry))
            except DashgenError as error:
                found.append(_unreadable(entry, error.message))
    if held or all(_is_companion(document) for document in documents):
        return found, None
    return [], (
        file,
        "YAML holding no Grafana dashboard (in a ConfigMap or GrafanaDashboard) and no rules",
    )


def _held_dashboards(document: object) -> Iterator[tuple[str, str]]:
    """(name, JSON text) of each dashboard a Kubernetes resource holds."""
    if not isinstance(document, dict):
        return
    kind = document.get("kind")
    if kind == "List":
        for item in document.get("items") or ():
            yield from _held_dashboards(item)
    elif kind == "ConfigMap":
        data = document.get("data")
        for key, value in sorted(data.items()) if isinstance(data, dict) else ():
            if isinstance(value, str) and (str(key).endswith(".json") or _looks_like_json(value)):
                yield str(key), value
    elif kind == "GrafanaDashboard":
        spec = document.get("spec")
        text = spec.get("json") if isinstance(spec, dict) else None
        if isinstance(text, str):
            metadata = document.get("metadata")
            name = metadata.get("name") if isinstance(metadata, dict) else None
            yield f"{name or 'spec'}.spec.json", text


def _looks_like_json(value: str) -> bool:
    stripped = value.lstrip()
    if not stripped.startswith("{"):
        return False
    try:
        data = json.loads(stripped)
    except ValueError:
        return False
    return isinstance(data, dict) and ("panels" in data or "rows" in data)


def _is_companion(document: object) -> bool:
    """Grafana provisioning (its alerting files have ``apiVersion`` and ``groups``) or a
    promtool test."""
    if not isinstance(document, dict):
        return False
    alerting = "apiVersion" in document and "groups" in document
    return alerting or bool(_COMPANION_KEYS & document.keys())
