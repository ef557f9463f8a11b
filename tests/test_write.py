"""The write stage against the OS: a SIGKILL at any instant leaves a whole output dir, the
next run tidies up, a symlinked output dir is written through, and an empty build never
deletes dashboards unasked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.test_build import GOOD_SOURCE

#: Runs ``dashgen build`` with the process SIGKILLing itself when the write stage reaches
#: the named function, after (``after``) or before calling it.
KILL_AT = """
import os, signal, sys
from dashgen.build import write
name, when = sys.argv[1], sys.argv[2]
real = getattr(write, name)
def killing(*args, **kwargs):
    if when == "before":
        os.kill(os.getpid(), signal.SIGKILL)
    result = real(*args, **kwargs)
    os.kill(os.getpid(), signal.SIGKILL)
    return result
setattr(write, name, killing)
from dashgen.cli import app
app(["build", "--project", sys.argv[3]])
"""


def leftovers(project: Project) -> list[str]:
    return sorted(p.name for p in project.root.iterdir() if p.name.startswith(".generated"))


@pytest.mark.parametrize(
    ("step", "when", "tree"),
    [
        ("_write_file", "after", "old"),
        ("_sync_tree", "after", "old"),
        ("_exchange", "before", "old"),
        ("_exchange", "after", "new"),
        ("_discard", "before", "new"),
    ],
)
def test_a_sigkill_anywhere_in_the_write_leaves_a_whole_tree(
    project: Project, step: str, when: str, tree: str
) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    old = project.snapshot()
    project.source("m.py", GOOD_SOURCE.replace('"Traffic"', '"Traffic v2"'))
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT, step, when, str(project.root)],
        capture_output=True,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    after_kill = project.snapshot()
    assert after_kill == old if tree == "old" else after_kill != old
    assert leftovers(project), "the kill should have left the work dir behind"

    rebuilt = project.run("build")
    assert rebuilt.exit_code == 0, rebuilt.stderr
    assert leftovers(project) == []
    assert project.run("build", "--check").exit_code == 0


def test_what_an_older_dashgen_left_between_its_two_renames_is_put_back(
    project: Project,
) -> None:
    """Killed between ``generated -> .generated.old-*/generated`` and the rename of the new
    tree: no ``generated/`` at all. The next build restores the old tree before it writes."""
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    old = project.snapshot()
    retired = project.root / ".generated.old-k2j4"
    retired.mkdir()
    project.generated.rename(retired / "generated")
    (project.root / ".generated.new-x81q").mkdir()
    (project.generated.parent / ".generated.new-x81q" / "half.json").write_text("{")
    (project.root / "notes.txt").write_text("not dashgen's")

    assert project.run("build").exit_code == 0
    assert project.snapshot() == old
    assert leftovers(project) == []
    assert (project.root / "notes.txt").exists()


def test_a_running_builds_work_dir_is_left_alone(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        busy = project.root / f".generated.new-{sleeper.pid}-abcd"
        busy.mkdir()
        assert project.run("build").exit_code == 0
        assert busy.is_dir()
    finally:
        sleeper.kill()
        sleeper.wait()
    assert project.run("build", "--allow-empty").exit_code == 0
    assert not busy.exists()


def test_a_symlinked_output_dir_is_written_through(project: Project, tmp_path: Path) -> None:
    elsewhere = tmp_path / "served-by-grafana"
    elsewhere.mkdir()
    project.generated.symlink_to(elsewhere)
    project.source("m.py", GOOD_SOURCE)

    assert project.run("build").exit_code == 0
    assert project.generated.is_symlink()
    assert os.readlink(project.generated) == str(elsewhere)
    assert (elsewhere / "app.json").is_file()
    assert project.run("build", "--check").exit_code == 0
    assert project.run("verify").exit_code == 0

    project.source("m.py", GOOD_SOURCE.replace('"Traffic"', '"Traffic v2"'))
    assert project.run("build").exit_code == 0
    assert project.generated.is_symlink()
    assert b"Traffic v2" in (elsewhere / "app.json").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


@pytest.mark.parametrize("sources", ["empty", "wrong"])
def test_an_empty_build_never_deletes_dashboards_unasked(project: Project, sources: str) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    before = project.snapshot()
    if sources == "empty":
        (project.root / "src" / "m.py").unlink()
        arguments = []
    else:
        (project.root / "docs").mkdir()
        arguments = ["--sources", str(project.root / "docs")]

    refused = project.run("build", *arguments)
    assert refused.exit_code == 2
    assert refused.stderr == (
        f"error: {project.generated}: the build holds no dashboards and would delete the 1 "
        "here (are the sources right?): pass --allow-empty to do that\n"
    )
    assert project.snapshot() == before

    allowed = project.run("build", "--allow-empty", *arguments)
    assert allowed.exit_code == 0, allowed.stderr
    assert not any(path.endswith(".json") for path in project.snapshot())
