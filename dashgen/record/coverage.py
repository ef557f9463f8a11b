"""Recording coverage: what the app's own test run really recorded, against what the code
declares and what the dashboards show.

A name check proves that a metric exists in code; it cannot see a metric that is declared
and never recorded, whose panel stays empty in production. Pure functions from plain data
(the code's instruments, a recording, parsed dashboards) to the rows of ``dashgen coverage``
and the findings ``dashgen verify --recorded`` adds:

* ``dead-panel``: a query reads a metric the code declares and the run never recorded;
* ``dead-instrument``: a declared instrument the run never recorded, not excused in config;
* ``undeclared-label`` / ``unrecorded-label``: a dashgen declaration's labels differ from the
  attribute keys the run recorded with it.

For plain OTel code, which declares no labels, the recording supplies the label sets that
the contract's label checks would otherwise have to skip.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from dashgen.catalog import Catalog
from dashgen.declare import MetricSpec
from dashgen.families import Family
from dashgen.hints import Kind
from dashgen.record.recording import ExportedInstrument
from dashgen.verify.contract import Finding, VerifyResult
from dashgen.verify.dashboards import DashboardQueries, Target

DEAD_PANEL = "dead-panel"
DEAD_INSTRUMENT = "dead-instrument"
UNDECLARED_LABEL = "undeclared-label"
UNRECORDED_LABEL = "unrecorded-label"

RECORDED = "recorded"
TEST_ONLY = "test-only"
"""Recorded in the run, but only by tests calling the wrapper or declaration directly."""
DEAD = "dead"
EXCLUDED = "excluded"

_EXCUSE = "[tool.dashgen.unrecorded]"


@dataclass(frozen=True)
class CodeInstrument:
    """An instrument the code declares: a dashgen declaration, or one the ``--instruments``
    callable created (``labels`` None: plain OTel code declares no attribute keys)."""

    name: str
    kind: Kind
    unit: str
    site: str
    samples: tuple[str, ...]
    labels: tuple[str, ...] | None


def declared_instruments(
    specs: Iterable[MetricSpec], family_of: Callable[[str], Family]
) -> tuple[CodeInstrument, ...]:
    """The catalog's declarations with the sample names the exporter gave them."""
    return tuple(
        CodeInstrument(
            name=spec.name,
            kind=spec.kind,
            unit=spec.unit,
            site=f"{spec.file}:{spec.line}",
            samples=family_of(spec.name).samples,
            labels=spec.labels,
        )
        for spec in specs
    )


def created_instruments(instruments: Iterable[ExportedInstrument]) -> tuple[CodeInstrument, ...]:
    """What an ``--instruments`` callable created, as the code side."""
    return tuple(
        CodeInstrument(
            name=i.instrument.name,
            kind=i.instrument.kind,
            unit=i.instrument.unit,
            site=i.instrument.site,
            samples=i.exported.samples,
            labels=None,
        )
        for i in instruments
    )


@dataclass(frozen=True)
class CoverageRow:
    """One instrument: the code's, or one only the recording knows (``code`` None)."""

    name: str
    kind: Kind
    unit: str
    code: CodeInstrument | None
    sites: tuple[str, ...]
    """Where the run created it; empty when the run never created it."""
    test_sites: tuple[str, ...]
    """Where tests recorded it, when only tests did (a few)."""
    measurements: int
    production: int
    """Of ``measurements``, those production code made (all, in a recording made without
    caller attribution)."""
    attribute_keys: tuple[str, ...]
    samples: tuple[str, ...]
    panels: tuple[tuple[str, str], ...]
    """(dashboard, panel) of every panel that queries one of its samples."""
    status: str

    @property
    def site(self) -> str:
        return self.code.site if self.code else ", ".join(self.sites)

    def describe(self) -> str:
        return f"{self.kind.value} `{self.name}` ({self.site})"


@dataclass(frozen=True)
class Coverage:
    rows: tuple[CoverageRow, ...]
    info: tuple[str, ...]

    def count(self, status: str) -> int:
        return sum(row.status == status for row in self.rows)

    @property
    def percent(self) -> float:
        """Share of instruments recorded; excluded ones count neither way (100 when none)."""
        counted = self.count(RECORDED) + self.count(DEAD) + self.count(TEST_ONLY)
        return 100.0 * self.count(RECORDED) / counted if counted else 100.0


