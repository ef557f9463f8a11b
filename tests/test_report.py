"""The verify report: human text grouped by dashboard and panel, and the JSON schema."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from dashgen.verify.contract import (
    UNKNOWN_LABEL,
    UNKNOWN_METRIC,
    UNPANELLED_FAMILY,
    Finding,
    VerifyResult,
)
from dashgen.verify.report import JSON_VERSION, render_human, to_json

DOCS = Path(__file__).resolve().parents[1] / "docs" / "verify-json.md"


def finding(kind: str, file: str, panel: str, ref_id: str, subject: str) -> Finding:
    return Finding(
        kind=kind,
        file=file,
        dashboard=f"Title of {file}" if file else "",
        panel=panel,
        ref_id=ref_id,
        subject=subject,
        message=f"message about {subject}",
        hint=f"hint for {subject}",
    )


FINDINGS = (
    finding(UNPANELLED_FAMILY, "", "", "", "queue_depth"),
    finding(UNKNOWN_METRIC, "a.json", "Latency", "A", "x_milliseconds_bucket"),
    finding(UNKNOWN_LABEL, "a.json", "Latency", "B", "route"),
    finding(UNKNOWN_METRIC, "a.json", "Rate", "A", "rate(x[5m])"),
    finding(UNKNOWN_METRIC, "b.json", "Memory", "A", "mem_used"),
)


def result(findings: tuple[Finding, ...] = FINDINGS, info: tuple[str, ...] = ()) -> VerifyResult:
    return VerifyResult(
        findings=findings,
        dashboards=2,
        targets=7,
        parsed=5,
        skipped=2,
        skipped_reasons={"datasource loki": 1, "no expression": 1},
        info=info,
    )


def human(verify_result: VerifyResult, styles: bool = False) -> str:
    console = Console(record=True, width=120)
    render_human(verify_result, console)
    return console.export_text(styles=styles)


def test_clean_result_is_one_green_ok_line() -> None:
    clean = result(findings=())
    assert human(clean) == (
        "ok: 2 dashboards, 7 targets, 5 parsed, "
        "2 skipped (datasource loki: 1, no expression: 1), no findings\n"
    )
    assert "\x1b[1;32mok:" in human(clean, styles=True)


def test_findings_are_grouped_by_file_then_panel_with_fixes() -> None:
    lines = human(result()).splitlines()
    assert lines == [
        "5 findings: 3 unknown-metric, 1 unknown-label, 1 unpanelled-family",
        "a.json  Title of a.json",
        '  panel "Latency"',
        "    A unknown-metric x_milliseconds_bucket: message about x_milliseconds_bucket",
        "      fix: hint for x_milliseconds_bucket",
        "    B unknown-label route: message about route",
        "      fix: hint for route",
        '  panel "Rate"',
        "    A unknown-metric rate(x[5m]): message about rate(x[5m])",
        "      fix: hint for rate(x[5m])",
        "b.json  Title of b.json",
        '  panel "Memory"',
        "    A unknown-metric mem_used: message about mem_used",
        "      fix: hint for mem_used",
        "exported families",
        "  unpanelled-family queue_depth: message about queue_depth",
        "    fix: hint for queue_depth",
        "5 findings: 2 dashboards, 7 targets, 5 parsed, "
        "2 skipped (datasource loki: 1, no expression: 1)",
    ]
    assert "\x1b[1;31m5 findings" in human(result(), styles=True)


def test_long_lines_are_not_wrapped() -> None:
    long_name = "a_" * 80 + "total"
    text = human(result(findings=(finding(UNKNOWN_METRIC, "a.json", "P", "A", long_name),)))
    assert f"A unknown-metric {long_name}: message about {long_name}\n" in text


def test_info_lines_are_printed_as_notes_before_the_summary() -> None:
    text = human(result(findings=(), info=("label set unknown for family `x`",)))
    assert text.splitlines()[0] == "note: label set unknown for family `x`"
    assert text.splitlines()[1].startswith("ok: ")


def test_singular_counts() -> None:
    one = VerifyResult(
        findings=FINDINGS[:1],
        dashboards=1,
        targets=1,
        parsed=1,
        skipped=0,
        skipped_reasons={},
        info=(),
    )
    assert human(one).splitlines()[-1] == "1 finding: 1 dashboard, 1 target, 1 parsed, 0 skipped"


def assert_types(value: Any, expected: dict[str, type]) -> None:
    assert isinstance(value, dict)
    assert set(value) == set(expected)
    for key, kind in expected.items():
        assert type(value[key]) is kind, key


def test_json_schema_keys_and_types() -> None:
    document = json.loads(to_json(result(info=("a note",))))
    assert_types(document, {"version": int, "summary": dict, "findings": list, "info": list})
    assert document["version"] == JSON_VERSION == 1
    assert_types(
        document["summary"],
        {
            "ok": bool,
            "dashboards": int,
            "rule_groups": int,
            "targets": int,
            "parsed": int,
            "skipped": int,
            "skipped_reasons": dict,
            "findings": int,
            "by_kind": dict,
        },
    )
    summary = document["summary"]
    assert summary["ok"] is False
    assert summary["findings"] == 5
    assert summary["skipped_reasons"] == {"datasource loki": 1, "no expression": 1}
    assert summary["by_kind"] == {UNKNOWN_METRIC: 3, UNKNOWN_LABEL: 1, UNPANELLED_FAMILY: 1}
    keys = (
        "kind",
        "file",
        "dashboard",
        "panel",
        "ref_id",
        "subject",
        "message",
        "hint",
        "place",
        "source",
    )
    for item in document["findings"]:
        assert_types(item, dict.fromkeys(keys, str))
    assert [f["subject"] for f in document["findings"]] == [f.subject for f in FINDINGS]
    assert document["info"] == ["a note"]


def test_json_is_deterministic_with_sorted_keys() -> None:
    text = to_json(result())
    assert text == to_json(result())
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True, ensure_ascii=False)
    assert json.loads(to_json(result(findings=())))["summary"]["ok"] is True


def test_docs_describe_every_json_key() -> None:
    quoted = re.findall(r"`([a-z_.\[\]]+)`", DOCS.read_text(encoding="utf-8"))
    documented = {name.rsplit(".", 1)[-1] for name in quoted}
    document = json.loads(to_json(result()))
    keys = set(document) | set(document["summary"]) | set(document["findings"][0])
    assert keys <= documented, sorted(keys - documented)
