"""Work split over two processes (export, plan and render; verify's code side in a child
beside its read of the dashboards) gives exactly the answer, and the error, of the work
done in one; a child whose answer is never taken does not linger."""

from __future__ import annotations

import gc
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import dashgen.build.stages
import dashgen.isolate
import dashgen.memo
import dashgen.pipelines
import dashgen.verify.stages
from dashgen import collector
from dashgen.build.stages import generate
from dashgen.catalog import Catalog, load_catalog
from dashgen.config import load_config
from dashgen.errors import DashgenError
from dashgen.isolate import in_parallel, start_isolated
from dashgen.pipelines import Pipeline, PipelineName
from tests.conftest import Project

_KINDS = [
    ("Counter", "hints.Rate(by=('route',))"),
    ("UpDownCounter", "hints.Current(by=('route',))"),
    ("Histogram", "[hints.Quantiles(by=('route',)), hints.Heatmap()]"),
    ("Gauge", "hints.Current(style='stat')"),
    ("ObservableCounter", "hints.Increase()"),
    ("ObservableUpDownCounter", "hints.Current(style='gauge')"),
    ("ObservableGauge", "hints.Current(style='bargauge', by=('route',))"),
]


def _every_kind(project: Project, boards: int = 4) -> None:
    """``boards`` dashboards, each with a metric of every instrument kind."""
    for board in range(boards):
        lines = ["from dashgen import *", "from dashgen import hints"]
        for index, (kind, hint) in enumerate(_KINDS):
            lines.append(
                f"M{index} = {kind}('b{board}.{kind.lower()}', unit='ms', "
                f"labels=['route', 'status'], hint={hint})"
            )
        metrics = ", ".join(f"M{i}" for i in range(len(_KINDS)))
        lines.append(f"D = Dashboard('Board {board}', tags=['svc'], rows=[Row('r', [{metrics}])])")
        project.source(f"board_{board}.py", "\n".join(lines) + "\n")


def _counting(monkeypatch: pytest.MonkeyPatch, module: object) -> list[int]:
    """Count the splits ``module`` makes, which split from two declarations on."""
    calls: list[int] = []

    def counted(function: Callable[[Any], Any], *arguments: Any, **options: Any) -> Any:
        calls.append(1)
        return in_parallel(function, *arguments, **options)

    monkeypatch.setattr(module, "in_parallel", counted)
    return calls


def _split_and_whole(
    monkeypatch: pytest.MonkeyPatch, compute: Callable[[], Any]
) -> tuple[Any, Any]:
    monkeypatch.setattr(dashgen.isolate, "SPLIT_FROM", 2)
    split = compute()
    monkeypatch.setattr(dashgen.isolate, "SPLIT_FROM", 10**9)
    return split, compute()


def _catalog(project: Project) -> Catalog:
    return load_catalog(project.root / project.sources)


@pytest.mark.parametrize("name", [PipelineName.PROMETHEUS_EXPORTER, PipelineName.OTLP])
def test_halves_export_as_the_whole_does(
    project: Project, monkeypatch: pytest.MonkeyPatch, name: PipelineName
) -> None:
    _every_kind(project)
    specs = _catalog(project).metrics
    splits = _counting(monkeypatch, dashgen.pipelines)
    split, whole = _split_and_whole(monkeypatch, lambda: Pipeline(name).export(specs))
    assert splits == [1]
    assert split == whole
    assert list(split.metrics) == list(whole.metrics) == [s.name for s in specs]
    names = [f.name for f in split.families]
    assert len(names) == len(set(names))  # a family no declaration owns (target_info) once


