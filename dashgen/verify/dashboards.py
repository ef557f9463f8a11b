"""Dashboard JSON files -> the PromQL targets in them, parsed, for ``dashgen verify``.

Reads any dashboard a user may have, generated or hand-written: the modern ``panels[]``
layout, panels nested in collapsed rows, and the legacy ``rows[].panels[]`` layout. Each
target is resolved to a datasource type; only Prometheus-compatible ones are parsed, the rest
are kept as skipped with a reason so that reports can say what was not checked.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from dashgen.errors import DashgenError
from dashgen.verify.promql import (
    PromQLError,
    QueryRefs,
    extract_refs,
    substitute_variables,
    variable_query_refs,
)
from dashgen.vocabulary import ref_id

DEFAULT_DATASOURCE = "prometheus"
"""Type assumed when nothing names one: dashboards with PromQL exprs default to Prometheus."""

PROMETHEUS_TYPES = frozenset(
    {"prometheus", "victoriametrics-metrics-datasource", "victoriametrics-datasource"}
)
"""Plugin types that take PromQL; any type containing "prometheus" also counts
(``grafana-amazonprometheus-datasource``, ``grafana-azureprometheus-datasource``)."""

# Datasource names Grafana gives a meaning of its own; None means "not set here, inherit".
_BUILTIN: dict[str, str | None] = {
    "-- mixed --": None,
    "-- grafana --": "grafana",
    "grafana": "grafana",
    "-- dashboard --": "dashboard",
    "__expr__": "__expr__",
}
# Words that mark a datasource name (or variable name) as not Prometheus, checked in order.
_NOT_PROMETHEUS_WORDS = (
    "loki",
    "tempo",
    "jaeger",
    "zipkin",
    "pyroscope",
    "opensearch",
    "elasticsearch",
    "influx",
    "graphite",
)
# Words that only suggest another kind of source: "Logs" may be Loki or a Prometheus kept
# for log-derived metrics, so a query there counts as PromQL when it parses as PromQL.
_GENERIC_WORDS = ("logs", "traces")
MAYBE_NOT_PROMQL = "named like logs or traces"
"""The datasource of a target whose datasource name says "logs" or "traces" only."""
# A whole datasource string that is one Grafana variable: $ds, ${ds}, ${ds:text}, [[ds]].
_VARIABLE_REF = re.compile(r"\$(\w+)|\$\{(\w+)(?:[.:][^}]*)?\}|\[\[(\w+)(?::\w+)?\]\]")
_LEGEND_LABEL = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_JSON_TYPES = {
    list: "an array",
    str: "a string",
    int: "a number",
    float: "a number",
    bool: "a boolean",
    type(None): "null",
}


NOT_A_DASHBOARD = "not a Grafana dashboard"
PANEL = "panel"
LIBRARY_PANEL = "library panel"
VARIABLE = "variable"
ANNOTATION = "annotation"
ALERT_RULE = "alert rule"
RECORDING_RULE = "recording rule"
RULES = (ALERT_RULE, RECORDING_RULE)


@dataclass(frozen=True)
class Target:
    """One query a dashboard runs, with where it comes from for reports.

    ``place`` says what holds it: a panel (``panel`` is its title), a library panel kept
    in the file, a template variable, an annotation, an alert or a recording rule
    (``panel`` is its name). A variable's ``expr`` is its query as Grafana takes it
    (``label_values(x, route)``).
    """

    file: str
    dashboard: str
    panel: str
    panel_id: int | None
    ref_id: str
    expr: str
    legend: str
    datasource: str
    place: str = PANEL
    panel_type: str = ""
    """The panel's ``type`` (``timeseries``, ``table``...), "" for variables and annotations."""
    unit: str = ""
    """The panel's Grafana unit (``fieldConfig.defaults.unit``), "" when it sets none."""

    @property
    def legend_labels(self) -> list[str]:
        """The labels ``legendFormat`` names (``{{route}}``), sorted, each once; none for a
        table, which names its columns by its transformations, not by the legend."""
        if self.panel_type == "table":
            return []
        return sorted(set(_LEGEND_LABEL.findall(self.legend)))

    @property
    def runs_as_promql(self) -> bool:
        """Whether Grafana sends ``expr`` to the server as a PromQL query."""
        return self.place != VARIABLE


@dataclass(frozen=True)
class ParsedTarget:
    """A PromQL target: ``refs`` when it parsed, else ``error`` (a finding, not a crash)."""

    target: Target
    refs: QueryRefs | None
    error: str | None


@dataclass(frozen=True)
class SkippedTarget:
    """A target that verify cannot check (not PromQL, or no query), and why."""

    target: Target
    reason: str


