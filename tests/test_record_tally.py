"""Recording mode's per-measurement work: the C tally and its Python twin, held to one
behaviour on the same cases (the C one is what runs wherever dashgen was built with a
compiler, as in this project's own setup; the Python one is the fallback)."""

from __future__ import annotations

import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Mapping
from types import FrameType, MappingProxyType
from typing import Any

import pytest

from dashgen import Counter
from dashgen.record import _tally, capture, tally
from dashgen.record.tally import APP, OTHER, TEST, Tally

IMPLEMENTATIONS = {"c": _tally.Tally, "python": tally.Tally}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def make(request: pytest.FixtureRequest) -> Callable[..., Any]:
    return IMPLEMENTATIONS[request.param]


class Keeper:
    """A ``keep`` that remembers what it was asked and answers as told."""

    def __init__(self, answer: bool = True) -> None:
        self.answer = answer
        self.asked: list[dict[str, Any]] = []

    def __call__(self, attributes: Mapping[str, Any]) -> bool:
        self.asked.append(dict(attributes))
        return self.answer


class Judge:
    """A ``judge`` that calls code by its function's name, caching as capture's does."""

    def __init__(self, verdicts: dict[int, int], by_name: Mapping[str, int]) -> None:
        self.verdicts = verdicts
        self.by_name = by_name
        self.judged: list[str] = []

    def __call__(self, frame: FrameType) -> int:
        name = frame.f_code.co_name
        self.judged.append(name)
        verdict = self.verdicts[id(frame.f_code)] = self.by_name.get(name, OTHER)
        return verdict


def test_counts_every_measurement_and_asks_keep_once_per_new_combination(
    make: Callable[..., Tally],
) -> None:
    keeper = Keeper()
    counted = make(None, keeper, {}, set())
    for i in range(30):
        counted.record(1, {"route": f"/{i % 3}", "status": 200})
    counted.record(1)
    counted.record(1, None)
    counted.record(1, {})
    counted.record(2, attributes={"route": "/0", "status": 200}, context=None)
    counted.record(amount=3)
    assert counted.measurements == 35
    assert counted.production == 0  # no judge: nobody is told production
    assert keeper.asked == [{"route": f"/{i}", "status": 200} for i in range(3)]


def test_combinations_compare_as_ordered_items_even_when_hashes_are_equal(
    make: Callable[..., Tally],
) -> None:
    keeper = Keeper()
    counted = make(None, keeper, {}, set())
    assert hash(-1) == hash(-2)  # a collision the C table must tell apart
    for attributes in ({"x": -1}, {"x": -2}, {"x": -1}, {"a": 1, "b": 2}, {"b": 2, "a": 1}):
        counted.record(1, attributes)
    counted.record(1, {"x": -1.0})  # equal to {"x": -1}, as tuple(items()) compare
    assert keeper.asked == [{"x": -1}, {"x": -2}, {"a": 1, "b": 2}, {"b": 2, "a": 1}]


def test_a_combination_keep_declines_is_asked_again(make: Callable[..., Tally]) -> None:
    keeper = Keeper(answer=False)
    counted = make(None, keeper, {}, set())
    for _ in range(3):
        counted.record(1, {"route": "/a"})
    assert keeper.asked == [{"route": "/a"}] * 3


def test_unhashable_values_are_handed_to_keep_every_time(make: Callable[..., Tally]) -> None:
    keeper = Keeper()
    counted = make(None, keeper, {}, set())
    for _ in range(2):
        counted.record(1, {"codes": [1, 2]})
    assert keeper.asked == [{"codes": [1, 2]}] * 2
    assert counted.measurements == 2


def test_other_mappings_reach_keep(make: Callable[..., Tally]) -> None:
    keeper = Keeper()
    counted = make(None, keeper, {}, set())
    counted.record(1, MappingProxyType({"route": "/a"}))
    counted.record(1, MappingProxyType({}))
    assert keeper.asked[0] == {"route": "/a"}
    assert all(asked == {"route": "/a"} for asked in keeper.asked)


def test_errors_of_keep_and_judge_reach_the_caller(make: Callable[..., Tally]) -> None:
    def refuse(attributes: Any) -> bool:
        raise RuntimeError("keep failed")

    with pytest.raises(RuntimeError, match="keep failed"):
        make(None, refuse, {}, set()).record(1, {"a": 1})

    def broken(frame: FrameType) -> int:
        raise RuntimeError("judge failed")

    with pytest.raises(RuntimeError, match="judge failed"):
        make(broken, Keeper(), {}, set()).record(1)


