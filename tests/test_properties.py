"""Property-based proof of the contract over random catalogs (hypothesis).

Each example writes a random catalog as real dashgen source files into a throwaway project
and runs the real CLI in-process. Three properties:

* no false positives: ``build`` then ``verify`` exits 0 with no findings;
* no false negatives: one random mutation of sources or output (the list of the verify
  issue) makes ``verify`` exit 1 with the finding that names it;
* determinism: the build is byte-identical under two ``PYTHONHASHSEED`` values.

Expected findings come from an oracle that asks the real OpenTelemetry exporter for the
names, never from dashgen. Examples per property: ``DASHGEN_HYPOTHESIS_PROFILE=ci`` (100,
the default) or ``fuzz`` (2,000, ``nox -s fuzz``).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.database import DirectoryBasedExampleDatabase

from dashgen.catalog import UID_PATTERN, default_uid
from tests.conftest import Project
from tests.test_build import exporter_output

# CI runs the same examples every time (derandomize, no example database), so that a red
# run is reproducible and a green one is not luck; `nox -s fuzz` explores at random, and each
# failure it finds is kept below as an explicit @example.
settings.register_profile(
    "ci",
    max_examples=100,
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    # Shrink a failure to its smallest catalog, but skip the explain phase: it re-runs
    # the failing example hundreds of times (a minute per failing property) to annotate it.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink],
)
settings.register_profile(
    "fuzz",
    parent=settings.get_profile("ci"),
    max_examples=2_000,
    derandomize=False,
    database=DirectoryBasedExampleDatabase(".hypothesis/examples"),
)
# `nox -s matrix` runs the suite again at the other end of the supported versions: what it
# looks for there is a version that breaks dashgen, which the first examples of each
# property show; the full hundred ran at the newest versions in the same CI run.
settings.register_profile("matrix", parent=settings.get_profile("ci"), max_examples=25)
PROFILE = os.environ.get("DASHGEN_HYPOTHESIS_PROFILE", "ci")
SETTINGS = settings.get_profile(PROFILE)

KINDS = (
    "Counter",
    "UpDownCounter",
    "Histogram",
    "Gauge",
    "ObservableCounter",
    "ObservableUpDownCounter",
    "ObservableGauge",
)
UNITS = ("s", "ms", "By", "1", "{request}", "%", "a/b", "")
MONOTONIC = {"Counter", "ObservableCounter"}
LEVELS = {"Gauge", "UpDownCounter", "ObservableGauge", "ObservableUpDownCounter"}
# Hint constructors by the kinds they fit (README's table).
HINTS_FOR = {
    **{kind: ("Rate", "Increase") for kind in MONOTONIC},
    **{kind: ("Current",) for kind in LEVELS},
    "Histogram": ("Rate", "Increase", "Quantiles", "Heatmap", "Average"),
}
STYLES = ("timeseries", "stat", "gauge", "bargauge")
AGGS = ("sum", "max", "min", "avg")
GRAFANA_UNITS = ("s", "ms", "bytes", "percent", "reqps", "short", "none")
# The panel units that show each metric unit's values as they are (build refuses the
# others on hints that show values directly); units of no dimension fit any metric.
FITTING_UNITS = {"s": "s", "ms": "ms", "By": "bytes", "%": "percent"}
DIMENSIONED = frozenset({"s", "ms", "bytes", "percent"})
SHOWS_VALUES = frozenset({"Current", "Quantiles", "Average"})
COLOURS = ("red", "orange", "yellow", "#ff0000", "dark-green")
SEPARATORS = "._-/"
# Left out of metric heads: `target_info` is the exporter's own family (a `target.info`
# gauge builds and verifies, but renaming it away leaves the exporter's still there), and
# "zq" starts the wrong names the hand-edit mutation writes.
METRIC_HEADS_LEFT_OUT = frozenset({"target"})
# PromQL's words without a separator, drawn as heads on purpose: a random head is rarely one.
PROMQL_WORDS = ("on", "bool", "ignoring", "atan2", "inf", "nan", "sum", "by", "offset", "and")
# Left out of label heads: the histogram bucket label, the exporter's `otel_scope_*`
# labels, and the scrape labels that verify always accepts.
# `inf` and `nan` read as numbers in `by (...)`, so build refuses to group by them.
LABEL_HEADS_LEFT_OUT = frozenset({"le", "otel", "job", "instance", "inf", "nan"})


# --- the catalog as data, and as source text ---------------------------------------------


@dataclass(frozen=True)
class HintDecl:
    kind: str
    args: tuple[tuple[str, Any], ...] = ()

    @property
    def by(self) -> tuple[str, ...]:
        return tuple(dict(self.args).get("by", ()))

    def source(self) -> str:
        return f"hints.{self.kind}({', '.join(f'{k}={v!r}' for k, v in self.args)})"


@dataclass(frozen=True)
class MetricDecl:
    var: str
    kind: str
    name: str
    unit: str
    labels: tuple[str, ...]
    hints: tuple[HintDecl, ...] | None
    """``None``: no ``hint=``, the kind's default panel."""
    buckets: tuple[float, ...] | None = None
    description: str = ""
    exclude: str | None = None
    module: int = 0

    def source(self) -> str:
        args = [repr(self.name), f"unit={self.unit!r}", f"labels={list(self.labels)!r}"]
        if self.description:
            args.append(f"description={self.description!r}")
        if self.hints is not None:
            args.append(f"hint=[{', '.join(h.source() for h in self.hints)}]")
        if self.buckets is not None:
            args.append(f"buckets={list(self.buckets)!r}")
        if self.exclude is not None:
            args.append(f"exclude={self.exclude!r}")
        return f"{self.var} = {self.kind}({', '.join(args)})\n"


