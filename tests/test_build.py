"""`dashgen build`: queries come from the real exporter, output is clean, stable and safe."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
import pytest
import yaml
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from prometheus_client import CollectorRegistry

from dashgen.build import write
from dashgen.build.schema import schema_errors
from tests.conftest import REPO, Project

GOOD_SOURCE = """
from dashgen import Counter, Dashboard, Row, hints

REQUESTS = Counter("app.requests", unit="{request}", labels=["http.route"],
                   hint=hints.Rate(by=("http.route",)))
BOARD = Dashboard("App", rows=[Row("Traffic", [REQUESTS])])
"""

# (declaration class, hint expression) for every hint each kind accepts.
KIND_HINTS = [
    ("Counter", "hints.Rate(by=('a.b',))"),
    ("Counter", "hints.Increase(by=('a.b',))"),
    ("ObservableCounter", "hints.Rate(by=('a.b',))"),
    ("ObservableCounter", "hints.Increase()"),
    ("Histogram", "hints.Quantiles(by=('a.b',))"),
    ("Histogram", "hints.Heatmap()"),
    ("Histogram", "hints.Average(by=('a.b',))"),
    ("Histogram", "hints.Rate(by=('a.b',))"),
    ("Histogram", "hints.Increase()"),
    ("Gauge", "hints.Current(by=('a.b',))"),
    ("Gauge", "hints.Current(style='stat')"),
    ("UpDownCounter", "hints.Current(style='gauge', by=('a.b',))"),
    ("ObservableUpDownCounter", "hints.Current(style='bargauge', by=('a.b',))"),
    ("ObservableGauge", "hints.Current(by=('a.b',), agg='max')"),
]


def exporter_output(kind: str, name: str, unit: str, attributes: dict[str, str]) -> Any:
    """What the real exporter makes of one instrument, straight from its registry."""
    registry = CollectorRegistry()
    provider = MeterProvider(
        metric_readers=[PrometheusMetricReader(registry=registry)], shutdown_on_exit=False
    )
    meter = provider.get_meter("test")

    def callback(_: CallbackOptions) -> list[Observation]:
        return [Observation(1, attributes)]

    match kind:
        case "Counter":
            meter.create_counter(name, unit=unit).add(1, attributes)
        case "UpDownCounter":
            meter.create_up_down_counter(name, unit=unit).add(1, attributes)
        case "Gauge":
            meter.create_gauge(name, unit=unit).set(1, attributes)
        case "Histogram":
            meter.create_histogram(name, unit=unit).record(2.5, attributes)
        case "ObservableCounter":
            meter.create_observable_counter(name, [callback], unit=unit)
        case "ObservableUpDownCounter":
            meter.create_observable_up_down_counter(name, [callback], unit=unit)
        case "ObservableGauge":
            meter.create_observable_gauge(name, [callback], unit=unit)
    families = [f for f in registry.collect() if f.type != "info"]
    provider.shutdown()
    assert len(families) == 1
    return families[0]


def selectors_and_groupings(expr: str) -> tuple[set[str], set[str]]:
    """Metric names and grouping labels of a query, read with the real PromQL parser."""
    names: set[str] = set()
    groupings: set[str] = set()

    def visit(node: Any) -> None:
        if isinstance(node, promql_parser.VectorSelector) and node.name:
            names.add(node.name)
        if isinstance(node, promql_parser.AggregateExpr) and node.modifier is not None:
            groupings.update(node.modifier.labels)

    concrete = expr.replace("$__rate_interval", "5m").replace("$__range", "1h")
    promql_parser.walk(promql_parser.parse(concrete), visit)
    return names, groupings


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def built_dashboard(project: Project, uid: str) -> dict[str, Any]:
    result: dict[str, Any] = json.loads((project.generated / f"{uid}.json").read_bytes())
    return result


@pytest.mark.parametrize(("kind", "hint"), KIND_HINTS)
def test_queries_name_what_the_exporter_produced(project: Project, kind: str, hint: str) -> None:
    project.source(
        "m.py",
        f"""
        from dashgen import {kind}, Dashboard, Row, hints
        M = {kind}("svc.work.time", unit="ms", labels=["a.b", "c"], hint={hint})
        D = Dashboard("D", rows=[Row("r", [M])])
        """,
    )
    assert project.run("build").exit_code == 0
    family = exporter_output(kind, "svc.work.time", "ms", {"a.b": "1", "c": "2"})
    sample_names = {s.name for s in family.samples}
    label_names = {label for s in family.samples for label in s.labels}
    targets = [t for p in panels(built_dashboard(project, "d")) for t in p.get("targets", [])]
    assert targets
    used: set[str] = set()
    for target in targets:
        names, groupings = selectors_and_groupings(target["expr"])
        assert names <= sample_names, (target["expr"], sample_names)
        assert groupings <= label_names, (target["expr"], label_names)
        used |= names
    bucket = {s.name for s in family.samples if "le" in s.labels}
    if "Quantiles" in hint or "Heatmap" in hint:
        assert used == bucket
    elif "Average" in hint:
        assert used == sample_names - bucket and len(used) == 2
    else:
        # One sample: the counter's or gauge's own, or a histogram's observation count.
        assert len(used) == 1
        count = {s.name for s in family.samples if s.value == 1 and "le" not in s.labels}
        assert kind != "Histogram" or used == count
        assert kind == "Histogram" or used == sample_names


def test_literal_names_for_a_known_exporter_release(project: Project) -> None:
    """A human-readable anchor: what opentelemetry-exporter-prometheus 0.66b2 names these."""
    project.source(
        "m.py",
        """
        from dashgen import Counter, Histogram, Dashboard, Row, hints
        R = Counter("http.server.requests", unit="{request}", labels=["http.route"],
                    hint=hints.Rate(by=("http.route",)))
        L = Histogram("http.server.duration", unit="ms", hint=hints.Average())
        D = Dashboard("D", rows=[Row("r", [R, L])])
        """,
    )
    assert project.run("build").exit_code == 0
    exprs = [t["expr"] for p in panels(built_dashboard(project, "d")) for t in p.get("targets", [])]
    assert exprs == [
        'sum by (http_route) (rate(http_server_requests_total{job=~"$job", '
        'instance=~"$instance"}[$__rate_interval]))',
        'sum(rate(http_server_duration_milliseconds_sum{job=~"$job", instance=~"$instance"}'
        "[$__rate_interval]))"
        ' / sum(rate(http_server_duration_milliseconds_count{job=~"$job", instance=~"$instance"}'
        "[$__rate_interval]))",
    ]


def test_every_generated_dashboard_matches_grafanas_schema(example: Project) -> None:
    assert example.run("build").exit_code == 0
    files = sorted(example.generated.glob("*.json"))
    assert len(files) >= 3
    for path in files:
        document = json.loads(path.read_bytes())
        assert schema_errors(document, complete_panels=True) == [], path.name
        assert document["schemaVersion"] == 42
        assert "null" not in json.dumps(_without_threshold_base(document))


def _without_threshold_base(document: dict[str, Any]) -> dict[str, Any]:
    """Grafana encodes the base threshold step's -Infinity as null: the one null allowed."""
    text = re.sub(r'\{"color": "[a-z-]+", "value": null\}', "{}", json.dumps(document))
    result: dict[str, Any] = json.loads(text)
    return result


