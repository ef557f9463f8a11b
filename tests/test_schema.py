"""dashgen.build.schema: today's dashboard model passes; legacy output fails by path, reason."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard, GridPos, Stat, Target
from jsonschema import Draft7Validator  # type: ignore[import-untyped]

from dashgen.build.schema import dashboard_schema, schema_errors

PROMETHEUS = {"type": "prometheus", "uid": "prometheus"}


def modern_dashboard() -> dict[str, Any]:
    """A hand-written dashboard in Grafana's current model (schemaVersion 39); a fresh copy."""
    timeseries = {
        "id": 2,
        "type": "timeseries",
        "title": "Request rate",
        "description": "Requests per second, by job.",
        "gridPos": {"h": 8, "w": 12, "x": 0, "y": 1},
        "datasource": PROMETHEUS,
        "targets": [
            {
                "refId": "A",
                "datasource": PROMETHEUS,
                "expr": 'sum by (job) (rate(http_requests_total{job=~"$job"}[$__rate_interval]))',
                "legendFormat": "{{job}}",
            }
        ],
        "fieldConfig": {"defaults": {}, "overrides": []},
        "options": {},
    }
    stat = {
        "id": 3,
        "type": "stat",
        "title": "Up",
        "gridPos": {"h": 8, "w": 12, "x": 12, "y": 1},
        "datasource": PROMETHEUS,
        "targets": [{"refId": "A", "expr": "min(up)"}],
        "fieldConfig": {
            "defaults": {
                "unit": "none",
                "color": {"mode": "thresholds"},
                "thresholds": {
                    "mode": "absolute",
                    "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
                },
                "mappings": [{"type": "value", "options": {"1": {"text": "up", "color": "green"}}}],
            },
            "overrides": [
                {
                    "matcher": {"id": "byName", "options": "up"},
                    "properties": [{"id": "decimals", "value": 0}],
                }
            ],
        },
        "options": {"reduceOptions": {"calcs": ["lastNotNull"]}, "colorMode": "background"},
    }
    return {
        "uid": "dashgen-modern",
        "title": "Modern",
        "description": "Hand-written fixture.",
        "tags": ["dashgen"],
        "timezone": "browser",
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {"refresh_intervals": ["30s", "1m", "5m"]},
        "links": [],
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {
            "list": [
                {
                    "name": "job",
                    "label": "Job",
                    "type": "query",
                    "datasource": PROMETHEUS,
                    "query": "label_values(up, job)",
                    "refresh": 1,
                    "includeAll": True,
                    "multi": True,
                    "current": {"text": ["All"], "value": ["$__all"]},
                    "options": [],
                    "sort": 1,
                }
            ]
        },
        "panels": [
            {
                "id": 1,
                "type": "row",
                "title": "Traffic",
                "collapsed": False,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0},
                "panels": [],
            },
            timeseries,
            stat,
            {
                "id": 4,
                "type": "row",
                "title": "Details",
                "collapsed": True,
                "gridPos": {"h": 1, "w": 24, "x": 0, "y": 9},
                "panels": [{**timeseries, "id": 5, "gridPos": {"h": 8, "w": 24, "x": 0, "y": 10}}],
            },
        ],
    }


def test_packaged_schema_is_the_draft7_grafana_dashboard_schema() -> None:
    schema = dashboard_schema()
    Draft7Validator.check_schema(schema)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert schema["$ref"] == "#/definitions/Dashboard"
    assert {"Dashboard", "Panel", "RowPanel", "FieldConfigSource"} <= schema["definitions"].keys()
    assert dashboard_schema() is schema


def test_modern_dashboard_has_no_errors() -> None:
    assert schema_errors(modern_dashboard()) == []


def _set_rows(d: dict[str, Any]) -> None:
    d["rows"] = []


def _set_span(d: dict[str, Any]) -> None:
    d["panels"][1]["span"] = 6


def _set_empty_steps(d: dict[str, Any]) -> None:
    d["panels"][2]["fieldConfig"]["defaults"]["thresholds"]["steps"] = ""


def _set_null_description(d: dict[str, Any]) -> None:
    d["panels"][1]["description"] = None


def _set_span_in_collapsed_row(d: dict[str, Any]) -> None:
    d["panels"][3]["panels"][0]["span"] = 12


def _set_row_legacy_key(d: dict[str, Any]) -> None:
    d["panels"][0]["showTitle"] = True


def _drop_row_collapsed(d: dict[str, Any]) -> None:
    del d["panels"][0]["collapsed"]


