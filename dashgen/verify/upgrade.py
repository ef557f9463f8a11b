"""``verify --exporter-version``: every query whose names change with another version of
the pull exporter, so that an upgrade of OpenTelemetry is known to be safe before it is made.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from dashgen.families import Exported
from dashgen.verify.contract import Finding, VerifyResult
from dashgen.verify.dashboards import DashboardQueries

RENAMED_BY_UPGRADE = "renamed-by-exporter"


def sample_renames(ours: Exported, theirs: Exported) -> dict[str, str]:
    """Each sample name that the other version spells differently, by declaration and role
    (the value, bucket and sum sample of each)."""
    renames: dict[str, str] = {}
    for name, mine in ours.metrics.items():
        other = theirs.metrics.get(name)
        if other is None:
            continue
        roles = [
            (mine.value_sample, other.value_sample),
            (mine.bucket_sample, other.bucket_sample),
            (mine.sum_sample, other.sum_sample),
        ]
        renames.update({a: b for a, b in roles if a is not None and b is not None and a != b})
    return renames


def label_renames(ours: Exported, theirs: Exported) -> dict[str, dict[str, str]]:
    """Sample name -> {label: the other version's label} for attributes exported differently."""
    renames: dict[str, dict[str, str]] = {}
    for name, mine in ours.metrics.items():
        other = theirs.metrics.get(name)
        if other is None:
            continue
        changed = {
            label: other.labels[key]
            for key, label in mine.labels.items()
            if key in other.labels and other.labels[key] != label
        }
        if changed:
            for sample in mine.family.samples:
                renames[sample] = changed
    return renames


def with_upgrade(
    result: VerifyResult,
    dashboards: Sequence[DashboardQueries],
    ours: Exported,
    theirs: Exported,
    version: str,
) -> VerifyResult:
    """A finding at every query that reads a name the other version changes."""
    samples = sample_renames(ours, theirs)
    labels = label_renames(ours, theirs)
    at = f"with opentelemetry-exporter-prometheus {version}"
    hint = (
        "generated dashboards follow on the next `dashgen build`; change a hand-written query "
        "together with the upgrade"
    )
    found: set[Finding] = set()
    for dashboard in dashboards:
        for parsed in dashboard.targets:
            if parsed.refs is None:
                continue
            used = parsed.refs.grouping_labels
            for selector in parsed.refs.selectors:
                name = selector.metric
                if name is None:
                    continue
                if name in samples:
                    message = f"`{name}` is `{samples[name]}` {at}"
                    found.add(Finding.at(parsed.target, RENAMED_BY_UPGRADE, name, message, hint))
                found.update(
                    Finding.at(
                        parsed.target,
                        RENAMED_BY_UPGRADE,
                        label,
                        f"label `{label}` of `{name}` is `{new}` {at}",
                        hint,
                    )
                    for label, new in _relevant(labels.get(name, {}), selector.labels | used)
                )
    findings = sorted({*result.findings, *found}, key=Finding.sort_key)
    return replace(result, findings=tuple(findings))


def _relevant(changed: Mapping[str, str], used: frozenset[str]) -> list[tuple[str, str]]:
    return sorted((label, new) for label, new in changed.items() if label in used)
