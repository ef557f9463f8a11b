"""Export paths: build and verify name what the configured deployment stores.

``prometheus-exporter`` is the default; ``otlp`` runs the real SDK and the real OTLP/HTTP
exporter and names by the Prometheus OTLP translator (proven equal to the Go library in
``test_otlp_names.py``). The expected names below are the translator's, from its vectors.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dashgen.catalog import load_catalog
from dashgen.config import load_config
from dashgen.pipelines import Pipeline, PipelineName
from dashgen.pipelines.otlp_names import Strategy
from tests.conftest import SCRAPED, Project

OTLP = '[tool.dashgen]\nsources = "dashboards_src"\noutput = "generated"\npipeline = "otlp"\n'


def exprs(generated: Path) -> set[str]:
    found = set()
    for path in generated.glob("*.json"):
        board = json.loads(path.read_text())
        for item in board["panels"]:
            for panel in [item, *item.get("panels", [])]:
                found |= {t["expr"] for t in panel.get("targets", [])}
    return found


def test_the_example_builds_and_verifies_clean_on_otlp(example: Project) -> None:
    pulled = exprs(example.generated)
    example.write("pyproject.toml", OTLP)
    assert example.run("build").exit_code == 0
    assert example.run("build", "--check").exit_code == 0
    verified = example.run("verify")
    assert verified.exit_code == 0, verified.stdout
    pushed = exprs(example.generated)
    # The one difference the OTLP translator makes on the example: a gauge of unit 1.
    assert pulled - pushed == {f"max by (test_size) (pytest_test_size_distribution{SCRAPED})"}
    assert pushed - pulled == {f"max by (test_size) (pytest_test_size_distribution_ratio{SCRAPED})"}


def test_a_rename_is_caught_on_otlp(example: Project) -> None:
    example.write("pyproject.toml", OTLP)
    assert example.run("build").exit_code == 0
    source = example.root / "dashboards_src" / "worker.py"
    source.write_text(source.read_text().replace('"worker.job.retries"', '"worker.job.retry"'))
    result = example.run("verify", "--format", "json")
    assert result.exit_code == 1
    found = {(f["kind"], f["subject"]) for f in json.loads(result.stdout)["findings"]}
    assert ("unknown-metric", "worker_job_retries_total") in found
    assert ("unpanelled-family", "worker_job_retry_total") in found


@pytest.mark.parametrize(
    ("written_for", "verified_as", "unknown", "stored"),
    [
        (
            "prometheus-exporter",
            "otlp",
            "pytest_test_size_distribution",
            "pytest_test_size_distribution_ratio",
        ),
        (
            "otlp",
            "prometheus-exporter",
            "pytest_test_size_distribution_ratio",
            "pytest_test_size_distribution",
        ),
    ],
)
def test_dashboards_written_for_another_path_are_told_so(
    example: Project, written_for: str, verified_as: str, unknown: str, stored: str
) -> None:
    assert example.run("build", "--pipeline", written_for).exit_code == 0
    hand = example.root / "dashboards"
    hand.mkdir()
    for board in example.generated.glob("*.json"):
        (hand / board.name).write_bytes(board.read_bytes())
    result = example.run("verify", str(hand), "--pipeline", verified_as, "--format", "json")
    assert result.exit_code == 1
    (finding,) = [f for f in json.loads(result.stdout)["findings"] if f["kind"] == "unknown-metric"]
    theirs = (
        "pipeline=otlp (UnderscoreEscapingWithSuffixes)"
        if written_for == "otlp"
        else ("pipeline=prometheus-exporter")
    )
    ours = (
        "pipeline=otlp (UnderscoreEscapingWithSuffixes)"
        if verified_as == "otlp"
        else ("pipeline=prometheus-exporter")
    )
    assert finding["subject"] == unknown
    assert finding["hint"] == (
        f"`{unknown}` is what {theirs} stores for 'pytest.test.size.distribution'; with "
        f"{ours} it is `{stored}` (set [tool.dashgen] pipeline to the path the app is "
        "deployed with)"
    )


SEMCONV = """
from dashgen import Counter, Dashboard, Gauge, Histogram, Row, UpDownCounter, hints
CPU = Gauge("system.cpu.utilization", unit="1", labels=["cpu.mode"])
REQUESTS = Counter("http.server.requests", unit="{request}",
                   labels=["http.response.status_code", "2xx"], hint=hints.Rate(by=["2xx"]))
