"""Shared fixtures: throwaway projects with their own sources, run through the real CLI."""

from __future__ import annotations

import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dashgen.cli import app
from dashgen.config import CACHE_DIR

REPO = Path(__file__).resolve().parent.parent


#: The matchers every generated selector carries by default (``scrape_variables``).
SCRAPED = '{job=~"$job", instance=~"$instance"}'
#: The same as they stand inside a JSON string of a dashboard file.
SCRAPED_IN_JSON = SCRAPED.replace('"', '\\"')


@dataclass(frozen=True)
class Run:
    exit_code: int
    stdout: str
    stderr: str


@dataclass
class Project:
    """A project dir with ``pyproject.toml``, ``src/`` sources and ``generated/`` output."""

    root: Path
    sources: str = "src"
    output: str = "generated"

    @property
    def generated(self) -> Path:
        return self.root / self.output

    @property
    def cache(self) -> Path:
        return self.root / CACHE_DIR

    def entries(self) -> list[str]:
        """The names in the project dir, but for dashgen's own ``.dashgen/``."""
        return sorted(p.name for p in self.root.iterdir() if p.name != ".dashgen")

    def write(self, relative: str, text: str) -> Path:
        path = self.root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path

    def source(self, name: str, text: str) -> Path:
        return self.write(f"{self.sources}/{name}", text)

    def run(self, *args: str) -> Run:
        result = CliRunner().invoke(app, [*args, "--project", str(self.root)])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Run(result.exit_code, result.stdout, result.stderr)

    def snapshot(self) -> dict[str, bytes]:
        """Every file under the output dir with its bytes (links by their target)."""
        found: dict[str, bytes] = {}
        if not self.generated.exists():
            return found
        for path in sorted(self.generated.rglob("*")):
            key = path.relative_to(self.generated).as_posix()
            if path.is_symlink():
                found[key] = f"-> {path.readlink()}".encode()
            elif path.is_file():
                found[key] = path.read_bytes()
        return found


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text(
        '[tool.dashgen]\nsources = "src"\noutput = "generated"\n', encoding="utf-8"
    )
    return Project(root)


@pytest.fixture
def example(tmp_path: Path) -> Iterator[Project]:
    """A copy of the bundled example project, its committed ``generated/`` included."""
    root = tmp_path / "example"
    root.mkdir()
    shutil.copytree(REPO / "dashboards_src", root / "dashboards_src")
    shutil.copytree(REPO / "generated", root / "generated")
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    yield Project(root, sources="dashboards_src")
