"""Recording mode of the pytest plugin, run the way a user runs it: their own tests, in a
pytest subprocess (OTel lets a process set the global MeterProvider only once)."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Project

pytest_plugins = ["pytester"]

METRICS = """\
from dashgen import Counter, ObservableGauge

ORDERS = Counter("shop.orders", unit="{order}", labels=["payment.method"])
REFUNDS = Counter("shop.refunds", unit="{refund}")
STOCK = ObservableGauge("shop.stock", unit="{item}", labels=["sku"])
"""

APP = """\
from opentelemetry import metrics
from opentelemetry.metrics import Observation

from shop.metrics import ORDERS, REFUNDS, STOCK

meter = metrics.get_meter("shop.app")
CARTS = meter.create_up_down_counter("shop.carts.open", unit="{cart}")
ABANDONED = meter.create_counter("shop.carts.abandoned")
SHELF = {"tea": 3}
STOCK.observe(lambda options: [Observation(n, {"sku": sku}) for sku, n in SHELF.items()])


def checkout(method):
    CARTS.add(1, {"shop.channel": "web"})
    ORDERS.add(1, {"payment.method": method})
    CARTS.add(-1, {"shop.channel": "web"})
    return "ok"


def refund():
    REFUNDS.add(1)


def open_shop():
    STOCK.start()
"""

TESTS = """\
from shop.app import checkout, open_shop


def test_checkout_by_card():
    assert checkout("card") == "ok"


def test_checkout_by_cash():
    open_shop()
    assert checkout("cash") == "ok"
"""


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


@pytest.fixture
def shop(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyprojecttoml('[tool.dashgen]\nsources = "shop"\n')
    for name, text in {
        "shop/__init__.py": "",
        "shop/metrics.py": METRICS,
        "shop/app.py": APP,
    }.items():
        (pytester.path / name).parent.mkdir(exist_ok=True)
        (pytester.path / name).write_text(text)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests/test_shop.py").write_text(TESTS)
    return pytester


def recorded(root: Path, path: str = ".dashgen/recorded.json") -> dict[str, dict[str, Any]]:
    document = json.loads((root / path).read_text())
    return {entry["name"]: entry for entry in document["instruments"]}


def test_recording_mode_writes_what_the_tests_created_and_recorded(shop: pytest.Pytester) -> None:
    result = shop.runpytest_subprocess("--dashgen-record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "*- dashgen recording -*",
            "3 of 4 instruments recorded; wrote .dashgen/recorded.json",
            "never recorded: shop.carts.abandoned",
        ]
    )
    found = recorded(shop.path)
    # shop.refunds was declared but never used: it was never created, so it is not here.
    assert sorted(found) == ["shop.carts.abandoned", "shop.carts.open", "shop.orders", "shop.stock"]
    orders = found["shop.orders"]
    assert orders["site"] == f"shop/metrics.py:{line_of(METRICS, 'ORDERS =')}"
    assert (orders["measurements"], orders["recorded"]) == (2, True)
    assert orders["attribute_keys"] == ["payment.method"]
    assert orders["values"] == {"payment.method": ["card", "cash"]}
    # checkout() is the app's own code: production, at the line that adds.
    assert (orders["production"], orders["test_sites"]) == (2, [])
    assert orders["production_sites"] == [f"shop/app.py:{line_of(APP, 'ORDERS.add')}"]
    # What the run did, not what an exporter makes of it: readers name it (dashgen.record.replay).
    assert "exported" not in orders
    carts = found["shop.carts.open"]
    assert carts["site"] == f"shop/app.py:{line_of(APP, 'CARTS =')}"
    assert (carts["measurements"], carts["scope"], carts["kind"]) == (
        4,
        "shop.app",
        "UpDownCounter",
    )
    stock = found["shop.stock"]
    # Observed once after the second test (the only one after open_shop()).
    assert (stock["measurements"], stock["attribute_keys"]) == (1, ["sku"])
    abandoned = found["shop.carts.abandoned"]
    assert (abandoned["measurements"], abandoned["recorded"]) == (0, False)
    assert (abandoned["production"], abandoned["values"]) == (0, {})


def test_otel_sdk_disabled_neither_crashes_nor_stops_the_recording(
    shop: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-env often sets OTEL_SDK_DISABLED=true for test runs: the SDK then gives no-op
    meters, which must not empty dashgen's own export."""
    monkeypatch.setenv("OTEL_SDK_DISABLED", "true")
    result = shop.runpytest_subprocess("--dashgen-record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            "3 of 4 instruments recorded; wrote .dashgen/recorded.json",
            "OTEL_SDK_DISABLED=true turns the app's OTel SDK off; dashgen recorded through its "
            "own provider all the same",
        ]
    )
    assert recorded(shop.path)["shop.orders"]["measurements"] == 2


