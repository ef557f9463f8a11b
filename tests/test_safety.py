"""Safety properties, each proven by a test:

* dashgen never writes outside the output dir, but for its own cache (``.dashgen/cache/``,
  only under names it makes itself), and with ``--no-cache`` not even there;
* verify never executes anything found in a dashboard file;
* an interrupted build leaves the old ``generated/`` intact (or the new one complete);
* live servers bind only to loopback and never outlive the command.

Plus the two ways a build used to lose or misread files: an output dir set to a dir that
holds other files (the project root, the sources), and a stale ``__pycache__``.
"""

from __future__ import annotations

import json
import os
import py_compile
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dashgen.build import write
from dashgen.catalog import default_uid
from dashgen.live.tsdb import PrometheusServer
from tests.conftest import Project
from tests.test_build import GOOD_SOURCE
from tests.test_properties import SETTINGS

# --- never writes outside the output dir --------------------------------------------------


def tree(root: Path, *skip: Path) -> dict[str, str]:
    """Every entry under ``root`` (each ``skip`` and what is under it left out), with its
    bytes or link target, and its mode: what a write anywhere would change."""
    found = {}
    for path in sorted(root.rglob("*")):
        if any(path == left_out or left_out in path.parents for left_out in skip):
            continue
        key = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[key] = f"-> {os.readlink(path)}"
        elif path.is_file():
            found[key] = f"{path.stat().st_mode:o} {path.read_bytes()!r}"
        else:
            found[key] = f"{path.stat().st_mode:o} dir"
    return found


@contextmanager
def project_in(base: Path) -> Iterator[Project]:
    """A throwaway project, with a neighbour dir ``outside/`` that no build may touch."""
    root = base / "proj"
    root.mkdir(parents=True)
    (root / "pyproject.toml").write_text('[tool.dashgen]\nsources = "src"\n', encoding="utf-8")
    outside = base / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"panels": []}\n')
    (outside / "dir").mkdir()
    (outside / "dir" / "keep.txt").write_text("keep\n")
    try:
        yield Project(root)
    finally:
        shutil.rmtree(base)


hostile_titles = st.one_of(
    st.text(min_size=1, max_size=40),
    st.sampled_from(
        [
            "../../outside/secret",
            "..",
            "/etc/passwd",
            "..\\..\\outside",
            "outside/../../x",
            "~root",
            "$(touch pwned)",
            "con",
            "a\x00b",
            " ",
        ]
    ),
)
hostile_uids = st.one_of(
    st.none(),
    st.text(max_size=45),
    st.sampled_from(["../outside", "..", ".", "/tmp/x", "a/b", "x" * 41, "ok-uid", "NUL"]),
)
links = st.sampled_from(
    ["none", "json-to-outside-file", "dir-to-outside", "output-is-link-to-outside"]
)
#: Every name dashgen gives an entry of its cache dir: none comes from a title, uid or source.
CACHE_ENTRY = re.compile(
    r"\.gitignore|code-side\.memo|contract\.memo|config-valid|sources(/[0-9a-f]{32}\.code)?"
    r"|dashboards(/[0-9a-f]{32})?"
)


