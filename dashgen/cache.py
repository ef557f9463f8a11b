"""dashgen's own cache dir (``.dashgen/cache/``): the one place besides the output dir that
dashgen writes to, and only what it can compute again.

Every write is best effort and atomic: a read-only project, a full disk or a concurrent run
costs speed, never a wrong answer or a half-written file. Every entry carries a sha256 of
its content and is checked against it before use, so a damaged entry (a flipped bit, a
truncated file, an edit by hand) is a miss, never bytes that dashgen executes or believes.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

_IGNORE_ALL = "# dashgen's cache: safe to delete, never worth committing.\n*\n"
_DIGEST_SIZE = hashlib.sha256().digest_size


def write_entry(cache: Path, relative: str, data: bytes) -> None:
    """Write ``cache/relative`` whole, or not at all."""
    target = cache / relative
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        ignore = cache / ".gitignore"
        if not ignore.exists():
            ignore.write_text(_IGNORE_ALL, encoding="utf-8")
        descriptor, temporary = tempfile.mkstemp(dir=target.parent, suffix=".tmp")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(hashlib.sha256(data).digest() + data)
            os.replace(temporary, target)
        finally:
            Path(temporary).unlink(missing_ok=True)
    except OSError:
        return


def read_entry(cache: Path, relative: str) -> bytes | None:
    """The content of ``cache/relative``; ``None`` when it is missing, unreadable or damaged."""
    try:
        stored = (cache / relative).read_bytes()
    except OSError:
        return None
    digest, data = stored[:_DIGEST_SIZE], stored[_DIGEST_SIZE:]
    return data if hashlib.sha256(data).digest() == digest else None