def test_the_recording_is_the_same_on_every_run(shop: pytest.Pytester) -> None:
    shop.runpytest_subprocess("--dashgen-record").assert_outcomes(passed=2)
    first = (shop.path / ".dashgen/recorded.json").read_bytes()
    shop.runpytest_subprocess("--dashgen-record").assert_outcomes(passed=2)
    assert (shop.path / ".dashgen/recorded.json").read_bytes() == first
    assert str(shop.path) not in first.decode()
    # Collecting, or a run cut short, must not replace the recording with a partial one.
    shop.runpytest_subprocess("--dashgen-record", "--collect-only").assert_outcomes()
    assert (shop.path / ".dashgen/recorded.json").read_bytes() == first
    (shop.path / "tests/test_stop.py").write_text(
        "def test_ctrl_c():\n    raise KeyboardInterrupt\n"
    )
    interrupted = shop.runpytest_subprocess("--dashgen-record")
    assert interrupted.ret == pytest.ExitCode.INTERRUPTED
    assert (shop.path / ".dashgen/recorded.json").read_bytes() == first


def test_recording_mode_refuses_to_start_after_another_provider(shop: pytest.Pytester) -> None:
    """A plugin that sets its own MeterProvider first would hide every instrument."""
    shop.makepyfile(
        own_provider="from opentelemetry import metrics\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "metrics.set_meter_provider(MeterProvider())\n"
    )
    result = shop.runpytest_subprocess("-p", "own_provider", "--dashgen-record")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*dashgen recording mode*another MeterProvider*"])


def test_a_recording_path_that_is_a_directory_fails_the_run(shop: pytest.Pytester) -> None:
    (shop.path / ".dashgen/recorded.json").mkdir(parents=True)
    result = shop.runpytest_subprocess("--dashgen-record")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["error: *recorded.json: cannot write the recording: *"])
    assert sorted(p.name for p in (shop.path / ".dashgen").iterdir()) == ["recorded.json"]


