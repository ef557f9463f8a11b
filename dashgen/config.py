"""``[tool.dashgen]`` in pyproject.toml, with CLI flags laid over it."""

from __future__ import annotations

import hashlib
import json
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from dashgen.cache import read_entry, write_entry
from dashgen.errors import DashgenError
from dashgen.pipelines import Pipeline, PipelineName
from dashgen.pipelines.otlp_names import Strategy
from dashgen.verify.accepted import DEFAULT_SCRAPE_LABELS, ContractRules, ExternalMetric


@dataclass(frozen=True)
class Config:
    root: Path
    sources: Path
    output: Path
    prometheus_url: str = "http://localhost:9090"
    datasource_uid: str = "prometheus"
    datasource_default: bool = False
    """Provision the datasource as Grafana's default; off, so an existing default stays."""
    scrape_variables: tuple[str, ...] = ("job", "instance")
    """Scrape labels every generated dashboard gets a variable for and filters by (and
    recording rules keep)."""
    grafana_alerting: bool = False
    """Also write the alerts as Grafana-managed rules (``provisioning/alerting/``)."""
    exporter_version: str | None = None
    """verify: also report every query whose names change with this version of the pull
    exporter (``opentelemetry-exporter-prometheus``), before an upgrade."""
    dashboards_path: str = "/var/lib/grafana/dashboards/dashgen"
    instruments: str | None = None
    scrape: str | None = None
    """pipeline = scrape: the URL or file of exposition text to read the families from."""
    scrape_labels: frozenset[str] = DEFAULT_SCRAPE_LABELS
    external: tuple[ExternalMetric, ...] = ()
    exclude: Mapping[str, str] = field(default_factory=dict)
    exclude_dashboards: tuple[str, ...] = ()
    """Globs of dashboard files verify leaves out, relative to the dashboards dir."""
    test_paths: tuple[str, ...] = ()
    """Recording mode: dirs of test code besides pytest's testpaths, tests/ and test_*.py."""
    baseline: Path | None = None
    """verify reports only findings not in this file (``--write-baseline`` makes it)."""
    recorded: Path | None = None
    """A recording of the app's test run (``pytest --dashgen-record``) for verify to use."""
    unrecorded: Mapping[str, str] = field(default_factory=dict)
    """Instrument name -> why the tests cannot record it (no dead-instrument finding)."""
    pipeline: Pipeline = field(default_factory=Pipeline)
    """The export path whose names the TSDB stores (see :mod:`dashgen.pipelines`)."""
    cache: Path | None = None
    """dashgen's own cache dir (see :mod:`dashgen.memo`); ``None``: read and write none."""
    defaulted_at: str | None = field(default=None, metadata={"memo_key": False})
    """Where the defaults stand in for a missing ``[tool.dashgen]`` (the pyproject.toml, or
    the dir without one), for the CLI to warn about; None when the table is there."""
    newly_valid: bytes | None = field(default=None, metadata={"memo_key": False})
    """Digest of a ``[tool.dashgen]`` table that this run validated, for the cache to
    remember once the command succeeds (see :func:`remember_valid_table`); not an input."""

    def rules(self) -> ContractRules:
        return ContractRules(
            scrape_labels=self.scrape_labels, external=self.external, excluded=self.exclude
        )


CACHE_DIR = ".dashgen/cache"


