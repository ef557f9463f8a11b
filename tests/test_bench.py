"""The benchmarks' baselines still do what they stand for: a baseline that fails is no
baseline (bench_verify.py's seed-style contract test broke, unnoticed, when dashboards
gained $job and $instance matchers)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from dashgen.cli import app
from tests.conftest import REPO

sys.path.insert(0, str(REPO / "bench"))
from bench_build import write_catalog


def test_the_seed_style_contract_test_passes_on_a_built_catalog(tmp_path: Path) -> None:
    write_catalog(tmp_path, families=100, dashboards=5)
    built = CliRunner().invoke(app, ["build", "--project", str(tmp_path)])
    assert built.exit_code == 0, built.stdout
    seed = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "DASHGEN_BENCH_ROOT": str(tmp_path)}
    result = subprocess.run(
        [*seed, str(REPO / "bench/seed_style_contract.py")],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
    assert "2 passed" in result.stdout
