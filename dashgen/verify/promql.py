"""PromQL from Grafana targets -> the metric and label names it references.

Grafana variables make most real queries unparseable (``rate(x[$__rate_interval])``,
``by ($group)``), so :func:`substitute_variables` first puts a placeholder of the right kind
at each variable's position; :func:`extract_refs` then parses with promql-parser and walks
the AST. Placeholder names start with :data:`PLACEHOLDER`, and ``__`` is reserved by
Prometheus, so they can never be mistaken for real metric or label names.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

import promql_parser
from promql_parser import (
    AggregateExpr,
    BinaryExpr,
    Call,
    Expr,
    Matcher,
    MatchOp,
    MatrixSelector,
    NumberLiteral,
    ParenExpr,
    StringLiteral,
    SubqueryExpr,
    UnaryExpr,
    VectorSelector,
)

PLACEHOLDER = "__dashgen_var"
"""Prefix of the names that stand for a metric or label name from a Grafana variable."""

_DURATION = "5m"
_NUMBER = "1"
# What stands in for a variable that names an aggregation or a function.
_AGGREGATION = "sum"
_FUNCTION_OF_RANGE = "last_over_time"
_GROUPING_WORD = re.compile(r"(?:by|without)\s*\(", re.IGNORECASE)

# Grafana's own three variable syntaxes: $var, ${var[.field][:format]}, [[var[:format]]].
_VARIABLE = re.compile(r"\$\w+|\$\{\w+(?:\.[^:}]*)?(?::[^}]*)?\}|\[\[\w+(?::\w+)?\]\]")
# Characters where the scanner's context can change; everything between them is copied.
_SPECIAL = re.compile(r"[\"'`#$\[\](){}]")
_NON_SPACE = re.compile(r"\S")
# A string literal from its opening quote; an unterminated one runs to the end of input.
_STRING_END = {
    '"': re.compile(r'"(?:\\.|[^"\\])*"?', re.DOTALL),
    "'": re.compile(r"'(?:\\.|[^'\\])*'?", re.DOTALL),
    "`": re.compile(r"`[^`]*`?"),
}
# promql-parser overflows its native stack (a crash, not an exception) at a few thousand
# levels of nesting; this bounds the depth. The largest corpus query has 157.
_NESTING = re.compile(r"[(\[+\-*/%^<>=!]|\b(?:and|or|unless|atan2)\b", re.IGNORECASE)
_MAX_NESTING = 2000
_GROUPING = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
_LABEL_CREATORS = frozenset({"label_replace", "label_join"})
_COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})


class PromQLError(ValueError):
    """The query does not parse, even after variable substitution (one-line message)."""


@dataclass(frozen=True)
class Selector:
    """One series selector; one per ``or`` branch of ``{a="1" or b="2"}``.

    A selector with neither ``metric`` nor ``name_regex`` (``{job="x"}``, a negated name or a
    name from a variable) matches names that cannot be known here.
    """

    metric: str | None
    name_regex: str | None
    negated_name: bool
    labels: frozenset[str]
    alternative: tuple[int, int] | None = None
    """(group, branch) when the selector is in one branch of an ``a or b or c`` chain:
    Prometheus returns what any branch has, so one branch on a live name is enough."""


@dataclass(frozen=True)
class QueryRefs:
    """Everything a query needs to exist: selectors, plus label names used outside them."""

    selectors: tuple[Selector, ...]
    grouping_labels: frozenset[str]
    introduced_labels: frozenset[str]
    placeholder_metric: bool
    counter_inputs: frozenset[str] = frozenset()
    """Metric names read by ``rate``/``irate``/``increase``/``resets``: counters only."""
    quantiles_without_le: int = 0
    """``histogram_quantile`` calls whose buckets are aggregated away from ``le``."""
    labels_on_any_family: frozenset[str] = frozenset()
    """Labels that must be on some exported family (``label_values(route)``)."""
    source_labels: frozenset[str] = frozenset()
    """Labels ``label_replace``/``label_join`` read: on the series they are given."""
    result: ResultLabels | None = None
    """Which labels the query's result series can have; ``None`` when not worked out."""
    measured: Measured | None = None
    """What the result's values measure, where the query's shape says it plainly."""
    compared: str | None = None
    """For ``x > 0.1`` (an alert's usual form): ``x``, the query compared with a number,
    which has data even while the comparison filters every series out."""


