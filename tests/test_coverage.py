"""`dashgen verify --recorded` and `dashgen coverage`: a recording against the declarations
and the dashboards, through the real CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from dashgen.hints import Kind
from dashgen.record.recording import RecordedInstrument, write_recording
from tests.conftest import Project

SHOP = """\
from dashgen import Counter, Dashboard, Row, hints

ORDERS = Counter(
    "shop.orders",
    unit="{order}",
    labels=["payment.method"],
    hint=hints.Rate(title="Orders", by=("payment.method",)),
)
REFUNDS = Counter("shop.refunds", unit="{refund}", hint=hints.Rate(title="Refunds"))
AUDIT = Counter("shop.audit", exclude="read by the compliance export, not by people")
DASHBOARD = Dashboard("Shop", rows=[Row("Sales", [ORDERS, REFUNDS])])
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


SITES = {
    name: f"src/shop.py:{line_of(SHOP, variable)}"
    for name, variable in [
        ("shop.orders", "ORDERS ="),
        ("shop.refunds", "REFUNDS ="),
        ("shop.audit", "AUDIT ="),
    ]
}
UNITS = {"shop.orders": "{order}", "shop.refunds": "{refund}", "shop.audit": ""}


def counter(
    name: str, unit: str, scope: str, site: str, measurements: int, *keys: str
) -> RecordedInstrument:
    """A counter of a test run as the pytest plugin records it."""
    return RecordedInstrument(
        name=name,
        kind=Kind.COUNTER,
        unit=unit,
        scope=scope,
        site=site,
        measurements=measurements,
        attribute_keys=keys,
        values={key: ("value",) for key in keys},
    )


def run(name: str, measurements: int, *keys: str, unit: str | None = None) -> RecordedInstrument:
    """One of the shop's declarations in a test run."""
    unit = UNITS[name] if unit is None else unit
    return counter(name, unit, "dashgen", SITES[name], measurements, *keys)


ALL_RECORDED = (
    run("shop.orders", 12, "payment.method"),
    run("shop.refunds", 2),
    run("shop.audit", 1),
)


def configure(project: Project, extra: str = "") -> None:
    """``[tool.dashgen]`` for the shop; verify needs the off-dashboard family excluded too."""
    project.write(
        "pyproject.toml",
        f'[tool.dashgen]\nsources = "src"\n{extra}\n'
        '[tool.dashgen.exclude]\nshop_audit = "read by the compliance export"\n',
    )


@pytest.fixture
def shop(project: Project) -> Project:
    configure(project)
    project.source("shop.py", SHOP)
    assert project.run("build").exit_code == 0
    return project


def record(project: Project, *instruments: RecordedInstrument) -> str:
    path = project.root / ".dashgen/recorded.json"
    write_recording(path, instruments)
    return str(path)


def verify(project: Project, *args: str) -> tuple[int, dict[str, Any]]:
    result = project.run("verify", *args, "--format", "json")
    assert result.exit_code != 2, result.stderr
    return result.exit_code, json.loads(result.stdout)


