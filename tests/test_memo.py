"""The memo and the compiled-source cache: a hit must skip the exporter and the renderer,
and must never answer for inputs it has not seen.

The reference for every answer is a run with ``--no-cache``, which computes everything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from dashgen.cache import read_entry
from dashgen.config import load_config
from dashgen.isolate import loads_plain
from dashgen.memo import Expected, memo_key, recall, remember
from dashgen.source_reads import SourceReads
from tests.conftest import Project
from tests.test_build import GOOD_SOURCE
from tests.test_verify import names_new_family

#: Runs a dashgen command in a fresh interpreter, then says which heavy stacks it imported.
_RUN_AND_REPORT_IMPORTS = """
import sys
from dashgen.cli import app
try:
    app([*sys.argv[2:], "--project", sys.argv[1]], prog_name="dashgen")
except SystemExit as exit:
    code = exit.code
stacks = ("grafanalib", "jsonschema", "opentelemetry.sdk", "prometheus_client")
heavy = sorted(m for m in stacks if m in sys.modules)
print("EXIT", code, "HEAVY", ",".join(heavy))
"""


def _run_in_fresh_process(project: Project, *args: str, seed: str = "0") -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-c", _RUN_AND_REPORT_IMPORTS, str(project.root), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONHASHSEED": seed},
        timeout=120,
    )
    last = done.stdout.strip().splitlines()[-1].split()
    return int(last[1]), last[3] if len(last) > 3 else ""


@pytest.mark.parametrize("command", [["verify"], ["build", "--check"]], ids=" ".join)
def test_a_check_after_a_build_imports_neither_exporter_nor_renderer(
    example: Project, command: list[str]
) -> None:
    """The build leaves the memo; the check after it (another hash seed, so nothing of the
    key may depend on set order) is a hit. Without the cache, the same check needs both."""
    built = subprocess.run(
        [sys.executable, "-m", "dashgen", "build", "--project", str(example.root)],
        env={**os.environ, "PYTHONHASHSEED": "1"},
        capture_output=True,
        timeout=120,
    )
    assert built.returncode == 0
    assert _run_in_fresh_process(example, *command, seed="2") == (0, "")
    assert _run_in_fresh_process(example, *command, "--no-cache", seed="2") == (
        0,
        "grafanalib,jsonschema,opentelemetry.sdk,prometheus_client",
    )


MUTATIONS: dict[str, Callable[[Project], object]] = {
    "none": lambda p: None,
    "source-renamed": lambda p: p.source(
        "m.py", GOOD_SOURCE.replace("app.requests", "app.requestz")
    ),
    "generated-edited": lambda p: (p.generated / "app.json").write_text(
        (p.generated / "app.json").read_text().replace("app_requests_total", "app_request_total")
    ),
    "panel-removed": lambda p: (p.generated / "app.json").write_text(
        json.dumps({**json.loads((p.generated / "app.json").read_text()), "panels": []})
    ),
    "stray-file": lambda p: (p.generated / "stray.json").write_text('{"panels": []}'),
    "generated-deleted": lambda p: (p.generated / "app.json").unlink(),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_memo_hit_reports_exactly_what_a_full_run_reports(
    project: Project, mutation: str
) -> None:
    """After a build (memo written), each mutation is judged the same with and without it."""
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    MUTATIONS[mutation](project)
    memoised = project.run("verify", "--format", "json")
    fresh = project.run("verify", "--format", "json", "--no-cache")
    assert (memoised.exit_code, memoised.stdout) == (fresh.exit_code, fresh.stdout)
    assert memoised.exit_code == (0 if mutation == "none" else 1)


@pytest.mark.parametrize("edited", ["after the memo", "before the memo, after it ran"])
def test_a_changed_code_file_is_a_miss(tmp_path: Path, project: Project, edited: str) -> None:
    """A memo lists every module file loaded when it was made: editing one (here a module
    this test imports; in life the SDK, grafanalib or dashgen) makes it unusable. A file
    edited after its module ran (and was listed) is recorded as it was: the code that ran."""
    project.source("m.py", GOOD_SOURCE)
    module = tmp_path / "dashgen_memo_probe.py"
    module.write_text("VALUE = 1\n")
    sys.path.insert(0, str(tmp_path))
    try:
        __import__("dashgen_memo_probe")
        config = load_config(project.root)
        key = memo_key(config)
        assert key is not None
        expected = Expected(
            families=(), family_of={}, digests={"app.json": "0" * 64}, excluded={}, dashboards=1
        )
        if edited == "before the memo, after it ran":
            remember(config, "an earlier entry", expected, SourceReads())  # lists the module
            module.write_text("VALUE = 22\n")
            remember(config, key, expected, SourceReads())
            assert recall(config, key) is None
            return
        remember(config, key, expected, SourceReads())
        assert recall(config, key) == expected
        assert recall(config, "another key") is None
        module.write_text("VALUE = 22\n")
        assert recall(config, key) is None
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("dashgen_memo_probe", None)


def test_the_key_follows_config_uid_lock_and_otel_environment(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.source("m.py", GOOD_SOURCE)
    config = load_config(project.root)
    key = memo_key(config)
    assert key == memo_key(load_config(project.root))
    other_url = load_config(project.root, {"prometheus_url": "http://prom:9090"})
    assert memo_key(other_url) != key
    project.generated.mkdir()
    (project.generated / "dashgen.lock").write_text('{"dashboards": {}, "version": 1}\n')
    assert memo_key(config) != key
    monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "service.name=shop")
    assert memo_key(config) != key


def test_a_damaged_cache_is_ignored_and_replaced(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    entries = [p for p in project.cache.rglob("*") if p.is_file() and p.name != ".gitignore"]
    assert {p.name for p in entries if p.suffix != ".code"} == {"code-side.memo", "config-valid"}
    for entry in entries:
        entry.write_bytes(entry.read_bytes()[: len(entry.read_bytes()) // 2])
    with (project.generated / "app.json").open("a") as stale:
        stale.write("\n")
    result = project.run("verify", "--format", "json")
    assert result.exit_code == 1
    assert {f["kind"] for f in json.loads(result.stdout)["findings"]} == {"stale-file"}
    assert project.run("build").exit_code == 0
    assert project.run("verify").exit_code == 0
    memo = read_entry(project.cache, "code-side.memo")
    assert memo is not None and loads_plain(memo)[3].families


def _flip_byte(offset: int) -> Callable[[bytes], bytes]:
    return lambda data: data[:offset] + bytes([data[offset] ^ 0x20]) + data[offset + 1 :]


def _one_letter(data: bytes) -> bytes:
    """A memo that still unpickles, with one letter of a family name changed."""
    return data.replace(b"app_requests", b"app_rexuests", 1)


DAMAGE: dict[str, tuple[str, Callable[[bytes], bytes]]] = {
    **{f"code-byte-{o}": (".code", _flip_byte(o)) for o in (0, 40, 90, 200, -3)},
    "code-zeroed-tail": (".code", lambda data: data[:-16] + bytes(16)),
    "memo-one-letter": (".memo", _one_letter),
    "memo-byte-60": (".memo", _flip_byte(60)),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_entry_is_a_miss_never_run_or_believed(project: Project, damage: str) -> None:
    """A few changed bytes of a cache entry, compiled code or memo: every command answers as
    with ``--no-cache`` (no segfault, no traceback, no finding blamed on the source)."""
    suffix, change = DAMAGE[damage]
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    (entry,) = [p for p in project.cache.rglob(f"*{suffix}")]
    entry.write_bytes(change(entry.read_bytes()))
    board = project.generated / "app.json"
    board.write_text(board.read_text().replace("app_requests_total", "app_request_total"))
    for command in (["verify", "--format", "json"], ["build", "--check"]):
        fresh = subprocess.run(
            [sys.executable, "-m", "dashgen", *command, "--project", str(project.root)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        reference = project.run(*command, "--no-cache")
        assert (fresh.returncode, fresh.stdout, fresh.stderr) == (
            reference.exit_code,
            reference.stdout,
            reference.stderr,
        )
        assert fresh.returncode == 1


def test_an_unwritable_cache_costs_speed_not_correctness(project: Project) -> None:
    """``.dashgen`` is a file, so no cache dir can be made: every command still works."""
    project.source("m.py", GOOD_SOURCE)
    (project.root / ".dashgen").write_text("not a dir\n")
    assert project.run("build").exit_code == 0
    assert project.run("verify").exit_code == 0
    project.source("m.py", GOOD_SOURCE.replace("app.requests", "app.requestz"))
    assert project.run("verify").exit_code == 1
    assert (project.root / ".dashgen").read_text() == "not a dir\n"


def test_no_cache_and_cache_false_write_no_cache(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build", "--no-cache").exit_code == 0
    assert project.run("verify", "--no-cache").exit_code == 0
    assert not (project.root / ".dashgen").exists()
    project.write(
        "pyproject.toml", '[tool.dashgen]\nsources = "src"\noutput = "generated"\ncache = false\n'
    )
    assert project.run("build").exit_code == 0
    assert project.run("verify").exit_code == 0
    assert not (project.root / ".dashgen").exists()


def test_cache_must_be_a_boolean(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    project.write("pyproject.toml", '[tool.dashgen]\nsources = "src"\ncache = "no"\n')
    result = project.run("build")
    assert result.exit_code == 2
    assert result.stderr.endswith("[tool.dashgen]: cache must be true or false, got 'no'\n")


def test_the_cache_dir_ignores_itself_for_git(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    assert (project.cache / ".gitignore").read_text().splitlines()[-1] == "*"


def test_a_source_that_reads_the_environment_is_keyed_by_what_it_declared(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing in the files changed, but the declarations did: the memo must not answer."""
    project.source(
        "m.py",
        textwrap.dedent(
            """\
            import os
            from dashgen import Counter, Dashboard, Row

            REQUESTS = Counter(os.environ.get("METRIC_NAME", "app.requests"), unit="1")
            APP = Dashboard("App", uid="app", rows=[Row("Traffic", [REQUESTS])])
            """
        ),
    )
    assert project.run("build").exit_code == 0
    assert project.run("verify").exit_code == 0
    monkeypatch.setenv("METRIC_NAME", "app.orders")
    result = project.run("verify", "--format", "json")
    assert result.exit_code == 1
    items = json.loads(result.stdout)["findings"]
    assert ("unknown-metric", "app_requests_total") in {(f["kind"], f["subject"]) for f in items}
    assert names_new_family(items, "app_orders")  # what the environment declared this time


