"""The package's layout: one pipeline, its stages in folders by job, no import cycles.

Module-level imports only (imports inside functions and under ``TYPE_CHECKING`` are how a
stage loads a heavy one late, and cannot form a cycle at import time)."""

from __future__ import annotations

import ast
import graphlib
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "dashgen"


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements run at import: into ifs, trys and classes, never into functions."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from statements(node.orelse)
            continue
        yield node
        for name in ("body", "orelse", "finalbody"):
            yield from statements(getattr(node, name, []))
        for handler in getattr(node, "handlers", []):
            yield from statements(handler.body)


def module_level_imports(path: Path) -> set[str]:
    """The dashgen modules ``path`` imports when it is imported."""
    found: set[str] = set()
    for node in statements(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("dashgen"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dashgen"):
            module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {
        name: {m for m in module_level_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }


def test_no_module_imports_itself_back() -> None:
    graph = import_graph()
    assert {"dashgen.build.plan", "dashgen.catalog"} <= graph["dashgen.build.stages"]
    graphlib.TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_the_jobs_are_folders_and_the_export_paths_sit_side_by_side() -> None:
    folders = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert {"build", "verify", "live", "record", "pipelines"} <= folders
    assert {p.stem for p in (PACKAGE / "pipelines").glob("*.py")} >= {
        "prometheus_exporter",
        "otlp",
        "victoriametrics",
    }


def test_the_stages_of_the_build_never_import_verify_live_or_record() -> None:
    """build is declarations -> export -> plan -> render -> write; checking is another job."""
    graph = import_graph()
    for name, imported in graph.items():
        if name.startswith("dashgen.build"):
            jobs = ("dashgen.verify", "dashgen.live", "dashgen.record")
            assert not {m for m in imported if m.startswith(jobs)}, name


def test_the_package_exports_every_public_name_it_lists() -> None:
    """``dashgen/__init__`` imports its API on first use: each listed name must resolve."""
    import dashgen

    for name in dashgen.__all__:
        assert getattr(dashgen, name).__name__.rpartition(".")[2] == name
