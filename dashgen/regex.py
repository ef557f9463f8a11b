"""Regexes as Prometheus reads them: RE2 syntax (Go's regexp), through Google's RE2.

Python's ``re`` is not RE2: it rejects ``[[:alpha:]]`` and ``\\Q...\\E``, which Prometheus
takes, and accepts look-arounds, which Prometheus refuses. Matchers are anchored, as
Prometheus anchors them, and ``.`` matches a newline, as in Prometheus 3.
"""

from __future__ import annotations

from typing import Protocol

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
