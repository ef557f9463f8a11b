"""Grafana's own vocabulary: the unit ids a panel may show and the colours a threshold may
name, from ``schemas/grafana-vocabulary.json`` (made from ``@grafana/data`` by
``scripts/make_grafana_vocabulary.sh``). A misspelt unit or colour is accepted by Grafana
without a word and shown wrong, so dashgen refuses it at build time. Also the refIds Grafana
gives a panel's targets, which the build writes and verify reads."""

from __future__ import annotations

import difflib
import functools
import json
import re
from importlib import resources

#: Grafana's custom units (``suffix: req``, ``currency:EUR``): any text after the prefix.
_CUSTOM_UNIT = re.compile(r"(suffix|prefix|si|count|currency|time|bool):.*")
_CSS_COLOR = re.compile(
    r"#(?:[0-9a-fA-F]{3,4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|rgba?\([0-9.,%\s]+\)|hsla?\([0-9.,%\s]+\)"
)
_SPECIAL_COLORS = frozenset({"transparent", "text"})
#: How alarming each hue of Grafana's palette reads, for a threshold's implied base step.
_SEVERITY = {"green": 0, "blue": 0, "purple": 0, "yellow": 1, "orange": 2, "red": 3}
_SHADES = ("super-light-", "light-", "semi-dark-", "dark-")


@functools.cache
def _vocabulary() -> tuple[frozenset[str], frozenset[str]]:
    text = resources.files("dashgen").joinpath("schemas", "grafana-vocabulary.json").read_text()
    document = json.loads(text)
    return frozenset(document["units"]), frozenset(document["colors"])


def unit_problem(unit: str) -> str | None:
    """Why ``unit`` is no Grafana unit (with the closest ids), or None when it is one."""
    units, _ = _vocabulary()
    if unit in units or _CUSTOM_UNIT.fullmatch(unit):
        return None
    close = difflib.get_close_matches(unit, sorted(units), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"{unit!r} is no Grafana unit{hint} (custom units: 'suffix:<text>', 'prefix:<text>')"


def color_problem(color: str) -> str | None:
    """Why ``color`` is no colour Grafana draws (with the closest names), or None."""
    _, colors = _vocabulary()
    if color in colors or color in _SPECIAL_COLORS or _CSS_COLOR.fullmatch(color):
        return None
    close = difflib.get_close_matches(color, sorted(colors), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"{color!r} is no Grafana colour{hint} (or '#rrggbb', 'rgb(...)')"


def severity(color: str) -> int | None:
    """0 (fine) to 3 (red) for a named hue of Grafana's palette, None for any other."""
    for shade in _SHADES:
        color = color.removeprefix(shade)
    return _SEVERITY.get(color)


def implied_base(steps: tuple[tuple[float, str], ...]) -> str:
    """The colour below the first threshold when none is declared: red when the steps get
    less alarming as the value grows (a coverage stat: orange at 90, green at 100), else
    green (a latency: orange at 250 ms, red at 1 s)."""
    if not steps:
        return "green"
    first, last = severity(steps[0][1]), severity(steps[-1][1])
    if first is None or last is None:
        return "green"
    improving = last < first or (len(steps) == 1 and first == 0)
    return "red" if improving else "green"


def ref_id(position: int) -> str:
    """Grafana's refId for the target at ``position``: A..Z, AA, AB..."""
    letters = ""
    position += 1
    while position:
        position, digit = divmod(position - 1, 26)
        letters = chr(ord("A") + digit) + letters
    return letters
