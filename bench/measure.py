"""How every benchmark here measures: commands alternate round-robin in fresh processes, so
that a slow moment of the machine falls on all of them alike, and a ratio is the median of
the per-round ratios (each pair measured side by side), never a best-of against a best-of.

A baseline runs as a user runs it: ``LEAN`` turns pytest's plugin autoloading off, or the
dev venv's plugins (dashgen's own, hypothesis', xdist's) would slow the baseline and flatter
dashgen.
Every command also runs with bytecode caching on, as on a user's machine: a shell that sets
``PYTHONDONTWRITEBYTECODE`` would make each run compile dashgen's sources again (an editable
install has no ``.pyc`` of its own), while a baseline's site-packages were compiled at install.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

LEAN = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
_USER_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


@dataclass(frozen=True)
class Command:
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    before: Sequence[str] | None = None
    """Run (untimed) before each timed run, e.g. to wipe an output dir."""


@dataclass(frozen=True)
class Run:
    wall: float
    cpu: float
    """User and system CPU seconds of the process and its children."""


def run_once(command: Command) -> Run:
    if command.before is not None:
        subprocess.run(command.before, check=True, capture_output=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        command.argv,
        cwd=command.cwd,
        env={**_USER_ENV, **command.env},
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return Run(wall, cpu)


def alternate(commands: Mapping[str, Command], rounds: int) -> dict[str, list[Run]]:
    """Each command once per round, in the same order every round; one warm-up round
    (page cache, ``__pycache__``) is run first and not counted."""
    for command in commands.values():
        run_once(command)
    runs: dict[str, list[Run]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, command in commands.items():
            runs[name].append(run_once(command))
    return runs


def median_ratio(runs: Sequence[Run], baseline: Sequence[Run], cpu: bool = False) -> float:
    """Median over rounds of ``run / baseline`` (wall time, or CPU time)."""
    return statistics.median(
        (a.cpu / b.cpu) if cpu else (a.wall / b.wall) for a, b in zip(runs, baseline, strict=True)
    )


def median_difference(runs: Sequence[Run], baseline: Sequence[Run]) -> float:
    """Median over rounds of ``run - baseline`` wall seconds, for a target in seconds."""
    return statistics.median(a.wall - b.wall for a, b in zip(runs, baseline, strict=True))


def median_wall(runs: Sequence[Run]) -> float:
    return statistics.median(run.wall for run in runs)


def load_note() -> str:
    return f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}"
