"""What the real exporter produced: the data every later stage reads names from."""

from __future__ import annotations

from dataclasses import dataclass


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
