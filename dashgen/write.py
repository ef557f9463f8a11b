"""Stage 5: the only code that touches the output dir, and it swaps, never edits in place.

A build writes every file into a fresh temp dir beside the output dir, then renames the
old dir away and the new one in. Whatever fails before the swap (a bad source, a full
disk, Ctrl-C) leaves the output dir exactly as it was.

Because the swap replaces the whole dir, it only replaces a dir that holds nothing but what
a build writes (dashboards at the top, YAML under ``provisioning/``): an output dir
misconfigured as the project root, the sources or ``docs/`` is refused, not wiped.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dashgen.errors import DashgenError

DriftKind = Literal["stale", "missing", "orphan"]


@dataclass(frozen=True)
class Drift:
    """A file under the output dir that differs from what the sources give."""

    path: str
    kind: DriftKind

    def describe(self) -> str:
        return {
            "stale": "differs from what the sources give",
            "missing": "is not there yet",
            "orphan": "is produced by no source",
        }[self.kind]


def existing_files(out_dir: Path) -> dict[str, Path]:
    """Every file or link under ``out_dir``, by posix path; links are never followed."""
    if not out_dir.is_dir() or out_dir.is_symlink():
        return {}
    found: dict[str, Path] = {}
    for directory, subdirs, names in os.walk(out_dir, followlinks=False):
        base = Path(directory)
        for name in names + [d for d in subdirs if (base / d).is_symlink()]:
            path = base / name
            found[path.relative_to(out_dir).as_posix()] = path
    return found


def diff_tree(out_dir: Path, files: Mapping[str, bytes]) -> list[Drift]:
    return diff_digests(out_dir, {path: digest(data) for path, data in files.items()})


def diff_digests(out_dir: Path, digests: Mapping[str, str]) -> list[Drift]:
    """What differs between ``out_dir`` and the files with these digests (see :func:`digest`)."""
    existing = existing_files(out_dir)
    drift = [
        Drift(path, "missing" if path not in existing else "stale")
        for path, expected in digests.items()
        if path not in existing or _digest_of(existing[path]) != expected
    ]
    drift += [Drift(path, "orphan") for path in existing if path not in digests]
    return sorted(drift, key=lambda d: d.path)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _digest_of(path: Path) -> str | None:
    if path.is_symlink() or not path.is_file():
        return None
    try:
        return digest(path.read_bytes())
    except OSError as error:
        raise DashgenError(str(path), f"cannot read: {error.strerror or error}") from None


def owned(relative: str) -> bool:
    """Whether a build could have written ``relative``: so whether replacing it loses nothing."""
    top, _, rest = relative.partition("/")
    if not rest:
        return top.endswith(".json")
    return top == "provisioning" and rest.endswith((".yaml", ".yml"))


def check_replaceable(out_dir: Path, files: Mapping[str, bytes]) -> None:
    """Refuse to swap out anything a build did not write: the swap would delete it."""
    if out_dir.is_symlink() or not out_dir.exists():
        return  # replacing a link loses nothing: its target is never touched
    if not out_dir.is_dir():
        raise DashgenError(
            str(out_dir), "output exists and is not a directory: dashgen will not replace it"
        )
    foreign = sorted(
        path for path in existing_files(out_dir) if path not in files and not owned(path)
    )
    if foreign:
        more = f" (and {len(foreign) - 1} more)" if len(foreign) > 1 else ""
        # Name a file the user knows, not one of the hidden dirs tools keep (.git, .dashgen).
        shown = next((path for path in foreign if not path.startswith(".")), foreign[0])
        raise DashgenError(
            str(out_dir),
            f"holds '{shown}'{more}, which dashgen does not write: build replaces the "
            "whole output dir, so move it away or choose another output dir",
        )


def write_tree(out_dir: Path, files: Mapping[str, bytes]) -> list[Drift]:
    """Make ``out_dir`` hold exactly ``files``; returns what changed (nothing: no write).

    Raises :class:`DashgenError` (one line, exit 2) when the dir holds files a build did not
    write, or when the OS refuses the write (read-only, full disk): either way the output dir
    is as it was.
    """
    drift = diff_tree(out_dir, files)
    if not drift and out_dir.is_dir():
        return drift
    check_replaceable(out_dir, files)
    try:
        _swap_in(out_dir, files)
    except OSError as error:
        raise DashgenError(
            str(out_dir), f"cannot write: {error.strerror or error}; nothing was changed"
        ) from None
    return drift


def _swap_in(out_dir: Path, files: Mapping[str, bytes]) -> None:
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.new-", dir=parent))
    retired: Path | None = None
    try:
        for relative, data in sorted(files.items()):
            _write_file(staging, relative, data)
        staging.chmod(0o755)
        if out_dir.exists() or out_dir.is_symlink():
            retired = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=parent))
            os.rename(out_dir, retired / out_dir.name)
        os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if retired is not None and not out_dir.exists():
            os.rename(retired / out_dir.name, out_dir)
        if retired is not None:
            shutil.rmtree(retired, ignore_errors=True)
        raise
    if retired is not None:
        _discard(retired)


def _discard(retired: Path) -> None:
    """Delete the old tree after the swap. The new tree is whole by now, so a Ctrl-C here
    finishes the cleanup rather than leaving ``.<name>.old-*`` beside the output dir."""
    try:
        shutil.rmtree(retired, ignore_errors=True)
    except KeyboardInterrupt:
        shutil.rmtree(retired, ignore_errors=True)


def _write_file(root: Path, relative: str, data: bytes) -> None:
    if Path(relative).is_absolute() or ".." in Path(relative).parts:
        raise ValueError(f"refusing to write outside the output dir: {relative}")
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    target.chmod(0o644)
