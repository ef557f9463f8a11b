"""The README's pre-commit snippet, exactly as written, run by the real ``pre-commit`` in a
fresh git repo holding the bundled example: a commit with fresh dashboards passes, one with a
hand-edited generated file is stopped."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def readme_snippet() -> str:
    """The YAML block of the README's pre-commit section."""
    section = (REPO / "README.md").read_text().split("### 5. Add dashgen to pre-commit")[1]
    found = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert found is not None, "no YAML block in the README's pre-commit section"
    return found.group(1)


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def pre_commit(repo: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pre_commit", "run", "--all-files"],
        cwd=repo,
        env={**os.environ, "PRE_COMMIT_HOME": str(home)},
        capture_output=True,
        text=True,
        check=False,
    )


def test_the_readme_snippet_works_as_written(tmp_path: Path) -> None:
    repo = tmp_path / "app"
    repo.mkdir()
    for directory in ("dashboards_src", "generated", "example_app"):
        shutil.copytree(
            REPO / directory, repo / directory, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
    (repo / ".pre-commit-config.yaml").write_text(readme_snippet())
    # The project's own venv, as the README's first command makes it: here, the one running.
    (repo / ".venv").symlink_to(Path(sys.prefix))
    (repo / ".gitignore").write_text(".venv\n.dashgen/\n")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    passed = pre_commit(repo, tmp_path / "pre-commit-home")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert re.search(r"dashgen build --check\.+Passed", passed.stdout), passed.stdout

    board = repo / "generated/job-worker.json"
    board.write_text(board.read_text().replace('"Job worker"', '"Job worker (edited)"'))
    stopped = pre_commit(repo, tmp_path / "pre-commit-home")
    assert stopped.returncode == 1
    assert re.search(r"dashgen build --check\.+Failed", stopped.stdout), stopped.stdout
    assert "stale: generated/job-worker.json" in stopped.stdout