CORPUS = Path(__file__).parent / "corpus" / "dashboards"


def test_remembered_dashboards_give_the_same_report(project: Project) -> None:
    """The 37 corpus dashboards, verified three times: parsed (a miss), remembered (a hit),
    and after an edit, a damaged entry and a deletion; each report equals --no-cache's."""
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    boards = project.root / "boards"
    boards.mkdir()
    for board in sorted(CORPUS.glob("*.json")):
        (boards / board.name).write_bytes(board.read_bytes())

    def same() -> None:
        cached = project.run("verify", str(boards), "--format", "json")
        fresh = project.run("verify", str(boards), "--format", "json", "--no-cache")
        assert (cached.exit_code, cached.stdout) == (fresh.exit_code, fresh.stdout)

    same()
    entries = sorted((project.cache / "dashboards").iterdir())
    assert len(entries) == len(list(boards.iterdir()))
    same()
    edited = boards / "kp-nodes.json"
    edited.write_text(edited.read_text().replace("node_", "nodez_"))
    same()
    entries[0].write_bytes(entries[0].read_bytes()[:-40] + bytes(40))
    same()
    (boards / "thanos-query.json").unlink()
    same()


#: Declares one counter per line of a data file (as a team that lists its metrics in YAML).
_FROM_DATA_FILE = """\
from pathlib import Path
from dashgen import Counter, Dashboard, Row

NAMES = (Path(__file__).parent.parent / "metrics.txt").read_text().split()
METRICS = [Counter(name, unit="1") for name in NAMES]
APP = Dashboard("App", uid="app", rows=[Row("Traffic", METRICS)])
"""