def measure(
    code: Sequence[CodeInstrument],
    recording: Sequence[ExportedInstrument],
    dashboards: Sequence[DashboardQueries],
    unrecorded: Mapping[str, str],
) -> Coverage:
    """Match the recording to the code's instruments by name, kind and unit."""
    runs: dict[tuple[str, Kind, str], list[ExportedInstrument]] = {}
    for item in recording:
        run = item.instrument
        runs.setdefault((run.name, run.kind, run.unit), []).append(item)
    panels = _panels_by_sample(dashboards)
    rows = [
        _row(c.name, c.kind, c.unit, c, runs.pop((c.name, c.kind, c.unit), []), panels, unrecorded)
        for c in code
    ]
    info: set[str] = set()
    by_name = {c.name: c for c in code}
    for (name, kind, unit), items in runs.items():
        row = _row(name, kind, unit, None, items, panels, unrecorded)
        rows.append(row)
        other = by_name.get(name)
        if other is not None:
            info.add(
                f"the recording's `{name}` is a {kind.value} in `{unit}`, the code's a "
                f"{other.kind.value} in `{other.unit}`: record again"
            )
        elif code:
            info.add(f"recorded instrument {row.describe()} is not in the code checked: skipped")
    seen = {row.name: row for row in rows}
    for name, reason in unrecorded.items():
        if name not in seen:
            info.add(f"unrecorded exclusion `{name}` matches no instrument")
        elif seen[name].status == RECORDED:
            info.add(f"`{name}` is excluded as unrecorded ({reason}) but was recorded: drop it")
    return Coverage(tuple(sorted(rows, key=lambda r: (r.name, r.site))), tuple(sorted(info)))


def _row(
    name: str,
    kind: Kind,
    unit: str,
    code: CodeInstrument | None,
    exported: Sequence[ExportedInstrument],
    panels: Mapping[str, set[tuple[str, str]]],
    unrecorded: Mapping[str, str],
) -> CoverageRow:
    samples = set(code.samples if code else ())
    for item in exported:
        samples.update(item.exported.samples)
    items = [item.instrument for item in exported]
    measurements = sum(item.measurements for item in items)
    production = sum(
        item.measurements if item.production is None else item.production for item in items
    )
    test_only = measurements > 0 and production == 0
    status = (
        EXCLUDED
        if name in unrecorded and (not measurements or test_only)
        else TEST_ONLY
        if test_only
        else RECORDED
        if measurements
        else DEAD
    )
    return CoverageRow(
        name=name,
        kind=kind,
        unit=unit,
        code=code,
        sites=tuple(sorted({item.site for item in items})),
        test_sites=tuple(sorted({site for item in items for site in item.test_sites}))[:3],
        measurements=measurements,
        production=production,
        attribute_keys=tuple(sorted({key for item in items for key in item.attribute_keys})),
        samples=tuple(sorted(samples)),
        panels=tuple(sorted({panel for s in samples for panel in panels.get(s, ())})),
        status=status,
    )


def _targets_by_sample(dashboards: Sequence[DashboardQueries]) -> dict[str, list[Target]]:
    """Targets by every metric name they select exactly (regex selectors are not followed)."""
    found: dict[str, list[Target]] = {}
    for dashboard in dashboards:
        for parsed in dashboard.targets:
            selectors = parsed.refs.selectors if parsed.refs else ()
            for name in {s.metric for s in selectors if s.metric is not None}:
                found.setdefault(name, []).append(parsed.target)
    return found


def _panels_by_sample(dashboards: Sequence[DashboardQueries]) -> dict[str, set[tuple[str, str]]]:
    return {
        sample: {(t.dashboard, t.panel) for t in targets}
        for sample, targets in _targets_by_sample(dashboards).items()
    }


def learn_labels(
    families: Sequence[Family], recording: Sequence[ExportedInstrument]
) -> tuple[Family, ...]:
    """Give families of unknown label set the labels the app's recordings exported."""
    learned: dict[str, set[str]] = {}
    for item in recording:
        if item.exported.labels is not None:
            learned.setdefault(item.exported.family, set()).update(item.exported.labels)
    return tuple(
        replace(f, labels=tuple(sorted(learned[f.name])))
        if f.labels is None and f.name in learned
        else f
        for f in families
    )


