"""The contract stage of ``verify``: dashboard queries against the families the exporter made.

A pure function from parsed dashboards, exported families and rules to findings, so it can be
tested without files and reused by any front end. Names are compared as Prometheus stores
them, i.e. by *sample* name (``x_total``, ``x_bucket``), never by family name.

Checks:

* forward: a selector's exact metric name is no exported sample (``unknown-metric``, with a
  "did you mean" hint), or its ``__name__`` regex matches none (``unmatched-regex``);
* labels: a matcher label is not on the selector's family, or a grouping label is on none of
  the families the query reads and the query does not introduce it (``unknown-label``);
* reverse: an exported family no query reads (``unpanelled-family``);
* a query the parser rejected (``unparsable-query``).

External metrics (from config) are never missing and never required; excluded families are
never required. When a family's label set is unknown, label checks against it are skipped and
an ``info`` line says so instead of guessing.
"""

from __future__ import annotations

import difflib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import NamedTuple

from dashgen.errors import DashgenError
from dashgen.families import RECORDED, Family
from dashgen.units import contradiction, unit_from_name
from dashgen.verify.accepted import ContractRules, ExternalMetric
from dashgen.verify.dashboards import (
    PANEL,
    RULES,
    VARIABLE,
    DashboardQueries,
    ParsedTarget,
    Target,
)
from dashgen.verify.promql import PLACEHOLDER, QueryRefs, Selector
from dashgen.verify.regex import Pattern, RegexError, compile_regex, examples, full_matcher

UNKNOWN_METRIC = "unknown-metric"
UNKNOWN_LABEL = "unknown-label"
UNPANELLED_FAMILY = "unpanelled-family"
UNPARSABLE_QUERY = "unparsable-query"
UNMATCHED_REGEX = "unmatched-regex"
UNREADABLE_FILE = "unreadable-file"
LEGEND_LABEL = "legend-label-missing"
UNIT_MISMATCH = "unit-mismatch"

# Produced by the build/verify front end from the generated files, not by check_contract.
STALE_FILE = "stale-file"
MISSING_FILE = "missing-file"
ORPHAN_FILE = "orphan-file"

_HISTOGRAM_SUFFIXES = ("_bucket", "_count", "_sum")
# Unit words of Prometheus naming conventions, only used to explain "did you mean" hints.
_UNIT_WORDS = (
    "seconds|milliseconds|microseconds|nanoseconds|minutes|hours|days|ms|us|ns"
    "|bytes|kibibytes|mebibytes|gibibytes|tibibytes|kilobytes|megabytes|gigabytes|terabytes"
    "|bits|meters|volts|amperes|joules|watts|grams|celsius|hertz|percent|ratio"
)
_PER_WORDS = "second|minute|hour|day|week|month|year"
_NAME_PARTS = re.compile(
    rf"(?P<stem>.*?)(?:_(?:{_UNIT_WORDS}))?(?:_per_(?:{_PER_WORDS}|{_UNIT_WORDS}))?"
    r"(?P<tail>_total|_bucket|_count|_sum)?"
)
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_:]")
_SHORTLIST = 20