@dataclass(frozen=True)
class Measured:
    """The result's values are the sample ``sample``'s own unit times ``scale``."""

    sample: str
    scale: float


@dataclass(frozen=True)
class ResultLabels:
    """The labels of a query's result: exactly ``exact`` (``sum by (a)``), or, when that is
    ``None``, those of the series it reads, less ``removed``, plus ``added``."""

    exact: frozenset[str] | None
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()

    def without(self, labels: frozenset[str]) -> ResultLabels:
        exact = None if self.exact is None else self.exact - labels
        return ResultLabels(exact, self.added - labels, self.removed | labels)

    def plus(self, labels: frozenset[str]) -> ResultLabels:
        exact = None if self.exact is None else self.exact | labels
        return ResultLabels(exact, self.added | labels, self.removed - labels)


def _is_name_char(char: str) -> bool:
    return char.isalnum() or char in "_:"


def _prev_index(expr: str, index: int) -> int:
    """Index of the last non-space character before ``index``, or -1."""
    index -= 1
    while index >= 0 and expr[index].isspace():
        index -= 1
    return index


def _word_before(expr: str, index: int) -> str:
    """The identifier that ends right before ``index`` (spaces skipped), or ""."""
    end = _prev_index(expr, index) + 1
    start = end
    while start > 0 and _is_name_char(expr[start - 1]):
        start -= 1
    return expr[start:end].lower()


def _string_end(expr: str, index: int) -> int:
    """Where the string literal opening at ``index`` ends (its patterns always match)."""
    literal = _STRING_END[expr[index]].match(expr, index)
    assert literal is not None
    return literal.end()


def _replacement(expr: str, start: int, end: int, context: str) -> str:
    """What to put in place of the variable ``expr[start:end]``, from where it stands."""
    if context == "[":
        # `[$__range]` -> `[5m]`; `[${__range_s}s]` already has its unit.
        return _NUMBER if expr[end : end + 1].isalpha() else _DURATION
    glued = (start > 0 and _is_name_char(expr[start - 1])) or (
        end < len(expr) and _is_name_char(expr[end])
    )
    # Unique per position: `on($a) group_left($b)` must not name one label twice.
    name = f"{PLACEHOLDER}_{start}__"
    if context == "(by" or glued:
        return name
    prev = _prev_index(expr, start)
    prev_char = expr[prev] if prev >= 0 else ""
    found = _NON_SPACE.search(expr, end)
    next_char = found.group() if found else ""
    if context == "{":
        if prev_char in ("=", "~"):
            return '""'
        return name if next_char in ("=", "!") else f'{name}!=""'
    offset_at = prev if prev_char == "-" else start
    if _word_before(expr, offset_at) == "offset":
        return _DURATION
    if found is not None and (next_char == "(" or _GROUPING_WORD.match(expr, found.start())):
        # `$agg by (x) (...)`, `${fn}(x[5m])`: an aggregation or a function from a variable.
        return _FUNCTION_OF_RANGE if _call_takes_range(expr, found.start()) else _AGGREGATION
    if next_char in ("{", "[") or (prev_char == "" and next_char == ""):
        return name
    if prev_char == "(" and next_char == ")":
        # The only argument of a call or aggregation is a vector, except in vector(...).
        before = _prev_index(expr, prev)
        if before >= 0 and expr[before] == ")":
            return name
        word = _word_before(expr, prev)
        if word and word != "vector":
            return name
    return _NUMBER


def _call_takes_range(expr: str, start: int) -> bool:
    """Whether the call whose ``(`` is at ``start`` has a range vector as last argument
    (``${fn}(x[5m])``); for ``$agg by (x) (...)`` it looks at the grouping's call."""
    depth = 0
    for index in range(start, len(expr)):
        char = expr[index]
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                before = _prev_index(expr, index)
                return before >= 0 and expr[before] == "]"
    return False


def _context(expr: str, bracket: int) -> str:
    """The innermost open bracket's kind: "[", "{", "(", or "(by" for a grouping clause."""
    char = expr[bracket]
    return "(by" if char == "(" and _word_before(expr, bracket) in _GROUPING else char


