"""Regexes as Prometheus reads them: RE2 syntax (Go's regexp), through Google's RE2.

Python's ``re`` is not RE2: it rejects ``[[:alpha:]]`` and ``\\Q...\\E``, which Prometheus
takes, and accepts look-arounds, which Prometheus refuses. Matchers are anchored, as
Prometheus anchors them, and ``.`` matches a newline, as in Prometheus 3.
"""

from __future__ import annotations

import re
import re._parser as re_parser  # type: ignore[import-not-found]
import warnings
from collections.abc import Callable
from typing import Any, Protocol

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # RE2 would log each bad pattern to stderr itself
_OPTIONS.dot_nl = True


class RegexError(ValueError):
    """The pattern is not valid RE2; the message says why."""


class Pattern(Protocol):
    def fullmatch(self, text: str) -> object | None: ...

    def search(self, text: str) -> object | None: ...


def compile_regex(pattern: str) -> Pattern:
    try:
        compiled: Pattern = re2.compile(pattern, options=_OPTIONS)
    except re2.error as error:
        reason = error.args[0] if error.args else error
        text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
        raise RegexError(text) from None
    return compiled


#: A pattern that only lists names (``a|b|c``, as variable queries over a dashboard's metrics
#: are written): it fully matches exactly those names.
_NAME_LIST = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*(?:\|[A-Za-z_:][A-Za-z0-9_:]*)*")


def full_matcher(pattern: str) -> Callable[[str], object]:
    """Whether a text fully matches ``pattern``, as RE2 decides (RegexError when RE2 refuses
    it). A list of names is a set lookup: a dashboard's variable queries list all its
    metrics, and matching each exported name against each in RE2 cost seconds at 5,000
    families."""
    if _NAME_LIST.fullmatch(pattern):
        return frozenset(pattern.split("|")).__contains__
    return compile_regex(pattern).fullmatch


_MAX_EXAMPLES = 16


def examples(pattern: str) -> list[str]:
    """A few strings ``pattern`` matches in full, one per alternative where it has them,
    from Python's reading of it ([] when Python cannot read it): enough to ask whether an
    external pattern covers a selector's regex, which no regex library can answer exactly."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set" and the like
            parsed = re_parser.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return []
    compiled = compile_regex(pattern)
    return [text for text in _strings(list(parsed)) if compiled.fullmatch(text)][:_MAX_EXAMPLES]


def _strings(items: list[tuple[Any, Any]]) -> list[str]:
    results = [""]
    for op, argument in items:
        options = _options(op, argument)
        if not options:
            return []
        results = [head + tail for head in results for tail in options][:_MAX_EXAMPLES]
    return results


def _options(op: Any, argument: Any) -> list[str]:
    name = str(op)
    if name == "LITERAL":
        return [chr(argument)]
    if name in ("ANY", "NOT_LITERAL"):
        return ["a" if name == "ANY" or argument != ord("a") else "b"]
    if name == "IN":
        return [_first_in(argument)]
    if name == "AT":
        return [""]
    if name == "SUBPATTERN":
        return _strings(list(argument[-1]))
    if name == "BRANCH":
        return [text for branch in argument[1] for text in _strings(list(branch))]
    if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _, inner = argument
        once = _strings(list(inner))
        return [text * low for text in once] if once else []
    return []


def _first_in(members: list[tuple[Any, Any]]) -> str:
    for op, argument in members:
        name = str(op)
        if name == "LITERAL":
            return chr(argument)
        if name == "RANGE":
            return chr(argument[0])
        if name == "CATEGORY":
            return {"CATEGORY_DIGIT": "0", "CATEGORY_SPACE": " "}.get(str(argument), "a")
    return "a"
