"""The one exception type that reaches the user as a one-line message and exit code 2."""

from __future__ import annotations

#: Control characters shown escaped, so that a hostile title cannot break the one line.
_VISIBLE = {code: f"\\x{code:02x}" for code in [*range(0x20), 0x7F]}


class DashgenError(Exception):
    """Bad input: says what is wrong and where (file, metric, panel), in one line.

    The CLI prints ``str(error)`` and exits 2; nothing under the output dir has been touched
    when one of these is raised.
    """

    def __init__(self, where: str, message: str) -> None:
        self.where = where.translate(_VISIBLE)
        self.message = " ".join(message.split())
        super().__init__(f"{self.where}: {self.message}" if where else self.message)
