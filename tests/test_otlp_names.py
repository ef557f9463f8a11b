"""The OTLP naming stage against the real Go translator: all 4,000 cases of its output in
``tests/data/otlp-naming-vectors.jsonl`` (see ``otlp-naming-README.md`` beside it), for each
of the four strategies, metric names, label names and the translator's refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dashgen.pipelines.otlp_names import Strategy, TranslationError, label_name, metric_name

VECTORS = [
    json.loads(line)
    for line in (Path(__file__).parent / "data" / "otlp-naming-vectors.jsonl").open()
]


def _metric(case: dict[str, Any], strategy: Strategy) -> dict[str, str]:
    try:
        return {"metric": metric_name(case["name"], case["unit"], case["type"], strategy)}
    except TranslationError as error:
        return {"error": error.message}


def _expected_metric(result: dict[str, Any]) -> dict[str, str]:
    return {"error": result["error"]} if "error" in result else {"metric": result["metric"]}


def _label(label: str, strategy: Strategy) -> str | dict[str, str]:
    try:
        return label_name(label, strategy)
    except TranslationError as error:
        return {"error": error.message}


def test_the_vectors_are_all_there() -> None:
    assert len(VECTORS) == 4000
    assert {s for case in VECTORS for s in case["strategies"]} == {s.value for s in Strategy}
    refusals = sum("error" in r for case in VECTORS for r in case["strategies"].values())
    assert refusals >= 10


@pytest.mark.parametrize("strategy", list(Strategy), ids=str)
def test_metric_names_equal_the_real_translators(strategy: Strategy) -> None:
    wrong = [
        (case["name"], case["unit"], case["type"], got, expected)
        for case in VECTORS
        if (got := _metric(case, strategy))
        != (expected := _expected_metric(case["strategies"][strategy.value]))
    ]
    assert wrong == [], f"{len(wrong)} of {len(VECTORS)} differ, e.g. {wrong[:5]}"


@pytest.mark.parametrize("strategy", list(Strategy), ids=str)
def test_label_names_equal_the_real_translators(strategy: Strategy) -> None:
    cases = {
        (label, json.dumps(expected, sort_keys=True))
        for case in VECTORS
        for label, expected in case["strategies"][strategy.value]["labels"].items()
    }
    wrong = [
        (label, got, expected)
        for label, expected_text in sorted(cases)
        if (got := _label(label, strategy)) != (expected := json.loads(expected_text))
    ]
    assert wrong == [], wrong[:10]
    assert len(cases) >= 15
