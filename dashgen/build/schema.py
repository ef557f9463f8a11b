"""Check dashboards against Grafana's own dashboard JSON Schema, packaged with dashgen.

The schema (``schemas/grafana-dashboard.schema.json``, see ``schemas/README.md``) is the yardstick
for "a modern, clean dashboard": it rejects the legacy keys Grafana still tolerates and migrates.
Each generated panel type's options and custom field config are held to that panel's config
types from the same package (``schemas/panels/``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from functools import cache
from importlib.resources import files
from typing import Any, NamedTuple

# jsonschema ships no type information and types-jsonschema is not a dev dependency.
from jsonschema import Draft7Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import ValidationError  # type: ignore[import-untyped]

SCHEMA_FILE = "grafana-dashboard.schema.json"
_DEFINITIONS = "#/definitions/"

# Same rule as jsonschema's ``ValidationError.json_path``: plain keys as ``.key``, others quoted.
_PLAIN_KEY = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")

Path = tuple[str | int, ...]


class _Line(NamedTuple):
    path: Path
    message: str
    unexpected_key: bool = False


@cache
def dashboard_schema() -> dict[str, Any]:
    """The packaged Grafana dashboard schema, parsed once; shared, so do not mutate it."""
    text = (files("dashgen") / "schemas" / SCHEMA_FILE).read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator() -> Any:
    """The one validator, built on a copy of the schema with its references inlined.

    jsonschema looks a ``$ref`` up again on every visit, which is a third of the time spent on
    a typical dashboard. The ``definitions`` stay so that a recursive reference still resolves.
    """
    schema = dashboard_schema()
    definitions = schema["definitions"]
    return Draft7Validator({**_inline_refs(schema, definitions), "definitions": definitions})


def schema_errors(dashboard: Mapping[str, Any], *, complete_panels: bool = False) -> list[str]:
    """Every way ``dashboard`` (JSON data: dicts, lists, scalars) breaks the schema, one line each.

    Lines are ``"<json path>: <message>"``, sorted by path then message, so output is stable and
    diffable. Unlike raw jsonschema output, each unexpected key gets its own line naming its
    path, and a panel that matches neither ``Panel`` nor ``RowPanel`` reports the errors of the
    one it was meant to be instead of one ``is not valid under any of the given schemas`` line.

    Panel options may leave out what the config types require (Grafana fills in its
    defaults, and hand-written dashboards do), unless ``complete_panels``: dashgen's own
    output spells every option out, so that what it shows does not vary with Grafana.
    """
    lines = [line for error in _validator().iter_errors(dashboard) for line in _lines(error)]
    lines += _panel_lines(dashboard, complete_panels)
    return [f"{_json_path(path)}: {message}" for path, message, _ in sorted(lines)]


def _panel_lines(dashboard: Mapping[str, Any], complete: bool) -> list[_Line]:
    """The dashboard schema leaves ``options`` and ``fieldConfig.defaults.custom`` open
    objects; each panel type's config types (``schemas/panels/``) say what they hold."""
    lines: list[_Line] = []
    panels = dashboard.get("panels")
    for index, panel in enumerate(panels if isinstance(panels, list) else []):
        if not isinstance(panel, Mapping):
            continue
        inner = panel.get("panels")
        for inner_index, nested in enumerate(inner if isinstance(inner, list) else []):
            if isinstance(nested, Mapping):
                at = ("panels", index, "panels", inner_index)
                lines += _config_lines(nested, at, complete)
        lines += _config_lines(panel, ("panels", index), complete)
    return lines


def _config_lines(panel: Mapping[str, Any], at: Path, complete: bool) -> list[_Line]:
    validators = _panel_validators().get(str(panel.get("type")))
    if validators is None:
        return []
    defaults = (panel.get("fieldConfig") or {}).get("defaults") or {}
    checked = [
        (validators["options"], panel.get("options", {}), (*at, "options")),
        (
            validators["fieldConfig"],
            defaults.get("custom", {}),
            (*at, "fieldConfig", "defaults", "custom"),
        ),
    ]
    return [
        _Line((*where, *error.absolute_path), error.message)
        for validator, value, where in checked
        for error in validator.iter_errors(value)
        if complete or error.validator != "required"
    ]


@cache
def _panel_validators() -> dict[str, dict[str, Any]]:
    """Panel type -> a validator of its ``options`` and of its ``fieldConfig`` custom part."""
    found = {}
    for entry in (files("dashgen") / "schemas" / "panels").iterdir():
        if entry.name.endswith(".schema.json"):
            document = json.loads(entry.read_text(encoding="utf-8"))
            panel_type = entry.name.removesuffix(".schema.json")
            found[panel_type] = {key: Draft7Validator(schema) for key, schema in document.items()}
    return found


def _lines(error: ValidationError) -> list[_Line]:
    """Turn one jsonschema error into report lines (see ``schema_errors``)."""
    path: Path = tuple(error.absolute_path)
    if error.validator == "anyOf":
        candidates = [
            [line for branch_error in branch for line in _lines(branch_error)]
            for branch in _branches(error.context)
            if not _ruled_out(branch)
        ]
        if candidates:
            return min(candidates, key=lambda lines: _misfit(lines, len(path)))
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        # The generator never emits patternProperties, so "properties" is the whole allow-list.
        known = error.schema.get("properties", {})
        return [
            _Line((*path, key), f"unexpected property {key!r}", unexpected_key=True)
            for key in error.instance
            if key not in known
        ]
    return [_Line(path, error.message)]


def _branches(context: Iterable[ValidationError]) -> list[list[ValidationError]]:
    """Group an anyOf's sub-errors by the alternative they came from, in schema order."""
    grouped: dict[int, list[ValidationError]] = {}
    for error in context:
        grouped.setdefault(error.relative_schema_path[0], []).append(error)
    return list(grouped.values())


def _ruled_out(branch: Iterable[ValidationError]) -> bool:
    """True if the instance is plainly not this alternative: wrong JSON type, or a wrong tag.

    Tagged unions (``{"type": "row"}`` vs ``{"type": "value"}``) come out of TypeScript as a
    ``const`` on the instance's own property, so failing one means "a different variant".
    """
    return any(
        (error.validator == "type" and not error.relative_path)
        or (error.validator == "const" and len(error.relative_path) <= 1)
        for error in branch
    )


def _misfit(lines: list[_Line], depth: int) -> tuple[int, int]:
    """How badly an alternative fits: first its own unknown keys, then the number of errors."""
    own_unknown = sum(line.unexpected_key and len(line.path) == depth + 1 for line in lines)
    return own_unknown, len(lines)


def _inline_refs(
    node: Any, definitions: Mapping[str, Any], seen: frozenset[str] = frozenset()
) -> Any:
    """Copy of ``node`` with every ``#/definitions/<name>`` reference replaced by its target.

    Exact in Draft 7, where a ``$ref`` ignores its siblings; a reference back into a definition
    being inlined (recursion) is left as it is.
    """
    if isinstance(node, list):
        return [_inline_refs(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith(_DEFINITIONS):
        name = ref.removeprefix(_DEFINITIONS)
        if name not in seen:
            return _inline_refs(definitions[name], definitions, seen | {name})
    return {key: _inline_refs(value, definitions, seen) for key, value in node.items()}


def _json_path(path: Path) -> str:
    """``$.panels[3].fieldConfig``-style path, as jsonschema writes ``json_path``."""
    parts = ["$"]
    for part in path:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif _PLAIN_KEY.fullmatch(part):
            parts.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            parts.append(f"['{escaped}']")
    return "".join(parts)
