"""Grafana-variable substitution by position, and name extraction from parsed PromQL."""

from __future__ import annotations

import re
from unittest.mock import patch

import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from dashgen.verify import promql
from dashgen.verify.promql import (
    PLACEHOLDER,
    PromQLError,
    QueryRefs,
    Selector,
    _plain_matchers,
    extract_refs,
    substitute_variables,
)
from tests.test_properties import SETTINGS

NAME = PLACEHOLDER + r"\w*"  # a placeholder name, whatever its suffix


def refs(expr: str) -> QueryRefs:
    return extract_refs(substitute_variables(expr))


def metrics(expr: str) -> list[str | None]:
    return [selector.metric for selector in refs(expr).selectors]


# --- substitution: what each position becomes ---------------------------------------------


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("rate(x[$__rate_interval])", "rate(x[5m])"),
        ("rate(x[${__range}])", "rate(x[5m])"),
        ("rate(x[[[interval]]])", "rate(x[5m])"),
        ("max_over_time(rate(x[5m])[1h:$__interval])", "max_over_time(rate(x[5m])[1h:5m])"),
        ("max_over_time(x[$__range:$__interval])", "max_over_time(x[5m:5m])"),
        ("rate(x[${__range_s}s])", "rate(x[1s])"),
        ("x offset $shift", "x offset 5m"),
        ("x OFFSET -${shift}", "x OFFSET -5m"),
        ("sum(rate(x[5m])) offset $__interval", "sum(rate(x[5m])) offset 5m"),
        ("topk($n, x)", "topk(1, x)"),
        ("quantile(${q:raw}, x)", "quantile(1, x)"),
        ("x > $threshold", "x > 1"),
        ("x * $__interval_ms / 1000", "x * 1 / 1000"),
        ("x >= ($share / 100)", "x >= (1 / 100)"),
        ("vector($n)", "vector(1)"),
        ("x @ $__to", "x @ 1"),
        ('x{job="$job"}', 'x{job="$job"}'),
        ("x{a=$v}", 'x{a=""}'),
        ("x", "x"),
    ],
)
def test_substitution_by_position(expr: str, expected: str) -> None:
    assert substitute_variables(expr) == expected


@pytest.mark.parametrize(
    ("expr", "pattern"),
    [
        ("sum by ($group) (x)", rf"sum by \({NAME}\) \(x\)"),
        ("sum(x) without(a, ${g:csv})", rf"sum\(x\) without\(a, {NAME}\)"),
        ("a * on($o) group_left($l) b", rf"a \* on\({NAME}\) group_left\({NAME}\) b"),
        ("a / ignoring($i) group_right b", rf"a / ignoring\({NAME}\) group_right b"),
        ("$metric", NAME),
        ('$metric{job="a"}', rf'{NAME}{{job="a"}}'),
        ("rate($metric[5m])", rf"rate\({NAME}\[5m\]\)"),
        ("rate([[metric]] [5m])", rf"rate\({NAME} \[5m\]\)"),
        ("sum($metric)", rf"sum\({NAME}\)"),
        ("sum by (a) ($metric)", rf"sum by \(a\) \({NAME}\)"),
        ("node_${x}_bytes", rf"node_{NAME}_bytes"),
        ('x{$label="a"}', rf'x{{{NAME}="a"}}'),
        ('x{job="a", ${filters}}', rf'x{{job="a", {NAME}!=""}}'),
    ],
)
def test_substitution_of_names(expr: str, pattern: str) -> None:
    assert re.fullmatch(pattern, substitute_variables(expr))


def test_placeholders_are_unique_so_on_and_group_left_do_not_clash() -> None:
    substituted = substitute_variables("a * on($o) group_left($l) b")
    names = re.findall(NAME, substituted)
    assert len(set(names)) == 2
    assert refs("a * on($o) group_left($l) b").grouping_labels == frozenset()


@pytest.mark.parametrize(
    "expr",
    [
        'x{a="$a", b=~"${b:regex}"}',
        "x{a='$a [$b]'}",
        "x{a=`$a (by $b)`}",
        r'x{a="\"$a\" [5m]"}',
        'label_replace(x, "dst", "$1", "src", "(.*)")',
    ],
)
def test_string_literals_are_left_alone(expr: str) -> None:
    assert substitute_variables(expr) == expr


def test_escaped_quote_does_not_end_a_string() -> None:
    # The second `"` is escaped, so `$b` is still inside the string; `$n` is not.
    assert substitute_variables(r'x{a="\"$b"} > $n') == r'x{a="\"$b"} > 1'
    # An escaped backslash does end it.
    assert substitute_variables(r'x{a="\\"} > $n') == r'x{a="\\"} > 1'


