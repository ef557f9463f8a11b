"""The pull exporter at another version, in an environment of its own: the names an
upgrade (or a downgrade) of ``opentelemetry-exporter-prometheus`` would give.

The environment is a venv with only that exporter, and the SDK and prometheus_client pip
picks for it; dashgen's own export stage runs there, from this checkout of dashgen, on the
same declarations, and hands back the plain data it computed.
"""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import dashgen
from dashgen.declare import MetricSpec
from dashgen.errors import DashgenError
from dashgen.families import Exported

EXPORTER = "opentelemetry-exporter-prometheus"
_VERSION = re.compile(r"[0-9][0-9A-Za-z.!+-]*")
_INSTALL_TIMEOUT_S = 600
_RUNNER = """
import pickle, sys
from dashgen.errors import DashgenError
from dashgen.pipelines.prometheus_exporter import export
specs = pickle.load(sys.stdin.buffer)
try:
    result = ("ok", export(specs))
except DashgenError as error:
    result = ("error", (error.where, error.message))
sys.stdout.buffer.write(pickle.dumps(result))
"""


def export_at(version: str, specs: Sequence[MetricSpec], home: Path) -> Exported:
    """What the pull exporter at ``version`` makes of ``specs``; its venv is kept in
    ``home`` for the next check."""
    where = f"{EXPORTER}=={version}"
    if not _VERSION.fullmatch(version):
        raise DashgenError("--exporter-version", f"{version!r} is no version, such as 0.59b0")
    python = _environment(version, home, where)
    package_parent = Path(dashgen.__file__).resolve().parents[1]
    done = subprocess.run(
        [python, "-c", _RUNNER],
        input=pickle.dumps(list(specs)),
        capture_output=True,
        env={**os.environ, "PYTHONPATH": str(package_parent)},
        timeout=_INSTALL_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise DashgenError(where, f"its export failed: {_last_line(done.stderr.decode())}")
    kind, value = pickle.loads(done.stdout)
    if kind == "error":
        place, message = value
        raise DashgenError(place, f"with {where}: {message}")
    exported: Exported = value
    return exported


def _environment(version: str, home: Path, where: str) -> str:
    """A venv holding the exporter at ``version``, made once."""
    root = home / f"py{sys.version_info.major}.{sys.version_info.minor}" / version
    python = root / "bin" / "python"
    installed = root / ".installed"
    if installed.is_file():
        return str(python)
    shutil.rmtree(root, ignore_errors=True)
    steps = [
        [sys.executable, "-m", "venv", str(root)],
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", where],
    ]
    for step in steps:
        done = subprocess.run(
            step, capture_output=True, text=True, timeout=_INSTALL_TIMEOUT_S, check=False
        )
        if done.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise DashgenError(where, f"cannot install it: {_last_line(done.stderr)}")
    installed.write_text(version, encoding="utf-8")
    return str(python)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip() and "WARNING" not in line]
    return lines[-1].strip() if lines else "no message"
