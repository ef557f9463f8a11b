"""``[tool.dashgen]`` in pyproject.toml, with CLI flags laid over it."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dashgen.contract import DEFAULT_SCRAPE_LABELS, ContractRules, ExternalMetric
from dashgen.errors import DashgenError


@dataclass(frozen=True)
class Config:
    root: Path
    sources: Path
    output: Path
    prometheus_url: str = "http://localhost:9090"
    datasource_uid: str = "prometheus"
    dashboards_path: str = "/var/lib/grafana/dashboards/dashgen"
    instruments: str | None = None
    scrape_labels: frozenset[str] = DEFAULT_SCRAPE_LABELS
    external: tuple[ExternalMetric, ...] = ()
    exclude: Mapping[str, str] = field(default_factory=dict)
    recorded: Path | None = None
    """A recording of the app's test run (``pytest --dashgen-record``) for verify to use."""
    unrecorded: Mapping[str, str] = field(default_factory=dict)
    """Instrument name -> why the tests cannot record it (no dead-instrument finding)."""
    cache: Path | None = None
    """dashgen's own cache dir (see :mod:`dashgen.memo`); ``None``: read and write none."""

    def rules(self) -> ContractRules:
        return ContractRules(
            scrape_labels=self.scrape_labels, external=self.external, excluded=self.exclude
        )


_KEYS = {
    "sources",
    "output",
    "prometheus_url",
    "datasource_uid",
    "dashboards_path",
    "instruments",
    "scrape_labels",
    "external",
    "exclude",
    "recorded",
    "unrecorded",
    "cache",
}
CACHE_DIR = ".dashgen/cache"


def find_pyproject(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(start: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read the nearest pyproject.toml's ``[tool.dashgen]``; ``overrides`` win (None = unset)."""
    pyproject = find_pyproject(start.resolve())
    root = pyproject.parent if pyproject else start.resolve()
    table: dict[str, Any] = {}
    if pyproject is not None:
        try:
            document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise DashgenError(str(pyproject), f"cannot read: {error}") from None
        table = dict(document.get("tool", {}).get("dashgen", {}))
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise DashgenError(f"{pyproject}", f"[tool.dashgen] has unknown keys {unknown}")
    table.update({k: v for k, v in (overrides or {}).items() if v is not None})
    where = f"{pyproject or root}: [tool.dashgen]"
    try:
        return Config(
            root=root,
            sources=root / str(table.get("sources", "dashboards_src")),
            output=root / str(table.get("output", "generated")),
            prometheus_url=str(table.get("prometheus_url", Config.prometheus_url)),
            datasource_uid=str(table.get("datasource_uid", Config.datasource_uid)),
            dashboards_path=str(table.get("dashboards_path", Config.dashboards_path)),
            instruments=table.get("instruments"),
            scrape_labels=frozenset(table.get("scrape_labels", DEFAULT_SCRAPE_LABELS)),
            external=tuple(_external(e) for e in table.get("external", [])),
            exclude={str(k): str(v) for k, v in table.get("exclude", {}).items()},
            recorded=root / str(table["recorded"]) if "recorded" in table else None,
            unrecorded=_reasons(table.get("unrecorded", {})),
            cache=root / CACHE_DIR if _flag(table.get("cache", True), "cache") else None,
        )
    except (KeyError, TypeError, AttributeError) as error:
        raise DashgenError(where, f"malformed value: {error}") from None


def _flag(value: object, key: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{key} must be true or false, got {value!r}")
    return value


def _reasons(table: Mapping[str, Any]) -> dict[str, str]:
    """``{"name" = "reason"}``: an entry without a reason excuses nothing."""
    reasons = {str(name): str(reason).strip() for name, reason in table.items()}
    missing = sorted(name for name, reason in reasons.items() if not reason)
    if missing:
        raise KeyError(f"unrecorded entries need a non-empty reason: {missing}")
    return reasons


def _external(entry: Mapping[str, Any]) -> ExternalMetric:
    """``{pattern = "node_.*", regex = true, reason = "node-exporter"}``: a reason is required."""
    reason = str(entry["reason"]).strip()
    if not reason:
        raise KeyError("external entries need a non-empty 'reason'")
    return ExternalMetric(
        pattern=str(entry["pattern"]), is_regex=bool(entry.get("regex", False)), reason=reason
    )
