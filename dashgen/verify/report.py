"""Output of ``verify``: a human report grouped by dashboard and panel, and stable JSON.

JSON schema, version 1 (also in ``docs/verify-json.md``). Keys are sorted, indentation is two
spaces, and the same result always gives the same text::

    {
      "version": 1,                      # int, bumped on any incompatible change
      "summary": {
        "ok": bool,                      # true when there are no findings
        "dashboards": int,               # dashboard files read
        "targets": int,                  # every target seen: parsed + skipped + unparsable
        "parsed": int,                   # targets whose PromQL parsed
        "skipped": int,                  # targets not checked (e.g. non-Prometheus datasource)
        "skipped_reasons": {str: int},   # skipped targets per reason
        "findings": int,                 # len(findings)
        "by_kind": {str: int}            # findings per kind
      },
      "findings": [                      # sorted by file, source, panel, ref_id, kind,
                                         #   subject
        {
          "kind": str,                   # e.g. "unknown-metric", see dashgen.verify.contract
          "file": str,                   # dashboard file, "" for family-level findings
          "dashboard": str,              # dashboard title, "" when not about one dashboard
          "panel": str,                  # panel title (variable or annotation name),
                                         #   "" when not about one panel
          "place": str,                  # what "panel" names: panel, library panel,
                                         #   variable or annotation
          "ref_id": str,                 # target refId, "" when not about one target
          "subject": str,                # the metric, label, regex, family or file
          "message": str,                # one line: what is wrong
          "hint": str,                   # one line: how to fix it
          "source": str                  # family-level findings: the code file declaring
                                         #   or creating the instrument, else ""
        }
      ],
      "info": [str]                      # sorted notes on checks that were skipped
    }
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from itertools import groupby
from operator import attrgetter
from typing import TYPE_CHECKING

from rich.console import Console
from rich.text import Text

from dashgen.verify.contract import Finding, VerifyResult

if TYPE_CHECKING:  # the live module starts servers; a static verify never imports it
    from dashgen.live.stages import LiveResult

JSON_VERSION = 1


def to_json(result: VerifyResult, live: LiveResult | None = None) -> str:
    """The result as JSON in the documented schema (no trailing newline)."""
    document: dict[str, object] = {
        "version": JSON_VERSION,
        "summary": {
            "ok": result.ok,
            "dashboards": result.dashboards,
            "rule_groups": result.rule_groups,
            "targets": result.targets,
            "parsed": result.parsed,
            "skipped": result.skipped,
            "skipped_reasons": dict(result.skipped_reasons),
            "findings": len(result.findings),
            "by_kind": dict(Counter(f.kind for f in result.findings)),
        },
        "findings": [asdict(f) for f in result.findings],
        "info": list(result.info),
    }
    if live is not None:
        document["live"] = _live_document(live)
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)


def _live_document(live: LiveResult) -> dict[str, object]:
    findings = live.findings
    return {
        "engine": live.engine,
        "ok": live.ok,
        "queries": len(live.outcomes),
        "with_data": sum(o.series > 0 for o in live.outcomes),
        "findings": [asdict(f) for f in findings],
        "by_kind": dict(Counter(f.kind for f in findings)),
        "seconds": {
            "ingest": round(live.timings.ingest_s, 3),
            "start": round(live.timings.start_s, 3),
            "queries": round(live.timings.queries_s, 3),
        },
    }


def render_live_human(live: LiveResult, console: Console) -> None:
    """Live findings grouped like the static ones, then a table per dashboard and timings."""
    findings = live.findings
    for file, group in groupby(findings, attrgetter("file")):
        for line in _group_lines(_shown(file), list(group)):
            console.print(line, soft_wrap=True)
    from rich.table import Table  # only a live check has a table to show

    table = Table(title=f"live check on {live.engine}", title_justify="left")
    for column in ("dashboard", "queries", "with data", "findings"):
        table.add_column(column, justify="left" if column == "dashboard" else "right")
    for file, outcomes in groupby(live.outcomes, lambda o: o.target.target.file):
        done = list(outcomes)
        table.add_row(
            file,
            str(len(done)),
            str(sum(o.series > 0 for o in done)),
            str(sum(len(o.findings) for o in done)),
        )
    console.print(table)
    timings = live.timings
    console.print(
        Text(
            f"time: ingest {timings.ingest_s:.2f} s, server start {timings.start_s:.2f} s, "
            f"queries {timings.queries_s:.2f} s",
            style="dim",
        )
    )
    if live.ok:
        console.print(
            Text(f"live ok: {len(live.outcomes)} queries, all returned data", style="bold green")
        )
    else:
        console.print(Text(f"live: {_plural(len(findings), 'finding')}", style="bold red"))


def render_human(result: VerifyResult, console: Console) -> None:
    """A count by kind, then findings grouped by dashboard file then panel, each with its
    fix, then a summary.

    Dashboard files come first; family-level findings (no file) after them, grouped by the
    code file that declares or creates the instrument, which is what an adoption run with
    hundreds of them needs. Lines are ``Text`` so PromQL such as ``x[5m]`` is never taken
    for markup, and soft-wrapped so names stay whole for copy and grep.
    """
    lines: list[Text] = []
    if result.findings:
        counted = Counter(f.kind for f in result.findings).items()
        by_kind = sorted(counted, key=lambda item: (-item[1], item[0]))
        kinds = ", ".join(f"{count} {kind}" for kind, count in by_kind)
        lines.append(Text(f"{_plural(len(result.findings), 'finding')}: {kinds}", style="bold"))
    groups = [
        (where, list(group))
        for where, group in groupby(result.findings, attrgetter("file", "source"))
    ]
    for (file, source), findings in sorted(groups, key=lambda item: (item[0][0] == "", item[0])):
        family_level = f"exported by {_shown(source)}" if source else "exported families"
        header = _shown(file) or family_level
        lines.extend(_group_lines(header, findings))
    lines.extend(Text(f"note: {_shown(line)}", style="dim") for line in result.info)
    lines.append(_summary(result))
    for line in lines:
        console.print(line, soft_wrap=True)


#: Control characters (ESC among them) as escapes: a dashboard title must not drive the terminal.
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}


def _shown(text: str) -> str:
    return text.translate(_CONTROL)


def _group_lines(title: str, findings: list[Finding]) -> list[Text]:
    header = Text(title, style="bold")
    if findings[0].dashboard:
        header.append(f"  {_shown(findings[0].dashboard)}")
    lines = [header]
    for (place, panel), group in groupby(findings, attrgetter("place", "panel")):
        indent = "  "
        if panel:
            lines.append(Text(f'  {place} "{_shown(panel)}"'))
            indent = "    "
        for finding in group:
            line = Text(indent)
            if finding.ref_id:
                line.append(f"{_shown(finding.ref_id)} ", style="bold")
            line.append(finding.kind, style="red")
            line.append(f" {_shown(finding.subject)}: {_shown(finding.message)}")
            lines.append(line)
            lines.append(Text(f"{indent}  fix: {_shown(finding.hint)}", style="cyan"))
    return lines


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _summary(result: VerifyResult) -> Text:
    reasons = ", ".join(f"{reason}: {count}" for reason, count in result.skipped_reasons.items())
    counts = ", ".join(
        (
            _plural(result.dashboards, "dashboard"),
            *([_plural(result.rule_groups, "rule group")] if result.rule_groups else []),
            _plural(result.targets, "target"),
            f"{result.parsed} parsed",
            f"{result.skipped} skipped" + (f" ({reasons})" if reasons else ""),
        )
    )
    if result.ok:
        return Text(f"ok: {counts}, no findings", style="bold green")
    return Text(f"{_plural(len(result.findings), 'finding')}: {counts}", style="bold red")