def test_layout_has_rows_and_no_overlaps(example: Project) -> None:
    assert example.run("build").exit_code == 0
    for path in sorted(example.generated.glob("*.json")):
        document = json.loads(path.read_bytes())
        taken: set[tuple[int, int]] = set()
        ids = [p["id"] for p in panels(document)]
        assert len(ids) == len(set(ids)), path.name
        assert document["panels"][0]["type"] == "row"
        for panel in panels(document):
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24
            cells = {
                (x, y)
                for x in range(grid["x"], grid["x"] + grid["w"])
                for y in range(grid["y"], grid["y"] + grid["h"])
            }
            assert not cells & taken, (path.name, panel["title"])
            taken |= cells
            refs = [t["refId"] for t in panel.get("targets", [])]
            assert len(refs) == len(set(refs))
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        variables = document["templating"]["list"]
        assert [(v["name"], v["type"]) for v in variables][:3] == [
            ("datasource", "datasource"),
            ("job", "query"),
            ("instance", "query"),
        ]
        assert len(document["uid"]) <= 40


def test_committed_generated_is_what_build_gives(example: Project) -> None:
    committed = example.snapshot()
    result = example.run("build", "--check")
    assert result.exit_code == 0, result.stdout
    assert example.snapshot() == committed


def test_build_is_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    outputs = []
    for seed in ("0", "1234"):
        out = tmp_path / f"out-{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run(
            [
                sys.executable,
                "-m",
                "dashgen",
                "build",
                "--output",
                str(out),
                "--project",
                str(REPO),
            ],
            check=True,
            env=env,
            capture_output=True,
        )
        outputs.append({p.relative_to(out): p.read_bytes() for p in sorted(out.rglob("*.json"))})
    assert outputs[0] == outputs[1]
    assert len(outputs[0]) == 3