@dataclass(frozen=True)
class RowDecl:
    title: str
    metrics: tuple[str, ...]
    """Variable names of the metrics, in order."""
    collapsed: bool = False


@dataclass(frozen=True)
class BoardDecl:
    var: str
    title: str
    uid: str | None
    rows: tuple[RowDecl, ...]

    def source(self) -> str:
        rows = ", ".join(
            f"Row({r.title!r}, [{', '.join(r.metrics)}], collapsed={r.collapsed})"
            for r in self.rows
        )
        uid = f", uid={self.uid!r}" if self.uid is not None else ""
        return f"{self.var} = Dashboard({self.title!r}{uid}, rows=[{rows}])\n"

    @property
    def file_uid(self) -> str:
        return self.uid if self.uid is not None else default_uid(self.title)


@dataclass(frozen=True)
class CatalogDecl:
    metrics: tuple[MetricDecl, ...]
    boards: tuple[BoardDecl, ...]
    modules: int = 1

    def files(self) -> dict[str, str]:
        """Metric modules ``metrics_<n>.py`` and ``boards.py``, which imports from them."""
        header = "from dashgen import *  # noqa: F403\nfrom dashgen import hints\n\n"
        files = {f"metrics_{n}.py": header for n in range(self.modules)}
        for metric in self.metrics:
            files[f"metrics_{metric.module}.py"] += metric.source()
        boards = header + "".join(f"from metrics_{m.module} import {m.var}\n" for m in self.metrics)
        files["boards.py"] = boards + "\n" + "".join(b.source() for b in self.boards)
        return files

    def placed(self) -> list[MetricDecl]:
        used = {var for b in self.boards for r in b.rows for var in r.metrics}
        return [m for m in self.metrics if m.var in used]

    def boards_placing(self, metric: MetricDecl) -> list[BoardDecl]:
        return [b for b in self.boards if any(metric.var in r.metrics for r in b.rows)]

    def replace_metric(self, old: MetricDecl, new: MetricDecl | None) -> CatalogDecl:
        """``new`` in place of ``old`` (``None``: delete it from modules and rows)."""
        metrics = tuple(n for m in self.metrics if (n := (new if m is old else m)) is not None)
        boards = self.boards
        if new is None:
            boards = tuple(
                replace(
                    b,
                    rows=tuple(
                        replace(r, metrics=tuple(v for v in r.metrics if v != old.var))
                        for r in b.rows
                    ),
                )
                for b in self.boards
            )
        return replace(self, metrics=metrics, boards=boards)


# --- strategies ---------------------------------------------------------------------------
# Those that take no draw are made once (``cache``): Hypothesis validates each new strategy
# object, which cost more than a third of drawing a catalog.