@dataclass(frozen=True)
class DashboardQueries:
    """One dashboard file: its panel titles (every non-row panel, "" when untitled) and
    its targets."""

    file: str
    title: str
    uid: str
    panels: tuple[str, ...]
    targets: tuple[ParsedTarget, ...]
    skipped: tuple[SkippedTarget, ...]
    values: Mapping[str, str] = field(default_factory=dict)
    """Template variable -> the value a live query uses: its All value, else its first."""
    error: str | None = None
    """Why the file (or the entry of a YAML file) could not be read; nothing else is set."""
    rules: bool = False
    """A rule group (its "panels" are rules), not a dashboard."""


def read_dashboard(path: Path, root: Path) -> DashboardQueries:
    """Read one dashboard JSON file; raises :class:`DashgenError` when it is not one."""
    file = shown_path(path, root)
    return dashboard_queries(load_dashboard(_read_text(path, file), file), file)


def shown_path(path: Path, root: Path) -> str:
    """How reports name ``path``: relative to ``root`` when under it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return path.as_posix()


def dashboard_queries(dashboard: dict[str, object], file: str) -> DashboardQueries:
    """Every query of a loaded dashboard, parsed: panels (library panels kept in the file
    included), template variables and annotations, in that order."""
    title = _text(dashboard.get("title"))
    variables = _datasource_variables(dashboard)
    panels: list[str] = []
    parsed: list[ParsedTarget] = []
    skipped: list[SkippedTarget] = []
    found: list[tuple[Target, str | None]] = []
    for place, panel in _panels(dashboard, file):
        panels.append(_text(panel.get("title")))
        found.extend(_targets(panel, file, title, variables, place))
    found.extend(_variable_targets(dashboard, file, title, variables))
    found.extend(_annotation_targets(dashboard, file, title, variables))
    for target, reason in found:
        if reason is not None:
            skipped.append(SkippedTarget(target, reason))
            continue
        try:
            refs = _refs(target)
        except PromQLError as error:
            if target.datasource == MAYBE_NOT_PROMQL:  # LogQL or TraceQL, most likely
                skipped.append(SkippedTarget(target, f"datasource {MAYBE_NOT_PROMQL}, not PromQL"))
            else:
                parsed.append(ParsedTarget(target, None, str(error)))
        else:
            if refs is None:
                skipped.append(SkippedTarget(target, "label_names() lists every label"))
            else:
                parsed.append(ParsedTarget(target, refs, None))
    return DashboardQueries(
        file=file,
        title=title,
        uid=_text(dashboard.get("uid")),
        panels=tuple(panels),
        targets=tuple(parsed),
        skipped=tuple(skipped),
        values=_variable_values(dashboard),
    )


def _refs(target: Target) -> QueryRefs | None:
    if target.place == VARIABLE:
        return variable_query_refs(target.expr)
    return extract_refs(substitute_variables(target.expr))


def _variable_targets(
    dashboard: dict[str, object], file: str, title: str, variables: dict[str, str]
) -> Iterator[tuple[Target, str | None]]:
    """The query of each ``query`` template variable: the string form, or the object form
    Grafana 10 and later save (``{"query": "label_values(...)", "refId": ...}``)."""
    for entry in _template_entries(dashboard):
        if entry.get("type") != "query":
            continue
        query = entry.get("query")
        if isinstance(query, dict):
            query = query.get("query") or entry.get("definition")
        if not isinstance(query, str) or not query.strip():
            continue
        datasource = _resolve(entry.get("datasource"), variables) or DEFAULT_DATASOURCE
        name = f"${_text(entry.get('name'))}"
        yield _unpanelled(file, title, VARIABLE, name, "", query, datasource)


def _annotation_targets(
    dashboard: dict[str, object], file: str, title: str, variables: dict[str, str]
) -> Iterator[tuple[Target, str | None]]:
    """The PromQL of each annotation that has one (``expr``, or ``target.expr``); the
    built-in "Annotations & Alerts" has none."""
    annotations = dashboard.get("annotations")
    entries = annotations.get("list") if isinstance(annotations, dict) else None
    for entry in entries if isinstance(entries, list) else ():
        if not isinstance(entry, dict):
            continue
        inner = entry.get("target")
        inner = inner if isinstance(inner, dict) else {}
        expr = entry.get("expr") or inner.get("expr")
        if not isinstance(expr, str) or not expr.strip():
            continue
        datasource = (
            _resolve(inner.get("datasource"), variables)
            or _resolve(entry.get("datasource"), variables)
            or DEFAULT_DATASOURCE
        )
        name, ref = _text(entry.get("name")), _text(inner.get("refId"))
        yield _unpanelled(file, title, ANNOTATION, name, ref, expr, datasource)


def _unpanelled(
    file: str, dashboard: str, place: str, name: str, ref: str, expr: str, datasource: str
) -> tuple[Target, str | None]:
    """A variable's or an annotation's query, which no panel holds, and why to skip it."""
    target = Target(file, dashboard, name, None, ref, expr, "", datasource, place)
    return target, _skip_reason(datasource, expr)


def _targets(
    panel: dict[str, object], file: str, dashboard: str, variables: dict[str, str], place: str
) -> Iterator[tuple[Target, str | None]]:
    """Each target of ``panel`` with its resolved datasource, and why to skip it (or None)."""
    title = _text(panel.get("title"))
    targets = panel.get("targets")
    if targets is None:
        return
    if not isinstance(targets, list):
        raise DashgenError(file, f"panel {title!r}: 'targets' is not a list")
    panel_id = panel.get("id")
    panel_datasource = _resolve(panel.get("datasource"), variables)
    field_config = panel.get("fieldConfig")
    defaults = field_config.get("defaults") if isinstance(field_config, dict) else None
    unit = sys.intern(_text(defaults.get("unit")) if isinstance(defaults, dict) else "")
    panel_type = sys.intern(_text(panel.get("type")))
    for position, raw in enumerate(targets):
        if not isinstance(raw, dict):
            raise DashgenError(file, f"panel {title!r}: a target is not an object")
        stored_ref = raw.get("refId")
        expr = raw.get("expr")
        datasource = (
            _resolve(raw.get("datasource"), variables) or panel_datasource or DEFAULT_DATASOURCE
        )
        # The short texts that recur in every panel are interned: a child reading the
        # dashboards sends back each once.
        target = Target(
            file=file,
            dashboard=dashboard,
            panel=title,
            panel_id=panel_id if type(panel_id) is int else None,
            ref_id=sys.intern(
                stored_ref if isinstance(stored_ref, str) and stored_ref else ref_id(position)
            ),
            expr=_text(expr),
            legend=sys.intern(_text(raw.get("legendFormat"))),
            datasource=sys.intern(datasource),
            place=place,
            panel_type=panel_type,
            unit=unit,
        )
        yield target, _skip_reason(datasource, expr)


def _read_text(path: Path, file: str) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except OSError as error:
        raise DashgenError(file, f"cannot read: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise DashgenError(
            file, f"not UTF-8: byte 0x{error.object[error.start]:02x} at offset {error.start}"
        ) from None


def load_dashboard(text: str, file: str) -> dict[str, object]:
    """The dashboard object in JSON ``text``, unwrapped from the API export form if needed."""
    try:
        data: object = json.loads(text)
    except json.JSONDecodeError as error:
        raise DashgenError(
            file,
            # "Unterminated string starting at" already ends in "at".
            f"not valid JSON: {error.msg.removesuffix(' at')} at line {error.lineno} "
            f"column {error.colno}",
        ) from None
    except RecursionError:
        raise DashgenError(file, "not valid JSON: nested too deeply") from None
    except ValueError:  # json reads integers through int(), which refuses very long ones
        raise DashgenError(
            file, f"not valid JSON: an integer has more than {sys.get_int_max_str_digits()} digits"
        ) from None
    if isinstance(data, dict) and "panels" not in data and "rows" not in data:
        wrapped = data.get("dashboard")  # {"dashboard": {...}, "meta": {...}} (HTTP API)
        data = wrapped if isinstance(wrapped, dict) else data
    if not isinstance(data, dict):
        found = _JSON_TYPES[type(data)]
        raise DashgenError(file, f"{NOT_A_DASHBOARD}: the top level is {found}")
    if "panels" not in data and "rows" not in data:
        raise DashgenError(file, f"{NOT_A_DASHBOARD}: no 'panels' or 'rows'")
    return data


def _panels(dashboard: dict[str, object], file: str) -> Iterator[tuple[str, dict[str, object]]]:
    """Every non-row panel in display order (top-level, inside rows, or in legacy rows),
    then the library panels the file keeps in ``__elements`` (the export form)."""
    for key in ("panels", "rows"):
        for item in _objects(dashboard.get(key), key, file):
            if key == "rows" or item.get("type") == "row":
                for panel in _objects(item.get("panels"), f"{key}[].panels", file):
                    yield PANEL, panel
            else:
                yield PANEL, item
    elements = dashboard.get("__elements")
    for element in elements.values() if isinstance(elements, dict) else ():
        model = element.get("model") if isinstance(element, dict) else None
        if isinstance(model, dict):
            yield LIBRARY_PANEL, {"title": element.get("name"), **model}


def _objects(value: object, key: str, file: str) -> list[dict[str, object]]:
    """The objects in a list-valued key (missing or null: none); anything else is an error."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise DashgenError(file, f"'{key}' is not a list")
    objects: list[dict[str, object]] = []
    for item in value:
        if not isinstance(item, dict):
            raise DashgenError(file, f"'{key}' has an item that is not an object")
        objects.append(item)
    return objects