def substitute_variables(expr: str) -> str:
    """Replace each Grafana variable outside string literals so that the query parses.

    The kind of placeholder depends on the variable's position, found by scanning the text
    while tracking string literals, ``#`` comments and the open brackets:

    - inside ``[...]`` (range, subquery) or after ``offset``: a duration, ``5m``;
    - inside ``by/without/on/ignoring/group_left/group_right (...)``, or glued to a name
      (``node_${x}_bytes``): a placeholder name;
    - inside ``{...}``: a label name before a match operator, ``""`` after one, otherwise a
      whole matcher (ad hoc filters: ``{job="x", $filters}``);
    - where a metric name stands (before ``{`` or ``[``, the whole query, or the only
      argument of a call such as ``sum($metric)``): a placeholder name;
    - anywhere else a number, ``1`` (``topk($n, x)``, ``x > $threshold``).

    Variables inside string literals are left alone: promql-parser accepts them there.
    """
    if "$" not in expr and "[[" not in expr:
        return expr
    pieces: list[str] = []
    stack: list[int] = []  # where each open bracket is
    copied = pos = 0
    while (found := _SPECIAL.search(expr, pos)) is not None:
        index = found.start()
        char = expr[index]
        pos = index + 1
        if char in _STRING_END:
            pos = _string_end(expr, index)
        elif char == "#":
            newline = expr.find("\n", index)
            pos = len(expr) if newline < 0 else newline + 1
        elif char in "$[" and (variable := _VARIABLE.match(expr, index)) is not None:
            pieces.append(expr[copied:index])
            context = _context(expr, stack[-1]) if stack else ""
            pieces.append(_replacement(expr, index, variable.end(), context))
            copied = pos = variable.end()
        elif char in "[{(":
            stack.append(index)
        elif char in ")]}" and stack:
            stack.pop()
    pieces.append(expr[copied:])
    return "".join(pieces)


@dataclass
class _Found:
    """What the traversal has collected so far."""

    selectors: list[Selector] = field(default_factory=list)
    grouping: set[str] = field(default_factory=set)
    introduced: set[str] = field(default_factory=set)
    placeholder: bool = False
    counter_inputs: set[str] = field(default_factory=set)
    quantiles_without_le: int = 0
    groups: int = 0
    """``or`` chains seen so far, numbering them."""
    sources: set[str] = field(default_factory=set)


def _add_selectors(
    node: VectorSelector, found: _Found, alternative: tuple[int, int] | None
) -> None:
    """One :class:`Selector` per ``or`` branch (Prometheus unions them), else one."""
    name = node.name
    from_variable = name is not None and PLACEHOLDER in name
    metric = None if from_variable else name
    matchers = node.matchers
    common = matchers.matchers
    branches = [common + branch for branch in matchers.or_matchers]
    if name is not None and any(
        m.name == _NAME_AS_EQUALITY for group in branches or [common] for m in group
    ):
        raise _NotAsWritten  # `x{__name__=~"y"}` names the metric twice: an error
    if branches:  # {__name__="a" or __name__="b"}: an `or` chain of its own
        found.groups += 1
    for i, group in enumerate(branches or [common]):
        own = (found.groups - 1, i) if branches else alternative
        selector, named_by_variable = _selector(metric, group, own)
        found.selectors.append(selector)
        found.placeholder = found.placeholder or from_variable or named_by_variable


def _selector(
    metric: str | None, matchers: list[Matcher], alternative: tuple[int, int] | None
) -> tuple[Selector, bool]:
    """The selector for one matcher group, and whether a variable gave its ``__name__``."""
    name_regex: str | None = None
    negated = from_variable = False
    labels: set[str] = set()
    for matcher in matchers:
        label = matcher.name
        op = matcher.op
        if label == _NAME_AS_EQUALITY:  # read as equality by _plain_matchers: a regex
            label, op = "__name__", MatchOp.Re if op == MatchOp.Equal else MatchOp.NotRe
        if label != "__name__":
            if PLACEHOLDER not in label:
                labels.add(label)
            continue
        if op == MatchOp.NotEqual or op == MatchOp.NotRe:
            negated = True
        elif _VARIABLE.search(matcher.value):  # {__name__=~"$metric"}: not a real name
            from_variable = True
        elif op == MatchOp.Equal:
            metric = matcher.value or None
        else:
            name_regex = matcher.value
    negated = negated and metric is None and name_regex is None
    return Selector(metric, name_regex, negated, _shared(labels), alternative), from_variable