def find_pyproject(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_config(start: Path, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read the nearest pyproject.toml's ``[tool.dashgen]``; ``overrides`` win (None = unset).

    The table is checked against ``schemas/tool-dashgen.schema.json``: a wrong key or type is
    one line naming it, never a default silently used in its place.
    """
    pyproject = find_pyproject(start.resolve())
    root = pyproject.parent if pyproject else start.resolve()
    table: dict[str, Any] = {}
    newly_valid = None
    defaulted_at: str | None = str(pyproject or root)
    where = f"{pyproject or root}: [tool.dashgen]"
    if pyproject is not None:
        try:
            document = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise DashgenError(str(pyproject), f"cannot read: {error}") from None
        tool = document.get("tool", {})
        if not isinstance(tool, dict):
            raise DashgenError(f"{pyproject}: [tool]", f"must be a table, got {tool!r}")
        table = tool.get("dashgen", {})
        defaulted_at = None if "dashgen" in tool else defaulted_at
        cache_off = (overrides or {}).get("cache") is False or (
            isinstance(table, dict) and table.get("cache") is False
        )
        newly_valid = _check_table(table, where, None if cache_off else root / CACHE_DIR)
    table = {**table, **{k: v for k, v in (overrides or {}).items() if v is not None}}
    return Config(
        root=root,
        sources=root / table.get("sources", "dashboards_src"),
        output=root / table.get("output", "generated"),
        prometheus_url=table.get("prometheus_url", Config.prometheus_url),
        datasource_uid=table.get("datasource_uid", Config.datasource_uid),
        datasource_default=table.get("datasource_default", Config.datasource_default),
        scrape_variables=tuple(table.get("scrape_variables", Config.scrape_variables)),
        grafana_alerting=table.get("grafana_alerting", Config.grafana_alerting),
        exporter_version=table.get("exporter_version"),
        dashboards_path=table.get("dashboards_path", Config.dashboards_path),
        instruments=table.get("instruments"),
        scrape=table.get("scrape"),
        scrape_labels=frozenset(table.get("scrape_labels", DEFAULT_SCRAPE_LABELS)),
        external=tuple(
            ExternalMetric(e["pattern"], e.get("regex", False), e["reason"].strip())
            for e in table.get("external", [])
        ),
        exclude=dict(table.get("exclude", {})),
        exclude_dashboards=tuple(table.get("exclude_dashboards", ())),
        baseline=root / table["baseline"] if table.get("baseline") else None,
        test_paths=tuple(table.get("test_paths", ())),
        recorded=root / table["recorded"] if "recorded" in table else None,
        unrecorded={name: reason.strip() for name, reason in table.get("unrecorded", {}).items()},
        pipeline=Pipeline(
            PipelineName(table.get("pipeline", _default_pipeline(table))),
            Strategy(table.get("translation_strategy", Strategy.UNDERSCORE_ESCAPING_WITH_SUFFIXES)),
            tuple(table.get("promote_resource_attributes", ())),
            table.get("prometheus_naming", False),
        ),
        cache=root / CACHE_DIR if table.get("cache", True) else None,
        newly_valid=newly_valid,
        defaulted_at=defaulted_at,
    )


def _default_pipeline(table: Mapping[str, Any]) -> PipelineName:
    """``--scrape`` alone says which path: the families come from that text."""
    return PipelineName.SCRAPE if "scrape" in table else PipelineName.PROMETHEUS_EXPORTER


_SCHEMA = "tool-dashgen.schema.json"
_VALID_MEMO = "config-valid"
_TYPE_WORDS = {
    "string": "a string",
    "boolean": "true or false",
    "array": "a list",
    "object": "a table",
}


def _check_table(table: object, where: str, cache: Path | None) -> bytes | None:
    """Validate ``[tool.dashgen]``. A table validated before (same digest, remembered in the
    cache) is not read again, so that the common case never imports jsonschema (~50 ms);
    returns the digest of one that is valid and new, else ``None``."""
    text = json.dumps(table, sort_keys=True, default=str).encode()
    digest = hashlib.sha256(text).hexdigest().encode()
    if cache is not None and read_entry(cache, _VALID_MEMO) == digest:
        return None
    from jsonschema import Draft202012Validator  # type: ignore[import-untyped]

    schema = json.loads(resources.files("dashgen").joinpath("schemas", _SCHEMA).read_text())
    errors = sorted(
        Draft202012Validator(schema).iter_errors(table), key=lambda e: list(map(str, e.path))
    )
    if errors:
        raise DashgenError(where, _describe(errors[0]))
    return digest


def remember_valid_table(config: Config) -> None:
    """Called by the cache's writers when a command succeeded: a refused build writes nothing."""
    if config.cache is not None and config.newly_valid is not None:
        write_entry(config.cache, _VALID_MEMO, config.newly_valid)


def _describe(error: Any) -> str:
    """One jsonschema error as the user would say it: which key, which entry, what instead."""
    path = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.path)
    subject = path.lstrip(".")
    value = error.instance
    match error.validator:
        case "additionalProperties" if isinstance(value, dict):
            known = set(error.schema.get("properties", {}))
            unknown = sorted(set(value) - known) if known else []
            if unknown:
                entry = f"{subject} has" if subject else "has"
                return f"{entry} unknown keys {unknown} (known: {', '.join(sorted(known))})"
            return f"{subject}: {error.message}"
        case "enum":
            choices = ", ".join(map(str, error.validator_value))
            return f"{subject} must be one of {choices}, got {value!r}"
        case "type":
            expected = _TYPE_WORDS.get(error.validator_value, error.validator_value)
            return f"{subject or 'the table'} must be {expected}, got {value!r}"
        case "required":
            missing = error.message.split("'")[1]
            return f"{subject} needs {missing!r} (the entry is {value!r})"
        case "pattern" | "minLength" if error.validator_value in (1, "\\S"):
            return f"{subject} must not be empty"
        case "pattern" if subject == "instruments":
            return f"instruments must be 'module:function', got {value!r}"
        case _:
            return f"{subject}: {error.message}"