@pytest.mark.parametrize("name", [PipelineName.PROMETHEUS_EXPORTER, PipelineName.OTLP])
def test_a_collision_across_the_halves_is_the_error_of_the_whole(
    project: Project, monkeypatch: pytest.MonkeyPatch, name: PipelineName
) -> None:
    project.source(
        "a.py",
        """\
        from dashgen import *
        A = Counter("requests", labels=["route"])
        B = Gauge("requests_total")
        D = Dashboard("D", rows=[Row("r", [A, B])])
        """,
    )
    specs = _catalog(project).metrics
    splits = _counting(monkeypatch, dashgen.pipelines)
    errors = []
    for split_from in (2, 10**9):
        monkeypatch.setattr(dashgen.isolate, "SPLIT_FROM", split_from)
        with pytest.raises(DashgenError) as raised:
            Pipeline(name).export(specs)
        errors.append((raised.value.where, raised.value.message))
    assert splits == [1]  # each half alone is fine: only the join sees the collision
    assert errors[0] == errors[1]
    assert "collides with 'requests'" in errors[0][1]


def test_dashboards_rendered_in_two_processes_are_the_same_bytes(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    _every_kind(project, boards=5)
    config = load_config(project.root)
    splits = _counting(monkeypatch, dashgen.build.stages)
    split, whole = _split_and_whole(monkeypatch, lambda: generate(config).files)
    assert splits == [1]
    assert list(split) == list(whole)
    assert split == whole
    assert len([path for path in split if path.endswith(".json")]) == 5


def test_the_parents_error_comes_first_and_the_childs_comes_across() -> None:
    def refuse(part: str) -> str:
        raise DashgenError(part, "refused")

    with pytest.raises(DashgenError) as raised:
        in_parallel(refuse, "here", "there")
    assert raised.value.where == "here"

    def refuse_there(part: str) -> str:
        if part == "there":
            raise DashgenError(part, "refused")
        return part

    with pytest.raises(DashgenError) as raised:
        in_parallel(refuse_there, "here", "there")
    assert (raised.value.where, raised.value.message) == ("there", "refused")
    assert in_parallel(str.upper, "here", "there") == ("HERE", "THERE")


def sleep_forever(pid_file: Path) -> None:
    pid_file.write_text(str(os.getpid()))
    time.sleep(600)


def started_child(pid_file: Path) -> int:
    """The pid that :func:`sleep_forever`, run in a child, writes once it runs."""
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.01)
    return int(pid_file.read_text())