DURATION = Histogram("http.server.request.duration", unit="s", labels=["http.route"])
MEMORY = UpDownCounter("process.memory.usage", unit="By")
TOTAL = Counter("jobs_total", unit="1")
D = Dashboard("Semconv", rows=[Row("r", [CPU, REQUESTS, DURATION, MEMORY, TOTAL])])
"""


def _families(project: Project, pipeline: Pipeline) -> dict[str, tuple[str, ...]]:
    config = load_config(project.root)
    exported = pipeline.export(load_catalog(config.sources).metrics)
    return {f.name: f.labels or () for f in exported.families}


def test_otlp_names_from_the_real_exporter_payload(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "OTEL_RESOURCE_ATTRIBUTES",
        "service.name=shop,service.namespace=eu,service.instance.id=pod-1,deployment.environment=prod",
    )
    project.source("m.py", SEMCONV)
    pushed = Pipeline(PipelineName.OTLP, promote_resource_attributes=("deployment.environment",))
    families = _families(project, pushed)
    common = {"job", "instance", "deployment_environment"}
    assert families == {
        "system_cpu_utilization_ratio": tuple(sorted({"cpu_mode", *common})),
        "http_server_requests_total": tuple(
            sorted({"http_response_status_code", "key_2xx", *common})
        ),
        "http_server_request_duration_seconds": tuple(sorted({"http_route", "le", *common})),
        "process_memory_usage_bytes": tuple(sorted(common)),
        "jobs_total": tuple(sorted(common)),
        "target_info": tuple(
            sorted(
                {
                    *common,
                    "telemetry_sdk_language",
                    "telemetry_sdk_name",
                    "telemetry_sdk_version",
                }
            )
        ),
    }
    pulled = _families(project, Pipeline())
    assert "system_cpu_utilization" in pulled and "otel_scope_name" in pulled["jobs"]


@pytest.mark.parametrize(
    ("strategy", "cpu", "requests"),
    [
        ("UnderscoreEscapingWithoutSuffixes", "system_cpu_utilization", "http_server_requests"),
        (
            "NoUTF8EscapingWithSuffixes",
            "system.cpu.utilization_ratio",
            "http.server.requests_total",
        ),
        ("NoTranslation", "system.cpu.utilization", "http.server.requests"),
    ],
)
def test_each_translation_strategy_builds_what_that_server_stores(
    project: Project, strategy: str, cpu: str, requests: str
) -> None:
    project.write(
        "pyproject.toml",
        f'[tool.dashgen]\nsources = "src"\npipeline = "otlp"\n'
        f'translation_strategy = "{strategy}"\n',
    )
    project.source("m.py", SEMCONV.replace('hint=hints.Rate(by=["2xx"])', "hint=hints.Rate()"))
    built = project.run("build")
    assert built.exit_code == 0, built.stderr
    found = exprs(project.generated)
    legacy = re.fullmatch(r"[a-zA-Z_:][a-zA-Z0-9_:]*", cpu)
    scraped = SCRAPED.strip("{}")
    assert (f"sum({cpu}{SCRAPED})" if legacy else f'sum({{__name__="{cpu}", {scraped}}})') in found
    rate = f"{requests}{SCRAPED}" if legacy else f'{{__name__="{requests}", {scraped}}}'
    assert f"sum(rate({rate}[$__rate_interval]))" in found
    verified = project.run("verify")
    assert verified.exit_code == 0, verified.stdout
    assert Strategy(strategy).escapes == bool(legacy)


def test_grouping_by_an_untranslated_dotted_label_copies_it_to_a_name_by_can_take(
    project: Project,
) -> None:
    """``by (http.route)`` is no PromQL before Prometheus 3 and ``by ("http.route")`` none
    for VictoriaMetrics: the label is copied with label_replace, which both run."""
    project.write(
        "pyproject.toml",
        '[tool.dashgen]\nsources = "src"\npipeline = "otlp"\n'
        'translation_strategy = "NoTranslation"\n',
    )
    project.source(
        "m.py",
        "from dashgen import Counter, Dashboard, Row, hints\n"
        "C = Counter('c', labels=['http.route', 'http_route'],\n"
        "            hint=hints.Rate(by=['http.route']))\n"
        "D = Dashboard('D', rows=[Row('r', [C])])\n",
    )
    result = project.run("build")
    assert result.exit_code == 2
    assert result.stderr == (
        "error: src/m.py:2: metric 'c': its label 'http.route' cannot be grouped by: PromQL's "
        "by (...) needs it copied to 'http_route', which the metric already has\n"
    )
    project.source(
        "m.py", project.root.joinpath("src/m.py").read_text().replace(", 'http_route'", "")
    )
    assert project.run("build").exit_code == 0
    assert exprs(project.generated) == {
        f'sum by (http_route) (label_replace(rate(c{SCRAPED}[$__rate_interval]), "http_route", '
        '"$1", "http.route", "(.*)"))'
    }
    assert project.run("verify").exit_code == 0


def test_two_declarations_stored_under_one_otlp_name_collide(project: Project) -> None:
    project.write("pyproject.toml", '[tool.dashgen]\nsources = "src"\npipeline = "otlp"\n')
    project.source(
        "m.py",
        "from dashgen import Gauge, Dashboard, Row\n"
        "A = Gauge('queue.depth', unit='1')\n"
        "B = Gauge('queue_depth_ratio')\n"
        "D = Dashboard('D', rows=[Row('r', [A, B])])\n",
    )
    result = project.run("build")
    assert result.exit_code == 2
    assert "both are stored as 'queue_depth_ratio' with pipeline=otlp" in result.stderr


def test_an_unknown_pipeline_or_strategy_is_one_line(project: Project) -> None:
    project.write("pyproject.toml", '[tool.dashgen]\nsources = "src"\npipeline = "otel"\n')
    result = project.run("build")
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
    assert (
        "pipeline must be one of prometheus-exporter, otlp, victoriametrics, prometheus-client, "
        "scrape, got 'otel'" in result.stderr
    )
    project.write(
        "pyproject.toml",
        '[tool.dashgen]\nsources = "src"\npipeline = "otlp"\ntranslation_strategy = "Escape"\n',
    )
    result = project.run("build")
    assert result.exit_code == 2
    assert "translation_strategy must be one of UnderscoreEscapingWithSuffixes" in result.stderr


@pytest.mark.parametrize("engine", ["prometheus", "victoria-metrics"])
def test_live_on_otlp_feeds_the_names_that_path_stores(example: Project, engine: str) -> None:
    """Every panel of the OTLP-built example draws data from a real server fed with the
    pipeline's real values under the OTLP names; the pull exporter's names would not."""
    example.write("pyproject.toml", OTLP)
    assert example.run("build").exit_code == 0
    result = example.run("verify", "--live", "--engine", engine, "--format", "json")
    assert result.exit_code == 0, result.stdout
    live = json.loads(result.stdout)["live"]
    assert live["queries"] == 39 and live["findings"] == []


@pytest.mark.parametrize("pipeline", ["prometheus-exporter", "otlp", "victoriametrics"])
def test_otel_sdk_disabled_in_the_environment_does_not_empty_the_export(
    example: Project, monkeypatch: pytest.MonkeyPatch, pipeline: str
) -> None:
    """dashgen's providers only name metrics; the app's switch for its own SDK is not theirs."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    result = example.run("build", "--pipeline", pipeline, "--no-cache")
    assert result.exit_code == 0, result.stderr
    assert example.run("verify", "--pipeline", pipeline, "--no-cache").exit_code == 0