def with_recorded_values(catalog: Catalog, recording: Sequence[ExportedInstrument]) -> Catalog:
    """Declarations whose labels have no declared ``values=`` take the values the test run
    recorded (strings and numbers), so that ``verify --live`` feeds series that a
    dashboard's matchers can find."""
    recorded: dict[tuple[str, Kind, str], dict[str, set[str]]] = {}
    for item in recording:
        run = item.instrument
        found = recorded.setdefault((run.name, run.kind, run.unit), {})
        for key, kept in run.values.items():
            plain = (v for v in kept if isinstance(v, str | int | float))
            found.setdefault(key, set()).update(str(v) for v in plain if not isinstance(v, bool))
    metrics = []
    for spec in catalog.metrics:
        values = dict(spec.label_values)
        seen = recorded.get((spec.name, spec.kind, spec.unit), {})
        for label in spec.labels:
            if label not in values and seen.get(label):
                values[label] = tuple(sorted(seen[label]))
        metrics.append(replace(spec, label_values=tuple(sorted(values.items()))))
    return replace(catalog, metrics=tuple(metrics))


def with_recording(
    result: VerifyResult, coverage: Coverage, dashboards: Sequence[DashboardQueries]
) -> VerifyResult:
    """``result`` plus the recording's findings and notes, in the usual order."""
    findings = {
        *result.findings,
        *_dead_panels(coverage, dashboards),
        *_instrument_findings(coverage),
    }
    return replace(
        result,
        findings=tuple(sorted(findings, key=Finding.sort_key)),
        info=tuple(sorted({*result.info, *coverage.info})),
    )


def _dead_panels(coverage: Coverage, dashboards: Sequence[DashboardQueries]) -> Iterable[Finding]:
    owners: dict[str, list[CoverageRow]] = {}
    for row in coverage.rows:
        if row.code is not None:
            for sample in row.samples:
                owners.setdefault(sample, []).append(row)
    for sample, targets in _targets_by_sample(dashboards).items():
        rows = owners.get(sample, [])
        if not rows or any(row.status == RECORDED for row in rows):
            continue
        why = "; ".join(_why_empty(row) for row in rows)
        names = " and ".join(f"`{row.name}`" for row in rows)
        for target in targets:
            yield Finding(
                kind=DEAD_PANEL,
                file=target.file,
                dashboard=target.dashboard,
                panel=target.panel,
                ref_id=target.ref_id,
                subject=sample,
                message=f"`{sample}` stays empty: {why}",
                hint=_dead_panel_hint(rows, names),
            )


def _dead_panel_hint(rows: Sequence[CoverageRow], names: str) -> str:
    if all(row.status == TEST_ONLY for row in rows):
        return (
            f"make production code record {names} (tests of that code then count), or take "
            "the panel off the dashboard"
        )
    return (
        f"add a test that drives the code recording {names}, then record again; or take the "
        "panel off the dashboard"
    )


def _why_empty(row: CoverageRow) -> str:
    if row.status == TEST_ONLY:
        where = ", ".join(row.test_sites) or "the tests"
        return (
            f"{row.describe()} is recorded only by tests calling it directly ({where}): no "
            "production code records it"
        )
    made = "created but never recorded" if row.sites else "never created"
    return f"{row.describe()} was {made} by the test run"


def _instrument_findings(coverage: Coverage) -> Iterable[Finding]:
    for row in coverage.rows:
        if row.code is None:
            continue
        if row.status == TEST_ONLY:
            yield Finding.of_family(
                DEAD_INSTRUMENT,
                row.name,
                f"{row.describe()} was never recorded by production code (only tests record "
                f"it: {', '.join(row.test_sites) or 'no production caller'})",
                f"make production code record it, or list it under {_EXCUSE} with the reason",
                row.site,
            )
        elif row.status == DEAD:
            how = "created, 0 measurements" if row.sites else "never created"
            yield Finding.of_family(
                DEAD_INSTRUMENT,
                row.name,
                f"{row.describe()} was never recorded by the test run ({how})",
                f"add a test that records it, or list it under {_EXCUSE} with the reason "
                "tests cannot record it",
                row.site,
            )
        declared = row.code.labels
        if declared is None or row.status != RECORDED:
            continue
        for key in sorted(set(row.attribute_keys) - set(declared)):
            yield Finding.of_family(
                UNDECLARED_LABEL,
                key,
                f"the test run recorded {row.describe()} with attribute `{key}`, which the "
                f"declaration does not list (labels: {', '.join(declared) or 'none'})",
                f"add `{key}` to the declaration's labels=[...], or stop recording it",
                row.site,
            )
        for key in sorted(set(declared) - set(row.attribute_keys)):
            yield Finding.of_family(
                UNRECORDED_LABEL,
                key,
                f"{row.describe()} declares label `{key}`, but no measurement of the test run "
                "carries it",
                f"record `{key}` wherever the metric is recorded, or remove it from labels=[...]"
                ": panels grouped by it show a single group with an empty value",
                row.site,
            )


