"""What importing the sources read, so that a memo can tell, without importing them again,
whether they would declare the same.

The declarations are a function of the code that ran and of what that code read: files
(the sources, modules they import, data files they open), dir listings (a source that globs
for YAML) and environment variables. While the sources are imported, an audit hook (for
``open`` and dir scans) and a watch on ``os.environ`` note each of these; afterwards each is
written down as a fingerprint: a sha256 of the bytes (an edit that keeps size and mtime is
still an edit), or size and mtime for code installed under the interpreter's prefix, which
pip only ever replaces whole.
"""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_ABSENT = "absent"
#: Audit events that read a dir's names: pathlib's and glob's scans, os.walk, listdir.
_LISTING_EVENTS = frozenset({"os.listdir", "os.scandir"})


@dataclass(frozen=True)
class SourceReads:
    """Fingerprints of everything an import of the sources read."""

    files: tuple[tuple[str, str], ...] = ()
    """(absolute path, fingerprint), sorted."""
    listings: tuple[tuple[str, tuple[str, ...]], ...] = ()
    """(absolute dir, its sorted names), sorted."""
    environment: tuple[tuple[str, str | None], ...] = ()
    """(variable, value or ``None`` when unset), sorted; every variable when the sources
    read the whole environment."""

    def still_true(self) -> bool:
        """Would the same reads give the same answers now?"""
        return (
            all(fingerprint(path) == known for path, known in self.files)
            and all(_listing(path) == names for path, names in self.listings)
            and all(os.environ.get(name) == value for name, value in self.environment)
            and (not self._read_whole_environment or self._whole_environment_is_same())
        )

    @property
    def _read_whole_environment(self) -> bool:
        return any(name == "" for name, _ in self.environment)

    def _whole_environment_is_same(self) -> bool:
        return {n: v for n, v in self.environment if n} == dict(os.environ)


_INSTALLED = tuple(
    os.path.join(os.path.abspath(prefix), "")
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix}
)


def fingerprint(path: str) -> str:
    """The file's content digest; its size and mtime for installed code; ``absent`` when
    there is no such file."""
    try:
        if not path.startswith(_INSTALLED):
            with open(path, "rb") as file:
                return hashlib.file_digest(file, "sha256").hexdigest()
        status = os.stat(path)
    except OSError:
        return _ABSENT
    return f"{status.st_mtime_ns}:{status.st_size}"


def _listing(path: str) -> tuple[str, ...] | None:
    try:
        return tuple(sorted(os.listdir(path)))
    except OSError:
        return None


class Watch:
    """The reads seen while the watch ran."""

    def __init__(self) -> None:
        self.files: set[str] = set()
        self.dirs: set[str] = set()
        self.variables: set[str] = set()
        self.whole_environment = False
        self.modules_before = set(sys.modules)

    def audit(self, event: str, arguments: tuple[Any, ...]) -> None:
        if event == "open":
            path = arguments[0]
            if isinstance(path, str | bytes):
                self.files.add(os.path.abspath(os.fsdecode(path)))
        elif event in _LISTING_EVENTS:
            path = arguments[0] if arguments else "."
            if isinstance(path, str | bytes):
                self.dirs.add(os.path.abspath(os.fsdecode(path) or "."))

    def written_down(self, ignore: Path | None = None) -> SourceReads:
        """Each read's fingerprint now (after the watch), but those under ``ignore``
        (dashgen's cache, which its own loader reads)."""
        loaded = {
            os.path.abspath(file)
            for name, module in list(sys.modules.items())
            if name not in self.modules_before
            and isinstance(file := getattr(module, "__file__", None), str)
        }
        skipped = str(ignore) + os.sep if ignore is not None else None
        files = sorted(
            path for path in self.files | loaded if skipped is None or not path.startswith(skipped)
        )
        names = sorted(os.environ) if self.whole_environment else sorted(self.variables)
        environment = [(name, os.environ.get(name)) for name in names]
        if self.whole_environment:
            environment.append(("", None))  # marks "every variable", which no name can be
        listings = ((path, _listing(path)) for path in sorted(self.dirs))
        return SourceReads(
            files=tuple((path, fingerprint(path)) for path in files),
            listings=tuple((path, names) for path, names in listings if names is not None),
            environment=tuple(environment),
        )


_current: Watch | None = None
_hook_installed = False


def _dispatch(event: str, arguments: tuple[Any, ...]) -> None:
    if _current is not None:
        _current.audit(event, arguments)


@contextmanager
def watched() -> Iterator[Watch]:
    """Note every read until the block ends. An audit hook cannot be removed, so one hook
    serves every watch, idle between them."""
    global _current, _hook_installed
    if not _hook_installed:
        sys.addaudithook(_dispatch)
        _hook_installed = True
    watch = Watch()
    environ_class = type(os.environ)
    get_item, iterate = environ_class.__getitem__, environ_class.__iter__

    def noted_get_item(self: Any, name: str) -> str:
        watch.variables.add(name)
        return get_item(self, name)

    def noted_iterate(self: Any) -> Iterator[str]:
        watch.whole_environment = True
        return iterate(self)

    previous, _current = _current, watch
    environ_class.__getitem__ = noted_get_item  # type: ignore[method-assign]
    environ_class.__iter__ = noted_iterate  # type: ignore[method-assign]
    try:
        yield watch
    finally:
        environ_class.__getitem__ = get_item  # type: ignore[method-assign]
        environ_class.__iter__ = iterate  # type: ignore[method-assign]
        _current = previous