def _set_bad_value_mapping(d: dict[str, Any]) -> None:
    d["panels"][2]["fieldConfig"]["defaults"]["mappings"][0]["options"]["1"]["text"] = 1


def _set_string_panel(d: dict[str, Any]) -> None:
    d["panels"][1] = "graph"


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (_set_rows, "$.rows: unexpected property 'rows'"),
        (_set_span, "$.panels[1].span: unexpected property 'span'"),
        (
            _set_empty_steps,
            "$.panels[2].fieldConfig.defaults.thresholds.steps: '' is not of type 'array'",
        ),
        (_set_null_description, "$.panels[1].description: None is not of type 'string'"),
        # A collapsed row's panels are checked as panels, not reported as "not a Panel".
        (_set_span_in_collapsed_row, "$.panels[3].panels[0].span: unexpected property 'span'"),
        (_set_row_legacy_key, "$.panels[0].showTitle: unexpected property 'showTitle'"),
        (_drop_row_collapsed, "$.panels[0]: 'collapsed' is a required property"),
        (
            _set_bad_value_mapping,
            "$.panels[2].fieldConfig.defaults.mappings[0].options['1'].text: "
            "1 is not of type 'string'",
        ),
        (_set_string_panel, "$.panels[1]: 'graph' is not valid under any of the given schemas"),
    ],
)
def test_each_legacy_construct_is_one_error_naming_its_path(
    break_it: Callable[[dict[str, Any]], None], expected: str
) -> None:
    dashboard = modern_dashboard()
    break_it(dashboard)
    assert schema_errors(dashboard) == [expected]


def test_errors_are_sorted_by_path_with_numeric_indices() -> None:
    dashboard = modern_dashboard()
    dashboard["panels"] += [
        {**dashboard["panels"][1], "id": 10 + i, "gridPos": {"h": 8, "w": 12, "x": 0, "y": 20 + i}}
        for i in range(9)
    ]
    dashboard["panels"][10]["span"] = 6
    dashboard["panels"][2]["span"] = 6
    dashboard["rows"] = []
    dashboard["__inputs"] = []
    expected = [
        "$['__inputs']: unexpected property '__inputs'",
        "$.panels[2].span: unexpected property 'span'",
        "$.panels[10].span: unexpected property 'span'",
        "$.rows: unexpected property 'rows'",
    ]
    assert schema_errors(dashboard) == expected
    assert schema_errors(dashboard) == expected


def test_grafanalib_output_fails_on_its_legacy_keys() -> None:
    legacy = Dashboard(
        title="Legacy",
        uid="legacy",
        panels=[
            Stat(
                title="Up",
                dataSource="prometheus",
                targets=[Target(expr="min(up)")],
                gridPos=GridPos(h=4, w=6, x=0, y=0),
            )
        ],
    ).auto_panel_ids()
    data = json.loads(json.dumps(legacy.to_json_data(), cls=DashboardEncoder))
    errors = schema_errors(data)
    assert {
        "$.rows: unexpected property 'rows'",
        "$.panels[0].span: unexpected property 'span'",
        "$.panels[0].description: None is not of type 'string'",
        "$.panels[0].fieldConfig.defaults.thresholds.steps: '' is not of type 'array'",
        "$.panels[0].datasource: 'prometheus' is not of type 'object'",
    } <= set(errors)
    assert not [line for line in errors if "any of the given schemas" in line]


def test_each_panel_types_options_are_held_to_its_config_types() -> None:
    """The dashboard schema leaves options open; @grafana/schema's panel config types do not:
    a misspelt option, a wrong enum value or a wrong type in the custom field config."""
    dashboard = modern_dashboard()
    panel = dashboard["panels"][1]
    panel["type"] = "timeseries"
    panel["options"] = {
        "legend": {"calcs": [], "displayMode": "list", "placement": "middle", "showLegend": True},
        "tooltip": {"mode": "multi", "sort": "none"},
        "lgend": {},
    }
    panel["fieldConfig"] = {"defaults": {"custom": {"lineWidth": "thick"}}, "overrides": []}
    del panel["options"]["tooltip"]  # Grafana fills in what is left out, but dashgen does not
    assert "$.panels[1].options: 'tooltip' is a required property" in schema_errors(
        dashboard, complete_panels=True
    )
    assert schema_errors(dashboard) == [
        "$.panels[1].fieldConfig.defaults.custom.lineWidth: 'thick' is not of type 'number'",
        "$.panels[1].options: Additional properties are not allowed ('lgend' was unexpected)",
        "$.panels[1].options.legend.placement: 'middle' is not one of ['bottom', 'right']",
    ]