@dataclass(frozen=True)
class Finding:
    """One problem, located down to the target, with a one-line fix."""

    kind: str
    file: str
    dashboard: str
    panel: str
    ref_id: str
    subject: str
    message: str
    hint: str
    place: str = PANEL
    """What ``panel`` names: a panel, a library panel, a variable or an annotation."""
    source: str = ""
    """For a finding about a family or an instrument: the code file that declares or creates
    it, by which the report groups them (an adoption run has hundreds); else ""."""

    @classmethod
    def of_family(cls, kind: str, subject: str, message: str, hint: str, site: str) -> Finding:
        """A finding about an exported family or an instrument, not about one dashboard;
        ``site`` is where the code declares or creates it ("file:line", "" when unknown)."""
        return cls(
            kind=kind,
            file="",
            dashboard="",
            panel="",
            ref_id="",
            subject=subject,
            message=message,
            hint=hint,
            source=site.partition(",")[0].rpartition(":")[0],
        )

    @classmethod
    def at(cls, target: Target, kind: str, subject: str, message: str, hint: str) -> Finding:
        """A finding about one query target: its file, dashboard, panel and refId."""
        return cls(
            kind=kind,
            file=target.file,
            dashboard=target.dashboard,
            panel=target.panel,
            ref_id=target.ref_id,
            subject=subject,
            message=message,
            hint=hint,
            place=target.place,
        )

    def sort_key(self) -> tuple[str, ...]:
        """File (or, for family-level findings, the code file), panel, refId, kind, subject
        first; the rest only breaks ties."""
        return (
            self.file,
            self.source,
            self.panel,
            self.ref_id,
            self.kind,
            self.subject,
            self.dashboard,
            self.message,
            self.hint,
        )


@dataclass(frozen=True)
class VerifyResult:
    """Findings in a deterministic order, plus the counts a summary needs.

    ``targets`` counts every target seen: ``parsed`` ones, skipped ones (non-Prometheus
    datasource and the like) and the rest, which failed to parse.
    """

    findings: tuple[Finding, ...]
    dashboards: int
    targets: int
    parsed: int
    skipped: int
    skipped_reasons: Mapping[str, int]
    info: tuple[str, ...]
    rule_groups: int = 0

    @property
    def ok(self) -> bool:
        """True when there is nothing to fix (``info`` lines do not count)."""
        return not self.findings