def _collect(ast: Expr) -> _Found:
    """Depth-first, left to right, so that selectors come in query order.

    An explicit stack, not recursion, so depth is no limit; and a direct traversal rather
    than ``promql_parser.walk``, which makes a Python object and a callback for every node
    and cost about 50 times as much here (77 us against 1.5 us per corpus query).
    """
    found = _Found()
    pending: list[tuple[Expr, tuple[int, int] | None]] = [(ast, None)]
    while pending:
        node, alternative = pending.pop()
        if isinstance(node, VectorSelector):
            _add_selectors(node, found, alternative)
        elif isinstance(node, MatrixSelector):
            _add_selectors(node.vector_selector, found, alternative)
        elif isinstance(node, BinaryExpr) and _is_or(node):
            branches = _or_branches(node, found.grouping)
            group = found.groups
            found.groups += 1
            pending += [(branch, (group, i)) for i, branch in reversed(list(enumerate(branches)))]
        elif isinstance(node, BinaryExpr):
            _add_matching_labels(node, found.grouping)
            pending += ((node.rhs, alternative), (node.lhs, alternative))
        elif isinstance(node, AggregateExpr):
            if node.modifier is not None:
                found.grouping.update(node.modifier.labels)
            pending.append((node.expr, alternative))
            param = node.param
            if isinstance(param, StringLiteral) and str(node.op) == "count_values":
                found.introduced.add(param.val)
            elif param is not None:  # topk(scalar(x), y): the parameter may hold selectors
                pending.append((param, alternative))
        elif isinstance(node, Call):
            args = node.args
            name = node.func.name
            if name in _LABEL_CREATORS and isinstance(args[1], StringLiteral):
                found.introduced.add(args[1].val)
                read = args[3:4] if name == "label_replace" else args[3:]
                found.sources.update(arg.val for arg in read if isinstance(arg, StringLiteral))
            elif name in _COUNTER_FUNCTIONS and isinstance(args[0], MatrixSelector):
                metric = args[0].vector_selector.name
                if metric is not None and PLACEHOLDER not in metric:
                    found.counter_inputs.add(metric)
            elif name == "histogram_quantile" and len(args) == 2 and _drops_le(args[1]):
                found.quantiles_without_le += 1
            pending += [(arg, alternative) for arg in reversed(args)]
        elif isinstance(node, (ParenExpr, UnaryExpr, SubqueryExpr)):
            pending.append((node.expr, alternative))
    return found


def _add_matching_labels(node: BinaryExpr, grouping: set[str]) -> None:
    modifier = node.modifier
    if modifier is not None:
        if modifier.matching is not None:
            grouping.update(modifier.matching.labels)
        grouping.update(modifier.group_labels or ())


def _is_or(node: BinaryExpr) -> bool:
    return str(node.op).lower().endswith("or")


def _or_branches(node: Expr, grouping: set[str]) -> list[Expr]:
    """The branches of an ``a or b or (c or d)`` chain, left to right; the labels of its
    ``on (...)``/``ignoring (...)`` go into ``grouping``."""
    branches: list[Expr] = []
    pending = [node]
    while pending:
        item = pending.pop()
        while isinstance(item, ParenExpr):
            item = item.expr
        if isinstance(item, BinaryExpr) and _is_or(item):
            _add_matching_labels(item, grouping)
            pending += (item.rhs, item.lhs)
        else:
            branches.append(item)
    return branches


def _drops_le(node: Expr) -> bool:
    """True when the aggregation feeding ``histogram_quantile`` cannot keep ``le``."""
    while isinstance(node, ParenExpr):
        node = node.expr
    if not isinstance(node, AggregateExpr):
        return False
    modifier = node.modifier
    if modifier is None:
        return True
    keeps = "le" in modifier.labels
    return not keeps if str(modifier.type).endswith("By") else keeps


# RE2's \Q...\E (quote everything up to \E) as it stands inside a PromQL string literal,
# where the backslash is itself escaped ("\\Q") unless the literal is a raw `...` one.
_QUOTE_BLOCK = re.compile(r"(\\\\?)Q(.*?)(?:\1E|(?=[\"'`]$))", re.DOTALL)
_REGEX_META = re.compile(r"[^A-Za-z0-9_]")