def test_comments_are_left_alone() -> None:
    expr = "x # by ($g) [$__range] $m\n + $n"
    assert substitute_variables(expr) == "x # by ($g) [$__range] $m\n + 1"
    assert metrics(expr) == ["x"]


def test_text_without_variables_is_returned_unchanged() -> None:
    expr = 'sum by (job) (rate(x{a="b"}[5m]))'
    assert substitute_variables(expr) == expr


# --- extraction -----------------------------------------------------------------------------


def test_selectors_in_query_order_with_labels() -> None:
    result = refs('a{x="1"} + b{y=~"$y"} * on() c')
    assert result.selectors == (
        Selector("a", None, False, frozenset({"x"})),
        Selector("b", None, False, frozenset({"y"})),
        Selector("c", None, False, frozenset()),
    )
    assert not result.placeholder_metric


def test_colon_names_are_plain_metric_names() -> None:
    assert metrics("vllm:current_qps + instance:node_cpu:ratio_rate5m") == [
        "vllm:current_qps",
        "instance:node_cpu:ratio_rate5m",
    ]


def test_every_node_kind_is_traversed() -> None:
    expr = (
        "-(a offset 5m) + max_over_time(rate(b[5m])[1h:1m] @ end())"
        " + topk(scalar(c), d) + histogram_quantile(0.9, e)"
    )
    assert metrics(expr) == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("expr", "selector"),
    [
        ('{__name__="foo", job="a"}', Selector("foo", None, False, frozenset({"job"}))),
        ('{"foo.bar"}', Selector("foo.bar", None, False, frozenset())),
        ('{__name__=~"foo_(a|b)"}', Selector(None, "foo_(a|b)", False, frozenset())),
        ('{__name__!="foo", job="a"}', Selector(None, None, True, frozenset({"job"}))),
        ('{__name__!~"foo.*", job="a"}', Selector(None, None, True, frozenset({"job"}))),
        ('{__name__!~"a.*", __name__=~"b.*"}', Selector(None, "b.*", False, frozenset())),
        ('{job="a"}', Selector(None, None, False, frozenset({"job"}))),
    ],
)
def test_name_matcher_forms(expr: str, selector: Selector) -> None:
    assert refs(expr).selectors == (selector,)
    assert not refs(expr).placeholder_metric


@pytest.mark.parametrize(
    "expr",
    [
        "$metric",
        "rate(${metric}[5m])",
        'sum($metric{job="a"})',
        '{__name__=~"${prefix}anomaly_score"}',
        "node_${kind}_bytes_total",
    ],
)
def test_metric_names_from_variables_are_placeholders(expr: str) -> None:
    result = refs(expr)
    assert result.placeholder_metric
    assert [s.metric for s in result.selectors] == [None]
    assert [s.name_regex for s in result.selectors] == [None]


def test_placeholder_labels_are_not_reported() -> None:
    result = refs('sum by ($g, job) (x{$l="1", a="2", ${filters}})')
    assert result.grouping_labels == frozenset({"job"})
    assert result.selectors[0].labels == frozenset({"a"})


def test_or_matchers_give_one_selector_per_branch() -> None:
    result = refs('foo{a="1" or b="2", c="3"}')
    assert result.selectors == (
        Selector("foo", None, False, frozenset({"a"}), alternative=(0, 0)),
        Selector("foo", None, False, frozenset({"b", "c"}), alternative=(0, 1)),
    )


def test_or_matchers_with_a_name_in_one_branch() -> None:
    result = refs('{a="1" or __name__="x"}')
    assert result.selectors == (
        Selector(None, None, False, frozenset({"a"}), alternative=(0, 0)),
        Selector("x", None, False, frozenset(), alternative=(0, 1)),
    )


def test_or_chains_number_their_branches() -> None:
    result = refs("sum(a) / (b or on(x) (c or d)) + (e or f)")
    assert [(s.metric, s.alternative) for s in result.selectors] == [
        ("a", None),
        ("b", (0, 0)),
        ("c", (0, 1)),
        ("d", (0, 2)),
        ("e", (1, 0)),
        ("f", (1, 1)),
    ]
    assert result.grouping_labels == frozenset({"x"})


def test_grouping_labels_from_every_clause() -> None:
    result = refs(
        "sum by (a) (x) / ignoring(b) group_left(c, d) count without(e) (y)"
        " and on(f) z or ignoring(__name__) w"
    )
    assert result.grouping_labels == frozenset({"a", "b", "c", "d", "e", "f"})


def test_group_left_labels() -> None:
    result = refs("x * on(instance, job) group_left(version, commit) build_info")
    assert result.grouping_labels == frozenset({"instance", "job", "version", "commit"})
    assert result.introduced_labels == frozenset()