@cache
def heads(left_out: frozenset[str] = METRIC_HEADS_LEFT_OUT) -> st.SearchStrategy[str]:
    """The part of a name up to its first separator; distinct heads never collide.

    The exporter lower-cases names and turns every separator into ``_``, so two names
    with different lower-cased heads give families and samples that differ right after
    the shorter head: no name can become another's ``_total``, ``_bucket`` or unit suffix.
    """
    words = st.sampled_from(PROMQL_WORDS).map(lambda word: word.upper() if len(word) % 2 else word)
    return (words | st.from_regex(r"[a-zA-Z][a-zA-Z0-9]{0,7}", fullmatch=True)).filter(
        lambda h: h.lower() not in left_out and not h.lower().startswith("zq")
    )


@cache
def tails() -> st.SearchStrategy[str]:
    """Anything from OTel's alphabet, starting with a separator so that the head ends."""
    return st.one_of(
        st.just(""),
        st.builds(
            lambda sep, rest: sep + rest,
            st.sampled_from(SEPARATORS),
            st.from_regex(r"[-_./a-zA-Z0-9]{0,12}", fullmatch=True),
        ),
    )


def names(head: str) -> st.SearchStrategy[str]:
    return tails().map(lambda tail: head + tail)


@cache
def label_keys() -> st.SearchStrategy[list[str]]:
    """Attribute keys with distinct lower-cased heads, so exported labels stay distinct."""
    return st.lists(
        st.tuples(heads(LABEL_HEADS_LEFT_OUT), tails()),
        max_size=4,
        unique_by=lambda pair: pair[0].lower(),
    ).map(lambda pairs: [h + t for h, t in pairs])


titles = st.text(min_size=1, max_size=30)
floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)


@cache
def _optional_hint_arguments(panel_units: tuple[str, ...]) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "title": titles,
        "description": st.text(max_size=40),
        "unit": st.sampled_from(panel_units),
        "legend": st.text(max_size=20),
        "thresholds": st.lists(st.tuples(floats, st.sampled_from(COLOURS)), max_size=3).map(tuple),
        "width": st.integers(1, 24),
        "height": st.integers(1, 20),
    }


@st.composite
def hint_decls(draw: st.DrawFn, kind: str, labels: tuple[str, ...], unit: str) -> HintDecl:
    hint = draw(st.sampled_from(HINTS_FOR[kind]))
    panel_units: tuple[str, ...] = GRAFANA_UNITS
    if hint in SHOWS_VALUES:
        fits = FITTING_UNITS.get(unit)
        panel_units = tuple(u for u in GRAFANA_UNITS if u not in DIMENSIONED or u == fits)
    args: dict[str, Any] = {}
    if hint != "Heatmap" and labels:
        args["by"] = tuple(draw(st.lists(st.sampled_from(labels), unique=True)))
    if hint == "Quantiles" and draw(st.booleans()):
        args["quantiles"] = tuple(
            draw(st.lists(st.floats(0, 1), min_size=1, max_size=4, unique=True))
        )
    if hint == "Current":
        args["style"] = draw(st.sampled_from(STYLES))
        args["agg"] = draw(st.sampled_from(AGGS))
    optional = _optional_hint_arguments(panel_units)
    for key in sorted(draw(st.sets(st.sampled_from(sorted(optional))))):  # not by hash order
        args[key] = draw(optional[key])
    return HintDecl(hint, tuple(sorted(args.items())))


@st.composite
def metric_decls(
    draw: st.DrawFn,
    var: str,
    head: str,
    modules: int = 1,
    kinds: tuple[str, ...] = KINDS,
    grouped: bool = False,
) -> MetricDecl:
    """A declaration; ``grouped``: some panel of it groups by one of its labels."""
    kind = draw(st.sampled_from(kinds))
    unit = draw(st.sampled_from(UNITS))
    labels = tuple(draw(label_keys().filter(bool) if grouped else label_keys()))
    hints: tuple[HintDecl, ...] | None = None
    if grouped or draw(st.booleans()):
        hints = tuple(draw(st.lists(hint_decls(kind, labels, unit), min_size=1, max_size=3)))
    if grouped:
        hint = draw(st.sampled_from([h for h in HINTS_FOR[kind] if h != "Heatmap"]))
        by = tuple(draw(st.lists(st.sampled_from(labels), min_size=1, unique=True)))
        assert hints is not None
        hints = tuple(draw(st.permutations([*hints, HintDecl(hint, (("by", by),))])))
    buckets = None
    if kind == "Histogram" and draw(st.booleans()):
        # Boundaries from 0 up: below 0 the exporter drops _count and _sum (build refuses).
        buckets = tuple(sorted(draw(st.sets(st.floats(0, 1e9), min_size=1, max_size=6))))
    return MetricDecl(
        var=var,
        kind=kind,
        name=draw(names(head)),
        unit=unit,
        labels=labels,
        hints=hints,
        buckets=buckets,
        description=draw(st.text(max_size=30)),
        module=draw(st.integers(0, modules - 1)),
    )


