"""``verify`` findings in the formats CI systems read: GitHub workflow commands (an
annotation on the dashboard file and line of each finding), SARIF 2.1.0 (for code-scanning
upload) and JUnit XML (one failing test case per panel with findings). Exit codes are the
same as for the other formats."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from itertools import groupby
from operator import attrgetter
from pathlib import Path

from dashgen.verify.contract import Finding, VerifyResult

LineOf = Callable[[Finding], int | None]


def lines_in(root: Path) -> LineOf:
    """The line of a finding in its dashboard file (under ``root``): where its panel's title
    stands, else where its subject does; None when the file or both are not found."""
    texts: dict[str, list[str] | None] = {}

    def line_of(finding: Finding) -> int | None:
        if not finding.file:
            return None
        if finding.file not in texts:
            try:
                texts[finding.file] = (root / finding.file).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                texts[finding.file] = None
        lines = texts[finding.file]
        if lines is None:
            return None
        wanted = [json.dumps(finding.panel)[1:-1], json.dumps(finding.subject)[1:-1]]
        for needle in (w for w in wanted if w):
            for number, text in enumerate(lines, start=1):
                if needle in text:
                    return number
        return None

    return line_of


def to_github(findings: Sequence[Finding], line_of: LineOf) -> str:
    """One ``::error`` workflow command per finding; family-level findings (no dashboard
    file) name the code file that declares the instrument, when known."""
    commands = []
    for finding in findings:
        properties = {"title": f"dashgen {finding.kind}"}
        file = finding.file or finding.source
        if file:
            properties["file"] = file
            line = line_of(finding)
            if line is not None:
                properties["line"] = str(line)
        shown = ",".join(f"{key}={_property(value)}" for key, value in sorted(properties.items()))
        message = f"{_located(finding)}{finding.subject}: {finding.message} (fix: {finding.hint})"
        commands.append(f"::error {shown}::{_data(message)}")
    return "\n".join(commands)


SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"


def to_sarif(findings: Sequence[Finding], line_of: LineOf, version: str) -> str:
    """One SARIF run: a rule per finding kind, a result per finding, located in its
    dashboard file (or the code file of a family-level finding) at its line."""
    kinds = sorted({finding.kind for finding in findings})
    results = []
    for finding in findings:
        result: dict[str, object] = {
            "ruleId": finding.kind,
            "ruleIndex": kinds.index(finding.kind),
            "level": "error",
            "message": {"text": f"{_located(finding)}{finding.message} (fix: {finding.hint})"},
        }
        file = finding.file or finding.source
        if file:
            uri = Path(file).as_uri() if Path(file).is_absolute() else file
            location: dict[str, object] = {"artifactLocation": {"uri": uri}}
            line = line_of(finding)
            if line is not None:
                location["region"] = {"startLine": line}
            result["locations"] = [{"physicalLocation": location}]
        results.append(result)
    driver = {
        "name": "dashgen",
        "version": version,
        "informationUri": "https://pypi.org/project/dashgen/",
        "rules": [{"id": kind, "shortDescription": {"text": f"dashgen {kind}"}} for kind in kinds],
    }
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{"tool": {"driver": driver}, "results": results}],
    }
    return json.dumps(log, indent=2, sort_keys=True)


def _located(finding: Finding) -> str:
    return f"{finding.place} {finding.panel}: " if finding.panel else ""


def to_junit(result: VerifyResult) -> str:
    """A ``testsuite`` of one case per dashboard panel (or family-level group) with findings,
    each failing with every finding in it; a run without findings is one passing case."""
    suite = ET.Element("testsuite", name="dashgen verify")
    groups = [
        (where, list(found))
        for where, found in groupby(result.findings, attrgetter("file", "source", "panel"))
    ]
    for (file, source, panel), found in groups:
        name = panel or ("the file" if file else "exported families")
        case = ET.SubElement(suite, "testcase", classname=file or source or "dashgen", name=name)
        failure = ET.SubElement(
            case,
            "failure",
            type=found[0].kind,
            message="; ".join(f"{f.kind} {f.subject}" for f in found),
        )
        failure.text = "\n".join(f"{f.kind} {f.subject}: {f.message}\nfix: {f.hint}" for f in found)
    if not groups:
        ET.SubElement(suite, "testcase", classname="dashgen", name="dashboard contract")
    suite.set("tests", str(max(len(groups), 1)))
    suite.set("failures", str(len(groups)))
    suite.set("errors", "0")
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True)


def _data(text: str) -> str:
    """A workflow command's message: newlines and % escaped as GitHub documents."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")
