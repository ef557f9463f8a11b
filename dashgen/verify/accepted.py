"""What the contract checks accept besides the exported families: externals, exclusions and
the scrape's own labels, from ``[tool.dashgen]``. Plain data of its own module, so that
reading the config never loads the checks."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DEFAULT_SCRAPE_LABELS = frozenset({"job", "instance"})


@dataclass(frozen=True)
class ExternalMetric:
    """A metric that comes from elsewhere (collector, node-exporter, recording rule).

    It is never reported missing and never required on a dashboard; ``reason`` documents why.
    """

    pattern: str
    is_regex: bool
    reason: str


@dataclass(frozen=True)
class ContractRules:
    """What the checks accept besides the exported families (from ``[tool.dashgen]``)."""

    scrape_labels: frozenset[str] = DEFAULT_SCRAPE_LABELS
    external: tuple[ExternalMetric, ...] = ()
    excluded: Mapping[str, str] = field(default_factory=dict)