@cache
def board_titles() -> st.SearchStrategy[str]:
    """Titles Grafana accepts: printable, and with a non-empty slug when used as the uid."""
    return st.text(
        st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=30
    ).filter(lambda t: bool(t.strip()))


@st.composite
def catalogs(draw: st.DrawFn, /, **first: Any) -> CatalogDecl:
    """A random catalog. Its first metric is always placed on a dashboard; ``first`` are
    :func:`metric_decls` options for it, so that a mutation always has something to edit."""
    modules = draw(st.integers(1, 3))
    count = draw(st.integers(1, 6))
    metric_heads = draw(st.lists(heads(), min_size=count, max_size=count, unique_by=str.lower))
    metrics = [
        draw(metric_decls(f"M{i}", head, modules, **(first if i == 0 else {})))
        for i, head in enumerate(metric_heads)
    ]
    excluded = set(draw(st.sets(st.integers(1, count - 1)))) if count > 1 else set()
    metrics = [
        replace(m, exclude="not for dashboards: " + m.var) if i in excluded else m
        for i, m in enumerate(metrics)
    ]
    placed = [m.var for i, m in enumerate(metrics) if i not in excluded]
    board_count = draw(st.integers(1, min(3, len(placed))))
    # Every board gets a metric and every placed metric a board, sometimes a second one.
    homes = [*range(board_count)]
    homes += [draw(st.integers(0, board_count - 1)) for _ in placed[board_count:]]
    extra = draw(st.lists(st.tuples(st.sampled_from(placed), st.integers(0, board_count - 1))))
    boards = []
    used_uids: set[str] = set()
    for b in range(board_count):
        on_board = [v for v, home in zip(placed, homes, strict=True) if home == b]
        on_board += [v for v, home in extra if home == b and v not in on_board]
        row_count = draw(st.integers(1, 3))
        cuts = sorted(draw(st.lists(st.integers(0, len(on_board)), max_size=row_count - 1)))
        bounds = [0, *cuts, len(on_board)]
        rows = tuple(
            RowDecl(draw(titles), tuple(on_board[lo:hi]), draw(st.booleans()))
            for lo, hi in itertools.pairwise(bounds)
        )
        title = draw(board_titles())
        uid: str | None = None
        slug = default_uid(title)
        if not UID_PATTERN.fullmatch(slug) or slug.casefold() in used_uids or draw(st.booleans()):
            # "U<n>_" never starts a slug (no "_" in slugs), so it is unique as it stands.
            uid = f"U{b}_" + draw(st.from_regex(r"[A-Za-z0-9_-]{0,36}", fullmatch=True))
        used_uids.add((uid if uid is not None else slug).casefold())
        boards.append(BoardDecl(f"D{b}", title, uid, rows))
    return CatalogDecl(tuple(metrics), tuple(boards), modules)


# --- projects, runs and the exporter oracle -----------------------------------------------


@contextmanager
def project_with(catalog: CatalogDecl) -> Iterator[Project]:
    """A fresh project holding ``catalog``; function-scoped fixtures do not reset per example."""
    with tempfile.TemporaryDirectory(prefix="dashgen-prop-") as tmp:
        root = Path(tmp) / "proj"
        root.mkdir()
        (root / "pyproject.toml").write_text(
            '[tool.dashgen]\nsources = "src"\noutput = "generated"\n', encoding="utf-8"
        )
        project = Project(root)
        write_sources(project, catalog)
        yield project


def write_sources(project: Project, catalog: CatalogDecl) -> None:
    src = project.root / project.sources
    for old in src.glob("*.py"):
        old.unlink()
    for name, text in catalog.files().items():
        project.source(name, text)


