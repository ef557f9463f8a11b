"""Stable identity: a dashboard keeps its uid when its title changes, a panel its id when
others are added, so that links to them (``/d/<uid>``, ``viewPanel=<id>``) keep working.

- uid: ``uid=`` when declared; else the uid the lock holds for the declaration (its file and
  variable); else a slug of the title, which is what the first build chose. The lock is
  ``dashgen.lock`` in the output dir: written by every build, compared by ``build --check``,
  committed with the dashboards. Grafana's file provider reads only ``*.json``, so it never
  takes the lock for a dashboard.
- panel id: a digest of the metric, the hint's kind and its rank among that metric's hints
  of the kind; a row's, of its title. Two keys of one dashboard that land on one id are
  resolved in key order, so an id only moves on such a collision (about one in a million).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from dashgen.build.layout import LOCK
from dashgen.catalog import Catalog, check_unique_uids, load_catalog
from dashgen.config import Config
from dashgen.errors import DashgenError

_LOCK_VERSION = 1
_ID_SPACE = 999_983  # a prime: ids 1 .. 999,983, small enough to read in a URL


def declared(config: Config) -> Catalog:
    """The sources' declarations, each dashboard under the uid it keeps (the lock's)."""
    return with_locked_uids(load_catalog(config.sources, config.cache), config.output)


def with_locked_uids(catalog: Catalog, output: Path) -> Catalog:
    """The catalog with each dashboard that declares no uid under the uid the lock in
    ``output`` holds for it (none yet: the title's slug, as the catalog has it)."""
    locked = read_lock(output / LOCK)
    dashboards = [
        replace(d, uid=locked.get(d.key, d.uid)) if not d.uid_declared else d
        for d in catalog.dashboards
    ]
    check_unique_uids(dashboards)
    return replace(catalog, dashboards=tuple(sorted(dashboards, key=lambda d: d.uid)))


def read_lock(path: Path) -> dict[str, str]:
    """Declaration key -> uid; an absent lock is an empty one, a damaged one an error (an
    output "dir" that is a file has no lock: the write stage refuses it, with its reason)."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DashgenError(str(path), f"cannot read the uid lock: {error}") from None
    uids = document.get("dashboards") if isinstance(document, dict) else None
    if (
        not isinstance(document, dict)
        or document.get("version") != _LOCK_VERSION
        or not isinstance(uids, dict)
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in uids.items())
    ):
        raise DashgenError(
            str(path), f"not a dashgen uid lock of version {_LOCK_VERSION}: delete it to start over"
        )
    return dict(uids)


def render_lock(catalog: Catalog) -> bytes:
    """The lock for this build: every dashboard whose uid is not declared in its source."""
    uids = {d.key: d.uid for d in catalog.dashboards if not d.uid_declared}
    document = {"dashboards": dict(sorted(uids.items())), "version": _LOCK_VERSION}
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def assign_ids(keys: Sequence[str]) -> Mapping[str, int]:
    """A stable id for each key, distinct within ``keys``."""
    ids: dict[str, int] = {}
    taken: set[int] = set()
    for key in sorted(keys):
        candidate = zlib.crc32(key.encode()) % _ID_SPACE + 1
        while candidate in taken:
            candidate = candidate % _ID_SPACE + 1
        ids[key] = candidate
        taken.add(candidate)
    return ids