def check_contract(
    dashboards: Sequence[DashboardQueries],
    families: Sequence[Family],
    rules: ContractRules,
    notes: Sequence[str] = (),
) -> VerifyResult:
    """Compare every parsed target with the exported families and return all findings;
    ``notes`` (files that hold no dashboard) join the info lines."""
    checker = _Checker(_Exported(families, rules), rules)
    checker.info.update(notes)
    targets = parsed = 0
    skipped_reasons: Counter[str] = Counter()
    for dash in dashboards:
        if dash.error is not None:
            checker.findings.add(
                Finding(
                    kind=UNREADABLE_FILE,
                    file=dash.file,
                    dashboard="",
                    panel="",
                    ref_id="",
                    subject=dash.file,
                    message=dash.error,
                    hint="fix the file, or exclude it (--exclude, [tool.dashgen] "
                    "exclude_dashboards); the other dashboards were checked",
                )
            )
            continue
        for parsed_target in dash.targets:
            targets += 1
            parsed += parsed_target.refs is not None
            checker.check_target(parsed_target)
        targets += len(dash.skipped)
        skipped_reasons.update(s.reason for s in dash.skipped)
    checker.check_unpanelled(families)
    checker.join_renames()
    return VerifyResult(
        findings=tuple(sorted(checker.findings, key=Finding.sort_key)),
        dashboards=sum(dash.error is None and not dash.rules for dash in dashboards),
        rule_groups=sum(dash.rules for dash in dashboards),
        targets=targets,
        parsed=parsed,
        skipped=sum(skipped_reasons.values()),
        skipped_reasons=dict(sorted(skipped_reasons.items())),
        info=tuple(sorted(checker.info)),
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _quote_list(names: Iterable[str]) -> str:
    return ", ".join(f"`{n}`" for n in names)


def _did_you_mean(names: Sequence[str], why: str = "") -> str:
    listed = _quote_list(names[:-1]) + " or " if len(names) > 1 else ""
    listed += f"`{names[-1]}`"
    return f"did you mean {listed}?" + (f" ({why})" if why else "")


class _RegexMatch(NamedTuple):
    """The exported samples a ``__name__`` regex matches, and whether it may select externals.

    Regex overlap is undecidable in general, so "may select externals" means: the same regex
    text is declared external, an exact external name matches it, or an external pattern
    matches one of the strings it matches (``node_cpu.*`` under ``node_.*``).
    """

    samples: tuple[str, ...]
    external: bool


class _Exported:
    """Indexes over the exported families and the externals, built once per run."""

    def __init__(self, families: Sequence[Family], rules: ContractRules) -> None:
        self.by_sample: dict[str, list[Family]] = {}
        for family in families:
            for sample in family.samples:
                self.by_sample.setdefault(sample, []).append(family)
        self.sample_names = sorted(self.by_sample)
        self._external_names = {e.pattern for e in rules.external if not e.is_regex}
        self._external_regexes = {
            e.pattern: _compile_external(e) for e in rules.external if e.is_regex
        }
        self._regexes: dict[str, _RegexMatch | RegexError] = {}
        self._hints: dict[str, str] = {}
        self.suggestions: dict[str, tuple[str, ...]] = {}
        """Unknown name -> the exported samples its hint proposes."""

    @cached_property
    def all_labels(self) -> frozenset[str] | None:
        """Every label of every family; None when some family's label set is unknown."""
        families = [f for found in self.by_sample.values() for f in found]
        if any(f.labels is None for f in families):
            return None
        return frozenset(label for f in families for label in f.labels or ())

    def is_external(self, name: str) -> bool:
        """Whether config declares ``name`` as coming from elsewhere."""
        return name in self._external_names or any(
            r.fullmatch(name) for r in self._external_regexes.values()
        )

    def regex_matches(self, regex: str) -> _RegexMatch:
        """What a ``__name__`` regex selects, compiled and matched once per distinct text.

        Raises :class:`RegexError` when it is not valid RE2, as Prometheus would refuse it.
        """
        cached = self._regexes.get(regex)
        if cached is None:
            try:
                matches = full_matcher(regex)
            except RegexError as exc:
                cached = exc
            else:
                cached = _RegexMatch(
                    samples=tuple(filter(matches, self.sample_names)),
                    external=regex in self._external_regexes
                    or any(matches(name) for name in self._external_names)
                    or (
                        bool(self._external_regexes)  # exact names were asked just above
                        and any(self.is_external(example) for example in examples(regex))
                    ),
                )
            self._regexes[regex] = cached
        if isinstance(cached, RegexError):
            raise cached
        return cached

    def unknown_metric_hint(self, name: str) -> str:
        """How to fix a name no family exports, with the nearest real sample names."""
        if name not in self._hints:
            self._hints[name] = self._compute_hint(name)
        return self._hints[name]

    @cached_property
    def _unit_variants(self) -> dict[str, list[str]]:
        """Sample names keyed by name without its unit words: only needed for hints."""
        variants: dict[str, list[str]] = {}
        for sample in self.sample_names:
            variants.setdefault(_without_unit(sample), []).append(sample)
        return variants

    def _compute_hint(self, name: str) -> str:
        sanitized = _NOT_NAME_CHAR.sub("_", name)
        renamed = "the exporter turns dots and other characters into `_`"
        if sanitized != name and sanitized in self.by_sample:
            self.suggestions[name] = (sanitized,)
            return _did_you_mean([sanitized], renamed)
        names, why = self._near_names(sanitized)
        self.suggestions[name] = tuple(names)
        if names:
            if sanitized != name:
                why = f"{renamed}; {why}" if why else renamed
            return _did_you_mean(names, why)
        return (
            "no exported sample is close: fix the name, make sure the instrument records at "
            "least once, or declare the metric external with a reason"
        )

    def _near_names(self, name: str) -> tuple[list[str], str]:
        """Candidates for the common naming slips first, then plain string closeness."""
        known = self.by_sample
        units = [v for v in self._unit_variants.get(_without_unit(name), []) if v != name]
        if units:
            return units[:3], "the unit suffix comes from the instrument's unit"
        base = name.removesuffix("_total")
        if base != name and base in known:
            why = f"`{base}` is a {known[base][0].type}: only counter samples end in `_total`"
            return [base], why
        if f"{name}_total" in known:
            return [f"{name}_total"], "counter samples end in `_total`"
        for suffix in _HISTOGRAM_SUFFIXES:
            base = name.removesuffix(suffix)
            if base != name:
                found = [c for c in (base, f"{base}_total") if c in known]
                if found:
                    kind = known[found[0]][0].type
                    return found, f"a {kind} has no `{suffix}` sample, only histograms do"
        parts = [f"{name}{suffix}" for suffix in _HISTOGRAM_SUFFIXES if f"{name}{suffix}" in known]
        if parts:
            return parts, "a histogram exports only `_bucket`, `_count` and `_sum` samples"
        return difflib.get_close_matches(name, self._shortlist(name), n=3, cutoff=0.75), ""

    @cached_property
    def _trigram_index(self) -> dict[str, list[str]]:
        """Sample names by the character trigrams they contain: only needed for hints."""
        index: dict[str, list[str]] = {}
        for sample in self.sample_names:
            for gram in _trigrams(sample):
                index.setdefault(gram, []).append(sample)
        return index

    def _shortlist(self, name: str) -> list[str]:
        """The samples sharing most trigrams with ``name``.

        difflib over every sample costs seconds when a thousand names are unknown; names it
        would call close share most of their trigrams, so it only sees the best few.
        """
        shared: Counter[str] = Counter()
        for gram in _trigrams(name):
            shared.update(self._trigram_index.get(gram, ()))
        return [sample for sample, _ in shared.most_common(_SHORTLIST)]


def _compile_external(external: ExternalMetric) -> Pattern:
    try:
        return compile_regex(external.pattern)
    except RegexError as exc:
        raise DashgenError(
            "external metrics", f"pattern `{external.pattern}` is not a valid regex: {exc}"
        ) from exc


def _trigrams(name: str) -> set[str]:
    padded = f"^{name}$"
    return {padded[i : i + 3] for i in range(len(padded) - 2)}


def _without_unit(name: str) -> str:
    match = _NAME_PARTS.fullmatch(name)
    assert match is not None  # the stem can take the whole name
    return match["stem"] + (match["tail"] or "")


def _label_hint(label: str, known: frozenset[str]) -> str:
    if label == "le":
        return "only histogram `_bucket` samples have `le`"
    sanitized = _NOT_NAME_CHAR.sub("_", label)
    if sanitized != label and sanitized in known:
        return _did_you_mean([sanitized], "the exporter turns dots into `_` in attribute names")
    near = difflib.get_close_matches(label, sorted(known), n=3, cutoff=0.6)
    if near:
        return _did_you_mean(near)
    return "use a label the metric has, or record the attribute where the metric is recorded"


class _Checker:
    """Walks the targets once, collecting findings, info lines and the samples queries read."""

    def __init__(self, exported: _Exported, rules: ContractRules) -> None:
        self.exported = exported
        self.rules = rules
        self.findings: set[Finding] = set()
        self.info: set[str] = set()
        self.used: set[str] = set()
        self._samples_read: set[str] = set()
        """The exported samples the target being checked reads."""
        self._buffer: list[Finding] | None = None
        """The findings of the selector being resolved, kept until its ``or`` is judged."""

    def check_target(self, parsed: ParsedTarget) -> None:
        """Check one target; grouping labels only when every selector resolved to families."""
        target = parsed.target
        if parsed.refs is None:
            error = _one_line(parsed.error or "no parse result")
            self._add(
                target,
                UNPARSABLE_QUERY,
                _one_line(target.expr),
                f"query does not parse: {error}",
                "fix the PromQL; Grafana variables are substituted before parsing, "
                "so also check the text around them",
            )
            return
        refs = parsed.refs
        if refs.placeholder_metric:
            self.info.add(
                f"{_where(target)}: a metric name comes from a Grafana variable, not checked"
            )
        resolved = []
        self._samples_read = set()
        for selector in refs.selectors:
            self._buffer = []
            resolved.append((selector, self._resolve(target, selector), self._buffer))
        self._buffer = None
        dead = _dead_branches(resolved)
        read: set[Family] = set()
        complete = True
        for selector, families, found in resolved:
            if selector.alternative in dead:
                continue  # another branch of its `or` reads a live name: Grafana draws that
            self.findings.update(found)
            if families is None:
                complete = False
            else:
                read |= families
        if complete and read:
            self._check_grouping(target, refs, read)
        self._check_any_family_labels(target, refs.labels_on_any_family)
        self._check_unit(target, refs)

    def _check_unit(self, target: Target, refs: QueryRefs) -> None:
        """A panel unit that contradicts what the query's values measure: ``ms`` on a
        seconds series with no ``* 1000`` draws values 1000 times off."""
        measured = refs.measured
        if not target.unit or measured is None or measured.sample.endswith("_count"):
            return
        families = self.exported.by_sample.get(measured.sample)
        if not families:
            return
        unit = families[0].unit or unit_from_name(families[0].name)
        wrong = contradiction(unit, target.unit, measured.scale)
        if wrong is not None:
            message, hint = wrong
            self._add(target, UNIT_MISMATCH, target.unit, f"`{measured.sample}`: {message}", hint)

    def _check_any_family_labels(self, target: Target, wanted: frozenset[str]) -> None:
        """``label_values(route)``: some exported family must have the label."""
        candidates = wanted - self.rules.scrape_labels
        if not candidates:
            return
        labels = self.exported.all_labels
        if labels is None:
            return
        for label in sorted(candidates - labels):
            self._add(
                target,
                UNKNOWN_LABEL,
                label,
                f"label `{label}` is on no exported family",
                _label_hint(label, labels),
            )

    def check_unpanelled(self, families: Sequence[Family]) -> None:
        """Report families no query reads, except info, excluded and external ones."""
        excluded = self.rules.excluded
        matched_exclusions: set[str] = set()
        for family in families:
            exclusion = {family.name, *family.samples} & excluded.keys()
            matched_exclusions |= exclusion
            if (
                exclusion
                or family.type in ("info", RECORDED)
                or "target_info" in family.samples
                or any(s in self.used for s in family.samples)
                or any(self.exported.is_external(s) for s in family.samples)
            ):
                continue
            declared = f", declared at {family.source}" if family.source else ""
            self.findings.add(
                Finding.of_family(
                    UNPANELLED_FAMILY,
                    family.name,
                    f"{family.type} `{family.name}` ({_quote_list(family.samples)}) "
                    f"is on no dashboard{declared}",
                    "add a panel that queries it, or exclude it with a reason if it is "
                    "not meant for dashboards",
                    family.source,
                )
            )
        for name in excluded.keys() - matched_exclusions:
            self.info.add(f"exclusion `{name}` matches no exported family")

    def join_renames(self) -> None:
        """One cause, one finding per query site: when a dashboard's unknown name has one
        close exported name that no panel reads, that is a rename. The family is not also
        reported as unpanelled; the unknown-metric findings say it is the new name."""
        renamed: dict[str, Family] = {}
        for finding in self.findings:
            proposed = self.exported.suggestions.get(finding.subject, ())
            if finding.kind == UNKNOWN_METRIC and len(proposed) == 1:
                renamed[finding.subject] = self.exported.by_sample[proposed[0]][0]
        unpanelled = {f.subject for f in self.findings if f.kind == UNPANELLED_FAMILY}
        joined = {family.name for family in renamed.values() if family.name in unpanelled}
        if not joined:
            return
        findings = {
            f for f in self.findings if not (f.kind == UNPANELLED_FAMILY and f.subject in joined)
        }
        for finding in list(findings):
            new = renamed.get(finding.subject) if finding.kind == UNKNOWN_METRIC else None
            if new is not None and new.name in joined:
                findings.discard(finding)
                note = "; no panel reads it, so it is most likely the name meant here"
                findings.add(replace(finding, hint=finding.hint + note))
        self.findings = findings

    def _resolve(self, target: Target, selector: Selector) -> frozenset[Family] | None:
        """The families a selector reads, or None when it may read anything else.

        A selector with neither a name nor a name regex (``{job="x"}``, a negated name, a name
        from a Grafana variable) can read anything, so it neither proves usage nor fails.
        """
        if selector.metric is not None:
            return self._resolve_name(target, selector, selector.metric)
        if selector.name_regex is not None:
            return self._resolve_regex(target, selector, selector.name_regex)
        return None

    def _read(self, target: Target, samples: set[str]) -> None:
        """``target`` reads these samples; a variable's query (the options of a ``job``
        menu) and a rule show none of them, so they put no family on a dashboard."""
        self._samples_read.update(samples)
        if target.place != VARIABLE and target.place not in RULES:
            self.used.update(samples)

    def _resolve_name(
        self, target: Target, selector: Selector, name: str
    ) -> frozenset[Family] | None:
        families = self.exported.by_sample.get(name)
        if families is not None:
            self._read(target, {name})
            self._check_matchers(target, selector, f"`{name}`", families, {name})
            return frozenset(families)
        if self.exported.is_external(name):
            return None
        self._add(
            target,
            UNKNOWN_METRIC,
            name,
            f"no exported sample is named `{name}`",
            self.exported.unknown_metric_hint(name),
        )
        return None

    def _resolve_regex(
        self, target: Target, selector: Selector, regex: str
    ) -> frozenset[Family] | None:
        try:
            samples, covered = self.exported.regex_matches(regex)
        except RegexError as exc:
            self._add(
                target,
                UNPARSABLE_QUERY,
                regex,
                f"`__name__` regex `{regex}` does not compile: {exc}",
                "fix the regex",
            )
            return None
        if not samples:
            if not covered:
                self._add(
                    target,
                    UNMATCHED_REGEX,
                    regex,
                    f'`__name__=~"{regex}"` matches no exported sample',
                    "fix the regex (Prometheus anchors it: it must match the whole name), "
                    "or declare this exact regex as an external metric with a reason",
                )
            return None
        self._read(target, set(samples))
        families = frozenset(f for s in samples for f in self.exported.by_sample[s])
        if covered:
            return None
        self._check_matchers(target, selector, f'`__name__=~"{regex}"`', families, set(samples))
        return families

    def _check_matchers(
        self,
        target: Target,
        selector: Selector,
        what: str,
        families: Iterable[Family],
        samples: set[str],
    ) -> None:
        candidates = selector.labels - self.rules.scrape_labels
        if not candidates:
            return
        labels = self._labels_of(families)
        if labels is None:
            return
        labels = _le_only_on_buckets(labels, samples)
        for label in sorted(candidates - labels):
            self._add(
                target,
                UNKNOWN_LABEL,
                label,
                f"label `{label}` is not on {what} (it has {_quote_list(sorted(labels))})",
                _label_hint(label, labels),
            )

    def _check_grouping(self, target: Target, refs: QueryRefs, read: set[Family]) -> None:
        # Matcher labels were checked against their own selector already.
        matcher_labels = {label for s in refs.selectors for label in s.labels}
        allowed = refs.introduced_labels | self.rules.scrape_labels | {"__name__"}
        grouping = refs.grouping_labels - allowed - matcher_labels
        sources = refs.source_labels - allowed
        if not (grouping or sources or (target.legend_labels and refs.result is not None)):
            return
        labels = self._labels_of(read)
        if labels is None:
            return
        labels = _le_only_on_buckets(labels, self._samples_read)
        missing = (grouping | sources) - labels
        names = _quote_list(sorted(f.name for f in read)) if missing else ""
        for label in sorted(grouping - labels):
            self._add(
                target,
                UNKNOWN_LABEL,
                label,
                f"grouping label `{label}` is on none of the families this query reads ({names})",
                _label_hint(label, labels),
            )
        for label in sorted(sources - labels):
            self._add(
                target,
                UNKNOWN_LABEL,
                label,
                f"label_replace/label_join reads `{label}`, which is on none of the families "
                f"this query reads ({names}): the copy is always empty",
                _label_hint(label, labels),
            )
        self._check_legend(target, refs, labels)

    def _check_legend(self, target: Target, refs: QueryRefs, read: frozenset[str]) -> None:
        """A ``{{label}}`` in the legend that the query's result cannot carry: every series
        gets the same empty name."""
        result = refs.result
        if result is None or not target.legend_labels:
            return
        if result.exact is not None:
            if any(PLACEHOLDER in label for label in result.exact):
                return  # by ($group): the labels come from a variable
            possible = result.exact
            keeps = f"the result keeps only {_quote_list(sorted(possible)) or 'no labels'}"
        else:
            possible = (read | self.rules.scrape_labels | result.added) - result.removed
            keeps = "no series it reads has it"
        for label in target.legend_labels:
            if label not in possible and label != "__name__":
                hint = (
                    f"name a label the result has ({_quote_list(sorted(possible))}), or keep "
                    f"`{label}` in the aggregation: by ({label}, ...)"
                    if possible
                    else f"keep `{label}` in the aggregation: sum by ({label}) (...)"
                )
                uses = (
                    f"an annotation uses {{{{ $labels.{label} }}}}"
                    if target.place in RULES
                    else f"legend uses {{{{{label}}}}}"
                )
                self._add(
                    target,
                    LEGEND_LABEL,
                    label,
                    f"{uses}, which the result cannot have: {keeps}",
                    hint,
                )

    def _labels_of(self, families: Iterable[Family]) -> frozenset[str] | None:
        """Union of the families' labels; None (with an info line) if any is unknown."""
        union: set[str] = set()
        unknown = False
        for family in families:
            if family.labels is None:
                self.info.add(f"label set unknown for family `{family.name}`: label check skipped")
                unknown = True
            else:
                union.update(family.labels)
        return None if unknown else frozenset(union)

    def _add(self, target: Target, kind: str, subject: str, message: str, hint: str) -> None:
        finding = Finding.at(target, kind, subject, message, hint)
        if self._buffer is None:
            self.findings.add(finding)
        else:
            self._buffer.append(finding)


def _le_only_on_buckets(labels: frozenset[str], samples: set[str]) -> frozenset[str]:
    """A histogram's ``le`` is on its ``_bucket`` samples only, not on ``_count``/``_sum``."""
    if "le" in labels and not any(sample.endswith("_bucket") for sample in samples):
        return labels - {"le"}
    return labels


_DEAD_NAME = frozenset({UNKNOWN_METRIC, UNMATCHED_REGEX})


def _dead_branches(
    resolved: Sequence[tuple[Selector, frozenset[Family] | None, list[Finding]]],
) -> set[tuple[int, int] | None]:
    """The ``or`` branches that read a dead name while another branch of theirs reads only
    live ones: the query still draws, so only the live branches are judged."""
    failed: dict[int, dict[int, bool]] = {}
    for selector, _, found in resolved:
        if selector.alternative is None:
            continue
        group, branch = selector.alternative
        dead = any(finding.kind in _DEAD_NAME for finding in found)
        branches = failed.setdefault(group, {})
        branches[branch] = branches.get(branch, False) or dead
    return {
        (group, branch)
        for group, branches in failed.items()
        if not all(branches.values())
        for branch, dead in branches.items()
        if dead
    }


def _where(target: Target) -> str:
    if target.place in RULES:
        return f"{target.file}: {target.place} {target.panel!r}"
    return f"{target.file}: panel {target.panel!r} refId {target.ref_id}"
