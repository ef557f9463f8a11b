"""Pipeline ``scrape``: what a running app of any language serves, or a saved copy of it.

``--scrape URL|FILE`` reads Prometheus text or OpenMetrics exposition, parsed by
``prometheus_client``'s own parsers; the families are whatever the text holds.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as text_families

from dashgen.errors import DashgenError
from dashgen.families import Family
from dashgen.pipelines.prometheus_client_registry import families_of

TIMEOUT_S = 10
_ACCEPT = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
_LIMIT = 256 * 1024 * 1024


def scraped_families(source: str, root: Path) -> tuple[Family, ...]:
    """The families of the exposition at ``source``: an http(s) URL, or a file path."""
    text, openmetrics = _fetch(source) if "://" in source else _read(source, root)
    try:
        parsed = (
            list(openmetrics_families(text))  # type: ignore[no-untyped-call]
            if openmetrics
            else list(text_families(text))
        )
    except Exception as error:  # the parsers raise ValueError and friends, with the line
        raise DashgenError(source, f"is not Prometheus or OpenMetrics text: {error}") from None
    if not parsed:
        raise DashgenError(source, "holds no metric families")
    return families_of(parsed, source)


def _fetch(url: str) -> tuple[str, bool]:
    if not url.startswith(("http://", "https://")):
        raise DashgenError(url, "--scrape takes an http(s) URL or a file")
    request = urllib.request.Request(url, headers={"Accept": _ACCEPT})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=TIMEOUT_S) as response:
            body = response.read(_LIMIT)
            kind = response.headers.get("Content-Type", "")
    except urllib.error.HTTPError as error:
        raise DashgenError(url, f"answered HTTP {error.code} {error.reason}") from None
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DashgenError(url, f"cannot be scraped: {reason}") from None
    text = body.decode("utf-8", errors="replace")
    return text, kind.startswith("application/openmetrics-text") or _ends_openmetrics(text)


def _read(path: str, root: Path) -> tuple[str, bool]:
    file = Path(path) if Path(path).is_absolute() else root / path
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise DashgenError(path, f"cannot be read: {getattr(error, 'strerror', error)}") from None
    return text, _ends_openmetrics(text)


def _ends_openmetrics(text: str) -> bool:
    return text.rstrip().endswith("# EOF")