def verify_json(project: Project) -> tuple[int, list[dict[str, Any]]]:
    result = project.run("verify", "--format", "json")
    assert result.exit_code in (0, 1), result.stderr
    return result.exit_code, json.loads(result.stdout)["findings"]


def build_ok(project: Project) -> None:
    result = project.run("build")
    assert result.exit_code == 0, result.stderr


@dataclass(frozen=True)
class Exported:
    """What the real exporter makes of one declaration."""

    family: str
    samples: frozenset[str]
    labels: dict[str, str] = field(hash=False)
    """Attribute key -> exported label."""


@cache
def _oracle(kind: str, name: str, unit: str, labels: tuple[str, ...]) -> Exported:
    values = {key: f"oracle-{i}" for i, key in enumerate(labels)}
    family = exporter_output(kind, name, unit, values)
    by_value = {v: k for k, v in family.samples[0].labels.items()}
    return Exported(
        family=family.name,
        samples=frozenset(s.name for s in family.samples),
        labels={key: by_value[value] for key, value in values.items()},
    )


def oracle(metric: MetricDecl) -> Exported:
    return _oracle(metric.kind, metric.name, metric.unit, metric.labels)


# --- no false positives -------------------------------------------------------------------


# Found by this property: verify reported a metric declared with exclude= as unpanelled.
EXCLUDED = CatalogDecl(
    metrics=(
        MetricDecl("M0", "Counter", "shown", "s", (), None),
        MetricDecl("M1", "Gauge", "hidden", "", (), None, exclude="internal tuning knob"),
    ),
    boards=(BoardDecl("D0", "Board", None, (RowDecl("r", ("M0",)),)),),
)


# Found by `nox -s fuzz` (and by CI on one clone, before CI was derandomized): a gauge named
# `on` built `sum(on)`, which PromQL cannot parse.
KEYWORD_NAMED = CatalogDecl(
    metrics=(MetricDecl("M0", "Gauge", "on", "", (), None),),
    boards=(BoardDecl("D0", "Board", None, (RowDecl("r", ("M0",)),)),),
)


@SETTINGS
@given(catalogs())
@example(EXCLUDED)
@example(KEYWORD_NAMED)
def test_build_then_verify_is_clean(catalog: CatalogDecl) -> None:
    """Whatever a build accepts, verify must pass: green is never wrong the other way round."""
    event(f"metrics: {len(catalog.metrics)}, boards: {len(catalog.boards)}")
    with project_with(catalog) as project:
        build_ok(project)
        assert project.run("build", "--check").exit_code == 0
        code, findings = verify_json(project)
        assert (code, findings) == (0, [])
        assert {p.name for p in project.generated.glob("*.json")} == {
            f"{b.file_uid}.json" for b in catalog.boards
        }


# --- no false negatives -------------------------------------------------------------------


Draw = Callable[..., Any]
"""``data.draw`` of ``st.data()``: mutations draw their choices after the build."""


@dataclass(frozen=True)
class Mutation:
    """One edit, applied after a clean build, and what verify must then say."""

    required: frozenset[tuple[str, str]]
    """(kind, subject) findings that must all be there."""
    allowed: frozenset[str]
    """Finding kinds that may be there at all."""
    unpanelled: str | None = None
    """A family that must be reported: as unpanelled, or, when a dead query's hint takes it
    for that query's new name, in that hint (one cause, one finding)."""

    def check(self, findings: list[dict[str, str]]) -> None:
        found = {(f["kind"], f["subject"]) for f in findings}
        assert self.required <= found, (self.required - found, findings)
        assert {kind for kind, _ in found} <= self.allowed, findings
        if self.unpanelled is not None and ("unpanelled-family", self.unpanelled) not in found:
            renames = [
                f["hint"]
                for f in findings
                if f["kind"] == "unknown-metric" and "most likely the name meant here" in f["hint"]
            ]
            assert any(f"`{self.unpanelled}" in hint for hint in renames), findings


def fresh_head(catalog: CatalogDecl, draw: Draw) -> str:
    taken = {re.split(r"[-_./]", m.name)[0].lower() for m in catalog.metrics}
    head: str = draw(heads().filter(lambda h: h.lower() not in taken))
    return head


def stale(catalog: CatalogDecl, metric: MetricDecl) -> set[tuple[str, str]]:
    return {("stale-file", f"{b.file_uid}.json") for b in catalog.boards_placing(metric)}


