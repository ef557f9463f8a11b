"""The names the Prometheus OTLP translator gives an OTLP metric and its attributes.

Prometheus' OTLP receiver, Mimir and the Collector's Prometheus exporters name metrics with
the Go library ``prometheus/otlptranslator``, which cannot run here. This is a stage written
to give the same answers, proven equal to it on every case of
``tests/data/otlp-naming-vectors.jsonl`` (4,000 cases of the real library's output: the four
strategies, metric and label names, and its refusals).
"""

from __future__ import annotations

import re
from enum import StrEnum

from dashgen.errors import DashgenError


class Strategy(StrEnum):
    """The ``translation_strategy`` values Prometheus, Mimir and the Collector accept."""

    UNDERSCORE_ESCAPING_WITH_SUFFIXES = "UnderscoreEscapingWithSuffixes"
    UNDERSCORE_ESCAPING_WITHOUT_SUFFIXES = "UnderscoreEscapingWithoutSuffixes"
    NO_UTF8_ESCAPING_WITH_SUFFIXES = "NoUTF8EscapingWithSuffixes"
    NO_TRANSLATION = "NoTranslation"

    @property
    def escapes(self) -> bool:
        return self.name.startswith("UNDERSCORE")

    @property
    def adds_suffixes(self) -> bool:
        return self.name.endswith("WITH_SUFFIXES")


#: OTLP metric types, as the vectors name them.
COUNTER = "counter"  # a monotonic sum
GAUGE = "gauge"

#: UCUM units that Prometheus spells out as a name suffix; any other unit is used as it is.
_UNIT_WORDS = {
    "d": "days",
    "h": "hours",
    "min": "minutes",
    "s": "seconds",
    "ms": "milliseconds",
    "us": "microseconds",
    "ns": "nanoseconds",
    "By": "bytes",
    "KiBy": "kibibytes",
    "MiBy": "mebibytes",
    "GiBy": "gibibytes",
    "TiBy": "tibibytes",
    "KBy": "kilobytes",
    "MBy": "megabytes",
    "GBy": "gigabytes",
    "TBy": "terabytes",
    "m": "meters",
    "V": "volts",
    "A": "amperes",
    "J": "joules",
    "W": "watts",
    "g": "grams",
    "Cel": "celsius",
    "Hz": "hertz",
    "1": "",
    "%": "percent",
}
#: The unit after ``/``, as a singular word: ``By/s`` is ``bytes_per_second``.
_PER_UNIT_WORDS = {
    "s": "second",
    "m": "minute",
    "h": "hour",
    "d": "day",
    "w": "week",
    "mo": "month",
    "y": "year",
}
#: What separates name tokens when escaping: anything but letters, digits and ``:``.
_NOT_A_NAME_TOKEN = re.compile(r"[^a-zA-Z0-9:]+")
_NOT_A_METRIC_CHAR = re.compile(r"[^a-zA-Z0-9:_]+")
_NOT_A_LABEL_CHAR = re.compile(r"[^a-zA-Z0-9_]")
_UNDERSCORES = re.compile(r"__+")


class TranslationError(DashgenError):
    """The translator refuses the name (it would be empty, or only underscores)."""

    def __init__(self, message: str) -> None:
        super().__init__("", message)


def metric_name(name: str, unit: str, metric_type: str, strategy: Strategy) -> str:
    """The metric name a TSDB stores (a histogram's base name, a counter's ``_total`` one)."""
    if not strategy.escapes:
        return _utf8_name(name, unit, metric_type) if strategy.adds_suffixes else name
    if strategy.adds_suffixes:
        built = _normalized(name, unit, metric_type)
    else:
        built = "_".join(part for part in _NOT_A_METRIC_CHAR.split(name) if part)
        built = f"_{built}" if built[:1].isdigit() else built
    if not built:
        raise TranslationError(f'normalization for metric "{name}" resulted in empty name')
    if built != name and not built.strip("_"):
        raise TranslationError(
            f'normalization for metric "{name}" resulted in invalid name "{built}"'
        )
    return built


def label_name(label: str, strategy: Strategy) -> str:
    """The label name an attribute key becomes."""
    if not label:
        raise TranslationError("label name is empty")
    if not strategy.escapes:
        if not label.strip("_"):
            raise TranslationError(f'label name "{label}" contains only underscores')
        return label
    if label.startswith("__") and label.endswith("__") and len(label) > 4:
        built = label  # reserved names such as __name__ stay as they are
    else:
        built = _UNDERSCORES.sub("_", _NOT_A_LABEL_CHAR.sub("_", label))
    if built[0].isdigit():
        built = f"key_{built}"
    if built != label and not built.strip("_"):
        raise TranslationError(
            f'normalization for label name "{label}" resulted in invalid name "{built}"'
        )
    return built


def _unit_suffixes(unit: str) -> tuple[str, str]:
    """(main, per) suffix words of a unit, before any escaping; ``{x}`` annotations drop."""
    main_part, slash, per_part = unit.partition("/")
    main = main_part.strip()
    main_word = _UNIT_WORDS.get(main, main) if main and not _annotation(main) else ""
    per = per_part.strip() if slash else ""
    per_word = _PER_UNIT_WORDS.get(per, per) if per and not _annotation(per) else ""
    return main_word, f"per_{per_word}" if per_word else ""


def _annotation(unit: str) -> bool:
    return "{" in unit or "}" in unit


def _clean_unit(word: str) -> str:
    return _UNDERSCORES.sub("_", re.sub(r"[^a-zA-Z0-9:]", "_", word)).removeprefix("_")


def _normalized(name: str, unit: str, metric_type: str) -> str:
    """Escaping with suffixes: name tokens, then the unit (unless already a token), then
    ``total`` for counters and ``ratio`` for gauges of unit ``1``, each moved to the end."""
    tokens = [token for token in _NOT_A_NAME_TOKEN.split(name) if token]
    main, per = (_clean_unit(word) for word in _unit_suffixes(unit))
    if main in tokens:
        main = ""
    per = "" if per == "per_" else per.removesuffix("_")
    if per in tokens:
        per = ""
    if per:
        main = main.removesuffix("_")
    tokens += [word for word in (main, per) if word]
    if metric_type == COUNTER:
        tokens = [token for token in tokens if token != "total"] + ["total"]
    if unit == "1" and metric_type == GAUGE:
        tokens = [token for token in tokens if token != "ratio"] + ["ratio"]
    built = "_".join(tokens)
    return f"_{built}" if built[:1].isdigit() else built


def _utf8_name(name: str, unit: str, metric_type: str) -> str:
    """No escaping, with suffixes: each suffix moved to the end unless already there."""
    endings: list[str] = []
    if unit == "1" and metric_type == GAUGE:
        name = _without_suffix(name, "ratio")
        endings.append("ratio")
    if metric_type == COUNTER:
        name = _without_suffix(name, "total")
        endings.append("total")
    main, per = _unit_suffixes(unit)
    if per:
        name = _without_suffix(name, per)
        endings.append(per)
    if main and not name.endswith(main):
        name = f"{name}_{main}"
    return "_".join([name, *reversed(endings)])


def _without_suffix(name: str, suffix: str) -> str:
    """``name`` less ``suffix`` and the one separator before it, if there is more left."""
    if name.endswith(suffix) and len(name) > len(suffix) + 1:
        return name[: -(len(suffix) + 1)]
    return name
