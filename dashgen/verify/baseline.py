"""Adoption at scale: a committed file of the findings a project already has.

``verify --write-baseline FILE`` records the current findings; ``verify --baseline FILE``
then reports only the ones not in it, so a team adopting dashgen on a hundred hand-written
dashboards fails CI on new drift from day one and works the old list down at its own pace.
A finding is known by what it is about (kind, file, place, panel, refId, subject), not by its
wording, so a reworded message never turns a known finding into a new one. The file is sorted
JSON, one finding per line, so that it diffs and merges like a lock file.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from dashgen.errors import DashgenError
from dashgen.verify.contract import Finding, VerifyResult

_VERSION = 1
_KEY_FIELDS = ("kind", "file", "place", "panel", "ref_id", "subject")

Key = tuple[str, ...]


def key_of(finding: Finding) -> Key:
    return tuple(getattr(finding, name) for name in _KEY_FIELDS)


def write_baseline(path: Path, findings: Iterable[Finding]) -> int:
    """Write the findings' keys to ``path`` atomically; how many there are."""
    keys = sorted({key_of(finding) for finding in findings})
    lines = [
        json.dumps(dict(zip(_KEY_FIELDS, key, strict=True)), ensure_ascii=False) for key in keys
    ]
    listed = "[\n" + ",\n".join(lines) + "\n]" if lines else "[]"
    text = f'{{"version": {_VERSION}, "findings": {listed}}}\n'
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return len(keys)


def read_baseline(path: Path) -> frozenset[Key]:
    where = path.as_posix()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise DashgenError(where, f"cannot read the baseline: {error.strerror}") from None
    except ValueError as error:
        raise DashgenError(where, f"not a dashgen baseline: {error}") from None
    if not isinstance(document, dict) or document.get("version") != _VERSION:
        raise DashgenError(
            where, f"not a dashgen baseline (version {_VERSION}): write one with --write-baseline"
        )
    entries = document.get("findings")
    if not isinstance(entries, list):
        raise DashgenError(where, "not a dashgen baseline: 'findings' is not a list")
    keys = set()
    for position, entry in enumerate(entries):
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(f), str) for f in _KEY_FIELDS
        ):
            raise DashgenError(
                where, f"finding {position + 1}: needs the strings {', '.join(_KEY_FIELDS)}"
            )
        keys.add(tuple(entry[name] for name in _KEY_FIELDS))
    return frozenset(keys)


def without_known(result: VerifyResult, known: frozenset[Key], baseline: Path) -> VerifyResult:
    """The findings not in the baseline; an info line counts the known ones and names any
    entry that no longer occurs (fixed: drop it from the file)."""
    new = tuple(finding for finding in result.findings if key_of(finding) not in known)
    seen = {key_of(finding) for finding in result.findings}
    gone = sorted(known - seen)
    info = [
        f"{len(result.findings) - len(new)} known findings left out: in the baseline "
        f"{baseline.as_posix()}"
    ]
    info += [
        f"baseline entry fixed, drop it: {' '.join(part for part in key if part)}" for key in gone
    ]
    return replace(result, findings=new, info=tuple(sorted({*result.info, *info})))