@pytest.mark.parametrize(
    ("expr", "introduced"),
    [
        ('label_replace(x, "dst", "$1", "src", "(.*)")', {"dst"}),
        ('label_join(x, "joined", ",", "a", "b")', {"joined"}),
        ('count_values("version", build_info)', {"version"}),
        ('count_values by (job) ("v", label_replace(x, "d", "", "", ""))', {"v", "d"}),
        ('count_values("$label", x)', set()),
        ('sort_by_label(x, "a")', set()),
    ],
)
def test_introduced_labels(expr: str, introduced: set[str]) -> None:
    assert refs(expr).introduced_labels == frozenset(introduced)


def test_label_replace_source_label_is_not_a_grouping_label() -> None:
    result = refs('label_replace(x{job="a"}, "dst", "$1", "src", "(.*)")')
    assert result.grouping_labels == frozenset()
    assert result.selectors == (Selector("x", None, False, frozenset({"job"})),)


def test_scalar_only_query_has_no_selectors() -> None:
    assert refs("vector(1) + time()").selectors == ()


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("sum(", "unclosed left parenthesis"),
        ('x{a="1"', "unexpected end of input inside braces"),
        ("x default 0", "invalid promql query"),
        ("rollup_candlestick(x)", "unknown function with name 'rollup_candlestick'"),
        ("", "no expression found in input"),
        ("sum(x[$__range])", "expected type vector in aggregation expression, got matrix"),
        # Regex matchers read as equality (see below) still give the errors as written.
        ('up{job=~"("}', "illegal regex for ("),
        ('{job=~".*"}', "vector selector must contain at least one non-empty matcher"),
        ('{job!~"a"}', "vector selector must contain at least one non-empty matcher"),
        ('x{__name__=~"a"}', "metric name must not be set twice: 'x' or 'a'"),
        ('{__name__=~"a||b"}', "vector selector must contain at least one non-empty matcher"),
        ('x{job="1" or __name__!~"a"}', "metric name must not be set twice: 'x' or 'a'"),
    ],
)
def test_parse_errors(expr: str, message: str) -> None:
    with pytest.raises(PromQLError) as raised:
        refs(expr)
    assert str(raised.value) == message
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    ("expr", "plain"),
    [
        ('up{job=~"$job", instance!~"$instance"}', 'up{job="$job", instance!="$instance"}'),
        ("up{job =~ 'a|b'}", "up{job = 'a|b'}"),
        # A name regex is read as text: as an equality matcher of a label of its own.
        ('{__name__=~"node_.*", job=~"x"}', '{__dashgen_name_regex__="node_.*", job="x"}'),
        ('{__name__ !~ "a|b"}', '{__dashgen_name_regex__ != "a|b"}'),
        ('{__name__=~"a|b|"}', None),
        ('{x__name__=~"a"}', '{x__name__="a"}'),
        # Whether a matcher matches the empty string decides which selectors are errors:
        # a regex that differs there from its literal taken as a string stays a regex.
        ('up{job=~".*"}', 'up{job=~".*"}'),
        ('up{job!~".*"}', 'up{job!~".*"}'),
        ('up{job=~""}', 'up{job=""}'),
        ('up{job!~".+"}', 'up{job!=".+"}'),
        # Not a valid regex: left for the parser to report where it stands.
        ('up{job=~"("}', 'up{job=~"("}'),
        # Inside a string literal or a comment, and a quoted label name.
        ('label_replace(up, "a", "$1", "b", "c=~\\"d\\"")', None),
        ('up # job=~"x"\n', None),
        ('{"job"=~"x", a="1"}', None),
    ],
)
def test_label_regexes_are_parsed_as_equality_where_that_reads_the_same(
    expr: str, plain: str | None
) -> None:
    # promql-parser compiles each regex matcher: about 20 us, most of a usual query's parse.
    assert _plain_matchers(expr) == (expr if plain is None else plain)


def test_a_compared_query_keeps_its_regex_matchers() -> None:
    # An alert's `x > 0.1` runs `x` live: as the rule has it, not as it was parsed here.
    compared = refs('rate(x_total{job=~"a|b"}[5m]) > 0.1').compared
    assert compared == 'rate(x_total{job=~"a|b"}[5m])'


