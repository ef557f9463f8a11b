"""``dashgen build`` as its stages: catalog -> export path -> plan (dashboards, rules) ->
render (-> write at the edge)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property, partial
from itertools import accumulate

from dashgen import collector
from dashgen.build.identity import declared, render_lock
from dashgen.build.layout import LOCK
from dashgen.build.plan import plan_dashboards
from dashgen.build.render import render_dashboard, render_provisioning
from dashgen.build.rule_files import GRAFANA_ALERTING, render_grafana_alerting, render_rule_file
from dashgen.build.rule_tests import rule_tests
from dashgen.build.rules import plan_rules
from dashgen.build.write import digest
from dashgen.catalog import Catalog
from dashgen.config import Config
from dashgen.families import Exported
from dashgen.isolate import in_parallel, worth_splitting


@dataclass(frozen=True)
class BuildResult:
    catalog: Catalog
    exported: Exported
    files: dict[str, bytes]
    """Output-dir-relative posix path -> exact bytes."""

    @cached_property
    def digests(self) -> dict[str, str]:
        """Path -> sha256 of its bytes: what the write compares and the memo keeps."""
        return {path: digest(data) for path, data in self.files.items()}


def generate(config: Config, catalog: Catalog | None = None) -> BuildResult:
    """Everything ``generated/`` should hold, computed without touching it; from ``catalog``
    when the caller has already loaded the sources (with their locked uids).

    The cyclic garbage collector is off meanwhile: the plans and grafanalib's objects are
    many small ones that all live until the files are rendered, and tracing them again and
    again cost a fifth of a large build."""
    with collector.paused():
        return _generate(config, catalog)


def _generate(config: Config, catalog: Catalog | None) -> BuildResult:
    catalog = declared(config) if catalog is None else catalog
    exported = config.pipeline.export(catalog.metrics)
    files = _dashboard_files(catalog, exported, config.scrape_variables)
    files[LOCK] = render_lock(catalog)
    groups = plan_rules(catalog, exported, config.scrape_variables)
    for group in groups:
        files[group.path] = render_rule_file(group)
        tests = rule_tests(group, exported.metrics)
        if tests is not None:
            files[group.test_path] = tests
    if config.grafana_alerting and any(group.alerts for group in groups):
        files[GRAFANA_ALERTING] = render_grafana_alerting(groups, config.datasource_uid)
    files.update(
        render_provisioning(
            prometheus_url=config.prometheus_url,
            datasource_uid=config.datasource_uid,
            datasource_default=config.datasource_default,
            dashboards_path=config.dashboards_path,
        )
    )
    return BuildResult(catalog=catalog, exported=exported, files=dict(sorted(files.items())))


def _dashboard_files(
    catalog: Catalog, exported: Exported, scrape_variables: Sequence[str]
) -> dict[str, bytes]:
    """Every dashboard planned and rendered: on two cores when there are many panels, half
    the panels each (a dashboard needs nothing of another's plan but the tags, which every
    part reads from the whole catalog)."""
    render = partial(_rendered, catalog, exported, scrape_variables)
    if len(catalog.dashboards) < 2 or not worth_splitting(len(catalog.metrics)):
        return render(slice(None))
    sizes = list(accumulate(sum(len(r.entries) for r in d.rows) for d in catalog.dashboards))
    middle = min(max(bisect_left(sizes, sizes[-1] / 2), 1), len(sizes) - 1)
    first, second = in_parallel(render, slice(0, middle), slice(middle, None))
    return {**first, **second}


def _rendered(
    catalog: Catalog, exported: Exported, scrape_variables: Sequence[str], part: slice
) -> dict[str, bytes]:
    plans = plan_dashboards(catalog, exported, scrape_variables, part)
    return {plan.path: render_dashboard(plan) for plan in plans}
