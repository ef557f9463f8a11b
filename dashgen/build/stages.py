"""``dashgen build`` as its stages: catalog -> export path -> plan -> render (-> write at the
edge)."""

from __future__ import annotations

from dataclasses import dataclass

from dashgen.catalog import Catalog, load_catalog
from dashgen.config import Config
from dashgen.families import Exported
from dashgen.build.plan import plan_dashboards
from dashgen.build.render import render_dashboard, render_provisioning


@dataclass(frozen=True)
class BuildResult:
    catalog: Catalog
    exported: Exported
    files: dict[str, bytes]
    """Output-dir-relative posix path -> exact bytes."""


def generate(config: Config, catalog: Catalog | None = None) -> BuildResult:
    """Everything ``generated/`` should hold, computed without touching it; from ``catalog``
    when the caller has already loaded the sources."""
    catalog = load_catalog(config.sources, config.cache) if catalog is None else catalog
    exported = config.pipeline.export(catalog.metrics)
    files = {
        f"{plan.uid}.json": render_dashboard(plan) for plan in plan_dashboards(catalog, exported)
    }
    files.update(
        render_provisioning(
            prometheus_url=config.prometheus_url,
            datasource_uid=config.datasource_uid,
            dashboards_path=config.dashboards_path,
        )
    )
    return BuildResult(catalog=catalog, exported=exported, files=dict(sorted(files.items())))
