"""Types of the C twin of ``dashgen.record.tally.Tally`` (dashgen/record/_tally.c)."""

from collections.abc import Callable, Mapping
from types import FrameType
from typing import Any

class Tally:
    measurements: int
    production: int
    def __init__(
        self,
        judge: Callable[[FrameType], int] | None,
        keep: Callable[[Mapping[str, Any]], bool],
        verdicts: dict[int, int],
        sites: set[tuple[int, int]],
    ) -> None: ...
    def record(self, amount: float, attributes: Any = None, context: Any = None) -> None: ...