@SETTINGS
@given(title=hostile_titles, uid=hostile_uids, link=links, cached=st.booleans())
def test_build_never_writes_outside_the_output_dir(
    tmp_path_factory: pytest.TempPathFactory, title: str, uid: str | None, link: str, cached: bool
) -> None:
    """Hostile titles, uids and symlinks: the only entries that may change are
    ``generated/`` and (unless ``--no-cache``) the cache dir, under names of dashgen's own;
    and a build writes nothing but ``<uid>.json`` and ``provisioning/`` into ``generated/``."""
    with project_in(tmp_path_factory.mktemp("safety")) as project:
        base = project.root.parent
        project.source("m.py", GOOD_SOURCE)
        assert project.run("build").exit_code == 0
        outside = base / "outside"
        if link == "json-to-outside-file":
            (project.generated / "evil.json").symlink_to(outside / "secret.json")
        elif link == "dir-to-outside":
            (project.generated / "provisioning" / "evil").symlink_to(outside / "dir")
        elif link == "output-is-link-to-outside":
            shutil.rmtree(project.generated)
            project.generated.symlink_to(outside / "dir")
        project.source(
            "hostile.py",
            "from dashgen import Dashboard, Gauge, Row\n"
            "G = Gauge('hostile.gauge')\n"
            f"D = Dashboard({title!r}, uid={uid!r}, rows=[Row('r', [G])])\n",
        )
        changeable = (project.generated, project.cache) if cached else (project.generated,)
        before = tree(base, *changeable)
        result = project.run("build", *([] if cached else ["--no-cache"]))
        assert result.exit_code in (0, 2), result.stderr
        assert tree(base, *changeable) == before
        assert all(CACHE_ENTRY.fullmatch(entry) for entry in tree(project.cache))
        if result.exit_code == 0:
            assert project.generated.is_symlink() == (link == "output-is-link-to-outside")
            uid = uid if uid is not None else default_uid(title)
            assert {p for p in tree(project.generated) if not p.startswith("provisioning")} == {
                "app.json",
                "dashgen.lock",
                f"{uid}.json",
            }
            assert {p for p in tree(project.generated) if p.startswith("provisioning")} == (
                _provisioning()
            )


def _provisioning() -> set[str]:
    return {
        "provisioning",
        "provisioning/dashboards",
        "provisioning/dashboards/dashgen.yaml",
        "provisioning/datasources",
        "provisioning/datasources/dashgen.yaml",
    }


@pytest.mark.parametrize("output", [".", "src", "docs", "pyproject.toml", ".."])
def test_an_output_dir_holding_other_files_is_refused_not_wiped(
    project: Project, output: str
) -> None:
    """A misconfigured output must not be replaced: the swap would delete what it holds
    (before the fix, ``--output .`` deleted the whole project)."""
    project.source("m.py", GOOD_SOURCE)
    project.write("docs/guide.md", "# Guide\n")
    assert project.run("build").exit_code == 0
    before = tree(project.root.parent)
    result = project.run("build", "--output", output)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert tree(project.root.parent) == before