def _without_quote_blocks(expr: str) -> str:
    """``expr`` with each \\Q...\\E of a regex literal spelt out as escaped characters.

    Prometheus (Go's RE2) takes \\Q...\\E; promql-parser checks regexes with Rust's regex
    crate, which does not, and would call a valid query broken. The regex means the same.
    """
    if "Q" not in expr or "\\" not in expr:
        return expr
    pieces: list[str] = []
    copied = pos = 0
    while (found := _SPECIAL.search(expr, pos)) is not None:
        index = found.start()
        pos = index + 1
        if expr[index] not in _STRING_END:
            continue
        pos = _string_end(expr, index)
        if expr[:index].rstrip().endswith("~"):
            literal = expr[index:pos]
            slash = "\\" if literal[0] == "`" else "\\\\"
            literal = _QUOTE_BLOCK.sub(functools.partial(_escaped, slash=slash), literal)
            pieces.append(expr[copied:index] + literal)
            copied = pos
    pieces.append(expr[copied:])
    return "".join(pieces)


def _escaped(block: re.Match[str], slash: str) -> str:
    """Every character of a quoted block but letters, digits and ``_`` behind a backslash."""
    return _REGEX_META.sub(lambda char: slash + char.group(), block.group(2))


_SHARED: dict[frozenset[str], frozenset[str]] = {}
_NONE: frozenset[str] = frozenset()


def _shared(labels: Iterable[str]) -> frozenset[str]:
    """The one frozenset of these names in this process: a few label sets recur in
    thousands of queries, and with one object each the parsed dashboards a child sends
    back pickle a tenth smaller."""
    found = frozenset(labels)
    return _SHARED.setdefault(found, found) if found else _NONE


@functools.lru_cache(maxsize=1024)
def extract_refs(expr: str) -> QueryRefs:
    """Parse ``expr`` (variables already substituted) and collect its name references.

    ``__name__`` and placeholder names are never reported as labels, nor label names that
    hold a Grafana variable. Raises :class:`PromQLError` when the query does not parse.
    The same text gives the same (immutable) answer, kept for a while: dashboards repeat
    queries, and a variable's ``label_values({__name__=~"a|b|..."}, job)`` is asked again
    for ``instance``, with a regex of every metric that promql-parser compiles each time.
    """
    # Each operator or bracket is a character at least: a shorter query cannot nest deeper.
    if len(expr) > _MAX_NESTING and len(_NESTING.findall(expr)) > _MAX_NESTING:
        raise PromQLError(f"more than {_MAX_NESTING} operators and brackets; not parsed")
    text = _without_quote_blocks(expr)
    plain = _plain_matchers(text)
    try:
        ast = promql_parser.parse(plain)
        found = _collect(ast)
    except (ValueError, _NotAsWritten):
        ast = _parsed(text)  # its own error, at its own position
        found = _collect(ast)
        plain = text
    compared = _compared(ast)
    if compared is not None and plain is not text:  # spelt as the rule has it, to run live
        compared = _compared(_parsed(text))
    result = result_labels(ast)
    return QueryRefs(
        selectors=tuple(found.selectors),
        grouping_labels=_shared(
            label for label in found.grouping if label != "__name__" and PLACEHOLDER not in label
        ),
        introduced_labels=_shared(
            label for label in found.introduced if not _VARIABLE.search(label)
        ),
        placeholder_metric=found.placeholder,
        counter_inputs=_shared(found.counter_inputs),
        quantiles_without_le=found.quantiles_without_le,
        source_labels=_shared(
            label for label in found.sources if label and not _VARIABLE.search(label)
        ),
        result=None
        if result is None
        else ResultLabels(
            None if result.exact is None else _shared(result.exact),
            _shared(result.added),
            _shared(result.removed),
        ),
        measured=measured(ast),
        compared=compared,
    )


def _parsed(expr: str) -> Expr:
    try:
        return promql_parser.parse(expr)
    except ValueError as error:
        raise PromQLError(" ".join(str(error).split())) from None