def test_the_recording_run_never_loads_the_sdk_or_the_exporter(
    shop: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counting is all the test run does: an app environment whose exporter cannot even be
    imported records all the same, and the tests see no SDK they did not load."""
    broken = shop.path / "broken"
    (broken / "prometheus_client").mkdir(parents=True)
    (broken / "prometheus_client/__init__.py").write_text("raise ImportError('no wheel')\n")
    monkeypatch.setenv("PYTHONPATH", str(broken))
    (shop.path / "tests/test_light.py").write_text(
        "import sys\n\n\ndef test_no_sdk():\n"
        '    assert "opentelemetry.sdk" not in sys.modules\n'
        '    assert "prometheus_client" not in sys.modules\n'
    )
    result = shop.runpytest_subprocess("--dashgen-record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["3 of 4 instruments recorded; wrote .dashgen/recorded.json"])


def test_a_recording_that_cannot_be_written_fails_the_run(shop: pytest.Pytester) -> None:
    """A config recording mode cannot use fails the run before the tests spend their time."""
    shop.makepyprojecttoml("[tool.dashgen]\nsourcez = 'shop'\n")
    result = shop.runpytest_subprocess("--dashgen-record")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "ERROR: dashgen recording mode: *pyproject.toml: [[]tool.dashgen]: "
            "has unknown keys *sourcez*"
        ]
    )
    assert not (shop.path / ".dashgen").exists()


def test_recording_mode_from_config_writes_where_config_says(shop: pytest.Pytester) -> None:
    shop.makepyprojecttoml(
        '[tool.dashgen]\nsources = "shop"\nrecorded = "ci/run.json"\n'
        "[tool.pytest.ini_options]\ndashgen_record = true\n"
    )
    shop.runpytest_subprocess().assert_outcomes(passed=2)
    assert recorded(shop.path, "ci/run.json")["shop.orders"]["measurements"] == 2
    assert not (shop.path / ".dashgen/recorded.json").exists()


def test_without_recording_mode_nothing_is_recorded_and_start_up_stays_light(
    shop: pytest.Pytester,
) -> None:
    (shop.path / "tests/test_light.py").write_text(
        textwrap.dedent(
            """
            import sys

            from opentelemetry import metrics

            def test_nothing_heavy_was_imported():
                assert "dashgen.record.capture" not in sys.modules
                assert "opentelemetry.sdk.metrics" not in sys.modules
                assert type(metrics.get_meter_provider()).__name__ == "_ProxyMeterProvider"
            """
        )
    )
    shop.runpytest_subprocess().assert_outcomes(passed=3)
    assert not (shop.path / ".dashgen").exists()


def test_xdist_workers_recordings_are_merged(
    shop: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each worker runs one test file; the controller writes the one merged recording, the
    same file a run without xdist writes."""
    (shop.path / "tests/test_refunds.py").write_text(
        "from shop.app import checkout, refund\n\n\n"
        "def test_refund_after_checkout():\n"
        '    checkout("card")\n'
        "    refund()\n"
    )
    (shop.path / "tests/conftest.py").write_text(
        "import os\nfrom pathlib import Path\n\nimport pytest\n\n\n"
        "@pytest.fixture(autouse=True)\n"
        "def note_the_worker():\n"
        '    worker = os.environ.get("PYTEST_XDIST_WORKER", "none")\n'
        '    Path(os.environ["WORKERS_SEEN"], worker).touch()\n'
    )
    seen = shop.path / "workers"
    seen.mkdir()
    monkeypatch.setenv("WORKERS_SEEN", str(seen))
    distributed = shop.runpytest_subprocess("--dashgen-record", "-n", "2", "--dist", "loadfile")
    distributed.assert_outcomes(passed=3)
    assert sorted(p.name for p in seen.iterdir()) == ["gw0", "gw1"]
    distributed.stdout.fnmatch_lines(["4 of 5 instruments recorded; wrote .dashgen/recorded.json"])
    merged = (shop.path / ".dashgen/recorded.json").read_text()
    found = recorded(shop.path)
    assert found["shop.orders"]["measurements"] == 3
    assert found["shop.refunds"]["measurements"] == 1

    monkeypatch.setenv("PYTEST_ADDOPTS", "-p no:xdist")
    shop.runpytest_subprocess("--dashgen-record").assert_outcomes(passed=3)
    assert (shop.path / ".dashgen/recorded.json").read_text() == merged


ENUM_APP = """\
import enum

from opentelemetry import metrics

meter = metrics.get_meter("shop")
ORDERS = meter.create_counter("shop.orders", unit="{order}")


class Method(enum.StrEnum):
    CARD = "card"


class Size(enum.Enum):
    BIG = 3


class Route(str):
    pass


def checkout():
    ORDERS.add(1, {"payment.method": Method.CARD})


def refund():
    ORDERS.add(1, {"size": Size.BIG, "route": Route("/pay"), "tags": ("a", Method.CARD)})
"""


def test_enum_and_str_subclass_attribute_values_survive_xdist(pytester: pytest.Pytester) -> None:
    """execnet refuses anything but plain data: such values must not lose a worker's part."""
    pytester.makepyprojecttoml('[tool.dashgen]\nsources = "nothing"\n')
    (pytester.path / "enumshop.py").write_text(ENUM_APP)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests/test_a.py").write_text(
        "from enumshop import checkout\n\ndef test_a():\n    checkout()\n"
    )
    (pytester.path / "tests/test_b.py").write_text(
        "from enumshop import refund\n\ndef test_b():\n    refund()\n"
    )
    result = pytester.runpytest_subprocess(
        "--dashgen-record", "-n", "2", "--dist", "loadfile", "-p", "no:cacheprovider"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["1 of 1 instruments recorded; wrote .dashgen/recorded.json"])
    orders = recorded(pytester.path)["shop.orders"]
    assert orders["measurements"] == 2
    assert orders["attribute_keys"] == ["payment.method", "route", "size", "tags"]


