"""Stage 5: the only code that touches the output dir, and it swaps, never edits in place.

A build writes every file into a fresh dir beside the output dir, syncs it to disk once,
then exchanges the two dirs in one step (``renameat2(RENAME_EXCHANGE)`` on Linux), so that
at every instant the output dir is the whole old tree or the whole new one. Whatever fails
before the exchange (a bad source, a full disk, Ctrl-C, SIGKILL) leaves the output dir
exactly as it was; what an interrupted run leaves beside it, the next run removes (or, when
a run of an older dashgen died between its two renames, puts back).

Because the swap replaces the whole dir, it only replaces a dir that holds nothing but what
a build writes (dashboards at the top, YAML under ``provisioning/``): an output dir
misconfigured as the project root, the sources or ``docs/`` is refused, not wiped. An
output dir that is a symlink is written through: the link stays, its target is swapped.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from dashgen.build.layout import LOCK, RULES_DIR
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
    """Every file or link under ``out_dir`` (itself read through, if a link), by posix
    path; links inside it are never followed."""
    out_dir = real_dir(out_dir)
    if not out_dir.is_dir():
        return {}
    found: dict[str, Path] = {}
    for directory, subdirs, names in os.walk(out_dir, followlinks=False):
        base = Path(directory)
        for name in names + [d for d in subdirs if (base / d).is_symlink()]:
            path = base / name
            found[path.relative_to(out_dir).as_posix()] = path
    return found


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
        return top.endswith(".json") or top == LOCK
    if top == "provisioning":
        return rest.endswith((".yaml", ".yml"))
    if top == RULES_DIR:  # rule files, and their promtool tests in rules/tests/
        name = rest.removeprefix("tests/")
        return "/" not in name and name.endswith(".yaml")
    return "/" not in rest and rest.endswith(".json")  # a dashboard in a folder's subdir


def _is_dashboard(relative: str) -> bool:
    return relative.endswith(".json") and relative.partition("/")[0] not in (
        "provisioning",
        RULES_DIR,
    )


def real_dir(out_dir: Path) -> Path:
    """Where the output dir really is: a symlinked ``generated/`` is written through."""
    return Path(os.path.realpath(out_dir)) if out_dir.is_symlink() else out_dir


def check_replaceable(out_dir: Path, files: Mapping[str, bytes]) -> None:
    """Refuse to swap out anything a build did not write: the swap would delete it."""
    if not out_dir.exists():
        return
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


def check_not_emptied(out_dir: Path, files: Mapping[str, bytes]) -> None:
    """Refuse a build with no dashboards over an output dir that has some: an empty or
    mistyped sources dir would otherwise delete every dashboard and exit 0."""
    if any(_is_dashboard(path) for path in files):
        return
    held = [path for path in existing_files(out_dir) if _is_dashboard(path)]
    if held:
        raise DashgenError(
            str(out_dir),
            f"the build holds no dashboards and would delete the {len(held)} here (are the "
            "sources right?): pass --allow-empty to do that",
        )


def write_tree(
    out_dir: Path, files: Mapping[str, bytes], digests: Mapping[str, str], allow_empty: bool = False
) -> list[Drift]:
    """Make ``out_dir`` hold exactly ``files`` (whose :func:`digest` are ``digests``);
    returns what changed (nothing: no write).

    Raises :class:`DashgenError` (one line, exit 2) when the dir holds files a build did not
    write, when the build would empty it (unless ``allow_empty``), or when the OS refuses the
    write (read-only, full disk): either way the output dir is as it was.
    """
    target = real_dir(out_dir)
    drift = diff_digests(target, digests)
    if not drift and target.is_dir():
        return drift
    if not allow_empty:
        check_not_emptied(target, files)
    check_replaceable(target, files)
    try:
        _swap_in(target, files)
    except OSError as error:
        raise DashgenError(
            str(out_dir), f"cannot write: {error.strerror or error}; nothing was changed"
        ) from None
    return drift


def tidy(out_dir: Path) -> None:
    """Before a build looks at the output dir: clear up after an interrupted one."""
    try:
        recover_interrupted(real_dir(out_dir))
    except OSError as error:
        raise DashgenError(str(out_dir), f"cannot tidy up: {error.strerror or error}") from None


def _work_dir_pattern(out_dir: Path) -> re.Pattern[str]:
    """``.generated.new-<pid>-<random>`` and ``.old-``; dashgen before 0.2 wrote no pid."""
    return re.compile(rf"\.{re.escape(out_dir.name)}\.(new|old)-(?:(\d+)-)?[^/]*")


def recover_interrupted(out_dir: Path) -> None:
    """Remove what an interrupted build left beside ``out_dir``; if a build of an older
    dashgen died between its two renames, leaving no output dir, put the old tree back.

    Work dirs of a build that is still running (its pid is alive) are left alone.
    """
    parent = out_dir.parent
    if not parent.is_dir():
        return
    pattern = _work_dir_pattern(out_dir)
    for entry in sorted(parent.iterdir()):
        found = pattern.fullmatch(entry.name)
        if found is None or not entry.is_dir() or entry.is_symlink():
            continue
        kind, pid = found.group(1), found.group(2)
        if pid is not None and int(pid) != os.getpid() and _alive(int(pid)):
            continue
        kept = entry / out_dir.name
        if kind == "old" and kept.is_dir() and not out_dir.exists():
            os.rename(kept, out_dir)
        shutil.rmtree(entry, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # alive, as another user
    return True


def _swap_in(out_dir: Path, files: Mapping[str, bytes]) -> None:
    if out_dir.exists() and not os.access(out_dir, os.W_OK):
        # The exchange itself would succeed, but the old tree could then not be deleted.
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(out_dir))
    parent = out_dir.parent
    parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{out_dir.name}.new-{os.getpid()}-"
    staging = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    retired = staging
    try:
        for relative, data in sorted(files.items()):
            _write_file(staging, relative, data)
        staging.chmod(0o755)
        _sync_tree(staging)
        if out_dir.exists():
            retired = _exchange(staging, out_dir)
        else:
            os.rename(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    _discard(retired)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_LINUX = sys.platform.startswith("linux")


def _exchange(new: Path, old: Path) -> Path:
    """Put ``new`` in place of ``old``; returns the dir that now holds the old tree.

    One step where the OS can swap two dirs; else two renames, the first undone on failure.
    """
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None) if _LINUX else None
    if renameat2 is not None:
        if renameat2(_AT_FDCWD, os.fsencode(new), _AT_FDCWD, os.fsencode(old), _RENAME_EXCHANGE):
            code = ctypes.get_errno()
            if code not in (errno.EINVAL, errno.ENOSYS, errno.ENOTSUP):
                raise OSError(code, os.strerror(code), str(old))
        else:
            return new
    # No atomic exchange here (another OS, a file system without it): a short window in
    # which a SIGKILL leaves the old tree in .<name>.old-<pid>-*, which the next run restores.
    retired = Path(tempfile.mkdtemp(prefix=f".{old.name}.old-{os.getpid()}-", dir=old.parent))
    os.rename(old, retired / old.name)
    try:
        os.rename(new, old)
    except BaseException:
        os.rename(retired / old.name, old)
        raise
    return retired


def _sync_tree(root: Path) -> None:
    """Make the new tree durable with one call before it replaces the old one, rather than
    an fsync per file: ``syncfs`` on Linux, else each file."""
    descriptor = os.open(root, os.O_RDONLY)
    try:
        syncfs = getattr(ctypes.CDLL(None), "syncfs", None) if _LINUX else None
        if syncfs is not None and syncfs(descriptor) == 0:
            return
        for directory, _, names in os.walk(root):
            for name in names:
                with open(os.path.join(directory, name), "rb") as handle:
                    os.fsync(handle.fileno())
    finally:
        os.close(descriptor)


def _discard(retired: Path) -> None:
    """Delete the old tree after the swap. The new tree is whole by now, so a Ctrl-C here
    finishes the cleanup rather than leaving it beside the output dir."""
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
    target.chmod(0o644)
