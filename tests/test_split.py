"""Work split over two processes (export, plan and render; verify's read of the dashboards
beside the code side) gives exactly the answer, and the error, of the work done in one; a
child whose answer is never taken does not linger."""

from __future__ import annotations

import gc
import os
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
from dashgen.isolate import Deferred, in_parallel, start_isolated
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


def _reads_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The file where each read of the dashboards writes the pid of the process it ran in."""
    log = tmp_path / "read-pids"
    read = dashgen.memo.remembered_dashboards

    def logged(*arguments: Any) -> Any:
        with log.open("a") as file:
            file.write(f"{os.getpid()}\n")
        return read(*arguments)

    monkeypatch.setattr(dashgen.verify.stages, "remembered_dashboards", logged)
    return log


def test_dashboards_read_beside_the_code_side_give_the_same_report(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _every_kind(project)
    assert project.run("build").exit_code == 0
    edited = project.generated / "board-1.json"  # a finding, and a stale file
    edited.write_text(edited.read_text().replace("b1_counter", "b1_renamed"))
    reads = _reads_in(monkeypatch, tmp_path)
    monkeypatch.setattr(dashgen.verify.stages, "READ_AHEAD_FROM", 1)
    ahead = project.run("verify", "--no-cache", "--format", "json")
    assert reads.read_text().split() != [str(os.getpid())], "read in this process"
    reads.unlink()
    monkeypatch.setattr(dashgen.verify.stages, "READ_AHEAD_FROM", 10**12)
    here = project.run("verify", "--no-cache", "--format", "json")
    assert reads.read_text().split() == [str(os.getpid())]
    assert ahead.exit_code == here.exit_code == 1
    assert ahead.stdout == here.stdout
    assert '"unknown-metric"' in ahead.stdout and '"stale-file"' in ahead.stdout


def test_a_memo_hit_reads_no_dashboards_ahead(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _every_kind(project)
    assert project.run("build").exit_code == 0
    assert project.run("verify").exit_code == 0  # remembers the check too
    reads = _reads_in(monkeypatch, tmp_path)
    monkeypatch.setattr(dashgen.verify.stages, "READ_AHEAD_FROM", 1)
    assert project.run("verify").exit_code == 0
    assert not reads.exists()


def test_a_small_project_reads_its_dashboards_in_process(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Below a megabyte of dashboards the fork would cost more than it saves."""
    _every_kind(project)
    assert project.run("build").exit_code == 0
    reads = _reads_in(monkeypatch, tmp_path)
    assert project.run("verify", "--no-cache").exit_code == 0
    assert reads.read_text().split() == [str(os.getpid())]


def test_an_unreadable_dir_read_ahead_is_the_same_one_line(
    project: Project, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _every_kind(project, boards=1)
    hand = tmp_path / "hand"
    hand.mkdir()
    (hand / "broken.json").write_text('{"title": "x", oops')
    monkeypatch.setattr(dashgen.verify.stages, "READ_AHEAD_FROM", 1)
    ahead = project.run("verify", str(hand), "--no-cache")
    monkeypatch.setattr(dashgen.verify.stages, "READ_AHEAD_FROM", 10**12)
    here = project.run("verify", str(hand), "--no-cache")
    assert ahead.exit_code == here.exit_code == 2
    assert ahead.stderr == here.stderr
    assert "broken.json" in ahead.stderr and len(ahead.stderr.strip().splitlines()) == 1


def test_a_deferred_result_is_the_same_begun_in_a_child_or_not(tmp_path: Path) -> None:
    begun = Deferred("here", "its answer", os.getpid)
    with begun:
        begun.start()
        assert begun() != os.getpid()  # computed in the child
        assert begun() == begun()  # and kept
    not_begun = Deferred("here", "its answer", os.getpid)
    with not_begun:
        assert not_begun() == os.getpid()
    pid_file = tmp_path / "child.pid"
    never_asked = Deferred("here", "its answer", sleep_forever, pid_file)
    with never_asked:
        never_asked.start()
        started_child(pid_file)
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


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