_HEADER = ("Instrument", "Kind", "Production", "Tests", "Label keys", "Status", "Panels")
_NUMBERS = (2, 3)


def to_json(coverage: Coverage) -> str:
    """``dashgen coverage --format json``: the rows and the totals, keys sorted, stable."""
    counts = {status: coverage.count(status) for status in (RECORDED, TEST_ONLY, DEAD, EXCLUDED)}
    document = {
        "info": list(coverage.info),
        "instruments": [
            {
                "attribute_keys": list(row.attribute_keys),
                "kind": row.kind.value,
                "measurements": row.measurements,
                "name": row.name,
                "panels": [{"dashboard": d, "panel": p} for d, p in row.panels],
                "production": row.production,
                "site": row.site,
                "status": row.status,
                "test_sites": list(row.test_sites),
                "unit": row.unit,
            }
            for row in coverage.rows
        ],
        "summary": {**counts, "percent": round(coverage.percent, 2)},
        "version": 1,
    }
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False)


def render_table(coverage: Coverage, width: int | None = None) -> str:
    """A report in the manner of coverage.py's: one row per instrument, then the total; the
    longest column last, as coverage.py's "Missing", cut to ``width`` (a terminal's) with
    an ellipsis, so that a row stays one line."""
    rows: list[tuple[str, ...]] = [
        (
            row.name,
            row.kind.value,
            str(row.production),
            str(row.measurements - row.production),
            ", ".join(row.attribute_keys) or "-",
            row.status,
            _panel_list(row.panels),
        )
        for row in coverage.rows
    ]
    recorded = coverage.count(RECORDED)
    counted = recorded + coverage.count(DEAD) + coverage.count(TEST_ONLY)
    production = sum(row.production for row in coverage.rows)
    total = (
        "TOTAL",
        "",
        str(production),
        str(sum(row.measurements for row in coverage.rows) - production),
        "",
        f"{math.floor(coverage.percent)}%",
        "",
    )
    widths = [max(len(line[i]) for line in (_HEADER, *rows, total)) for i in range(len(_HEADER))]

    def line(cells: Sequence[str]) -> str:
        padded = [
            cell.rjust(width) if i in _NUMBERS else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(padded).rstrip()

    if width is not None:
        widths = _fitted(widths, width)
        rows = [tuple(_cut(cell, w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    rule = "-" * len(line(["-" * w for w in widths]))
    summary = f"{recorded} of {counted} instruments recorded"
    if coverage.count(EXCLUDED):
        summary += f", {coverage.count(EXCLUDED)} excluded under {_EXCUSE}"
    notes = [f"note: {note}" for note in coverage.info]
    return "\n".join([line(_HEADER), rule, *map(line, rows), rule, line(total), summary, *notes])


_CUTTABLE = (4, 6)
"""Label keys and Panels: the columns that grow with the code, and give way to the terminal."""
_NARROWEST = 12


def _fitted(widths: list[int], width: int) -> list[int]:
    """Column widths that fit in ``width``, narrowing the widest cuttable column first."""
    fitted = list(widths)
    excess = sum(fitted) + 2 * (len(fitted) - 1) - width
    while excess > 0:
        widest = max(_CUTTABLE, key=lambda i: fitted[i])
        give = min(excess, fitted[widest] - _NARROWEST)
        if give <= 0:
            break
        fitted[widest] -= give
        excess -= give
    return fitted


def _cut(text: str, room: int) -> str:
    return text if len(text) <= room else text[: room - 1] + "\u2026"


def _panel_list(panels: Sequence[tuple[str, str]]) -> str:
    """``Dashboard: panel, panel; Other: panel`` (sorted), or ``-``."""
    by_dashboard: dict[str, list[str]] = {}
    for dashboard, panel in panels:
        by_dashboard.setdefault(dashboard, []).append(panel)
    return "; ".join(f"{d}: {', '.join(p)}" for d, p in by_dashboard.items()) or "-"