# A string literal or comment (group 1), or a regex matcher's operator and its literal, a
# terminated one (group 2).
_MATCH_OP_OR_SKIPPED = re.compile(
    "(" + "|".join(literal.pattern for literal in _STRING_END.values()) + r"|#[^\n]*)"
    r"""|[=!]~\s*("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)""",
    re.DOTALL,
)
# A regex literal -> whether it matches the empty string; None when it is not a valid one.
_MATCHES_EMPTY: dict[str, bool | None] = {}
# Names and `|`: a regex of literal alternatives, which matches "" when one is empty.
_NAME_LIST = re.compile(r"[A-Za-z0-9_:|]*")
# What a `__name__` regex matcher is read as, an equality matcher of a label of its own.
_NAME_AS_EQUALITY = "__dashgen_name_regex__"


class _NotAsWritten(Exception):
    """The query read with equality matchers is not the query as written: parse that."""


def _plain_matchers(expr: str) -> str:
    """``expr`` with each ``label=~"re"`` (``!~``) outside string literals and comments
    written ``label="re"`` (``!=``), where that changes nothing read here.

    promql-parser compiles every regex matcher as it parses: about 20 us each, two thirds
    of the parse of a usual dashboard query (``{job=~"$job", instance=~"$instance"}``), and
    milliseconds for a ``__name__`` regex listing every metric. Of a label's regex only the
    label is read here; a ``__name__`` regex is read as text, so it becomes an equality
    matcher of :data:`_NAME_AS_EQUALITY`, which :func:`_selector` reads as the regex. Each
    distinct literal is checked once, by promql-parser itself: an invalid one is left as
    it is, to be reported where it stands. An equality matcher of the same literal matches
    the empty string exactly when the literal is empty, and a selector whose matchers all
    match the empty string is an error; so the operator changes only where the regex
    agrees (``=~".*"`` stays).
    """
    if "~" not in expr:
        return expr
    pieces: list[str] = []
    copied = 0
    for found in _MATCH_OP_OR_SKIPPED.finditer(expr):
        regex = found.group(2)
        if regex is None:
            continue
        label = expr[: found.start()].rstrip()
        if not (label[-1:].isalnum() or label.endswith("_")):
            continue  # a "quoted" label name, or no name at all
        if _matches_empty(regex) != (len(regex) == 2):
            continue
        operator = "!=" if expr[found.start()] == "!" else "="
        before = label[-9:-8]
        if label.endswith("__name__") and not (before and _is_name_char(before)):
            name_at = len(label) - len("__name__")
            pieces.append(
                expr[copied:name_at] + _NAME_AS_EQUALITY + expr[len(label) : found.start()]
            )
        else:
            pieces.append(expr[copied : found.start()])
        pieces.append(operator)
        copied = found.start() + 2
    if not pieces:
        return expr
    pieces.append(expr[copied:])
    return "".join(pieces)


def _matches_empty(regex: str) -> bool | None:
    if _NAME_LIST.fullmatch(regex, 1, len(regex) - 1):  # no compiling a list of metrics
        return "" in regex[1:-1].split("|")
    if regex not in _MATCHES_EMPTY:
        try:  # alone in a selector, a matcher matching the empty string is an error
            promql_parser.parse(f"{{a=~{regex}}}")
            _MATCHES_EMPTY[regex] = False
        except ValueError:
            try:
                promql_parser.parse(f'{{a=~{regex}, b="1"}}')
                _MATCHES_EMPTY[regex] = True
            except ValueError:
                _MATCHES_EMPTY[regex] = None  # not a valid regex
    return _MATCHES_EMPTY[regex]


_COMPARISONS = frozenset({">", ">=", "<", "<=", "==", "!="})


def _compared(node: Expr) -> str | None:
    if not isinstance(node, BinaryExpr) or str(node.op) not in _COMPARISONS:
        return None
    if isinstance(node.rhs, NumberLiteral):
        return str(node.lhs)
    if isinstance(node.lhs, NumberLiteral):
        return str(node.rhs)
    return None


# Functions whose result is in the unit of the series they read.
_SAME_UNIT = frozenset(
    {"avg_over_time", "min_over_time", "max_over_time", "last_over_time", "quantile_over_time"}
    | {"abs", "ceil", "floor", "round", "clamp", "clamp_min", "clamp_max", "sort", "sort_desc"}
)
_RATES = frozenset({"rate", "irate", "increase"})