@pytest.mark.parametrize("cache", [[], ["--no-cache"]], ids=["cache", "no-cache"])
def test_a_stale_pycache_is_never_trusted(project: Project, cache: list[str]) -> None:
    """Python trusts a ``.pyc`` whose recorded mtime (in seconds) and size match the source:
    an edit within the same second that keeps the size must still be seen by verify. So
    must it be when dashgen's cache holds the code compiled from the old text."""
    source = GOOD_SOURCE.replace("app.requests", "app.requesta")
    path = project.source("m.py", source)
    assert project.run("build", *cache).exit_code == 0
    # dashgen's cache holds the code compiled from the old text (unless --no-cache) ...
    assert bool(list(project.cache.glob("sources/*.code"))) is not bool(cache)
    # ... and the app imported the module before (its .pyc is in src/__pycache__) ...
    py_compile.compile(str(path), doraise=True)
    stat = path.stat()
    # ... then someone renamed the metric: same size, same second.
    path.write_text(source.replace("app.requesta", "app.requestb"), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    result = project.run("verify", "--format", "json", *cache)
    assert result.exit_code == 1
    subjects = {f["subject"] for f in json.loads(result.stdout)["findings"]}
    assert "app_requesta_total" in subjects
    assert not list(project.root.rglob("*.dashgen-no-pyc-*"))


NOBODY = 65534


def test_a_really_read_only_generated_dir() -> None:
    """chmod 555 on ``generated/``, a build that must replace it, run as a user that the
    mode applies to (root ignores it): one line, exit 2, the old tree intact."""
    base = Path(tempfile.mkdtemp(prefix="dashgen-read-only-"))
    try:
        base.chmod(0o755)
        project = Project(base / "proj")
        project.root.mkdir()
        (project.root / "pyproject.toml").write_text('[tool.dashgen]\nsources = "src"\n')
        project.source("m.py", GOOD_SOURCE)
        assert project.run("build").exit_code == 0
        project.source("m.py", GOOD_SOURCE.replace('"Traffic"', '"Traffic v2"'))
        before = project.snapshot()
        command = [sys.executable, "-m", "dashgen", "build", "--project", str(project.root)]
        if os.geteuid() == 0:
            for path in [project.root, *project.root.rglob("*")]:
                os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
            command = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
            command += [sys.executable, "-m", "dashgen", "build", "--project", str(project.root)]
        project.generated.chmod(0o555)
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        project.generated.chmod(0o755)
        assert done.returncode == 2, done.stderr
        assert done.stderr == (
            f"error: {project.generated}: cannot write: Permission denied; nothing was changed\n"
        )
        assert project.snapshot() == before
        assert project.entries() == ["generated", "pyproject.toml", "src"]
    finally:
        shutil.rmtree(base)


# --- verify never executes anything -------------------------------------------------------

PAYLOADS = [
    "$(touch {marker})",
    "`touch {marker}`",
    "; touch {marker}",
    "__import__('os').system('touch {marker}')",
    "exec(\"open('{marker}', 'w')\")",
    "!!python/object/apply:os.system ['touch {marker}']",
    "{{{{ ''.__class__.__mro__[1].__subclasses__() }}}}",
    "${{__import__('os').system('touch {marker}')}}",
    "{{{{ lookup('pipe', 'touch {marker}') }}}}",
]


def hostile_dashboard(marker: Path) -> dict[str, Any]:
    """Every string a dashboard has, filled with code in several languages."""
    payloads = [p.format(marker=marker) for p in PAYLOADS]
    panels: list[dict[str, Any]] = [
        {
            "id": i,
            "type": payload,
            "title": payload,
            "description": payload,
            "datasource": payload if i % 2 else {"type": "prometheus", "uid": payload},
            "targets": [
                {"refId": payload, "expr": payload, "legendFormat": payload},
                {"refId": "B", "expr": f'app_requests_total{{http_route="{payload}"}}'},
            ],
        }
        for i, payload in enumerate(payloads)
    ]
    panels.append(
        {"id": 1e308, "title": 10**300, "gridPos": {"x": -(2**63)}, "targets": [{"expr": "HUGE"}]}
    )
    return {
        "title": payloads[0],
        "uid": payloads[1],
        "templating": {"list": [{"name": p, "type": "datasource", "query": p} for p in payloads]},
        "__inputs": [{"name": p, "pluginId": p} for p in payloads],
        "panels": panels,
    }


def test_verify_never_executes_what_a_dashboard_holds(project: Project) -> None:
    """Shell, Python, YAML tags, templates: all just text to verify, in dashboards,
    provisioning YAML and stray scripts alike. Nothing runs, no marker file appears."""
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    marker = project.root.parent / "pwned"
    text = json.dumps(hostile_dashboard(marker)).replace('"HUGE"', "1e999999")
    (project.generated / "hostile.json").write_text(text, encoding="utf-8")
    (project.generated / "provisioning" / "dashboards" / "dashgen.yaml").write_text(
        f"!!python/object/apply:os.system ['touch {marker}']\n"
    )
    (project.generated / "__init__.py").write_text(f"open({str(marker)!r}, 'w')\n")
    (project.generated / "hostile.json.py").write_text(f"open({str(marker)!r}, 'w')\n")
    handwritten = project.root / "dashboards"
    handwritten.mkdir()
    (handwritten / "hostile.json").write_text(text, encoding="utf-8")
    (handwritten / "conftest.py").write_text(f"open({str(marker)!r}, 'w')\n")
    for arguments in (["verify"], ["verify", str(handwritten)], ["build", "--check"]):
        for output in (["--format", "json"], []) if arguments[0] == "verify" else ([],):
            result = project.run(*arguments, *output)
            assert result.exit_code == 1, (arguments, result.stderr)
            assert not marker.exists()
    result = project.run("verify", "--format", "json")
    kinds = {f["kind"] for f in json.loads(result.stdout)["findings"]}
    assert {"unparsable-query", "orphan-file", "stale-file"} <= kinds


def json_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    json_containers,
    max_leaves=20,
)
fuzzed_targets = st.lists(
    st.fixed_dictionaries(
        {},
        optional={
            "expr": st.text(max_size=60) | json_values,
            "refId": json_values,
            "datasource": json_values,
            "legendFormat": json_values,
        },
    )
    | json_values,
    max_size=3,
)
fuzzed_panels = st.lists(
    st.fixed_dictionaries(
        {"targets": fuzzed_targets},
        optional={
            "title": json_values,
            "type": st.sampled_from(["row", "timeseries", "stat"]) | json_values,
            "datasource": json_values,
            "panels": st.lists(st.fixed_dictionaries({"targets": fuzzed_targets}), max_size=2)
            | json_values,
        },
    )
    | json_values,
    max_size=4,
)
fuzzed_dashboards = st.fixed_dictionaries(
    {"panels": fuzzed_panels},
    optional={
        "rows": st.lists(st.fixed_dictionaries({"panels": fuzzed_panels}), max_size=2)
        | json_values,
        "title": json_values,
        "templating": json_values,
        "__inputs": json_values,
    },
) | json_values.map(lambda value: {"dashboard": value})


