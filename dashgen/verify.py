"""``dashgen verify`` as its stages: code side -> dashboards -> PromQL -> contract findings.

The code side is either the catalog through the real exporter (dashgen sources), or a
user callable that creates plain OTel instruments (adoption on an existing codebase).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from dashgen.build import generate
from dashgen.capture import families_from_callable
from dashgen.config import Config
from dashgen.contract import (
    MISSING_FILE,
    ORPHAN_FILE,
    STALE_FILE,
    Finding,
    VerifyResult,
    check_contract,
)
from dashgen.dashboards import read_dashboards
from dashgen.errors import DashgenError
from dashgen.families import Family
from dashgen.write import Drift, diff_tree

_DRIFT_KINDS = {"stale": STALE_FILE, "missing": MISSING_FILE, "orphan": ORPHAN_FILE}


@dataclass(frozen=True)
class CodeSide:
    families: tuple[Family, ...]
    drift: tuple[Drift, ...] | None
    """Stale/missing/orphan files of the output dir; ``None`` when not checked."""


def code_side(config: Config, directory: Path) -> CodeSide:
    """What the code exports; for dashgen sources also whether ``directory`` is stale."""
    if config.instruments:
        return CodeSide(tuple(families_from_callable(config.instruments, config.root)), None)
    built = generate(config)
    drift = None
    if directory.resolve() == config.output.resolve():
        drift = tuple(diff_tree(config.output, built.files))
    return CodeSide(built.exported.families, drift)


def verify(config: Config, directory: Path) -> VerifyResult:
    if not directory.is_dir():
        raise DashgenError(str(directory), "dashboards dir not found")
    code = code_side(config, directory)
    dashboards = read_dashboards(directory.resolve(), config.root)
    result = check_contract(dashboards, code.families, config.rules())
    if not code.drift:
        return result
    shown = _shown(directory, config.root)
    drift_findings = tuple(
        Finding(
            kind=_DRIFT_KINDS[item.kind],
            file=f"{shown}/{item.path}",
            dashboard="",
            panel="",
            ref_id="",
            subject=item.path,
            message=f"{shown}/{item.path} {item.describe()}",
            hint="run `dashgen build` and commit the result",
        )
        for item in code.drift
    )
    findings = sorted(result.findings + drift_findings, key=Finding.sort_key)
    return replace(result, findings=tuple(findings))


def _shown(path: Path, root: Path) -> str:
    resolved = path.resolve()
    return resolved.relative_to(root).as_posix() if resolved.is_relative_to(root) else str(path)