def _verify_reports_family(project: Project, family: str) -> bool:
    result = project.run("verify", "--format", "json")
    assert result.exit_code == 1
    return names_new_family(json.loads(result.stdout)["findings"], family)


def test_a_data_file_the_sources_read_is_part_of_the_key(project: Project) -> None:
    """Same size, same mtime, other bytes: the memo fingerprints files in the project by
    content, so the edit is seen (a stat would take it for the old file)."""
    project.source("m.py", _FROM_DATA_FILE)
    data = project.write("metrics.txt", "app.aaaa\n")
    assert project.run("build").exit_code == 0
    assert project.run("verify").exit_code == 0
    before = data.stat()
    data.write_text("app.bbbb\n")
    os.utime(data, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert _verify_reports_family(project, "app_bbbb")


def test_a_helper_module_in_the_project_is_part_of_the_key(project: Project) -> None:
    project.write("src/names.py", 'REQUESTS = "app.requests"\n')
    project.source(
        "m.py",
        GOOD_SOURCE.replace('"app.requests"', "names.REQUESTS").replace(
            "from dashgen", "import names\nfrom dashgen"
        ),
    )
    assert project.run("build").exit_code == 0
    assert project.run("verify").exit_code == 0
    project.write("src/names.py", 'REQUESTS = "app.requestz"\n')
    assert _verify_reports_family(project, "app_requestz")


def test_a_new_source_file_is_a_miss(project: Project) -> None:
    project.source("m.py", GOOD_SOURCE)
    assert project.run("build").exit_code == 0
    project.source(
        "n.py",
        'from dashgen import Gauge, Dashboard, Row\nQ = Gauge("app.queue", unit="1")\n'
        'N = Dashboard("N", uid="n", rows=[Row("Q", [Q])])\n',
    )
    result = project.run("verify", "--format", "json")
    assert result.exit_code == 1
    assert ("missing-file", "n.json") in {
        (f["kind"], f["subject"]) for f in json.loads(result.stdout)["findings"]
    }


def test_a_dir_the_sources_list_is_part_of_the_key(project: Project) -> None:
    """A source that declares a counter per file of a dir: a new file is a new counter."""
    project.write("metrics.d/app.aaaa", "")
    project.source(
        "m.py",
        _FROM_DATA_FILE.replace(
            '(Path(__file__).parent.parent / "metrics.txt").read_text().split()',
            'sorted(p.name for p in (Path(__file__).parent.parent / "metrics.d").iterdir())',
        ),
    )
    assert project.run("build").exit_code == 0
    assert project.run("verify").exit_code == 0
    project.write("metrics.d/app.bbbb", "")
    assert _verify_reports_family(project, "app_bbbb")


def test_a_source_that_reads_the_whole_environment_misses_on_any_change(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.source(
        "m.py",
        "import os\n"
        + GOOD_SOURCE.replace(
            '"app.requests"',
            'next((v for k, v in os.environ.items() if k == "WHICH"), "app.requests")',
        ),
    )
    assert project.run("build").exit_code == 0
    assert project.run("verify").exit_code == 0
    monkeypatch.setenv("WHICH", "app.orders")
    assert _verify_reports_family(project, "app_orders")


def test_a_memo_hit_imports_no_source(project: Project) -> None:
    """Each import of the source appends a line to a file: a hit leaves it as the build did."""
    project.source(
        "m.py",
        "from pathlib import Path\n"
        '(Path(__file__).parent / "imports.log").open("a").write("x\\n")\n' + GOOD_SOURCE,
    )
    log = project.root / "src" / "imports.log"
    assert project.run("build").exit_code == 0
    assert log.read_text() == "x\n"
    assert project.run("verify").exit_code == 0
    assert project.run("build", "--check").exit_code == 0
    assert project.run("build").exit_code == 0
    assert log.read_text() == "x\n"
    assert project.run("verify", "--no-cache").exit_code == 0
    assert log.read_text() == "x\nx\n"
