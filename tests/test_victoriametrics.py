"""Pipeline ``victoriametrics``: names from a real VictoriaMetrics fed the real OTLP payload.

Each test starts VictoriaMetrics 1.9x+ on 127.0.0.1 (``scripts/install-tools`` puts Debian
13's 1.112 in ``.tools/`` where the system's predates OTLP ingestion) and reads back what
it stored, in both of its naming modes.
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from dashgen.catalog import load_catalog
from dashgen.config import load_config
from dashgen.pipelines import Pipeline, PipelineName
from tests.conftest import SCRAPED, Project
from tests.test_pipelines import exprs
from tests.test_verify import names_new_family


def vm_config(prometheus_naming: bool, sources: str = "dashboards_src") -> str:
    naming = "true" if prometheus_naming else "false"
    return (
        f'[tool.dashgen]\nsources = "{sources}"\noutput = "generated"\n'
        f'pipeline = "victoriametrics"\nprometheus_naming = {naming}\n'
    )


def samples(project: Project, pipeline: Pipeline) -> dict[str, tuple[str, ...]]:
    specs = load_catalog(load_config(project.root).sources).metrics
    return {name: m.family.samples for name, m in pipeline.export(specs).metrics.items()}


@pytest.mark.parametrize(
    ("prometheus_naming", "expected"),
    [
        (
            True,
            {
                f"sum by (job_type) (rate(worker_jobs_processed_total{SCRAPED}[$__rate_interval]))",
                f"max by (test_size) (pytest_test_size_distribution_ratio{SCRAPED})",
            },
        ),
        (
            False,
            {
                # Stored as sent: dotted names are selected by __name__, dotted labels copied
                # to a name by (...) can take.
                'sum by (job_type) (label_replace(rate({__name__="worker.jobs.processed", '
                f'{SCRAPED[1:-1]}}}[$__rate_interval]), "job_type", "$1", "job.type", "(.*)"))',
                'max by (test_size) (label_replace({__name__="pytest.test.size.distribution", '
                f'{SCRAPED[1:-1]}}}, "test_size", "$1", "test.size", "(.*)"))',
            },
        ),
    ],
)
def test_the_example_builds_verifies_and_draws_data_on_victoriametrics(
    example: Project, prometheus_naming: bool, expected: set[str]
) -> None:
    example.write("pyproject.toml", vm_config(prometheus_naming))
    built = example.run("build")
    assert built.exit_code == 0, built.stderr
    assert expected <= exprs(example.generated)
    assert example.run("build", "--check").exit_code == 0
    verified = example.run("verify", "--live", "--format", "json")
    assert verified.exit_code == 0, verified.stdout
    report = json.loads(verified.stdout)
    assert report["findings"] == []
    # Fed as OTLP into VictoriaMetrics itself, every panel draws data.
    assert report["live"]["engine"] == "victoria-metrics"
    assert (report["live"]["queries"], report["live"]["findings"]) == (39, [])


def test_a_rename_is_caught_on_victoriametrics(example: Project) -> None:
    example.write("pyproject.toml", vm_config(prometheus_naming=False))
    assert example.run("build").exit_code == 0
    source = example.root / "dashboards_src" / "worker.py"
    source.write_text(source.read_text().replace('"worker.job.retries"', '"worker.job.retry"'))
    result = example.run("verify", "--format", "json")
    assert result.exit_code == 1
    found = {(f["kind"], f["subject"]) for f in json.loads(result.stdout)["findings"]}
    assert ("unknown-metric", "worker.job.retries") in found
    assert names_new_family(json.loads(result.stdout)["findings"], "worker.job.retry")


def test_pull_exporter_dashboards_verified_as_victoriametrics_name_each_dead_query(
    example: Project,
) -> None:
    """The committed dashboards query the pull exporter's names; VictoriaMetrics keeping
    names as sent stores none of them."""
    hand = example.root / "dashboards"
    shutil.copytree(example.generated, hand)
    example.write("pyproject.toml", vm_config(prometheus_naming=False))
    result = example.run("verify", str(hand), "--format", "json")
    assert result.exit_code == 1
    unknown = {
        f["subject"] for f in json.loads(result.stdout)["findings"] if f["kind"] == "unknown-metric"
    }
    assert {"worker_jobs_processed_total", "http_server_request_duration_seconds_bucket"} <= unknown


EDGES = """
from dashgen import Counter, Dashboard, Gauge, Row
A = Gauge("a__b.c", unit="1")
B = Counter("private..count", unit="{packet}/s")
C = Counter("http.server.requests", labels=["2xx", "Device.Name"])
D = Dashboard("Edges", rows=[Row("r", [A, B, C])])
"""


def test_victoriametrics_prometheus_naming_is_its_own_not_the_prometheus_translators(
    project: Project,
) -> None:
    """Where the two servers' naming differs, dashgen says what VictoriaMetrics stores,
    because VictoriaMetrics said it."""
    project.source("m.py", EDGES)
    on_vm = samples(project, Pipeline(PipelineName.VICTORIAMETRICS, prometheus_naming=True))
    on_prometheus = samples(project, Pipeline(PipelineName.OTLP))
    assert on_vm["a__b.c"] == ("a__b_c_ratio",)
    assert on_prometheus["a__b.c"] == ("a_b_c_ratio",)
    assert on_vm["private..count"] == ("private__count_per_second_total",)
    assert on_prometheus["private..count"] == ("private_count_per_second_total",)
    as_sent = samples(project, Pipeline(PipelineName.VICTORIAMETRICS))
    assert as_sent == {
        "a__b.c": ("a__b.c",),
        "private..count": ("private..count",),
        "http.server.requests": ("http.server.requests",),
    }


def test_labels_are_what_victoriametrics_stores_resource_attributes_included(
    project: Project,
) -> None:
    project.source("m.py", EDGES)
    specs = load_catalog(load_config(project.root).sources).metrics
    for naming, stored in [(True, ["key_2xx", "Device_Name"]), (False, ["2xx", "Device.Name"])]:
        pipeline = Pipeline(PipelineName.VICTORIAMETRICS, prometheus_naming=naming)
        metric = pipeline.export(specs).metrics["http.server.requests"]
        assert dict(metric.labels) == {"2xx": stored[0], "Device.Name": stored[1]}
        service = "service_name" if naming else "service.name"
        assert metric.family.labels is not None and service in metric.family.labels


def test_two_declarations_stored_under_one_name_collide(project: Project) -> None:
    project.write("pyproject.toml", vm_config(prometheus_naming=True, sources="src"))
    project.source(
        "m.py",
        "from dashgen import Gauge, Dashboard, Row\n"
        "A = Gauge('queue.depth')\n"
        "B = Gauge('queue_depth')\n"
        "D = Dashboard('D', rows=[Row('r', [A, B])])\n",
    )
    before = project.snapshot()
    result = project.run("build")
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
    assert "both are stored as 'queue_depth' with pipeline=victoriametrics" in result.stderr
    assert project.snapshot() == before


def test_a_victoriametrics_without_otlp_or_none_at_all_is_one_line(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write("pyproject.toml", vm_config(prometheus_naming=False, sources="src"))
    project.source("m.py", EDGES)
    system = shutil.which("victoria-metrics")
    assert system is not None
    help_text = subprocess.run(
        [system, "-help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ).stdout
    monkeypatch.setenv("DASHGEN_VICTORIA_METRICS_OTLP_BIN", system)
    result = project.run("build")
    if "-opentelemetry.usePrometheusNaming" in help_text:  # Debian 13's: it takes OTLP
        assert result.exit_code == 0, result.stderr
    else:  # Debian 12's 1.79
        assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
        assert f"{system} takes no OTLP; VictoriaMetrics takes OTLP from 1.92 on" in result.stderr
        assert not project.generated.exists()
    before = project.snapshot()
    monkeypatch.setenv("DASHGEN_VICTORIA_METRICS_OTLP_BIN", str(project.root / "nothing"))
    result = project.run("build")
    assert (result.exit_code, result.stderr.count("\n")) == (2, 1)
    assert "is not an executable file" in result.stderr
    assert project.snapshot() == before


def test_live_on_victoriametrics_runs_on_victoriametrics(example: Project) -> None:
    example.write("pyproject.toml", vm_config(prometheus_naming=True))
    assert example.run("build").exit_code == 0
    result = example.run("verify", "--live", "--engine", "prometheus")
    assert result.exit_code == 2
    assert "pipeline=victoriametrics is checked live on VictoriaMetrics itself" in result.stderr
