"""User code runs in a child process: whatever a source does to its process, dashgen's own
process answers truthfully, and never runs a class of the user's.

Each hazard is run as a user meets it, in a real ``python -m dashgen`` process (a hung
process or an early exit cannot be seen from inside one).
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import SCRAPED_IN_JSON, Project
from tests.test_build import GOOD_SOURCE

HAZARDS = {
    "os-exit-0": "import os\nos._exit(0)\n",
    "os-exit-3": "import os\nos._exit(3)\n",
    "sigkill-self": "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)\n",
}


def dashgen(
    project: Project, *arguments: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dashgen", *arguments, "--project", str(project.root)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize("hazard", sorted(HAZARDS))
@pytest.mark.parametrize("command", [["build", "--check"], ["verify"], ["build"]], ids=" ".join)
def test_a_source_that_ends_its_process_is_an_error_not_a_green(
    project: Project, hazard: str, command: list[str]
) -> None:
    """``os._exit(0)`` used to end ``build --check`` and ``verify`` with exit 0, having
    checked nothing."""
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    before = project.snapshot()
    project.source("zz_exit.py", HAZARDS[hazard])
    done = dashgen(project, *command)
    ended = (
        "was killed by signal 9" if hazard == "sigkill-self" else f"exited with code {hazard[-1]}"
    )
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == (
        f"error: src: {ended} before handing back its declarations: code that dashgen runs "
        "must not end the process\n"
    )
    assert project.snapshot() == before


def test_a_non_daemon_thread_in_a_source_does_not_hang_the_command(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    project.source(
        "poller.py",
        "import threading, time\nthreading.Thread(target=time.sleep, args=(600,)).start()\n",
    )
    started = time.monotonic()
    for command in (["build"], ["build", "--check"], ["verify"]):
        done = dashgen(project, *command, timeout=120)
        assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60


def test_a_source_breaking_the_import_system_breaks_only_itself(project: Project) -> None:
    """A source that empties ``sys.path`` and blocks every later import: dashgen's own lazy
    imports (the exporter, grafanalib) still work, so the build is the same."""
    project.source("m.py", GOOD_SOURCE)
    project.source(
        "zz_hostile.py",
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, *args, **kwargs):\n"
        "        raise ImportError('blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "sys.path.clear()\n"
        "sys.modules.pop('json', None)\n",
    )
    done = dashgen(project, "build", "--no-cache")
    assert done.returncode == 0, done.stderr
    assert (project.generated / "app.json").is_file()
    assert dashgen(project, "verify", "--no-cache").returncode == 0


def test_a_value_of_the_users_own_class_is_refused_not_unpickled(project: Project) -> None:
    """A threshold of the user's own ``float`` subclass would make dashgen import (run) the
    user's module to rebuild it: refused with one line instead."""
    project.source(
        "m.py",
        "from dashgen import Counter, Dashboard, Row, hints\n"
        "class Level(float):\n"
        "    pass\n"
        "C = Counter('c', hint=hints.Rate(thresholds=[(Level(5), 'red')]))\n"
        "D = Dashboard('D', rows=[Row('r', [C])])\n",
    )
    done = dashgen(project, "build")
    assert (done.returncode, done.stderr) == (
        2,
        "error: src: the declarations hold a m.Level object: use plain str, int and float values\n",
    )
    assert not project.generated.exists()


def test_str_enum_labels_are_taken_as_their_values(project: Project) -> None:
    project.source(
        "m.py",
        "from enum import StrEnum\n"
        "from dashgen import Counter, Dashboard, Row, hints\n"
        "class Label(StrEnum):\n"
        "    ROUTE = 'http.route'\n"
        "C = Counter('c', labels=[Label.ROUTE], hint=hints.Rate(by=[Label.ROUTE], "
        "title=Label.ROUTE))\n"
        "D = Dashboard('D', rows=[Row('r', [C])])\n",
    )
    done = dashgen(project, "build")
    assert done.returncode == 0, done.stderr
    assert (
        f"sum by (http_route) (rate(c_total{SCRAPED_IN_JSON}[$__rate_interval]))"
        in (project.generated / "d.json").read_text()
    )