def queried_samples(project: Project) -> set[str]:
    """Every name the generated dashboards' queries mention (read before an edit)."""
    names: set[str] = set()
    for file in project.generated.glob("*.json"):
        for panel in generated_panels(json.loads(file.read_bytes())):
            names |= {s for t in panel["targets"] for s in sample_names_in(t["expr"])}
    return names


def edit_source(
    project: Project, catalog: CatalogDecl, old: MetricDecl, new: MetricDecl | None
) -> Mutation:
    """Replace (or delete) a placed declaration in the sources, without building.

    Every sample of the old declaration that a query reads and the new one no longer
    exports is an unknown metric; the new family, unless a query reads one of its samples,
    is on no dashboard; the files that panel the declaration are stale. A dashboard's
    ``job`` and ``instance`` menus list its metrics by regex: when the edit takes away the
    only one they name, that regex matches nothing any more, which is a finding too.
    """
    queried = queried_samples(project)
    gone = oracle(old).samples - (oracle(new).samples if new is not None else frozenset())
    required = {("unknown-metric", sample) for sample in gone & queried}
    unpanelled = None
    if new is not None and not oracle(new).samples & queried:
        unpanelled = oracle(new).family
    required |= stale(catalog, old)
    write_sources(project, catalog.replace_metric(old, new))
    return Mutation(
        required=frozenset(required),
        allowed=frozenset({"unknown-metric", "unpanelled-family", "stale-file", "unmatched-regex"}),
        unpanelled=unpanelled,
    )


def rename_metric(draw: Draw, project: Project, catalog: CatalogDecl) -> Mutation:
    metric = draw(st.sampled_from(catalog.placed()))
    renamed = replace(metric, name=draw(names(fresh_head(catalog, draw))))
    return edit_source(project, catalog, metric, renamed)


def change_unit(draw: Draw, project: Project, catalog: CatalogDecl) -> Mutation:
    metric = draw(st.sampled_from(catalog.placed()))
    # Only units that change the exported name: {request} -> 1 rightly changes no query.
    units = [u for u in UNITS if oracle(replace(metric, unit=u)).family != oracle(metric).family]
    # A panel unit the hint set for the old unit goes with it, as a user's edit would.
    hints = metric.hints and tuple(
        HintDecl(h.kind, tuple(a for a in h.args if a[0] != "unit"))
        if h.kind in SHOWS_VALUES
        else h
        for h in metric.hints
    )
    changed = replace(metric, unit=draw(st.sampled_from(units)), hints=hints)
    return edit_source(project, catalog, metric, changed)


def counter_to_up_down(draw: Draw, project: Project, catalog: CatalogDecl) -> Mutation:
    metric = catalog.metrics[0]  # a placed Counter or ObservableCounter
    kind = "UpDownCounter" if metric.kind == "Counter" else "ObservableUpDownCounter"
    # Rate and Increase do not fit an up-down counter (build refuses them), so the hints
    # follow the kind, as a user's edit would; a bare declaration stays bare.
    hints = None
    if metric.hints is not None:
        hints = tuple(HintDecl("Current", (("by", h.by),) if h.by else ()) for h in metric.hints)
    changed = replace(metric, kind=kind, hints=hints)
    return edit_source(project, catalog, metric, changed)