def test_bad_calls_are_type_errors(make: Callable[..., Tally]) -> None:
    counted: Any = make(None, Keeper(), {}, set())
    for args, kwargs in [((), {}), ((1, None, None, None), {}), ((1,), {"colour": 1})]:
        with pytest.raises(TypeError):
            counted.record(*args, **kwargs)
    assert counted.measurements == 0


def _app_code(record: Callable[..., None], line: int = 0) -> None:
    if line:
        record(1)
    else:
        record(1)


def _wrapper(record: Callable[..., None]) -> None:
    record(1)


def _test_code(record: Callable[..., None]) -> None:
    _wrapper(record)


def test_the_first_frame_judge_does_not_look_past_is_the_recorder(
    make: Callable[..., Tally],
) -> None:
    verdicts: dict[int, int] = {}
    sites: set[tuple[int, int]] = set()
    judge = Judge(verdicts, {"_app_code": APP, "_test_code": TEST, "_wrapper": OTHER})
    counted = make(judge, Keeper(), verdicts, sites)
    for _ in range(3):
        _app_code(counted.record)
    _app_code(counted.record, line=1)
    for _ in range(2):
        _test_code(counted.record)
    assert counted.measurements == 6
    assert counted.production == 4
    assert judge.judged == ["_app_code", "_wrapper", "_test_code"]  # each code judged once
    codes = {_app_code.__code__: APP, _test_code.__code__: TEST}
    assert {code: verdicts[id(code)] for code in codes} == codes
    named = sorted((code_id == id(_app_code.__code__), offset) for code_id, offset in sites)
    assert len(named) == 3  # two lines of the app's function, one of the test's
    assert [is_app for is_app, _ in named] == [False, True, True]


def test_no_judge_no_attribution(make: Callable[..., Tally]) -> None:
    sites: set[tuple[int, int]] = set()
    counted = make(None, Keeper(), {}, sites)
    _app_code(counted.record)
    assert sites == set()
    assert counted.production == 0


def test_the_c_tally_holds_no_memory_per_measurement() -> None:
    verdicts: dict[int, int] = {}
    judge = Judge(verdicts, {"_app_code": APP})
    counted = _tally.Tally(judge, Keeper(), verdicts, set())
    attributes = {"route": "/a", "status": 200}
    code = _app_code.__code__
    for _ in range(100):
        _app_code(counted.record)
        counted.record(1, dict(attributes))
    references = sys.getrefcount(code), sys.getrefcount(attributes["route"])
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    for _ in range(20_000):
        _app_code(counted.record)
        counted.record(1, dict(attributes))
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown < 20_000  # bytes, for 40,000 measurements
    assert (sys.getrefcount(code), sys.getrefcount(attributes["route"])) == references
    assert counted.measurements == 40_200


def test_the_compiled_tally_counts_and_a_declaration_records_into_it_directly() -> None:
    """The C tally is built (no compiler here would be a broken dev setup, not a skip) and
    is what instruments record into; after its first measurement a declaration's ``add``
    is the tally's own, one Python call less per measurement."""
    provider = capture.CapturingMeterProvider()
    declared = Counter("tally.test.requests", labels=["route"])
    declared.bind(provider)
    with provider.capturing() as captured:
        declared.add(1, {"route": "/a"})  # creates the instrument, through the class method
        (instrument,) = captured.instruments
        assert type(instrument.tally) is _tally.Tally
        assert declared.add == instrument.tally.record
        declared.add(1, {"route": "/b"})
        declared.bind(provider)
        assert "add" not in vars(declared)  # bound anew: the next add creates again
    assert instrument.tally.measurements == 2


def test_the_c_tally_holds_under_threads_whose_keep_lets_others_run() -> None:
    """``keep`` is Python code, so another thread may record while it runs: counts stay
    exact under the GIL, and every combination is asked about."""
    asked: list[tuple[int, int]] = []

    def keep(attributes: Mapping[str, Any]) -> bool:
        time.sleep(0)  # hand the GIL to another thread mid-call
        asked.append((attributes["a"], attributes["b"]))
        return True

    counted = _tally.Tally(None, keep, {}, set())

    def work(offset: int) -> None:
        for i in range(500):
            counted.record(1, {"a": (i + offset) % 10, "b": (i + offset) % 5})

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counted.measurements == 2000
    assert set(asked) == {(a, a % 5) for a in range(10)}
