"""pytest plugin: the dashboard contract inside the user's own test suite.

- marker ``grafana_contract`` for the user's own contract tests;
- session fixtures ``exported_families`` (what the code exports, through the real
  pipeline), ``dashboard_queries`` (every dashboard's parsed targets) and
  ``rule_queries`` (every rule group's);
- a ready-made contract test, switched on with one line of ini config::

      [tool.pytest.ini_options]
      dashgen_contract = true

  It reads ``[tool.dashgen]`` (sources or ``instruments``, the dashboards dir, externals,
  exclusions) and fails with the same findings as ``dashgen verify``;
- recording mode (``pytest --dashgen-record``, or ``dashgen_record = true``): the user's own
  tests run unchanged under dashgen's MeterProvider, and the session writes what they
  created and recorded to ``[tool.dashgen] recorded`` (default ``.dashgen/recorded.json``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from dashgen.errors import DashgenError

if TYPE_CHECKING:  # the pipeline is imported on first use, not at every pytest start-up
    from dashgen.config import Config
    from dashgen.families import Family
    from dashgen.verify.contract import VerifyResult
    from dashgen.verify.dashboards import DashboardQueries

MARKER = "grafana_contract"
#: Where a pytest-xdist worker hands its recording to the controller.
RECORDING_KEY = "dashgen_recording"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "dashgen_contract",
        type="bool",
        default=False,
        help="dashgen: add a test that checks the dashboards against the exported metrics",
    )
    parser.addini(
        "dashgen_dashboards",
        default="",
        help="dashgen: dir of dashboard JSON for the contract [default: [tool.dashgen] output]",
    )
    parser.getgroup("dashgen").addoption(
        "--dashgen-record",
        action="store_true",
        default=False,
        help="dashgen: record which OTel instruments the tests create and record, into "
        "[tool.dashgen] recorded [default: .dashgen/recorded.json]",
    )
    parser.addini(
        "dashgen_record",
        type="bool",
        default=False,
        help="dashgen: recording mode on every run, as with --dashgen-record",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    """Recording mode starts here, before conftest files and test modules import the app."""
    if early_config.known_args_namespace.dashgen_record or early_config.getini("dashgen_record"):
        from dashgen.config import load_config
        from dashgen.record.recording import DEFAULT_PATH

        try:
            config = load_config(early_config.rootpath)
        except DashgenError as error:
            raise pytest.UsageError(f"dashgen recording mode: {error}") from None
        test_paths = [*early_config.getini("testpaths"), *config.test_paths]
        recorder = Recorder(config, config.recorded or config.root / DEFAULT_PATH, test_paths)
        early_config.pluginmanager.register(recorder, "dashgen-recorder")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{MARKER}: checks between Grafana dashboards and the exported metrics"
    )


def _dashgen_config(config: pytest.Config) -> Config:
    from dashgen.config import load_config

    return load_config(config.rootpath)


def _dashboards_dir(config: pytest.Config, dashgen: Config) -> Path:
    configured = str(config.getini("dashgen_dashboards"))
    return dashgen.root / configured if configured else dashgen.output


@pytest.fixture(scope="session")
def exported_families(pytestconfig: pytest.Config) -> tuple[Family, ...]:
    """Every family the code exports, read from the real OTel -> Prometheus pipeline."""
    from dashgen.verify.stages import code_side

    dashgen = _dashgen_config(pytestconfig)
    return code_side(dashgen, _dashboards_dir(pytestconfig, dashgen)).families


@pytest.fixture(scope="session")
def dashboard_queries(pytestconfig: pytest.Config) -> list[DashboardQueries]:
    """Every dashboard's targets, PromQL parsed, from the configured dashboards dir (rule
    groups there are left out: ``rule_queries`` has them)."""
    return [group for group in _queries(pytestconfig) if not group.rules]


@pytest.fixture(scope="session")
def rule_queries(pytestconfig: pytest.Config) -> list[DashboardQueries]:
    """Every rule group's rules (alerts and recording rules) as parsed targets."""
    return [group for group in _queries(pytestconfig) if group.rules]


def _queries(pytestconfig: pytest.Config) -> list[DashboardQueries]:
    from dashgen.verify.dashboard_files import read_dashboards

    dashgen = _dashgen_config(pytestconfig)
    directory = _dashboards_dir(pytestconfig, dashgen)
    return list(read_dashboards(directory, dashgen.root, dashgen.exclude_dashboards).dashboards)


class ContractFailure(Exception):
    def __init__(self, result: VerifyResult) -> None:
        super().__init__(result)
        self.result = result


