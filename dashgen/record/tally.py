"""Recording mode's per-measurement work: the app calls ``Tally.record`` as its instrument's
``add``/``record``/``set`` on every measurement, so its cost is recording mode's cost.

``dashgen/record/_tally.c`` does the same in C and is what runs wherever the package was
built with a compiler; this is the fallback where it was not (``bench/bench_record.py``, a
suite that only records: about -3% against the OTel API's no-op instruments with the C one,
+25% with this one). tests/test_record_tally.py holds both to one behaviour.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

APP, TEST, OTHER = 0, 1, 2
"""What a frame's code is to an instrument: the app's, a test's, or one to look past."""


class Tally:
    """Counts measurements; hands each attribute combination not seen before to ``keep``
    (which answers whether to treat it as known from then on); and, with a ``judge``,
    finds who recorded: from the caller up, the first frame whose code ``judge``
    (asked once per code, caching its answer in ``verdicts``) does not call ``OTHER``.
    That frame's (code id, bytecode offset) goes into ``sites``; an ``APP`` one counts as
    production.

    Not locked, for speed: threads recording at once may lose a count here (never the fact
    that the instrument was recorded, nor a key set); the C tally's counts hold under the GIL."""

    __slots__ = ("judge", "keep", "known", "measurements", "production", "sites", "verdicts")

    def __init__(
        self,
        judge: Callable[[FrameType], int] | None,
        keep: Callable[[Mapping[str, Any]], bool],
        verdicts: dict[int, int],
        sites: set[tuple[int, int]],
    ) -> None:
        self.judge = judge
        self.keep = keep
        self.verdicts = verdicts
        self.sites = sites
        self.known: set[tuple[tuple[str, Any], ...]] = set()
        self.measurements = 0
        self.production = 0

    def record(self, amount: float, attributes: Any = None, context: Any = None) -> None:
        self.measurements += 1
        if attributes:
            try:
                combination: tuple[tuple[str, Any], ...] | None = tuple(attributes.items())
                known = combination in self.known
            except TypeError:  # a sequence value: unhashable, and rare
                combination, known = None, False
            if not known and self.keep(attributes) and combination is not None:
                self.known.add(combination)
        judge = self.judge
        if judge is None:
            return
        frame: FrameType | None = sys._getframe(1)
        verdicts = self.verdicts
        while frame is not None:
            code = id(frame.f_code)  # a code object's own hash rehashes its bytecode
            verdict = verdicts.get(code)
            if verdict is None:
                verdict = judge(frame)
            if verdict != OTHER:
                self.sites.add((code, frame.f_lasti))
                if verdict == APP:
                    self.production += 1
                return
            frame = frame.f_back
