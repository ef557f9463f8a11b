"""Recording: what dashgen's provider counts of the app's measurements, what the real exporter
makes of them, and the recording file (format, merging, determinism, bad input)."""

from __future__ import annotations

import dataclasses
import json
import logging
import random
import sys
import sysconfig
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

import pytest
from opentelemetry.metrics import CallbackOptions, Observation
from prometheus_client.metrics_core import Metric

from dashgen import Counter, Histogram, ObservableGauge
from dashgen.errors import DashgenError
from dashgen.hints import Kind
from dashgen.record import replay
from dashgen.record.capture import Capture, CapturingMeterProvider, Snapshot
from dashgen.record.recording import (
    ExportedInstrument,
    RecordedFamily,
    RecordedInstrument,
    from_entry,
    from_snapshot,
    merge,
    project_path,
    read_recording,
    to_entry,
    write_recording,
)
from dashgen.record.replay import export_recorded
from tests.conftest import REPO

HERE = Path(__file__).resolve().relative_to(REPO).as_posix()


def line() -> int:
    """The caller's line number, to name the site an instrument must report."""
    return sys._getframe(1).f_lineno


@pytest.fixture
def provider() -> CapturingMeterProvider:
    """A capturing provider that is not the global one: tests need no process of their own."""
    return CapturingMeterProvider()


@pytest.fixture
def capture(provider: CapturingMeterProvider) -> Iterator[Capture]:
    with provider.capturing() as session:
        yield session


def exported(capture: Capture) -> replay.CaptureExport:
    """What the capture saw, as the recording file keeps it, named by the real exporter."""
    return export_recorded([from_snapshot(s, REPO) for s in capture.snapshots()])


def by_name(capture: Capture) -> dict[str, ExportedInstrument]:
    return {i.instrument.name: i for i in exported(capture).instruments}


def add_orders(counter: Counter) -> None:
    """Somewhere else in the app: the first caller, which must not become the site."""
    counter.add(1, {"payment.method": "card"})


def test_a_declarations_site_is_the_declaration_not_its_first_caller(
    provider: CapturingMeterProvider, capture: Capture
) -> None:
    declared_at = line() + 1
    orders = Counter("shop.orders", labels=["payment.method"])
    orders.bind(provider)
    add_orders(orders)
    assert by_name(capture)["shop.orders"].instrument.site == f"{HERE}:{declared_at}"


def test_plain_otel_site_is_where_the_app_creates_the_instrument(
    provider: CapturingMeterProvider, capture: Capture
) -> None:
    meter = provider.get_meter("shop", "1.0")
    created_at = line() + 1
    meter.create_histogram("shop.checkout.duration", unit="s")
    found = by_name(capture)["shop.checkout.duration"].instrument
    assert found.site == f"{HERE}:{created_at}"
    assert (found.scope, found.kind, found.unit) == ("shop", Kind.HISTOGRAM, "s")


def test_the_apps_measurements_count_and_dashgens_trigger_does_not(
    provider: CapturingMeterProvider, capture: Capture
) -> None:
    meter = provider.get_meter("shop")
    orders = meter.create_counter("shop.orders", unit="{order}")
    orders.add(1, {"payment.method": "card"})
    orders.add(2, {"payment.method": "cash", "shop.region": "eu"})
    orders.add(1, {"shop.region": "eu", "payment.method": "card"})
    meter.create_counter("shop.refunds", unit="{refund}")
    found = by_name(capture)
    recorded = found["shop.orders"].instrument
    assert (recorded.measurements, recorded.recorded) == (3, True)
    assert recorded.attribute_keys == ("payment.method", "shop.region")
    assert recorded.values == {"payment.method": ("card", "cash"), "shop.region": ("eu",)}
    refunds = found["shop.refunds"].instrument
    assert (refunds.measurements, refunds.recorded, refunds.attribute_keys) == (0, False, ())
    # dashgen triggered it, so the exporter names it, but that proves no label set.
    assert found["shop.refunds"].exported == RecordedFamily(
        family="shop_refunds", type="counter", samples=("shop_refunds_total",), labels=None
    )


def test_names_and_labels_come_from_the_exporter_and_the_apps_attributes(
    provider: CapturingMeterProvider, capture: Capture
) -> None:
    duration = Histogram("http.server.request.duration", unit="s", labels=["http.route"])
    duration.bind(provider)
    duration.record(0.2, {"http.route": "/orders"})
    exported = by_name(capture)["http.server.request.duration"].exported
    assert exported is not None
    assert exported.family == "http_server_request_duration_seconds"
    assert exported.type == "histogram"
    assert exported.samples == tuple(
        f"http_server_request_duration_seconds_{s}" for s in ("bucket", "count", "sum")
    )
    assert exported.labels is not None
    assert {"http_route", "le", "otel_scope_name"} <= set(exported.labels)
    assert "http.route" not in exported.labels


