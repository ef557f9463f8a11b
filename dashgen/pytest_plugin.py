"""pytest plugin: the dashboard contract inside the user's own test suite.

- marker ``grafana_contract`` for the user's own contract tests;
- session fixtures ``exported_families`` (what the code exports, through the real
  pipeline) and ``dashboard_queries`` (every dashboard's parsed targets);
- a ready-made contract test, switched on with one line of ini config::

      [tool.pytest.ini_options]
      dashgen_contract = true

  It reads ``[tool.dashgen]`` (sources or ``instruments``, the dashboards dir, externals,
  exclusions) and fails with the same findings as ``dashgen verify``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from dashgen.errors import DashgenError

if TYPE_CHECKING:  # the pipeline is imported on first use, not at every pytest start-up
    from dashgen.config import Config
    from dashgen.contract import VerifyResult
    from dashgen.dashboards import DashboardQueries
    from dashgen.families import Family

MARKER = "grafana_contract"


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
    from dashgen.verify import code_side

    dashgen = _dashgen_config(pytestconfig)
    return code_side(dashgen, _dashboards_dir(pytestconfig, dashgen)).families


@pytest.fixture(scope="session")
def dashboard_queries(pytestconfig: pytest.Config) -> list[DashboardQueries]:
    """Every dashboard's targets, PromQL parsed, from the configured dashboards dir."""
    from dashgen.dashboards import read_dashboards

    dashgen = _dashgen_config(pytestconfig)
    return read_dashboards(_dashboards_dir(pytestconfig, dashgen), dashgen.root)


class ContractFailure(Exception):
    def __init__(self, result: VerifyResult) -> None:
        super().__init__(result)
        self.result = result


class ContractItem(pytest.Item):
    """The ready-made contract test: forward, label and reverse checks in one test."""

    def runtest(self) -> None:
        from dashgen.contract import check_contract
        from dashgen.dashboards import read_dashboards
        from dashgen.verify import code_side

        dashgen = _dashgen_config(self.config)
        directory = _dashboards_dir(self.config, dashgen)
        families = code_side(dashgen, directory).families
        result = check_contract(read_dashboards(directory, dashgen.root), families, dashgen.rules())
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
