"""The one exception type that reaches the user as a one-line message and exit code 2."""

from __future__ import annotations


class DashgenError(Exception):
    """Bad input: says what is wrong and where (file, metric, panel), in one line.

    The CLI prints ``str(error)`` and exits 2; nothing under the output dir has been touched
    when one of these is raised.
    """

    def __init__(self, where: str, message: str) -> None:
        self.where = where
        self.message = " ".join(message.split())
        super().__init__(f"{where}: {self.message}" if where else self.message)