def test_observables_count_what_their_callbacks_observe(
    provider: CapturingMeterProvider, capture: Capture, caplog: pytest.LogCaptureFixture
) -> None:
    queues: dict[str, int] = {}
    depth = ObservableGauge("worker.queue.depth", labels=["queue"])

    @depth.observe
    def observe(_: CallbackOptions) -> list[Observation]:
        return [Observation(size, {"queue": name}) for name, size in queues.items()]

    def generator() -> Generator[list[Observation], CallbackOptions, None]:
        while True:
            yield [Observation(1)]

    def broken(_: CallbackOptions) -> list[Observation]:
        raise ConnectionError("broker gone")

    depth.start(provider)
    meter = provider.get_meter("worker")
    meter.create_observable_counter("worker.ticks", callbacks=[generator()])
    meter.create_observable_gauge("worker.lag", callbacks=[broken])
    capture.observe()  # no queue yet: nothing observed
    queues.update(default=3, bulk=0)
    with caplog.at_level(logging.ERROR):
        capture.observe()
    assert "worker.lag" in caplog.text
    found = {name: item.instrument for name, item in by_name(capture).items()}
    assert (found["worker.queue.depth"].measurements, found["worker.ticks"].measurements) == (2, 2)
    assert found["worker.queue.depth"].attribute_keys == ("queue",)
    assert not found["worker.lag"].recorded
    exported = by_name(capture)["worker.queue.depth"].exported
    assert exported.labels is not None
    assert "queue" in exported.labels


def test_the_same_instrument_created_twice_at_one_site_is_one_entry(
    provider: CapturingMeterProvider, capture: Capture
) -> None:
    for amount in (1, 2):
        meter = provider.get_meter("jobs")
        meter.create_counter("jobs.done").add(amount, {"job": "a"})
    (entry,) = exported(capture).instruments
    assert entry.instrument.measurements == 2


def test_instruments_the_exporter_merges_keep_their_own_labels(
    provider: CapturingMeterProvider, capture: Capture
) -> None:
    """Two instruments under one name export one family; each keeps its own labels."""
    by_queue = provider.get_meter("queues").create_counter("jobs.done")
    by_worker = provider.get_meter("workers").create_counter("jobs.done")
    by_queue.add(1, {"queue": "bulk"})
    by_worker.add(1, {"worker.id": "7"})
    export = exported(capture)
    labels = {i.instrument.scope: i.exported.labels for i in export.instruments}
    assert labels["queues"] is not None
    assert labels["workers"] is not None
    assert ("queue" in labels["queues"], "worker_id" in labels["queues"]) == (True, False)
    assert ("queue" in labels["workers"], "worker_id" in labels["workers"]) == (False, True)
    (family,) = [f for f in export.families if f.name == "jobs_done"]
    assert family.source.count(HERE) == 2