def test_a_worker_that_dies_fails_the_recording_loudly(shop: pytest.Pytester) -> None:
    """Never "N of N recorded" with a worker's part missing."""
    (shop.path / "tests/test_dies.py").write_text(
        "import os\nfrom shop.app import refund\n\n\n"
        "def test_dies():\n    refund()\n    os._exit(1)\n"
    )
    result = shop.runpytest_subprocess(
        "--dashgen-record", "-n", "2", "--dist", "loadfile", "--max-worker-restart", "0"
    )
    assert result.ret != 0
    result.stdout.fnmatch_lines(["error: xdist worker(s) gw* handed back no recording (crashed?)*"])
    assert not (shop.path / ".dashgen/recorded.json").exists()


def test_a_test_installing_its_own_provider_does_not_take_the_recording(
    shop: pytest.Pytester,
) -> None:
    """OTel lets the global provider be set once: a test's own set_meter_provider is refused
    (the SDK logs it), and what the app records still reaches dashgen."""
    (shop.path / "tests/test_own_provider.py").write_text(
        "from opentelemetry import metrics\n"
        "from opentelemetry.sdk.metrics import MeterProvider\n"
        "from shop.app import refund\n\n\n"
        "def test_with_its_own_provider():\n"
        "    metrics.set_meter_provider(MeterProvider())\n"
        "    refund()\n"
    )
    result = shop.runpytest_subprocess("--dashgen-record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    assert recorded(shop.path)["shop.refunds"]["measurements"] == 1


PLAIN_APP = """\
from opentelemetry import metrics


def create_instruments():
    meter = metrics.get_meter("shop")
    return (
        meter.create_counter("shop.orders", unit="{order}"),
        meter.create_counter("shop.refunds", unit="{refund}"),
    )


ORDERS, REFUNDS = create_instruments()


def checkout(method):
    ORDERS.add(1, {"payment.method": method})
"""

PLAIN_DASHBOARD = {
    "title": "Shop",
    "panels": [
        {
            "title": "Orders by method",
            "targets": [
                {"refId": "A", "expr": "sum by (payment_method) (rate(shop_orders_total[5m]))"},
                {"refId": "B", "expr": 'rate(shop_orders_total{region="eu"}[5m])'},
            ],
        },
        {"title": "Refunds", "targets": [{"refId": "A", "expr": "rate(shop_refunds_total[5m])"}]},
    ],
}


def test_plain_otel_code_learns_its_labels_from_the_recording(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml("[tool.dashgen]\n")
    pytester.makepyfile(
        plain_shop=PLAIN_APP,
        test_plain_shop="from plain_shop import checkout\n\n"
        "def test_checkout():\n    checkout('card')\n",
    )
    (pytester.path / "dashboards").mkdir()
    (pytester.path / "dashboards/shop.json").write_text(json.dumps(PLAIN_DASHBOARD))
    pytester.runpytest_subprocess("--dashgen-record").assert_outcomes(passed=1)
    project = Project(pytester.path)
    args = ["verify", "dashboards", "--instruments", "plain_shop:create_instruments"]
    blind = json.loads(project.run(*args, "--format", "json").stdout)
    # Without a recording the label set is unknown: information, never a guess.
    assert blind["findings"] == []
    assert any("label set unknown for family `shop_orders`" in line for line in blind["info"])

    result = project.run(*args, "--recorded", ".dashgen/recorded.json", "--format", "json")
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    found = {(f["kind"], f["subject"], f["panel"], f["ref_id"]) for f in report["findings"]}
    assert found == {
        ("unknown-label", "region", "Orders by method", "B"),
        ("dead-panel", "shop_refunds_total", "Refunds", "A"),
        ("dead-instrument", "shop.refunds", "", ""),
    }
    dead = next(f for f in report["findings"] if f["kind"] == "dead-panel")
    assert f"plain_shop.py:{line_of(PLAIN_APP, 'shop.refunds')}" in dead["message"]
    assert not any("label set unknown for family `shop_orders`" in x for x in report["info"])


# --- the bundled example: its app, its tests, and mutations of the app ---------------------


@pytest.fixture
def example_app(pytester: pytest.Pytester) -> pytest.Pytester:
    """A copy of the bundled example with its application and the application's tests."""
    for directory in ("dashboards_src", "generated", "example_app"):
        shutil.copytree(
            REPO / directory,
            pytester.path / directory,
            ignore=shutil.ignore_patterns("__pycache__"),
        )
    shutil.copy(REPO / "pyproject.toml", pytester.path / "pyproject.toml")
    return pytester


def record_example(example_app: pytest.Pytester) -> Project:
    example_app.runpytest_subprocess(
        "example_app/tests", "--dashgen-record", "-p", "no:cacheprovider"
    ).assert_outcomes(passed=13)
    return Project(example_app.path, sources="dashboards_src")


def verify_json(project: Project, *args: str) -> tuple[int, dict[str, Any]]:
    result = project.run("verify", *args, "--format", "json")
    return result.exit_code, json.loads(result.stdout)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


CANCELLED = {
    ("dead-instrument", "worker.jobs.cancelled"),
    ("dead-panel", "worker_jobs_cancelled_total"),
}
"""What the example's recording reports by design: only the metrics class's own unit test
records ``worker.jobs.cancelled``."""


def kinds_and_subjects(report: dict[str, Any]) -> set[tuple[str, str]]:
    return {(f["kind"], f["subject"]) for f in report["findings"]}


def test_the_example_app_records_every_declared_metric_but_the_test_only_one(
    example_app: pytest.Pytester,
) -> None:
    project = record_example(example_app)
    code, report = verify_json(project, "--recorded", ".dashgen/recorded.json")
    assert (code, kinds_and_subjects(report)) == (1, CANCELLED)
    test_site = "example_app/tests/test_metrics.py:"
    assert all(test_site in f["message"] for f in report["findings"])
    result = project.run("coverage", "--fail-under", "93")
    assert result.exit_code == 0, result.stdout
    assert "15 of 16 instruments recorded" in result.stdout
    cancelled = next(x for x in result.stdout.splitlines() if x.startswith("worker.jobs.cancelled"))
    assert cancelled.split()[2:6] == ["0", "1", "job.type", "test-only"]
    # Retries and failures go through the same metrics class: the pool's calls count as
    # production, the class's own test as a test.
    retries = next(x for x in result.stdout.splitlines() if x.startswith("worker.job.retries"))
    assert retries.split()[2:6] == ["4", "1", "job.type", "recorded"]
    requests = next(x for x in result.stdout.splitlines() if x.startswith("http.server.requests "))
    assert requests.endswith(
        "recorded   HTTP API: Requests in range, Requests per second by route, "
        "Requests per second by status"
    )


def test_removing_a_recording_call_leaves_a_dead_panel(example_app: pytest.Pytester) -> None:
    edit(
        example_app.path / "example_app/api.py",
        "        RESPONSE_BYTES.add(len(response.body), {ROUTE: route})\n",
        "",
    )
    project = record_example(example_app)
    code, report = verify_json(project, "--recorded", ".dashgen/recorded.json")
    assert code == 1
    dead = [
        f
        for f in report["findings"]
        if f["kind"] == "dead-panel" and (f["kind"], f["subject"]) not in CANCELLED
    ]
    assert [(f["file"], f["panel"], f["subject"]) for f in dead] == [
        (
            "generated/http-api.json",
            "Response throughput by route",
            "http_server_response_body_size_bytes_total",
        )
    ]
    site = line_of((REPO / "dashboards_src/http_api.py").read_text(), "RESPONSE_BYTES =")
    assert f"(dashboards_src/http_api.py:{site})" in dead[0]["message"]
    assert {f["kind"] for f in report["findings"]} == {"dead-panel", "dead-instrument"}
    # Without the recording every name check still passes: only the recording sees it.
    code, report = verify_json(project)
    assert (code, report["findings"]) == (0, [])
    coverage = project.run("coverage", "--fail-under", "93")
    assert coverage.exit_code == 1
    assert "14 of 16 instruments recorded" in coverage.stdout


def test_recording_an_undeclared_attribute_key_is_a_finding(example_app: pytest.Pytester) -> None:
    edit(
        example_app.path / "example_app/api.py",
        "REQUESTS.add(1, {ROUTE: route, METHOD: method, STATUS: response.status})",
        'REQUESTS.add(1, {ROUTE: route, METHOD: method, STATUS: response.status, "tenant": "a"})',
    )
    project = record_example(example_app)
    code, report = verify_json(project, "--recorded", ".dashgen/recorded.json")
    assert code == 1
    (finding,) = [f for f in report["findings"] if (f["kind"], f["subject"]) not in CANCELLED]
    assert (finding["kind"], finding["subject"]) == ("undeclared-label", "tenant")
    assert "`http.server.requests`" in finding["message"]


WRAPPER = """\
from opentelemetry import metrics


class QueueMetrics:
    def __init__(self):
        meter = metrics.get_meter("queue")
        self._depth = meter.create_up_down_counter("queue.depth")
        self._served = meter.create_counter("queue.served")

    def update_queue_depth(self, change):
        self._depth.add(change)

    def served(self):
        self._served.add(1)


METRICS = QueueMetrics()
"""

SERVICE = """\
from queueapp.wrapper import METRICS


def serve():
    METRICS.served()
"""

WRAPPER_TESTS = """\
from queueapp.service import serve
from queueapp.wrapper import METRICS


def test_serving_records_through_the_service():
    serve()


def test_the_metrics_class_itself():
    METRICS.update_queue_depth(3)
"""


def test_who_recorded_it_production_code_or_only_a_test(pytester: pytest.Pytester) -> None:
    """A test that drives a service records in production code's name; a test that calls
    the metrics wrapper itself records test-only: the wrapper module is never the caller."""
    pytester.makepyprojecttoml('[tool.dashgen]\nsources = "nothing"\n')
    (pytester.path / "queueapp").mkdir()
    (pytester.path / "queueapp/__init__.py").write_text("")
    (pytester.path / "queueapp/wrapper.py").write_text(WRAPPER)
    (pytester.path / "queueapp/service.py").write_text(SERVICE)
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests/test_queue.py").write_text(WRAPPER_TESTS)
    result = pytester.runpytest_subprocess("--dashgen-record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["recorded only by tests, never by production code: queue.depth"])
    found = recorded(pytester.path)
    served, depth = found["queue.served"], found["queue.depth"]
    assert (served["measurements"], served["production"]) == (1, 1)
    assert served["production_sites"] == [
        f"queueapp/service.py:{line_of(SERVICE, 'METRICS.served()')}"
    ]
    assert (depth["measurements"], depth["production"], depth["production_sites"]) == (1, 0, [])
    assert depth["test_sites"] == [
        f"tests/test_queue.py:{line_of(WRAPPER_TESTS, 'METRICS.update_queue_depth(3)')}"
    ]


def test_a_declaration_recorded_by_a_test_or_a_fixture_is_test_only(shop: pytest.Pytester) -> None:
    """dashgen declarations are the wrapper: calling ``.add()`` on one from a test or from a
    conftest fixture is a test's measurement; checkout() in the app is production."""
    (shop.path / "tests/conftest.py").write_text(
        "import pytest\nfrom shop.metrics import REFUNDS\n\n\n"
        "@pytest.fixture(autouse=True)\ndef refund_first():\n    REFUNDS.add(1)\n"
    )
    (shop.path / "tests/test_direct.py").write_text(
        "from shop.metrics import REFUNDS\n\n\ndef test_direct():\n    REFUNDS.add(1)\n"
    )
    result = shop.runpytest_subprocess("--dashgen-record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    found = recorded(shop.path)
    refunds, orders = found["shop.refunds"], found["shop.orders"]
    assert (refunds["measurements"], refunds["production"]) == (4, 0)
    assert refunds["test_sites"] == ["tests/conftest.py:7", "tests/test_direct.py:5"]
    assert (orders["production"], orders["test_sites"]) == (2, [])
    assert orders["production_sites"] == [f"shop/app.py:{line_of(APP, 'ORDERS.add')}"]


NESTED = """\
from queueapp.wrapper import QueueMetrics


class ShardMetrics(QueueMetrics):
    def shard_drained(self):
        self.update_queue_depth(-1)
        self.served()


SHARDS = ShardMetrics()
"""

NESTED_TESTS = """\
from queueapp.shard import SHARDS
from queueapp.worker import drain


def test_draining_goes_through_the_worker():
    drain()


def test_the_shard_metrics_class_itself():
    SHARDS.shard_drained()
"""


def test_a_subclass_of_the_wrapper_elsewhere_is_a_wrapper_too(pytester: pytest.Pytester) -> None:
    """Nested wrappers: a metrics class in another module that extends the one creating the
    instruments is looked past as well, to whoever called it."""
    pytester.makepyprojecttoml('[tool.dashgen]\nsources = "nothing"\n')
    files = {
        "queueapp/__init__.py": "",
        "queueapp/wrapper.py": WRAPPER,
        "queueapp/shard.py": NESTED,
        "queueapp/worker.py": "from queueapp.shard import SHARDS\n\n\ndef drain():\n"
        "    SHARDS.shard_drained()\n",
        "tests/test_shards.py": NESTED_TESTS,
    }
    for name, text in files.items():
        (pytester.path / name).parent.mkdir(exist_ok=True)
        (pytester.path / name).write_text(text)
    result = pytester.runpytest_subprocess("--dashgen-record", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    found = recorded(pytester.path)
    for name in ("queue.depth", "queue.served"):
        assert (found[name]["measurements"], found[name]["production"]) == (2, 1)
        assert found[name]["production_sites"] == ["queueapp/worker.py:5"]
        assert found[name]["test_sites"] == [
            f"tests/test_shards.py:{line_of(NESTED_TESTS, 'SHARDS.shard_drained()')}"
        ]


def test_recorded_values_are_a_few_per_key_and_the_same_whatever_the_order(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file keeps the smallest five values of each key (for verify --live), from every
    distinct combination the run recorded, so neither the order of the tests nor xdist
    changes the file."""
    pytester.makepyprojecttoml('[tool.dashgen]\nsources = "nothing"\n')
    (pytester.path / "app.py").write_text(
        "from opentelemetry import metrics\n\n"
        'HITS = metrics.get_meter("app").create_counter("app.hits")\n\n\n'
        "def hit(route, status):\n"
        '    HITS.add(1, {"route": route, "status": status})\n'
    )
    (pytester.path / "tests").mkdir()
    (pytester.path / "tests/conftest.py").write_text(
        "import os\n\n\ndef pytest_collection_modifyitems(items):\n"
        '    if os.environ.get("REVERSED"):\n'
        "        items.reverse()\n"
    )
    (pytester.path / "tests/test_hits.py").write_text(
        "import pytest\n\nfrom app import hit\n\n\n"
        '@pytest.mark.parametrize("n", range(12))\n'
        "def test_hit(n):\n"
        '    hit(f"/r{(11 - n) % 7}", 211 - n)\n'
    )
    texts = []
    for reversed_, workers in (("", "0"), ("1", "0"), ("", "2")):
        monkeypatch.setenv("REVERSED", reversed_)
        result = pytester.runpytest_subprocess(
            "--dashgen-record", "-p", "no:cacheprovider", "-n", workers
        )
        result.assert_outcomes(passed=12)
        texts.append((pytester.path / ".dashgen/recorded.json").read_text())
    hits = recorded(pytester.path)["app.hits"]
    assert hits["values"] == {
        "route": ["/r0", "/r1", "/r2", "/r3", "/r4"],
        "status": [200, 201, 202, 203, 204],
    }
    assert texts[1:] == texts[:1] * 2


def test_the_projects_own_contract_test_leaves_the_recording_alone(
    example_app: pytest.Pytester,
) -> None:
    """The ready-made contract test runs the real export pipeline in the same session: it
    must neither replace dashgen's provider nor add its trigger measurements."""
    example_app.runpytest_subprocess(
        "example_app/tests", "--dashgen-record", "-p", "no:cacheprovider"
    ).assert_outcomes(passed=13)
    alone = (example_app.path / ".dashgen/recorded.json").read_text()
    with_contract = example_app.runpytest_subprocess(
        "example_app/tests",
        "--dashgen-record",
        "-p",
        "no:cacheprovider",
        "-o",
        "dashgen_contract=true",
    )
    with_contract.assert_outcomes(passed=14)
    assert (example_app.path / ".dashgen/recorded.json").read_text() == alone