def test_verify_never_crashes_on_any_dashboard_json(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Any JSON document in a dashboards dir: findings (0/1) or one ``error:`` line (2),
    never a traceback."""
    with project_in(tmp_path_factory.mktemp("fuzz")) as project:
        project.source("m.py", GOOD_SOURCE)
        assert project.run("build").exit_code == 0
        board = project.root / "dashboards" / "board.json"
        board.parent.mkdir()
        codes: list[int] = []

        @SETTINGS
        @given(fuzzed_dashboards)
        def verify_any(document: object) -> None:
            board.write_text(json.dumps(document), encoding="utf-8")
            result = project.run("verify", str(board.parent))
            codes.append(result.exit_code)
            if result.exit_code == 2:
                assert result.stderr.startswith("error: dashboards/board.json: ")
                assert result.stderr.count("\n") == 1
            else:
                assert result.exit_code in (0, 1) and result.stderr == ""

        verify_any()
        assert {1, 2} <= set(codes)


# --- an interrupted build leaves the old tree intact -------------------------------------

STEPS: dict[str, tuple[object, str]] = {
    "mkdtemp": (tempfile, "mkdtemp"),
    "write": (write, "_write_file"),
    "chmod": (Path, "chmod"),
    "sync": (write, "_sync_tree"),
    "exchange": (write, "_exchange"),
    "rmtree": (shutil, "rmtree"),
}


def count_steps(
    monkeypatch: pytest.MonkeyPatch, interrupt_at: int | None
) -> Callable[[], list[str]]:
    """Wrap every step of the write; raise KeyboardInterrupt at the n-th (1-based)."""
    calls: list[str] = []
    for name, (owner, attribute) in STEPS.items():
        real = getattr(owner, attribute)

        def step(*arguments: Any, _real: Any = real, _name: str = name, **options: Any) -> Any:
            calls.append(_name)
            if len(calls) == interrupt_at:
                raise KeyboardInterrupt
            return _real(*arguments, **options)

        monkeypatch.setattr(owner, attribute, step)
    return lambda: calls


def test_ctrl_c_at_every_step_of_the_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ctrl-C before, during or after the swap: ``generated/`` is the old tree or the
    complete new one, never a mix, never missing, with no temp dir left beside it."""
    reference = Project(tmp_path / "reference")
    (tmp_path / "reference").mkdir()
    (reference.root / "pyproject.toml").write_text('[tool.dashgen]\nsources = "src"\n')
    new_source = GOOD_SOURCE.replace('"Traffic"', '"Traffic v2"')
    reference.source("m.py", new_source)
    assert reference.run("build").exit_code == 0
    new_tree = reference.snapshot()

    interrupted_at = []
    for n in range(1, 100):
        project = Project(tmp_path / f"p{n}")
        project.root.mkdir()
        (project.root / "pyproject.toml").write_text('[tool.dashgen]\nsources = "src"\n')
        project.source("m.py", GOOD_SOURCE)
        assert project.run("build").exit_code == 0
        old_tree = project.snapshot()
        project.source("m.py", new_source)
        with monkeypatch.context() as patch:
            calls = count_steps(patch, interrupt_at=n)
            result = project.run("build")
        steps = calls()
        assert [name for name in project.entries() if name.startswith(".")] == [], steps
        if len(steps) < n:  # ran past the last step: nothing left to interrupt
            assert result.exit_code == 0 and project.snapshot() == new_tree
            break
        interrupted_at.append(steps[n - 1])
        if result.exit_code == 0:  # after the swap: the new tree is whole, and said so
            assert project.snapshot() == new_tree, (n, steps)
            continue
        assert result.exit_code == 130, (n, steps, result.stderr)
        assert result.stderr == "interrupted: nothing was written\n"
        assert project.snapshot() == old_tree, (n, steps)
    assert {"mkdtemp", "write", "chmod", "sync", "exchange", "rmtree"} <= set(interrupted_at)


# --- live servers: loopback only, gone with the command ----------------------------------
# Loopback-only listening, the server's own session, and cleanup after an exception or an
# in-process KeyboardInterrupt are proven in tests/test_tsdb.py and tests/test_live.py.
# What follows sends real signals to a real `dashgen verify --live` process.


def _children(pid: int) -> dict[int, str]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            name, rest = stat.split("(", 1)[1].rsplit(")", 1)
            if int(rest.split()[1]) == pid:
                found[int(entry.name)] = name
    return found


def _alive(pid: int) -> bool:
    """Running: neither gone nor a zombie its new parent has not reaped yet."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize(
    ("signal_number", "exit_code"),
    [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)],
)
def test_a_signalled_live_verify_leaves_no_server(
    example: Project, signal_number: int, exit_code: int
) -> None:
    """Ctrl-C, the SIGTERM a CI timeout sends, or a SIGKILL that no handler sees: the server
    it started goes with it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "dashgen", "verify", "--live", "--project", str(example.root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        servers = _children_named(process, "prometheus")
        assert servers, "no server started"
        process.send_signal(signal_number)
        _, stderr = process.communicate(timeout=60)
        left = _outliving(servers)
    finally:
        process.kill()
    assert left == [], f"{servers} outlived `dashgen verify --live`"
    assert process.returncode in (exit_code, -signal_number), stderr
    data_dirs = _data_dirs_of(process.pid)
    if signal_number == signal.SIGKILL:  # nothing was left to delete it: the next run does
        assert data_dirs
        with PrometheusServer([]):
            assert not _data_dirs_of(process.pid)
    else:
        assert not data_dirs


def test_a_killed_live_verify_takes_its_backfill_with_it(example: Project, tmp_path: Path) -> None:
    """SIGKILL while promtool backfills: the backfill goes too. A stand-in promtool that
    only sleeps keeps dashgen in the backfill long enough to kill it there."""
    slow = tmp_path / "promtool"
    slow.write_text("#!/bin/sh\nexec sleep 120\n", encoding="utf-8")
    slow.chmod(0o755)
    process = subprocess.Popen(
        [sys.executable, "-m", "dashgen", "verify", "--live", "--project", str(example.root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "DASHGEN_PROMTOOL_BIN": str(slow)},
    )
    try:
        backfill = _children_named(process, "sleep")
        assert backfill, "the backfill did not start"
        process.kill()
        process.wait(timeout=30)
        left = _outliving(backfill)
    finally:
        process.kill()
    assert left == [], "promtool outlived a killed `dashgen verify --live`"


def _children_named(process: subprocess.Popen[Any], name: str) -> dict[int, str]:
    """The children of ``process`` called ``name``, waited for up to a minute."""
    found: dict[int, str] = {}
    deadline = time.monotonic() + 60
    while not found and process.poll() is None and time.monotonic() < deadline:
        found = {p: n for p, n in _children(process.pid).items() if n == name}
        time.sleep(0.01)
    return found


def _outliving(pids: Iterable[int]) -> list[int]:
    """Which of ``pids`` still run after 10 s; those are killed, never leaked."""
    deadline = time.monotonic() + 10
    while (left := [pid for pid in pids if _alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    return left


def _data_dirs_of(pid: int) -> list[Path]:
    """The temp dirs of embedded servers that the dashgen process ``pid`` started."""
    return [
        owner.parent
        for owner in Path(tempfile.gettempdir()).glob("dashgen-prometheus-*/owner.pid")
        if owner.read_text() == str(pid)
    ]