def test_one_instrument_from_several_processes_is_one_entry(
    provider: CapturingMeterProvider, capture: Capture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What pytest-xdist workers send: snapshots of the same instrument, each partial. They
    are replayed as one, so that n workers do not cost n pipelines per instrument."""
    provider.get_meter("jobs").create_counter("jobs.done").add(1, {"queue": "bulk"})
    (first,) = capture.snapshots()
    second = dataclasses.replace(first, measurements=4, attribute_sets=({"worker.id": "7"},))
    pipelines: list[Sequence[RecordedInstrument]] = []
    collect = replay._collect

    def counted(instruments: Sequence[RecordedInstrument]) -> list[Metric]:
        pipelines.append(instruments)
        return collect(instruments)

    monkeypatch.setattr(replay, "_collect", counted)
    parts = [from_snapshot(s, REPO) for s in (first, Snapshot.from_json(second.to_json()))]
    (entry,) = export_recorded(parts).instruments
    assert len(pipelines) == 1
    assert (entry.instrument.measurements, entry.instrument.attribute_keys) == (
        5,
        ("queue", "worker.id"),
    )
    assert entry.exported.labels is not None
    assert {"queue", "worker_id"} <= set(entry.exported.labels)


def test_without_a_capture_the_instruments_are_no_ops(provider: CapturingMeterProvider) -> None:
    """After an --instruments check in the app's own process, the app must keep working."""
    meter = provider.get_meter("late")
    meter.create_counter("late.orders").add(1, {"payment.method": "card"})
    meter.create_histogram("late.duration").record(0.1)
    meter.create_observable_gauge("late.depth", callbacks=[lambda options: []])
    with provider.capturing() as capture:
        meter.create_gauge("late.level").set(3)
    assert [i.name for i in capture.instruments] == ["late.level"]


def test_a_name_the_sdk_rejects_is_an_error_at_its_site(
    provider: CapturingMeterProvider, capture: Capture
) -> None:
    """Production would fail where the app creates it; the report says where that is."""
    created_at = line() + 1
    provider.get_meter("shop").create_counter("2fast")
    with pytest.raises(DashgenError, match=f"{HERE}:{created_at}: .*rejects '2fast'"):
        exported(capture)


def entry(
    name: str, measurements: int, site: str = "app.py:1", **extra: object
) -> dict[str, object]:
    document: dict[str, object] = {
        "attribute_keys": ["key"] if measurements else [],
        "kind": "Counter",
        "measurements": measurements,
        "name": name,
        "production": measurements,
        "production_sites": ["app/service.py:3"] if measurements else [],
        "recorded": measurements > 0,
        "scope": "app",
        "site": site,
        "test_sites": [],
        "unit": "",
        "values": {"key": ["v"]} if measurements else {},
    }
    document.update(extra)
    return document


def test_the_file_is_sorted_and_the_same_whatever_the_order_of_creation(tmp_path: Path) -> None:
    items = [from_entry(entry(name, n)) for name, n in [("b.x", 1), ("a.x", 0), ("c.x", 5)]]
    shuffled = items[:]
    random.Random(7).shuffle(shuffled)
    write_recording(tmp_path / "one/recorded.json", items)
    write_recording(tmp_path / "two/recorded.json", shuffled)
    text = (tmp_path / "one/recorded.json").read_text()
    assert text == (tmp_path / "two/recorded.json").read_text()
    assert text.endswith("}\n")
    document = json.loads(text)
    assert [i["name"] for i in document["instruments"]] == ["a.x", "b.x", "c.x"]
    assert document["version"] == 2
    assert read_recording(tmp_path / "one/recorded.json") == merge(items)
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["recorded.json"]


def test_parts_of_one_instrument_merge(tmp_path: Path) -> None:
    """How xdist workers' recordings add up: counts sum, keys, sites and values unite, the
    bounded ones keeping the first in sorted order whatever the order of the parts."""
    first = from_entry(
        entry("jobs.done", 2, attribute_keys=["job"], values={"job": ["b", "a", "c"]})
    )
    second = from_entry(
        entry(
            "jobs.done",
            3,
            attribute_keys=["queue"],
            values={"job": ["f", "e", "d"], "queue": [1]},
            production=0,
            test_sites=["tests/test_jobs.py:8"],
        )
    )
    unrecorded = from_entry(entry("jobs.done", 0, production=None))
    other_site = from_entry(entry("jobs.done", 1, site="other.py:9"))
    merged = merge([first, unrecorded, second, other_site])
    assert merged == merge([other_site, second, unrecorded, first])
    assert [(m.site, m.measurements, m.production) for m in merged] == [
        ("app.py:1", 5, 2),
        ("other.py:9", 1, 1),
    ]
    assert merged[0].attribute_keys == ("job", "queue")
    assert merged[0].values == {"job": ("a", "b", "c", "d", "e"), "queue": (1,)}
    assert merged[0].test_sites == ("tests/test_jobs.py:8",)
    assert merge([unrecorded, unrecorded])[0].production is None
    assert to_entry(merge([first, second])[0])["recorded"] is True
    assert from_entry(to_entry(first)) == first


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "cannot read the recording"),
        ('{"version": 3, "instruments": []}', "format version 2"),
        ('{"version": 1, "instruments": []}', "older dashgen's: run `pytest --dashgen-record`"),
        ("[]", "format version 2"),
        ('{"version": 2}', "malformed recording entry"),
        (json.dumps({"version": 2, "instruments": [entry("a", -1)]}), "measurements"),
        (json.dumps({"version": 2, "instruments": [entry("a", 1, production=True)]}), "count"),
        (json.dumps({"version": 2, "instruments": [entry("a", 1, kind="Timer")]}), "Timer"),
        (json.dumps({"version": 2, "instruments": [{**entry("a", 1), "site": 3}]}), "string"),
        (json.dumps({"version": 2, "instruments": [entry("a", 1, values=["v"])]}), "values"),
    ],
)
def test_a_broken_recording_is_an_input_error_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "recorded.json"
    path.write_text(text)
    with pytest.raises(DashgenError, match=message) as raised:
        read_recording(path)
    assert str(path) in str(raised.value)


def test_a_missing_recording_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(DashgenError, match="pytest --dashgen-record"):
        read_recording(tmp_path / "recorded.json")


def test_sites_read_the_same_on_every_machine(tmp_path: Path) -> None:
    library = Path(sysconfig.get_paths()["purelib"]) / "otel_lib/instrument.py"
    assert project_path(str(tmp_path / "app/metrics.py"), tmp_path) == "app/metrics.py"
    assert project_path(str(library), tmp_path) == "otel_lib/instrument.py"
    assert project_path("/elsewhere/app.py", tmp_path) == "app.py"