def test_second_build_changes_nothing(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    first = project.snapshot()
    mtimes = {p: p.stat().st_mtime_ns for p in project.generated.rglob("*")}
    result = project.run("build")
    assert "already up to date" in result.stdout
    assert project.snapshot() == first
    assert {p: p.stat().st_mtime_ns for p in project.generated.rglob("*")} == mtimes


def test_failure_halfway_through_writing_leaves_generated_intact(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    before = project.snapshot()
    project.source("m.py", GOOD_SOURCE.replace('"Traffic"', '"Traffic v2"'))
    real_write = write._write_file
    calls = []

    def failing_write(root: Path, relative: str, data: bytes) -> None:
        calls.append(relative)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        real_write(root, relative, data)

    monkeypatch.setattr(write, "_write_file", failing_write)
    result = project.run("build")
    assert result.exit_code == 2
    assert "No space left on device; nothing was changed" in result.stderr
    assert len(calls) == 2
    assert project.snapshot() == before
    assert project.entries() == ["generated", "pyproject.toml", "src"]


def test_orphans_are_removed_by_build(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    project.write("generated/old-dashboard.json", "{}")
    assert project.run("build").exit_code == 0
    assert not (project.generated / "old-dashboard.json").exists()
    assert (project.generated / "app.json").exists()


def test_check_reports_stale_missing_and_orphan_files(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    assert project.run("build", "--check").exit_code == 0
    (project.generated / "app.json").write_text("{}\n")
    (project.generated / "provisioning/datasources/dashgen.yaml").unlink()
    (project.generated / "stray.json").write_text("{}\n")
    before = project.snapshot()
    result = project.run("build", "--check")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert "stale: generated/app.json differs from what the sources give" in lines
    assert "missing: generated/provisioning/datasources/dashgen.yaml is not there yet" in lines
    assert "orphan: generated/stray.json is produced by no source" in lines
    assert project.snapshot() == before


def test_check_on_a_never_built_project_lists_every_file_missing(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    result = project.run("build", "--check")
    assert result.exit_code == 1
    assert "missing: generated/app.json is not there yet" in result.stdout
    assert not project.generated.exists()


def test_provisioning_points_grafana_at_the_output(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build", "--prometheus-url", "http://prom.internal:9090").exit_code == 0
    import yaml

    datasources = yaml.safe_load(
        (project.generated / "provisioning/datasources/dashgen.yaml").read_text()
    )
    providers = yaml.safe_load(
        (project.generated / "provisioning/dashboards/dashgen.yaml").read_text()
    )
    assert datasources["datasources"][0]["url"] == "http://prom.internal:9090"
    assert datasources["datasources"][0]["type"] == "prometheus"
    assert providers["providers"][0]["type"] == "file"
    assert providers["providers"][0]["options"]["path"]


BAD_SOURCES = [
    pytest.param("def broken(:\n", "bad.py:1: syntax error", id="syntax-error"),
    pytest.param(
        "raise RuntimeError('db not reachable')\n",
        "bad.py:1: importing bad.py failed: RuntimeError: db not reachable",
        id="exception-at-import",
    ),
    pytest.param(
        "import not_a_module_anywhere\n",
        "importing bad.py failed: ModuleNotFoundError",
        id="import-error",
    ),
    pytest.param(
        "from dashgen import Counter, Dashboard, Row\n"
        "M = Counter('9starts.with.digit')\n"
        "D = Dashboard('Bad', rows=[Row('r', [M])])\n",
        "bad.py:2: metric '9starts.with.digit': the OpenTelemetry SDK rejects it",
        id="sdk-rejected-name",
    ),
    pytest.param(
        "from dashgen import Counter, Dashboard, Row\n"
        "M = Counter('ok.name', unit='\u00b5s')\n"
        "D = Dashboard('Bad', rows=[Row('r', [M])])\n",
        "bad.py:2: metric 'ok.name': the OpenTelemetry SDK rejects it",
        id="sdk-rejected-unit",
    ),
    pytest.param(
        "from dashgen import Counter, Dashboard, Row, hints\n"
        "M = Counter('c', hint=hints.Quantiles())\n"
        "D = Dashboard('Bad', rows=[Row('r', [M])])\n",
        "bad.py:2: metric 'c': hint Quantiles does not fit a Counter",
        id="hint-kind-mismatch",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row, hints\n"
        "M = Gauge('g', labels=['a'], hint=hints.Current(by=('b',)))\n"
        "D = Dashboard('Bad', rows=[Row('r', [M])])\n",
        "bad.py:2: metric 'g': hint Current groups by 'b', which is not among the declared",
        id="hint-label-undeclared",
    ),
    pytest.param(
        "from dashgen import Counter, Dashboard, Row\n"
        "A = Counter('app.requests')\n"
        "D = Dashboard('Bad', rows=[Row('r', [A])])\n",
        "src/m.py:4: metric 'app.requests': declared twice (first at src/bad.py:2)",
        id="duplicate-name",
    ),
    pytest.param(
        "from dashgen import Counter, Dashboard, Row\n"
        "A = Counter('app_requests')\n"
        "D = Dashboard('Bad', rows=[Row('r', [A])])\n",
        "src/bad.py:2: metric 'app_requests': collides with 'app.requests' (src/m.py:4): "
        "both export as Prometheus family 'app_requests'",
        id="collision-after-export",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row\n"
        "A = Gauge('app.requests.total')\n"
        "D = Dashboard('Bad', rows=[Row('r', [A])])\n",
        "both export the sample 'app_requests_total'",
        id="sample-collision",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row\n"
        "A = Gauge('g', labels=['http.route', 'http_route'])\n"
        "D = Dashboard('Bad', rows=[Row('r', [A])])\n",
        "bad.py:2: metric 'g': attribute",
        id="label-collision",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row\n"
        "A = Gauge('g')\n"
        "D = Dashboard('App', rows=[Row('r', [A])])\n",
        "src/m.py:6: dashboard 'App': uid 'app' is already used by 'App' (src/bad.py:3)",
        id="duplicate-uid",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row\n"
        "A = Gauge('g')\n"
        "D = Dashboard('Bad', uid='../../etc/passwd', rows=[Row('r', [A])])\n",
        "bad.py:3: dashboard 'Bad': uid '../../etc/passwd' is not safe as a file name",
        id="unsafe-uid",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row\n"
        "A = Gauge('g')\n"
        "D = Dashboard('Bad\\nTitle', rows=[Row('r', [A])])\n",
        "bad.py:3: dashboard 'Bad",
        id="control-character-title",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row\n"
        "A = Gauge('g')\n"
        "D = Dashboard('../..', rows=[Row('r', [A])])\n",
        "bad.py:3: dashboard '../..': uid '' is not safe as a file name",
        id="title-that-slugs-to-nothing",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row, hints\n"
        "A = Gauge('g', hint=hints.Current(thresholds=((5, 'redd'),)))\n"
        "D = Dashboard('Bad', rows=[Row('r', [A])])\n",
        "bad.py:2: metric 'g': hint Current threshold 5: 'redd' is no Grafana colour; did "
        "you mean 'red'",
        id="misspelt-colour",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row, hints\n"
        "A = Gauge('g', hint=hints.Current(thresholds=((5, 'red'),), base='greem'))\n"
        "D = Dashboard('Bad', rows=[Row('r', [A])])\n",
        "bad.py:2: metric 'g': hint Current base: 'greem' is no Grafana colour; did you mean "
        "'green'",
        id="misspelt-base-colour",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row, hints\n"
        "A = Gauge('g', hint=hints.Current(unit='milisecond'))\n"
        "D = Dashboard('Bad', rows=[Row('r', [A])])\n",
        "bad.py:2: metric 'g': hint Current unit=: 'milisecond' is no Grafana unit",
        id="misspelt-unit",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row\n"
        "A = Gauge('g', labels=['route'])\n"
        "D = Dashboard('Bad', filters=['tenant'], rows=[Row('r', [A])])\n",
        "bad.py:3: dashboard 'Bad': filters by 'tenant', which none of its metrics declares",
        id="filter-on-undeclared-label",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Row\n"
        "A = Gauge('g')\n"
        "D = Dashboard('Bad', folder='../x', rows=[Row('r', [A])])\n",
        "bad.py:3: dashboard 'Bad': folder '../x' cannot be a directory of the output dir",
        id="unsafe-folder",
    ),
    pytest.param(
        "from dashgen import Gauge, Dashboard, Panel, Row, expr\n"
        "A = Gauge('g')\n"
        "P = Panel('P', expr.current(Gauge('made.here')))\n"
        "D = Dashboard('Bad', rows=[Row('r', [A, P])])\n",
        "src/bad.py:3: panel 'P': queries 'made.here', which no declaration names",
        id="panel-on-undeclared-metric",
    ),
    pytest.param(
        "from dashgen import Gauge\nA = Gauge('lonely.gauge')\n",
        "bad.py:2: metric 'lonely.gauge': no dashboard places it",
        id="unplaced-metric",
    ),
]


@pytest.mark.parametrize(("source", "message"), BAD_SOURCES)
def test_bad_input_is_one_line_exit_2_and_leaves_generated_alone(
    project: Project, source: str, message: str
) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    before = project.snapshot()
    project.write("src/bad.py", source)
    result = project.run("build")
    assert result.exit_code == 2, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert message in lines[0]
    assert project.snapshot() == before


def test_excluded_metric_needs_no_panel(project: Project) -> None:
    project.source(
        "m.py",
        GOOD_SOURCE + "\nfrom dashgen import Gauge\n"
        "DEBUG = Gauge('debug.only', exclude='internal tuning knob, read via /debug')\n",
    )
    assert project.run("build").exit_code == 0
    assert "debug_only" not in (project.generated / "app.json").read_text()


def test_pre_commit_hooks_pass_on_the_example_and_stop_a_drifted_commit(
    example: Project,
) -> None:
    """The hooks of ``.pre-commit-hooks.yaml`` as pre-commit runs them: the entry's words."""
    hooks = yaml.safe_load((REPO / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    commands = {hook["id"]: hook["entry"].split() for hook in hooks}
    assert all(words[0] == "dashgen" for words in commands.values())
    for words in commands.values():
        assert example.run(*words[1:]).exit_code == 0, words
    source = example.root / "dashboards_src" / "http_api.py"
    source.write_text(source.read_text().replace('"HTTP API"', '"HTTP API v2"'))
    assert example.run(*commands["dashgen-build-check"][1:]).exit_code == 1
    assert example.run(*commands["dashgen-verify"][1:]).exit_code == 1
    assert example.run(*commands["dashgen-build"][1:]).exit_code == 0
    assert example.run(*commands["dashgen-verify"][1:]).exit_code == 0
