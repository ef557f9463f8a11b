"""Units on both sides: the OTel (UCUM) unit a metric declares and the Grafana unit a
panel shows it in. One table each, of what a unit is worth in its dimension's base, so that
build picks the panel unit and verify and build judge one against the other alike.
"""

from __future__ import annotations

import math

Worth = tuple[str, float]
"""(dimension, how many of the dimension's base unit one of this unit is)."""

OTEL_UNITS: dict[str, Worth] = {
    "ns": ("time", 1e-9), "us": ("time", 1e-6), "ms": ("time", 1e-3), "s": ("time", 1.0),
    "min": ("time", 60.0), "h": ("time", 3600.0), "d": ("time", 86400.0),
    "By": ("data", 1.0), "KBy": ("data", 1e3), "MBy": ("data", 1e6), "GBy": ("data", 1e9),
    "KiBy": ("data", 1024.0), "MiBy": ("data", 1024.0**2), "GiBy": ("data", 1024.0**3),
    "bit": ("data", 1 / 8),
    "1": ("fraction", 1.0), "%": ("fraction", 0.01),
}  # fmt: skip
#: Grafana's unit ids (``@grafana/data`` value formats) that measure one of those dimensions;
#: the first of each worth is the one build uses. Others (short, reqps...) are not judged.
GRAFANA_UNITS: dict[str, Worth] = {
    "ns": ("time", 1e-9), "µs": ("time", 1e-6), "ms": ("time", 1e-3), "s": ("time", 1.0),
    "m": ("time", 60.0), "h": ("time", 3600.0), "d": ("time", 86400.0),
    "dtdurationms": ("time", 1e-3), "dtdurations": ("time", 1.0),
    "bytes": ("data", 1.0), "decbytes": ("data", 1.0), "bits": ("data", 1 / 8),
    "decbits": ("data", 1 / 8), "kbytes": ("data", 1024.0), "mbytes": ("data", 1024.0**2),
    "gbytes": ("data", 1024.0**3), "deckbytes": ("data", 1e3), "decmbytes": ("data", 1e6),
    "decgbytes": ("data", 1e9),
    "percentunit": ("fraction", 1.0), "percent": ("fraction", 0.01),
}  # fmt: skip
#: The unit words of exported names, for families whose path does not carry the unit.
_NAME_UNITS = {
    "nanoseconds": "ns", "microseconds": "us", "milliseconds": "ms", "seconds": "s",
    "bytes": "By", "ratio": "1", "percent": "%",
}  # fmt: skip
_BASE = {"time": "s", "data": "bytes", "fraction": "percentunit"}


def grafana_unit(worth: Worth) -> str:
    """The Grafana unit id of that worth, else its dimension's base unit."""
    dimension, value = worth
    for unit, (their_dimension, their_value) in GRAFANA_UNITS.items():
        if their_dimension == dimension and math.isclose(their_value, value, rel_tol=1e-6):
            return unit
    return _BASE[dimension]


def panel_unit(otel_unit: str, fallback: str) -> str:
    """The Grafana unit a panel shows a metric of ``otel_unit`` in, as it is. Unit ``1``
    is as often a count as a ratio, so it gets ``none``, which claims neither."""
    if otel_unit == "1":
        return "none"
    worth = OTEL_UNITS.get(otel_unit)
    return fallback if worth is None else grafana_unit(worth)


def unit_from_name(name: str) -> str:
    """The OTel unit an exported name spells (``x_seconds`` -> ``s``), "" when none."""
    last = name.removesuffix("_total").rsplit("_", 1)[-1]
    return _NAME_UNITS.get(last, "")


def contradiction(otel_unit: str, shown: str, scale: float = 1.0) -> tuple[str, str] | None:
    """Why values in ``otel_unit``, times ``scale``, are wrong in a panel of unit ``shown``,
    and the fix; ``None`` when they fit or either unit is not judged."""
    worth, panel = OTEL_UNITS.get(otel_unit), GRAFANA_UNITS.get(shown)
    if worth is None or panel is None:
        return None
    (dimension, value), (panel_dimension, panel_value) = worth, panel
    if dimension != panel_dimension:
        return (
            f"panel unit `{shown}` is {panel_dimension}, but the values are {dimension} "
            f"(unit `{otel_unit}`)",
            f"use a {dimension} unit for the panel, such as `{grafana_unit(worth)}`",
        )
    if math.isclose(scale * panel_value, value, rel_tol=1e-6):
        return None
    needed = value / panel_value
    instead = f" instead of {scale:g}" if scale != 1 else ""
    return (
        f"panel unit `{shown}` on values in `{otel_unit}` scaled by {scale:g}: they are "
        f"shown {needed / scale:g}x off",
        f"set the panel unit to `{grafana_unit((dimension, value / scale))}`, or scale the "
        f"query by {needed:g}{instead}",
    )
