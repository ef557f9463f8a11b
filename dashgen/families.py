"""What an export path produced: the data every later stage reads names from."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dashgen.declare import MetricSpec


RECORDED = "recorded"
"""The ``type`` of a family that a recording rule writes, not the exporter."""


@dataclass(frozen=True)
class Family:
    """One Prometheus metric family as ``PrometheusMetricReader`` exported it.

    ``samples`` are the sample names (``x_total``; ``x_bucket``/``x_count``/``x_sum``), and
    ``labels`` every label name seen on any sample, including ``le`` and the
    ``otel_scope_*`` labels. ``labels`` is ``None`` when the label set is not known (plain
    OTel code triggered without attributes), so checks must not guess.
    """

    name: str
    type: str
    samples: tuple[str, ...]
    labels: tuple[str, ...] | None
    source: str = ""
    unit: str = ""
    """The declared OTel unit (``s``, ``By``, ``1``), "" when the path does not say."""


@dataclass(frozen=True)
class ExportedMetric:
    """A declaration and what the exporter made of it."""

    spec: MetricSpec
    family: Family
    labels: Mapping[str, str]
    """Declared attribute key -> exported label name."""
    value_sample: str
    """The sample a panel queries: ``x_total``, the gauge itself, or a histogram's count."""
    bucket_sample: str | None = None
    sum_sample: str | None = None


@dataclass(frozen=True)
class Exported:
    metrics: Mapping[str, ExportedMetric]
    """By declared metric name."""
    families: tuple[Family, ...]
    """Every family the exporter produced, ``target_info`` included, sorted by name."""


def joined(first: Exported, second: Exported) -> Exported | None:
    """One export of what two halves of the declarations exported apart; ``None`` when the
    halves may have interfered: a family or sample name in both, other than a family no
    declaration owns (``target_info``) that both made alike."""
    ownerless = {f.name: f for f in first.families if not f.source}
    families = list(first.families)
    names = {f.name for f in first.families}
    samples = {s for f in first.families for s in f.samples}
    for family in second.families:
        if not family.source and ownerless.get(family.name) == family:
            continue
        if family.name in names or samples.intersection(family.samples):
            return None
        families.append(family)
    return Exported(
        metrics={**first.metrics, **second.metrics},
        families=tuple(sorted(families, key=lambda f: f.name)),
    )