def _variable_values(dashboard: dict[str, object]) -> dict[str, str]:
    """What Grafana would put in for each non-datasource variable on a fresh load.

    "All" when the variable offers it (its ``allValue``, or the regex ``.*`` Grafana uses
    for multi-value matchers), else the current or first option. Malformed entries are
    ignored: a live query then keeps the variable and the server reports it.
    """
    values: dict[str, str] = {}
    for entry in _template_entries(dashboard):
        if entry.get("type") == "datasource":
            continue
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        if entry.get("includeAll"):
            values[name] = _text(entry.get("allValue")) or ".*"
            continue
        options = entry.get("options")
        candidates = [entry.get("current"), *(options if isinstance(options, list) else [])]
        for candidate in candidates:
            value = candidate.get("value") if isinstance(candidate, dict) else None
            value = value[0] if isinstance(value, list) and value else value
            if isinstance(value, str) and value:
                values[name] = value
                break
        else:
            query = entry.get("query")
            if entry.get("type") in ("custom", "constant", "textbox") and isinstance(query, str):
                values[name] = query.split(",")[0].strip()
    return values


def _template_entries(dashboard: dict[str, object]) -> list[dict[str, object]]:
    """The template variables that are objects; malformed ones are ignored."""
    templating = dashboard.get("templating")
    entries = templating.get("list") if isinstance(templating, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _datasource_variables(dashboard: dict[str, object]) -> dict[str, str]:
    """Variable name -> plugin type, from datasource template variables and ``__inputs``.

    ``__inputs`` (the export form, ``${DS_PROMETHEUS}``) wins over a template variable of
    the same name. Malformed entries are ignored: these are only hints.
    """
    variables: dict[str, str] = {}
    for entry in _template_entries(dashboard):
        if entry.get("type") == "datasource":
            name, plugin = entry.get("name"), entry.get("query")
            if isinstance(name, str) and isinstance(plugin, str) and plugin:
                variables[name] = plugin
    inputs = dashboard.get("__inputs")
    for entry in inputs if isinstance(inputs, list) else ():
        if isinstance(entry, dict):
            name, plugin = entry.get("name"), entry.get("pluginId")
            if isinstance(name, str) and isinstance(plugin, str) and plugin:
                variables[name] = plugin
    return variables


def _resolve(value: object, variables: dict[str, str]) -> str | None:
    """The plugin type a panel or target ``datasource`` names, or None to inherit.

    Accepts an object with a ``type`` (the type wins), an object with only a ``uid``, or a
    string; a uid or string may be a variable (looked up in ``variables``), one of Grafana's
    built-in names, or a plain datasource name or uid. Names carry no type, so a name is
    taken as Prometheus-compatible ("Victoria Metrics", "prometheus", "webstore-metrics")
    unless it contains a word such as "loki", "tempo" or "jaeger"; one that only says
    "logs" or "traces" is :data:`MAYBE_NOT_PROMQL`, and its queries count as PromQL when
    they parse as PromQL. An unknown variable is judged by its name the same way
    (``${lokids}`` is Loki).
    """
    if isinstance(value, dict):
        kind = value.get("type")
        if isinstance(kind, str) and kind and kind != "datasource" and "$" not in kind:
            return kind
        value = value.get("uid")
    if not isinstance(value, str) or not value.strip():
        return None
    name = value.strip()
    if name.lower() in _BUILTIN:
        return _BUILTIN[name.lower()]
    reference = _VARIABLE_REF.fullmatch(name)
    if reference is not None:
        name = next(group for group in reference.groups() if group is not None)
        if name in variables:
            return variables[name]
    lowered = name.lower()
    other = next((word for word in _NOT_PROMETHEUS_WORDS if word in lowered), None)
    if other is not None:
        return other
    if any(word in lowered for word in _GENERIC_WORDS):
        return MAYBE_NOT_PROMQL
    return DEFAULT_DATASOURCE


def _skip_reason(datasource: str, expr: object) -> str | None:
    """Why a target is not parsed as PromQL, or None when it is."""
    if datasource == "__expr__":
        return "server-side expression"
    if (
        datasource not in PROMETHEUS_TYPES
        and "prometheus" not in datasource
        and datasource != MAYBE_NOT_PROMQL
    ):
        return f"{datasource} datasource"
    if not isinstance(expr, str):
        return "no expr"
    if not expr.strip():
        return "empty expr"
    return None


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""