class ContractItem(pytest.Item):
    """The ready-made contract test: forward, label and reverse checks in one test."""

    def runtest(self) -> None:
        from dashgen.verify.contract import check_contract
        from dashgen.verify.dashboard_files import read_dashboards
        from dashgen.verify.stages import code_side

        dashgen = _dashgen_config(self.config)
        directory = _dashboards_dir(self.config, dashgen)
        code = code_side(dashgen, directory)
        found = read_dashboards(directory, dashgen.root, dashgen.exclude_dashboards)
        result = check_contract(found.dashboards, code.families, code.rules(dashgen), found.notes)
        if not result.ok:
            raise ContractFailure(result)

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: object = None,
    ) -> str:
        error = excinfo.value
        if isinstance(error, ContractFailure):
            lines = [f"{len(error.result.findings)} dashboard contract finding(s):"]
            for finding in error.result.findings:
                where = " / ".join(p for p in (finding.file, finding.panel, finding.ref_id) if p)
                lines.append(f"  {finding.kind} {finding.subject} ({where}): {finding.message}")
                lines.append(f"      fix: {finding.hint}")
            return "\n".join(lines)
        if isinstance(error, DashgenError):
            return f"dashgen: {error}"
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, "dashgen dashboard contract"


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Add the contract test before ``-m``/``-k`` deselection runs, so both apply to it."""
    if config.getini("dashgen_contract"):
        item = ContractItem.from_parent(session, name="dashgen_contract")
        item.add_marker(MARKER)
        items.append(item)


class Recorder:
    """Recording mode: dashgen's MeterProvider is the global one for the whole session.

    The tests run unchanged; after each test the observables' callbacks run once, as a
    periodic reader would run them. Only counting happens here, and at the end the file
    is written from what was counted: no SDK, no exporter (their names are the readers'
    business, see ``dashgen.record.replay``). pytest-xdist workers write nothing; they hand their
    snapshots to the controller.
    """

    def __init__(self, config: Config, path: Path, test_paths: Sequence[str] = ()) -> None:
        from dashgen.record.capture import PROVIDER, Callers, install_global

        self.capture = PROVIDER.start(Callers(config.root, test_paths))
        try:
            install_global()
        except DashgenError as error:
            raise pytest.UsageError(f"dashgen recording mode: {error}") from None
        self.config = config
        self.root = config.root
        self.path = path
        self.received: list[dict[str, Any]] = []
        self.lost: list[str] = []
        self.summary: list[str] = []

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_teardown(self) -> None:
        """Before the test's fixtures are torn down, while what they observe still exists."""
        self.capture.observe()

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: object) -> None:
        """pytest-xdist controller: keep what a worker recorded, and note a worker that
        handed back nothing (it crashed): a recording without it would be wrong."""
        output = getattr(node, "workeroutput", {})
        if RECORDING_KEY not in output:
            self.lost.append(str(getattr(getattr(node, "gateway", None), "id", node)))
        self.received.extend(output.get(RECORDING_KEY, []))

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        from dashgen.config import remember_valid_table
        from dashgen.record.capture import Snapshot
        from dashgen.record.recording import from_snapshot, merge, write_recording

        snapshots = self.capture.snapshots()
        if hasattr(session.config, "workerinput"):
            outbox = session.config.workeroutput  # type: ignore[attr-defined]
            outbox[RECORDING_KEY] = [s.to_json() for s in snapshots]
            return
        if session.config.option.collectonly or session.exitstatus == pytest.ExitCode.INTERRUPTED:
            return  # not a whole run: keep the last recording
        if self.lost:
            self.summary = [
                f"error: xdist worker(s) {', '.join(sorted(self.lost))} handed back no recording "
                "(crashed?): the recording would miss what they recorded, so none was written"
            ]
            session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
            return
        snapshots += [Snapshot.from_json(s) for s in self.received]
        instruments = merge(from_snapshot(s, self.root) for s in snapshots)
        try:
            write_recording(self.path, instruments)
        except DashgenError as error:
            self.summary = [f"error: {error}"]
            session.exitstatus = pytest.ExitCode.USAGE_ERROR
            return
        remember_valid_table(self.config)  # the next run need not check the config again
        shown = self.path
        if shown.is_relative_to(self.root):
            shown = shown.relative_to(self.root)
        recorded = sum(i.recorded for i in instruments)
        self.summary = [f"{recorded} of {len(instruments)} instruments recorded; wrote {shown}"]
        dead = sorted({i.name for i in instruments if not i.recorded})
        if dead:
            self.summary.append(f"never recorded: {', '.join(dead)}")
        test_only = sorted({i.name for i in instruments if i.test_only})
        if test_only:
            names = ", ".join(test_only)
            self.summary.append(f"recorded only by tests, never by production code: {names}")
        if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            self.summary.append(
                "OTEL_SDK_DISABLED=true turns the app's OTel SDK off; dashgen recorded through "
                "its own provider all the same"
            )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.summary:
            terminalreporter.write_sep("-", "dashgen recording")
            for line in self.summary:
                terminalreporter.write_line(line)