def test_a_child_whose_answer_is_never_taken_is_killed(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    pending = start_isolated("here", "its answer", sleep_forever, pid_file)
    with pytest.raises(RuntimeError, match="the parent failed"), pending:
        started_child(pid_file)
        raise RuntimeError("the parent failed")
    with pytest.raises(ProcessLookupError):  # killed and reaped: no such process
        os.kill(int(pid_file.read_text()), 0)


# --- the dashboards read beside the code side (verify) -------------------------------------


def _pids_of(monkeypatch: pytest.MonkeyPatch, module: object, name: str, log: Path) -> Path:
    """``log``: where each call of ``module.name`` writes the pid of the process it ran in."""
    function = getattr(module, name)

    def logged(*arguments: Any) -> Any:
        with log.open("a") as file:
            file.write(f"{os.getpid()}\n")
        return function(*arguments)

    monkeypatch.setattr(module, name, logged)
    return log


def _beside(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[Path, Path]:
    """Logs of where the dashboards are read and where the code side (its export, with or
    without a render) is computed."""
    monkeypatch.setattr(dashgen.verify.stages, "second_core", lambda: True)
    reads = _pids_of(monkeypatch, dashgen.verify.stages, "remembered_dashboards", tmp_path / "r")
    _pids_of(monkeypatch, dashgen.memo, "generated", tmp_path / "code")
    _pids_of(monkeypatch, dashgen.memo, "_exported", tmp_path / "code")
    return reads, tmp_path / "code"


def _pids(log: Path) -> list[str]:
    pids = log.read_text().split() if log.exists() else []
    log.unlink(missing_ok=True)
    return pids


def _with_threshold(monkeypatch: pytest.MonkeyPatch, size: int, run: Callable[[], Any]) -> Any:
    monkeypatch.setattr(dashgen.verify.stages, "READ_BESIDE_FROM", size)
    return run()


@pytest.mark.parametrize("checked", ["output dir", "hand-written dir"])
def test_a_code_side_computed_beside_the_read_gives_the_same_report(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, checked: str
) -> None:
    _every_kind(project)
    assert project.run("build").exit_code == 0
    edited = project.generated / "board-1.json"  # a finding, and a stale file
    edited.write_text(edited.read_text().replace("b1_counter", "b1_renamed"))
    where = []
    if checked == "hand-written dir":
        shutil.copytree(project.generated, tmp_path / "hand")
        where = [str(tmp_path / "hand")]
    reads, code = _beside(monkeypatch, tmp_path)

    def run() -> Any:
        return project.run("verify", *where, "--no-cache", "--format", "json")

    beside = _with_threshold(monkeypatch, 1, run)
    me = str(os.getpid())
    assert _pids(reads) == [me]
    computed = _pids(code)
    assert len(computed) == 1 and computed != [me], "computed in this process"
    in_turn = _with_threshold(monkeypatch, 10**12, run)
    assert _pids(reads) == [me] and _pids(code) == [me]
    assert beside.exit_code == in_turn.exit_code == 1
    assert beside.stdout == in_turn.stdout
    assert '"unknown-metric"' in beside.stdout
    assert ('"stale-file"' in beside.stdout) == (checked == "output dir")


def test_a_memo_hit_computes_nothing_beside(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _every_kind(project)
    assert project.run("build").exit_code == 0
    assert project.run("verify").exit_code == 0  # remembers the check too
    reads, code = _beside(monkeypatch, tmp_path)
    assert _with_threshold(monkeypatch, 1, lambda: project.run("verify")).exit_code == 0
    assert not reads.exists() and not code.exists()


def test_a_small_project_computes_its_code_side_in_process(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Below a megabyte of dashboards the fork would cost more than it saves."""
    _every_kind(project)
    assert project.run("build").exit_code == 0
    reads, code = _beside(monkeypatch, tmp_path)
    assert project.run("verify", "--no-cache").exit_code == 0
    assert _pids(reads) == _pids(code) == [str(os.getpid())]


def _broken_dir(tmp_path: Path) -> Path:
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / "broken.json").write_text('{"title": "x", oops')
    return hand


def _beside_and_in_turn(
    project: Project, monkeypatch: pytest.MonkeyPatch, *arguments: str
) -> tuple[Any, Any]:
    monkeypatch.setattr(dashgen.verify.stages, "second_core", lambda: True)

    def run() -> Any:
        return project.run("verify", *arguments)

    return _with_threshold(monkeypatch, 1, run), _with_threshold(monkeypatch, 10**12, run)


def test_an_unreadable_dir_read_beside_is_the_same_one_line(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _every_kind(project, boards=1)
    hand = _broken_dir(tmp_path)
    beside, in_turn = _beside_and_in_turn(project, monkeypatch, str(hand), "--no-cache")
    assert beside.exit_code == in_turn.exit_code == 2
    assert beside.stderr == in_turn.stderr
    assert "broken.json" in beside.stderr and len(beside.stderr.strip().splitlines()) == 1


def test_the_sources_error_comes_before_the_dashboards_one_as_in_turn(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Read beside the code side, a broken dashboard still waits for the sources' verdict:
    the first error is the one a run in turn reports."""
    _every_kind(project, boards=1)
    project.source("broken.py", "from dashgen import *\nB = Counter('x', labels='route')\n")
    hand = _broken_dir(tmp_path)
    beside, in_turn = _beside_and_in_turn(project, monkeypatch, str(hand), "--no-cache")
    assert beside.exit_code == in_turn.exit_code == 2
    assert beside.stderr == in_turn.stderr
    assert "broken.py" in beside.stderr and len(beside.stderr.strip().splitlines()) == 1


def test_the_collector_is_paused_in_the_block_and_as_it_was_after() -> None:
    assert gc.isenabled()
    with pytest.raises(RuntimeError), collector.paused():
        assert not gc.isenabled()
        raise RuntimeError("a stage failed")
    assert gc.isenabled()
    gc.disable()
    try:
        with collector.paused():
            pass
        assert not gc.isenabled()  # off stays off
    finally:
        gc.enable()
