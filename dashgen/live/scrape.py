"""Samples over a time window, read from the real OTel Prometheus exporter.

The live check needs history (``rate()``, ``increase()`` and ``histogram_quantile()`` are empty
on a single point), but scraping in real time would take minutes. So the exporter's registry is
read several times in a row, the caller moves the values between reads, and every read is
stamped with a synthetic timestamp ``step_s`` apart, ending at ``end_ms``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from dashgen.errors import DashgenError

if TYPE_CHECKING:  # only read through collect(): the exporter's caller has imported it
    from prometheus_client import CollectorRegistry


@dataclass(frozen=True)
class Series:
    """One sample name and label set with its points, as the exporter exposed it.

    ``family`` and ``family_type`` are kept because OpenMetrics groups samples under
    ``# TYPE`` lines per family (``x`` counter for sample ``x_total``, ``h`` histogram for
    ``h_bucket``/``h_count``/``h_sum``).
    """

    name: str
    family_type: str
    family: str
    labels: tuple[tuple[str, str], ...]
    points: tuple[tuple[int, float], ...]


def scrape_window(
    registry: CollectorRegistry,
    tick: Callable[[int], None],
    *,
    scrapes: int,
    step_s: int,
    end_ms: int,
) -> list[Series]:
    """Read ``registry`` ``scrapes`` times, calling ``tick(i)`` before read ``i``.

    Read ``i`` is stamped ``end_ms - (scrapes - 1 - i) * step_s * 1000``. Sorted by name
    then labels, so the same measurements always give the same list.
    """
    if scrapes < 1 or step_s < 1:
        raise ValueError(f"need scrapes >= 1 and step_s >= 1, got {scrapes} and {step_s}")
    seen: dict[tuple[str, tuple[tuple[str, str], ...]], tuple[str, str, list[tuple[int, float]]]]
    seen = {}
    for i in range(scrapes):
        tick(i)
        stamp = end_ms - (scrapes - 1 - i) * step_s * 1000
        for family in registry.collect():
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                _, _, points = seen.setdefault(key, (family.name, family.type, []))
                if points and points[-1][0] == stamp:
                    raise DashgenError(
                        sample.name,
                        f"exported twice in one scrape with labels {dict(key[1])}: two"
                        " instruments map to the same Prometheus name",
                    )
                points.append((stamp, float(sample.value)))
    return [
        Series(name=name, family_type=ftype, family=fname, labels=labels, points=tuple(points))
        for (name, labels), (fname, ftype, points) in sorted(seen.items())
    ]
