"""``dashgen build`` as its stages: catalog -> export path -> plan -> render (-> write at the
edge)."""

from __future__ import annotations

from dataclasses import dataclass

from dashgen.build.identity import LOCK, declared, render_lock
from dashgen.build.plan import plan_dashboards
from dashgen.build.render import render_dashboard, render_provisioning
from dashgen.catalog import Catalog
from dashgen.config import Config
from dashgen.families import Exported


@dataclass(frozen=True)
class BuildResult:
    catalog: Catalog
    exported: Exported
    files: dict[str, bytes]
    """Output-dir-relative posix path -> exact bytes."""


def generate(config: Config, catalog: Catalog | None = None) -> BuildResult:
    """Everything ``generated/`` should hold, computed without touching it; from ``catalog``
    when the caller has already loaded the sources (with their locked uids)."""
    catalog = declared(config) if catalog is None else catalog
    exported = config.pipeline.export(catalog.metrics)
    plans = plan_dashboards(catalog, exported, config.scrape_variables)
    files = {plan.path: render_dashboard(plan) for plan in plans}
    files[LOCK] = render_lock(catalog)
    files.update(
        render_provisioning(
            prometheus_url=config.prometheus_url,
            datasource_uid=config.datasource_uid,
            datasource_default=config.datasource_default,
            dashboards_path=config.dashboards_path,
        )
    )
    return BuildResult(catalog=catalog, exported=exported, files=dict(sorted(files.items())))