@pytest.mark.parametrize(
    ("expr", "selector"),
    [
        ('{__name__=~"a.*", job=~"b"}', Selector(None, "a.*", False, frozenset({"job"}))),
        ('{__name__!~"a.*", job="b"}', Selector(None, None, True, frozenset({"job"}))),
        ('{__name__=~"a.+"} or up', Selector(None, "a.+", False, frozenset(), (0, 0))),
    ],
)
def test_name_regexes_read_as_equality_are_still_regexes(expr: str, selector: Selector) -> None:
    assert refs(expr).selectors[0] == selector


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    # promql-parser would overflow its native stack on these.
    for expr in ("(" * 10_000 + "x" + ")" * 10_000, " or ".join(["x"] * 5_000)):
        with pytest.raises(PromQLError, match=r"^more than 2000 operators and brackets"):
            refs(expr)


def test_long_queries_below_the_nesting_bound_parse() -> None:
    assert metrics(" + ".join(f"m{i}" for i in range(600))) == [f"m{i}" for i in range(600)]
    assert metrics("-" * 1_000 + "(" * 900 + "x" + ")" * 900) == ["x"]


@pytest.mark.parametrize(
    ("expr", "counters", "without_le"),
    [
        ("sum(rate(a_total[5m])) + increase(b[1h]) + irate(c[1m])", {"a_total", "b", "c"}, 0),
        ("delta(g[5m]) + deriv(h[5m])", set(), 0),
        ("histogram_quantile(0.9, sum by (le) (rate(x_bucket[5m])))", {"x_bucket"}, 0),
        ("histogram_quantile(0.9, sum by (route) (rate(x_bucket[5m])))", {"x_bucket"}, 1),
        ("histogram_quantile(0.9, (sum(rate(x_bucket[5m]))))", {"x_bucket"}, 1),
        ("histogram_quantile(0.9, sum without (le) (rate(x_bucket[5m])))", {"x_bucket"}, 1),
        ("histogram_quantile(0.9, sum without (pod) (rate(x_bucket[5m])))", {"x_bucket"}, 0),
        ("histogram_quantile(0.9, rate(x_bucket[5m]))", {"x_bucket"}, 0),
        ("rate($metric[5m]) + rate(ok_total[$__rate_interval])", {"ok_total"}, 0),
    ],
)
def test_kind_inputs(expr: str, counters: set[str], without_le: int) -> None:
    refs = extract_refs(substitute_variables(expr))
    assert refs.counter_inputs == counters
    assert refs.quantiles_without_le == without_le


# --- regex matchers read as equality: the same answer as the query as written -------------

_LABELS = ("job", "__name__", "x__name__", "le")
_OPERATORS = ("=", "!=", "=~", "!~")
_LITERALS = ('""', '".*"', '".+"', '"a|b"', '"a||b"', '"a|b|"', '"("', '"$job"', "'a.*'",
             "`\\d+`", '"\\\\Qa.b\\\\E"', '"x"')  # fmt: skip
_AROUND = ("Q", "rate(Q[5m])", "sum by (job) (Q)", "Q > 0.1", "Q or up", "label_replace(Q, "
           '"a", "$1", "job", "(.*)")')  # fmt: skip


@st.composite
def selector_queries(draw: st.DrawFn) -> str:
    """Selectors of every matcher form these readings differ in, in a few query shapes."""
    matchers = draw(
        st.lists(
            st.builds(
                "{0}{3}{1}{3}{2}".format,
                st.sampled_from(_LABELS),
                st.sampled_from(_OPERATORS),
                st.sampled_from(_LITERALS),
                st.sampled_from(("", " ")),
            ),
            min_size=1,
            max_size=4,
        )
    )
    separators = draw(st.lists(st.sampled_from((", ", " or ")), min_size=len(matchers) - 1,
                               max_size=len(matchers) - 1))  # fmt: skip
    body = matchers[0] + "".join(s + m for s, m in zip(separators, matchers[1:], strict=True))
    name = draw(st.sampled_from(("", "up", "x_total")))
    return draw(st.sampled_from(_AROUND)).replace("Q", f"{name}{{{body}}}")


def _outcome(expr: str) -> QueryRefs | str:
    try:
        return extract_refs.__wrapped__(expr)
    except PromQLError as error:
        return f"error: {error}"


@SETTINGS
@given(selector_queries())
@example('{__name__!~"a|b", job="x"}')  # a negated name regex, read back as negated
@example('up{job="1" or __name__=~"a"}')  # a name set twice, in an `or` branch
@example('{job=~".*", le!~".+"}')  # every matcher matches the empty string
def test_regex_matchers_read_as_equality_give_the_query_as_written(expr: str) -> None:
    """The names, labels, shape and errors are those of the query parsed as written, where
    promql-parser compiles each regex matcher."""
    read = _outcome(expr)
    event("read as equality" if _plain_matchers(expr) != expr else "read as written")
    with patch.object(promql, "_plain_matchers", lambda text: text):
        assert read == _outcome(expr)