def measured(node: Expr) -> Measured | None:
    """What the values of ``node`` measure, for the shapes whose unit is plain: a series as
    it is (aggregated or not), ``histogram_quantile`` of buckets, a histogram's ``_sum`` rate
    over its ``_count`` rate, each times or divided by numbers. ``None`` for anything else
    (a rate of seconds is seconds per second, not seconds)."""
    while isinstance(node, ParenExpr):
        node = node.expr
    if isinstance(node, BinaryExpr):
        op = str(node.op)
        if op in ("*", "/") and isinstance(node.rhs, NumberLiteral):
            inner = measured(node.lhs)
            factor = node.rhs.val if op == "*" else 1 / node.rhs.val if node.rhs.val else 0.0
            return None if inner is None else Measured(inner.sample, inner.scale * factor)
        if op == "*" and isinstance(node.lhs, NumberLiteral):
            inner = measured(node.rhs)
            return None if inner is None else Measured(inner.sample, inner.scale * node.lhs.val)
        if op == "/":
            return _mean_of_histogram(node)
        return None
    if isinstance(node, VectorSelector):
        return Measured(node.name, 1.0) if node.name and PLACEHOLDER not in node.name else None
    if isinstance(node, AggregateExpr):
        op = str(node.op).lower()
        return (
            measured(node.expr) if op in ("sum", "avg", "min", "max", "topk", "bottomk") else None
        )
    if isinstance(node, Call):
        name = node.func.name
        args = node.args
        if name == "histogram_quantile" and len(args) == 2:
            buckets = _only_sample(args[1])
            return Measured(buckets, 1.0) if buckets and buckets.endswith("_bucket") else None
        if name in _SAME_UNIT and args:
            argument = args[0]
            if isinstance(argument, MatrixSelector):
                argument = argument.vector_selector
            return measured(argument)
    return None


def _mean_of_histogram(node: BinaryExpr) -> Measured | None:
    """``rate(x_sum[...]) / rate(x_count[...])`` (each maybe aggregated): the mean, in x's
    unit."""
    total, count = _only_sample(node.lhs, _RATES), _only_sample(node.rhs, _RATES)
    if total and count and total.endswith("_sum") and count == total[: -len("_sum")] + "_count":
        return Measured(total, 1.0)
    return None


def _only_sample(node: Expr, through: frozenset[str] = _RATES) -> str | None:
    """The one metric name under aggregations and rate-like calls, else None."""
    while True:
        if isinstance(node, ParenExpr | AggregateExpr):
            node = node.expr
        elif isinstance(node, Call) and node.func.name in through and node.args:
            node = node.args[0]
        elif isinstance(node, MatrixSelector):
            node = node.vector_selector
        elif isinstance(node, VectorSelector):
            return node.name if node.name and PLACEHOLDER not in node.name else None
        else:
            return None


# Aggregations whose result keeps the labels of the series they pick.
_PICKING = frozenset({"topk", "bottomk", "limitk", "limit_ratio"})
# Functions whose result has no labels at all.
_LABELLESS = frozenset({"vector", "time", "scalar", "pi", "minute", "hour", "day_of_month"})
_MAX_RESULT_DEPTH = 200


def result_labels(node: Expr, depth: int = 0) -> ResultLabels | None:
    """Which labels the result of ``node`` can carry, where PromQL's rules say it plainly:
    aggregations, ``histogram_quantile``, ``label_replace``/``label_join``, functions that
    keep their argument's labels, and arithmetic with a number or one-to-one matching."""
    if depth > _MAX_RESULT_DEPTH:
        return None
    inner = depth + 1
    if isinstance(node, (VectorSelector, MatrixSelector)):
        return ResultLabels(None)
    if isinstance(node, (ParenExpr, SubqueryExpr, UnaryExpr)):
        return result_labels(node.expr, inner)
    if isinstance(node, AggregateExpr):
        op = str(node.op).lower()
        if op in _PICKING:
            return result_labels(node.expr, inner)
        added = (
            frozenset({node.param.val})
            if op == "count_values" and isinstance(node.param, StringLiteral)
            else frozenset()
        )
        modifier = node.modifier
        if modifier is None:
            return ResultLabels(added)
        labels = frozenset(modifier.labels)
        if str(modifier.type).endswith("By"):
            return ResultLabels(labels | added)
        below = result_labels(node.expr, inner)
        return None if below is None else below.without(labels).plus(added)
    if isinstance(node, Call):
        return _call_result(node, inner)
    if isinstance(node, BinaryExpr):
        return _binary_result(node, inner)
    return ResultLabels(frozenset())  # a number or a string