def rename_label(draw: Draw, project: Project, catalog: CatalogDecl) -> Mutation:
    metric = catalog.metrics[0]  # placed, and some panel groups by one of its labels
    grouped = sorted({label for h in metric.hints or () if h.kind != "Heatmap" for label in h.by})
    label = draw(st.sampled_from(grouped))
    taken = {re.split(r"[-_./]", key)[0].lower() for key in metric.labels}
    new_label = draw(heads(LABEL_HEADS_LEFT_OUT).filter(lambda h: h.lower() not in taken))

    def renamed(keys: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(new_label if key == label else key for key in keys)

    hints = tuple(
        HintDecl(h.kind, tuple((k, renamed(v) if k == "by" else v) for k, v in h.args))
        for h in metric.hints or ()
    )
    changed = replace(metric, labels=renamed(metric.labels), hints=hints)
    write_sources(project, catalog.replace_metric(metric, changed))
    return Mutation(
        required=frozenset({("unknown-label", oracle(metric).labels[label])})
        | stale(catalog, metric),
        allowed=frozenset({"unknown-label", "stale-file"}),
    )


def delete_declaration(draw: Draw, project: Project, catalog: CatalogDecl) -> Mutation:
    return edit_source(project, catalog, draw(st.sampled_from(catalog.placed())), None)


def add_declaration(draw: Draw, project: Project, catalog: CatalogDecl) -> Mutation:
    var = f"M{len(catalog.metrics)}"
    metric = draw(metric_decls(var, fresh_head(catalog, draw), modules=catalog.modules))
    board = draw(st.sampled_from(catalog.boards))
    row = draw(st.sampled_from(board.rows))
    grown = replace(row, metrics=(*row.metrics, var))
    boards = tuple(
        replace(b, rows=tuple(grown if r is row else r for r in b.rows)) if b is board else b
        for b in catalog.boards
    )
    write_sources(project, replace(catalog, metrics=(*catalog.metrics, metric), boards=boards))
    return Mutation(
        required=frozenset(
            {("unpanelled-family", oracle(metric).family), ("stale-file", f"{board.file_uid}.json")}
        ),
        allowed=frozenset({"unpanelled-family", "stale-file"}),
    )


def generated_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every non-row panel, top-level or inside a collapsed row."""
    found = []
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def sample_names_in(expr: str) -> set[str]:
    return set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", expr))


def selectors_of(expr: str, sample: str) -> list[re.Match[str]]:
    """Where ``expr`` selects ``sample``: bare occurrences that are not an aggregation or a
    function of that name (``sum(sum)``, ``sum by (x) (...)``)."""
    return [
        m
        for m in re.finditer(rf"(?<![\w:]){re.escape(sample)}(?![\w:])", expr)
        if not expr[m.end() :].lstrip().startswith(("(", "by "))
    ]


def replace_selector(expr: str, sample: str, wrong: str) -> str:
    """``expr`` with its selector of ``sample`` renamed: the last one, since a generated
    query groups (``by (x)``) before it selects."""
    last = selectors_of(expr, sample)[-1]
    return expr[: last.start()] + wrong + expr[last.end() :]


def edit_expr(draw: Draw, project: Project, catalog: CatalogDecl) -> Mutation:
    board = draw(st.sampled_from(catalog.boards))
    path = project.generated / f"{board.file_uid}.json"
    dashboard = json.loads(path.read_bytes())
    panel = draw(st.sampled_from(generated_panels(dashboard)))
    target = draw(st.sampled_from(panel["targets"]))
    ours = {s for m in catalog.metrics for s in oracle(m).samples}
    selected = {
        name
        for name in sample_names_in(target["expr"]) & ours
        if selectors_of(target["expr"], name)
    }
    sample = draw(st.sampled_from(sorted(selected)))
    wrong = f"zqwrong_{sample}"
    target["expr"] = replace_selector(target["expr"], sample, wrong)
    path.write_text(json.dumps(dashboard, indent=2) + "\n", encoding="utf-8")
    return Mutation(
        required=frozenset({("unknown-metric", wrong), ("stale-file", path.name)}),
        allowed=frozenset({"unknown-metric", "stale-file", "unpanelled-family"}),
    )


def remove_panel(draw: Draw, project: Project, catalog: CatalogDecl) -> Mutation:
    board = draw(st.sampled_from(catalog.boards))
    path = project.generated / f"{board.file_uid}.json"
    dashboard = json.loads(path.read_bytes())
    panel = draw(st.sampled_from(generated_panels(dashboard)))
    for holder in [dashboard, *(p for p in dashboard["panels"] if p["type"] == "row")]:
        holder["panels"] = [p for p in holder.get("panels", []) if p is not panel]
    path.write_text(json.dumps(dashboard, indent=2) + "\n", encoding="utf-8")
    required = {("stale-file", path.name)}
    # Its family is unpanelled if no panel left on any dashboard reads one of its samples.
    removed = {s for t in panel["targets"] for s in sample_names_in(t["expr"])}
    left: set[str] = set()
    for file in project.generated.glob("*.json"):
        for other in generated_panels(json.loads(file.read_bytes())):
            left |= {s for t in other["targets"] for s in sample_names_in(t["expr"])}
    for metric in catalog.placed():
        exported = oracle(metric)
        if exported.samples & removed and not exported.samples & left:
            required.add(("unpanelled-family", exported.family))
    return Mutation(
        required=frozenset(required), allowed=frozenset({"stale-file", "unpanelled-family"})
    )


def stray_file(draw: Draw, project: Project, catalog: CatalogDecl) -> Mutation:
    directory = draw(st.sampled_from(["", "provisioning/", "notes/"]))
    stem = draw(st.from_regex(r"stray-[a-z0-9]{1,8}", fullmatch=True))
    name = directory + stem + draw(st.sampled_from([".txt", ".md", ".yaml", "", ".json"]))
    # A stray .json is read as a dashboard: give it a valid, empty one.
    content = '{"title": "stray", "panels": []}\n' if name.endswith(".json") else "scratch\n"
    project.write(f"generated/{name}", content)
    return Mutation(required=frozenset({("orphan-file", name)}), allowed=frozenset({"orphan-file"}))


Mutate = Callable[[Draw, Project, CatalogDecl], Mutation]
# name -> (mutation, what the catalog's first metric needs for the mutation to apply)
MUTATIONS: dict[str, tuple[Mutate, dict[str, Any]]] = {
    "rename-metric": (rename_metric, {}),
    "change-unit": (change_unit, {}),
    "counter-to-up-down-counter": (counter_to_up_down, {"kinds": tuple(sorted(MONOTONIC))}),
    "rename-label": (rename_label, {"grouped": True}),
    "delete-declaration": (delete_declaration, {}),
    "add-declaration-without-building": (add_declaration, {}),
    "hand-edit-generated-expr": (edit_expr, {}),
    "remove-panel-from-generated": (remove_panel, {}),
    "stray-file-in-generated": (stray_file, {}),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_every_single_mutation_is_caught(name: str) -> None:
    """After a clean build, any one drift makes verify exit 1 with the finding that names it."""
    mutate, first = MUTATIONS[name]

    @SETTINGS
    @given(catalog=catalogs(**first), data=st.data())
    def mutated(catalog: CatalogDecl, data: st.DataObject) -> None:
        with project_with(catalog) as project:
            build_ok(project)
            mutation = mutate(data.draw, project, catalog)
            code, findings = verify_json(project)
            assert code == 1, (name, mutation)
            mutation.check(findings)
            event(f"caught: {name}")

    mutated()


# --- determinism --------------------------------------------------------------------------

# Builds every project given on the command line into <project>/<out>, in one process, so
# that a hundred builds under one hash seed cost one interpreter start-up.
BUILD_ALL = """
import sys
from typer.testing import CliRunner
from dashgen.cli import app

out, projects = sys.argv[1], sys.argv[2:]
for project in projects:
    result = CliRunner().invoke(app, ["build", "--project", project, "--output", out])
    if result.exit_code != 0:
        sys.exit(f"{project}: exit {result.exit_code}: {result.stderr}{result.exception!r}")
"""
HASH_SEEDS = ("0", "4242")


def tree(directory: Path) -> dict[str, bytes]:
    return {
        p.relative_to(directory).as_posix(): p.read_bytes()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_build_is_byte_identical_under_two_hash_seeds(tmp_path: Path) -> None:
    """Set and dict order must never leak into the output: diffs of generated/ mean edits.

    Hypothesis only generates and writes the catalogs here; then one interpreter per hash
    seed builds all of them, the two running side by side. A process per build and seed
    would spend most of its time importing (about 0.5 s each, 200 of them).
    """
    projects: list[Path] = []

    @SETTINGS
    @given(catalogs())
    def collect(catalog: CatalogDecl) -> None:
        root = tmp_path / f"p{len(projects)}"
        root.mkdir()
        (root / "pyproject.toml").write_text('[tool.dashgen]\nsources = "src"\n')
        write_sources(Project(root), catalog)
        projects.append(root)

    collect()
    assert len(projects) >= min(SETTINGS.max_examples, 50)
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", BUILD_ALL, f"out-{seed}", *map(str, projects)],
            env={**os.environ, "PYTHONHASHSEED": seed},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for seed in HASH_SEEDS
    ]
    for run in runs:
        _, stderr = run.communicate(timeout=600)
        assert run.returncode == 0, stderr
    for root in projects:
        first, second = (tree(root / f"out-{seed}") for seed in HASH_SEEDS)
        assert first, root
        assert first == second, root
