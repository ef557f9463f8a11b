"""CI sessions. They run in the environment nox itself runs in (the README's `.venv`),
so one `pip install -e '.[dev]'` serves them all and CI pays for one install, not six."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nox

nox.options.sessions = [
    "lint",
    "typecheck",
    "tests",
    "build_check",
    "verify",
    "live",
    "record",
    "rules",
]
nox.options.error_on_missing_interpreters = True
PYTHON = sys.executable
# Bytecode caching on, as on a user's machine, whatever the shell says: with
# PYTHONDONTWRITEBYTECODE set, every dashgen and pytest process the tests start compiles
# dashgen from source again (an editable install has no .pyc), about half the CPU of the
# subprocess-heavy tests.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
CODE = ["dashgen", "tests", "bench", "noxfile.py", "dashboards_src", "example_app"]


@nox.session(python=False)
def lint(session: nox.Session) -> None:
    """ruff: lint rules and formatting."""
    session.run(PYTHON, "-m", "ruff", "check", *CODE)
    session.run(PYTHON, "-m", "ruff", "format", "--check", *CODE)


@nox.session(python=False)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the package, the tests and the benchmarks."""
    session.run(PYTHON, "-m", "mypy")


@nox.session(python=False)
def tests(session: nox.Session) -> None:
    """The whole pytest suite, real servers included (needs prometheus, victoria-metrics)."""
    session.run(PYTHON, "-m", "pytest", "-n", "2", *session.posargs)


@nox.session(name="build_check", python=False)
def build_check(session: nox.Session) -> None:
    """generated/ is exactly what the bundled sources give."""
    session.run(PYTHON, "-m", "dashgen", "build", "--check")


@nox.session(python=False)
def verify(session: nox.Session) -> None:
    """The contract checks on the bundled example."""
    session.run(PYTHON, "-m", "dashgen", "verify")


@nox.session(python=False)
def live(session: nox.Session) -> None:
    """Every panel of the example draws data from a real Prometheus and VictoriaMetrics."""
    session.run(PYTHON, "-m", "dashgen", "verify", "--live")
    session.run(PYTHON, "-m", "dashgen", "verify", "--live", "--engine", "victoria-metrics")


@nox.session(python=False)
def record(session: nox.Session) -> None:
    """Recording coverage on the example: its app's tests record every declared metric but
    one, `worker.jobs.cancelled`, which only the metrics class's own unit test records. The
    recording must report exactly that instrument and its panel, naming the test."""
    recording = ".dashgen/recorded.json"
    session.run(PYTHON, "-m", "pytest", "example_app/tests", "--dashgen-record", "-n", "2")
    verify = [PYTHON, "-m", "dashgen", "verify", "--recorded", recording, "--format", "json"]
    report = subprocess.run(verify, capture_output=True, text=True, check=False)
    findings = json.loads(report.stdout)["findings"] if report.returncode == 1 else []
    found = {(f["kind"], f["subject"]) for f in findings}
    expected = {
        ("dead-instrument", "worker.jobs.cancelled"),
        ("dead-panel", "worker_jobs_cancelled_total"),
    }
    hidden_by = "example_app/tests/test_metrics.py:"
    if found != expected or not all(hidden_by in f["message"] for f in findings):
        session.error(f"verify --recorded: expected {sorted(expected)}, got:\n{report.stdout}")
    session.log(f"verify --recorded reports the test-only instrument: {sorted(found)}")
    session.run(PYTHON, "-m", "dashgen", "coverage", "--recorded", recording, "--fail-under", "93")


@nox.session(python=False)
def rules(session: nox.Session) -> None:
    """The example's generated rule files pass `promtool check rules`, and the promtool tests
    dashgen wrote for its alerts pass `promtool test rules`."""
    rule_files = sorted(str(path) for path in Path("generated/rules").glob("*.yaml"))
    tests = sorted(str(path) for path in Path("generated/rules/tests").glob("*.yaml"))
    if not rule_files or not tests:
        session.error("generated/rules/ holds no rule files or no tests: run `dashgen build`")
    session.run("promtool", "check", "rules", *rule_files, external=True)
    session.run("promtool", "test", "rules", *tests, external=True)


@nox.session(python=False)
@nox.parametrize("dependencies", ["oldest", "newest"])
def matrix(session: nox.Session, dependencies: str) -> None:
    """The whole suite in a venv of its own at one end of the supported range: the oldest
    versions pyproject.toml allows (constraints/oldest.txt), or the newest PyPI has. Not a
    default session (it doubles the suite's time): .ci/run runs the oldest after the default
    sessions, whose `tests`, on a fresh install, is the newest."""
    venv = Path(".nox") / f"matrix-{dependencies}"
    python = str(venv / "bin" / "python")
    session.run(PYTHON, "-m", "venv", "--clear", str(venv))
    ends = ["-c", "constraints/oldest.txt"] if dependencies == "oldest" else ["--upgrade"]
    install = [python, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    session.run(*install, "-e", ".[test]", *ends, external=True)
    session.run(python, "-m", "pip", "list", "--format", "freeze", external=True, silent=False)
    session.run(
        python,
        "-m",
        "pytest",
        "-n",
        "2",
        "-p",
        "no:cacheprovider",
        *session.posargs,
        external=True,
        env={"DASHGEN_HYPOTHESIS_PROFILE": "matrix"},  # 25 examples per property, not 100
    )


@nox.session(python=False)
def fuzz(session: nox.Session) -> None:
    """The property-based tests at 2,000 examples each (CI runs 100); not run by default."""
    session.env["DASHGEN_HYPOTHESIS_PROFILE"] = "fuzz"
    properties = ["tests/test_properties.py", "tests/test_safety.py"]
    session.run(PYTHON, "-m", "pytest", *properties, "-n", "2", *session.posargs)
