"""Pipeline ``prometheus-client``: apps instrumented with ``prometheus_client`` itself.

The user's callable (``--instruments module:function``) fills real ``prometheus_client``
registries, as the app does at start-up: it may return the ``CollectorRegistry`` it uses,
or register on the global ``REGISTRY``. The families, sample and label names are what that
registry's ``collect()`` yields, exactly what the app's ``/metrics`` serves.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterable
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.metrics_core import Metric as PromFamily

from dashgen.errors import DashgenError
from dashgen.families import Family

#: The samples a family of each type serves once observed; used when it has none yet (a
#: labelled metric no code has given a child), whose label names are then unknown.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}


def families_of(collected: Iterable[PromFamily], source: str = "") -> tuple[Family, ...]:
    """prometheus_client's families as dashgen's plain data, sorted by name.

    Prometheus text has no place for a counter's ``x_created``, so its parser reads it as a
    gauge family of its own; it is put back with ``x``, where OpenMetrics has it."""
    collected = list(collected)
    grouped = {f.name for f in collected if f.type in ("counter", "histogram", "summary")}
    created: dict[str, list[str]] = {}
    for family in collected:
        base = family.name.removesuffix("_created")
        if family.name != base and base in grouped and family.type in ("gauge", "unknown"):
            created.setdefault(base, []).append(family.name)
    families = []
    for family in collected:
        if family.name.removesuffix("_created") in created and family.name.endswith("_created"):
            continue
        samples = sorted({sample.name for sample in family.samples})
        labels: tuple[str, ...] | None
        if samples:
            labels = tuple(sorted({label for s in family.samples for label in s.labels}))
        else:
            samples = [family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))]
            labels = None
        samples = sorted({*samples, *created.get(family.name, [])})
        families.append(Family(family.name, family.type, tuple(samples), labels, source))
    return tuple(sorted(families, key=lambda f: f.name))


def registry_families(target: str, search_path: Path) -> tuple[Family, ...]:
    """Call ``module:function`` and read the registry it filled (run in a child process)."""
    module_name, _, function_name = target.partition(":")
    if not module_name or not function_name:
        raise DashgenError("--instruments", f"expected 'module:function', got {target!r}")
    before = set(collectors(REGISTRY))
    sys.path.insert(0, str(search_path))
    try:
        returned = getattr(importlib.import_module(module_name), function_name)()
    except DashgenError:
        raise
    except Exception as error:
        raise DashgenError(
            target, f"creating the collectors failed: {type(error).__name__}: {error}"
        ) from None
    if isinstance(returned, CollectorRegistry):
        return families_of(returned.collect(), target)
    created = [c for c in collectors(REGISTRY) if c not in before]
    if not created:
        raise DashgenError(
            target,
            "registered no prometheus_client collectors on the global REGISTRY and returned "
            "no CollectorRegistry (for OpenTelemetry instruments, use pipeline = "
            '"prometheus-exporter" or "otlp")',
        )
    return families_of(REGISTRY.collect(), target)


def collectors(registry: CollectorRegistry) -> list[object]:
    """The collectors registered on ``registry``, by identity (no public API lists them)."""
    return list(registry._collector_to_names)