def _call_result(node: Call, depth: int) -> ResultLabels | None:
    name = node.func.name
    args = node.args
    if name in _LABELLESS:
        return ResultLabels(frozenset())
    if name == "histogram_quantile" and len(args) == 2:
        below = result_labels(args[1], depth)
        return None if below is None else below.without(frozenset({"le"}))
    if name in _LABEL_CREATORS and len(args) > 1 and isinstance(args[1], StringLiteral):
        below = result_labels(args[0], depth)
        return None if below is None else below.plus(frozenset({args[1].val}))
    if name.startswith("absent"):
        return None  # its labels come from the selector's equality matchers
    vectors = [arg for arg in args if not isinstance(arg, (StringLiteral, NumberLiteral))]
    return result_labels(vectors[0], depth) if len(vectors) == 1 else None


def _binary_result(node: BinaryExpr, depth: int) -> ResultLabels | None:
    lhs_scalar = isinstance(node.lhs, NumberLiteral)
    rhs_scalar = isinstance(node.rhs, NumberLiteral)
    if lhs_scalar or rhs_scalar:
        return result_labels(node.lhs if rhs_scalar else node.rhs, depth)
    op = str(node.op).lower()
    if op.endswith("or"):
        return None  # either side's labels
    modifier = node.modifier
    card = str(modifier.card) if modifier is not None else ""
    if card.endswith("OneToMany"):
        below = result_labels(node.rhs, depth)
        extra = frozenset(modifier.group_labels or ()) if modifier is not None else frozenset()
        return None if below is None else below.plus(extra)
    below = result_labels(node.lhs, depth)
    if card.endswith("ManyToOne") and modifier is not None and below is not None:
        return below.plus(frozenset(modifier.group_labels or ()))
    return below


# Grafana's Prometheus variable functions: label_values(label), label_values(series, label),
# label_names(), metrics(regex), query_result(expr). Anything else is a series query.
_VARIABLE_FUNCTION = re.compile(
    r"\s*(label_values|label_names|metrics|query_result)\s*\((.*)\)\s*", re.DOTALL
)


def variable_query_refs(query: str) -> QueryRefs | None:
    """What a template variable's query needs to exist; ``None`` when it needs nothing
    (``label_names()`` lists whatever labels there are). Raises :class:`PromQLError`."""
    function = _VARIABLE_FUNCTION.fullmatch(query)
    if function is None:
        return extract_refs(substitute_variables(query))  # a series query: {job="x"}
    name, argument = function.group(1), function.group(2).strip()
    if name == "query_result":
        return extract_refs(substitute_variables(argument))
    if name == "label_names":
        return extract_refs(substitute_variables(argument)) if argument else None
    if name == "metrics":
        # Grafana keeps the names its regex finds anywhere in them, unanchored.
        searched = Selector(None, f".*(?:{argument}).*", False, frozenset())
        return (
            None
            if _VARIABLE.search(argument)
            else QueryRefs((searched,), frozenset(), frozenset(), False)
        )
    series, _, label = _split_last_argument(argument)
    label = label.strip()
    named = frozenset() if _VARIABLE.search(label) else frozenset({label})
    if not series.strip():  # label_values(route): the label of any series
        return QueryRefs((), frozenset(), frozenset(), False, labels_on_any_family=named)
    refs = extract_refs(substitute_variables(series))
    return QueryRefs(
        refs.selectors,
        refs.grouping_labels | named,
        refs.introduced_labels,
        refs.placeholder_metric,
        refs.counter_inputs,
        refs.quantiles_without_le,
    )


def _split_last_argument(arguments: str) -> tuple[str, str, str]:
    """``('up{a="1,2"}', ',', 'job')`` from ``up{a="1,2"}, job``: the last comma outside
    brackets and string literals; ``('', '', arguments)`` when there is none."""
    depth = 0
    last = -1
    index = 0
    while index < len(arguments):
        char = arguments[index]
        if char in _STRING_END:
            index = _string_end(arguments, index)
            continue
        if char in "({[":
            depth += 1
        elif char in ")}]":
            depth -= 1
        elif char == "," and depth == 0:
            last = index
        index += 1
    if last < 0:
        return "", "", arguments
    return arguments[:last], ",", arguments[last + 1 :]