def only(report: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [f for f in report["findings"] if f["kind"] == kind]


def test_a_run_that_records_everything_declared_is_clean(shop: Project) -> None:
    code, report = verify(shop, "--recorded", record(shop, *ALL_RECORDED))
    assert (code, report["findings"]) == (0, [])


def test_a_panel_of_a_metric_the_run_never_recorded_is_dead(shop: Project) -> None:
    recording = record(shop, ALL_RECORDED[0], run("shop.refunds", 0), ALL_RECORDED[2])
    code, report = verify(shop, "--recorded", recording)
    assert code == 1
    (dead,) = only(report, "dead-panel")
    assert (dead["file"], dead["panel"], dead["ref_id"]) == ("generated/shop.json", "Refunds", "A")
    assert dead["subject"] == "shop_refunds_total"
    assert SITES["shop.refunds"] in dead["message"]
    assert "created but never recorded" in dead["message"]
    assert "shop.refunds" in dead["hint"]
    (instrument,) = only(report, "dead-instrument")
    assert instrument["subject"] == "shop.refunds"
    assert "created, 0 measurements" in instrument["message"]
    assert "[tool.dashgen.unrecorded]" in instrument["hint"]
    # The same code and dashboards without the recording: every name check passes.
    code, report = verify(shop)
    assert (code, report["findings"]) == (0, [])


def test_a_panel_on_a_metric_only_tests_record_is_dead_and_names_the_test(shop: Project) -> None:
    """The dead panel a unit test hid: the run recorded it, but no production code did."""
    hidden = replace(run("shop.refunds", 3), production=0, test_sites=("tests/test_metrics.py:14",))
    code, report = verify(
        shop, "--recorded", record(shop, ALL_RECORDED[0], hidden, ALL_RECORDED[2])
    )
    assert code == 1
    (dead,) = only(report, "dead-panel")
    assert (dead["panel"], dead["subject"]) == ("Refunds", "shop_refunds_total")
    assert (
        "recorded only by tests calling it directly (tests/test_metrics.py:14)" in dead["message"]
    )
    (instrument,) = only(report, "dead-instrument")
    assert (
        "never recorded by production code (only tests record it: tests/test_metrics.py:14)"
        in (instrument["message"])
    )
    result = shop.run("coverage", "--recorded", str(shop.root / ".dashgen/recorded.json"))
    assert row(result.stdout.splitlines(), "shop.refunds")[2:6] == ["0", "3", "-", "test-only"]
    # A recording made without attribution (production unknown) counts all as production.
    code, report = verify(shop, "--recorded", record(shop, *ALL_RECORDED))
    assert (code, report["findings"]) == (0, [])


def test_a_declaration_the_run_never_created_is_dead_too(shop: Project) -> None:
    code, report = verify(shop, "--recorded", record(shop, *ALL_RECORDED[1:]))
    assert code == 1
    (dead,) = only(report, "dead-panel")
    assert (dead["panel"], dead["subject"]) == ("Orders", "shop_orders_total")
    assert "never created" in dead["message"]
    assert "never created" in only(report, "dead-instrument")[0]["message"]


def test_an_instrument_excused_in_config_is_no_finding_but_its_panel_stays_dead(
    shop: Project,
) -> None:
    configure(
        shop,
        """
        [tool.dashgen.unrecorded]
        "shop.audit" = "written only by the nightly compliance job"
        "shop.refunds" = "refunds go through the payment provider's sandbox"
        "shop.orders" = "left over"
        "shop.gone" = "deleted last year"
        """,
    )
    recording = record(shop, run("shop.orders", 3, "payment.method"))
    code, report = verify(shop, "--recorded", recording)
    assert code == 1
    assert {(f["kind"], f["subject"]) for f in report["findings"]} == {
        ("dead-panel", "shop_refunds_total")
    }
    info = "\n".join(report["info"])
    assert "`shop.orders` is excluded as unrecorded (left over) but was recorded" in info
    assert "`shop.gone` matches no instrument" in info


def test_an_exclusion_needs_a_reason(shop: Project) -> None:
    configure(shop, '[tool.dashgen.unrecorded]\n"shop.audit" = " "')
    result = shop.run("verify", "--recorded", record(shop, *ALL_RECORDED))
    assert result.exit_code == 2
    assert "shop.audit" in result.stderr


def test_recorded_attribute_keys_must_match_the_declared_labels(shop: Project) -> None:
    recording = record(
        shop,
        run("shop.orders", 5, "payment.method", "customer.id"),
        run("shop.refunds", 1, "refund.reason"),
        ALL_RECORDED[2],
    )
    code, report = verify(shop, "--recorded", recording)
    assert code == 1
    found = {(f["kind"], f["subject"]) for f in report["findings"]}
    assert found == {("undeclared-label", "customer.id"), ("undeclared-label", "refund.reason")}
    message = only(report, "undeclared-label")[0]["message"]
    assert "`shop.orders`" in message
    assert "labels: payment.method" in message

    recording = record(shop, run("shop.orders", 5), *ALL_RECORDED[1:])
    code, report = verify(shop, "--recorded", recording)
    (unrecorded,) = report["findings"]
    assert (code, unrecorded["kind"], unrecorded["subject"]) == (
        1,
        "unrecorded-label",
        "payment.method",
    )
    assert "empty value" in unrecorded["hint"]


def test_a_stale_recording_is_noted_and_proves_nothing(shop: Project) -> None:
    recording = record(shop, run("shop.orders", 5, "payment.method", unit="1"), *ALL_RECORDED[1:])
    code, report = verify(shop, "--recorded", recording)
    assert code == 1
    assert {f["kind"] for f in report["findings"]} == {"dead-panel", "dead-instrument"}
    assert any("record again" in line for line in report["info"])


def test_the_recording_can_come_from_config(shop: Project) -> None:
    configure(shop, 'recorded = "ci/recorded.json"')
    missing = shop.run("verify")
    assert missing.exit_code == 2
    assert "ci/recorded.json" in missing.stderr
    assert "pytest --dashgen-record" in missing.stderr
    write_recording(shop.root / "ci/recorded.json", [run("shop.orders", 1, "payment.method")])
    code, report = verify(shop)
    assert code == 1
    assert {f["subject"] for f in only(report, "dead-instrument")} == {"shop.refunds", "shop.audit"}


def coverage(project: Project, *args: str) -> tuple[int, list[str]]:
    result = project.run("coverage", *args)
    return result.exit_code, result.stdout.splitlines()


def row(lines: list[str], name: str) -> list[str]:
    """A table row's cells (columns are two or more spaces apart)."""
    found = next(line for line in lines if line.startswith(f"{name} "))
    return [cell.strip() for cell in found.split("  ") if cell.strip()]


def test_coverage_reports_each_instrument_and_the_share_recorded(shop: Project) -> None:
    orders = replace(run("shop.orders", 12, "payment.method"), production=9)
    recording = record(shop, orders, run("shop.audit", 0))
    code, lines = coverage(shop, "--recorded", recording)
    assert code == 0
    assert lines[0].split() == [
        "Instrument",
        "Kind",
        "Production",
        "Tests",
        "Label",
        "keys",
        "Status",
        "Panels",
    ]
    assert row(lines, "shop.orders") == [
        "shop.orders",
        "Counter",
        "9",
        "3",
        "payment.method",
        "recorded",
        "Shop: Orders",
    ]
    assert row(lines, "shop.refunds") == [
        "shop.refunds",
        "Counter",
        "0",
        "0",
        "-",
        "dead",
        "Shop: Refunds",
    ]
    assert row(lines, "shop.audit") == ["shop.audit", "Counter", "0", "0", "-", "dead", "-"]
    assert row(lines, "TOTAL") == ["TOTAL", "9", "3", "33%"]
    assert "1 of 3 instruments recorded" in lines


@pytest.mark.parametrize(("fail_under", "exit_code"), [("66", 0), ("66.7", 1), ("100", 1)])
def test_coverage_fails_under_a_threshold(shop: Project, fail_under: str, exit_code: int) -> None:
    recording = record(shop, *ALL_RECORDED[:2], run("shop.audit", 0))
    code, lines = coverage(shop, "--recorded", recording, "--fail-under", fail_under)
    assert code == exit_code
    assert ("coverage failure: 66.67% of instruments recorded" in lines[-1]) == bool(exit_code)


def test_coverage_leaves_excused_instruments_out_of_the_share(shop: Project) -> None:
    configure(shop, '[tool.dashgen.unrecorded]\n"shop.audit" = "nightly"')
    recording = record(shop, *ALL_RECORDED[:2])
    code, lines = coverage(shop, "--recorded", recording, "--fail-under", "100")
    assert code == 0
    assert row(lines, "shop.audit")[-2:] == ["excluded", "-"]
    assert "2 of 2 instruments recorded, 1 excluded under [tool.dashgen.unrecorded]" in lines


def test_coverage_of_a_recording_alone(project: Project) -> None:
    """No dashgen sources and no --instruments: the recording's own instruments."""
    project.write(
        "generated/app.json",
        json.dumps(
            {"title": "App", "panels": [{"title": "Jobs", "targets": [{"expr": "app_jobs_total"}]}]}
        ),
    )
    write_recording(
        project.root / ".dashgen/recorded.json",
        [
            counter("app.jobs", "", "app", "app.py:3", 4, "q"),
            counter("app.lag", "", "app", "app.py:4", 0),
        ],
    )
    code, lines = coverage(project)
    assert code == 0
    assert row(lines, "app.jobs") == ["app.jobs", "Counter", "4", "0", "q", "recorded", "App: Jobs"]
    assert row(lines, "app.lag")[5:] == ["dead", "-"]
    assert row(lines, "TOTAL")[-1] == "50%"


def test_coverage_of_a_recording_file_without_an_output_dir(project: Project) -> None:
    """Adoption projects have no generated/: the recording's instruments, no panels."""
    recording = project.root / "run" / "recorded.json"
    write_recording(recording, [counter("app.jobs", "", "app", "app.py:3", 4, "q")])
    result = project.run("coverage", "--recorded", str(recording))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert row(lines, "app.jobs") == ["app.jobs", "Counter", "4", "0", "q", "recorded", "-"]
    missing = project.run("coverage", str(project.root / "nope"), "--recorded", str(recording))
    assert (missing.exit_code, missing.stderr.count("\n")) == (2, 1)
    assert "dashboards dir not found" in missing.stderr


def test_coverage_notes_what_the_code_does_not_declare(shop: Project) -> None:
    stranger = counter("requests.client", "", "lib", "lib/client.py:8", 3)
    code, lines = coverage(shop, "--recorded", record(shop, *ALL_RECORDED, stranger))
    assert code == 0
    assert row(lines, "requests.client")[5] == "recorded"
    assert any("`requests.client` (lib/client.py:8) is not in the code checked" in x for x in lines)


def test_coverage_without_a_recording_is_an_input_error(shop: Project) -> None:
    result = shop.run("coverage")
    assert result.exit_code == 2
    assert ".dashgen/recorded.json" in result.stderr


def test_the_default_recording_path_is_the_plugins(shop: Project) -> None:
    record(shop, *ALL_RECORDED)
    code, lines = coverage(shop, "--fail-under", "100")
    assert code == 0
    assert row(lines, "TOTAL")[-1] == "100%"


def test_live_feeds_the_label_values_the_run_recorded(shop: Project) -> None:
    """A hand-written panel filters on a real value the declaration does not list: the live
    check's synthetic values miss it, the recorded ones find it (a real Prometheus)."""
    panels = [
        {"title": "Card orders", "targets": [{"expr": ORDERS_BY_CARD, "refId": "A"}]},
        {"title": "Refunds", "targets": [{"expr": "sum(rate(shop_refunds_total[5m]))"}]},
    ]
    shop.write("handwritten/shop.json", json.dumps({"title": "Shop", "panels": panels}))
    card = replace(run("shop.orders", 12, "payment.method"), values={"payment.method": ("card",)})
    recording = record(shop, card, *ALL_RECORDED[1:])
    code, report = verify(shop, str(shop.root / "handwritten"), "--live")
    assert code == 1
    assert [(f["kind"], f["panel"]) for f in report["live"]["findings"]] == [
        ("no-data", "Card orders")
    ]
    code, report = verify(shop, str(shop.root / "handwritten"), "--live", "--recorded", recording)
    assert (code, report["live"]["findings"]) == (0, [])
    assert report["live"]["with_data"] == 2


ORDERS_BY_CARD = 'sum(rate(shop_orders_total{payment_method="card"}[5m]))'


def test_the_baseline_takes_recording_findings_too(shop: Project) -> None:
    """Adopting on a codebase with many never-recorded instruments: known ones go into the
    baseline, and a new dead instrument still fails."""
    baseline = str(shop.root / "baseline.json")
    recording = record(shop, ALL_RECORDED[0], run("shop.refunds", 0), ALL_RECORDED[2])
    result = shop.run("verify", "--recorded", recording, "--write-baseline", baseline)
    assert result.exit_code == 0, result.stderr
    code, report = verify(shop, "--recorded", recording, "--baseline", baseline)
    assert (code, report["findings"]) == (0, [])
    recording = record(shop, run("shop.orders", 0), run("shop.refunds", 0), ALL_RECORDED[2])
    code, report = verify(shop, "--recorded", recording, "--baseline", baseline)
    assert code == 1
    assert {(f["kind"], f["subject"]) for f in report["findings"]} == {
        ("dead-instrument", "shop.orders"),
        ("dead-panel", "shop_orders_total"),
    }


def test_the_report_counts_first_and_groups_instrument_findings_by_module(shop: Project) -> None:
    recording = record(shop, run("shop.orders", 0), run("shop.refunds", 0), ALL_RECORDED[2])
    result = shop.run("verify", "--recorded", recording)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0] == "4 findings: 2 dead-instrument, 2 dead-panel"
    header = lines.index("exported by src/shop.py")
    assert [x.split()[0] for x in lines[header + 1 :: 2][:2]] == ["dead-instrument"] * 2


def test_coverage_takes_the_dashboards_dir_as_verify_does(shop: Project) -> None:
    recording = record(shop, *ALL_RECORDED)
    shown = coverage(shop, str(shop.generated), "--recorded", recording)
    assert shown == coverage(shop, "--recorded", recording)
    misplaced = shop.run("coverage", recording)
    assert misplaced.exit_code == 2
    assert "is a file: coverage takes the dashboards dir, as verify does; pass the recording " in (
        misplaced.stderr
    )
