"""Dashboards a Grafana maintainer would ship: thresholds that mean what they say, Grafana's
own units and colours, identities that survive edits, and lines without holes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from dashgen import units
from dashgen.build.plan import _RATE_UNITS
from dashgen.vocabulary import color_problem, implied_base, unit_problem
from tests.conftest import Project

SHOP = """
from dashgen import Counter, Dashboard, Gauge, Histogram, Row, hints

ORDERS = Counter("shop.orders", unit="{order}", labels=["payment.method"])
LATENCY = Histogram(
    "shop.latency",
    unit="s",
    hint=[
        hints.Quantiles(title="Latency quantiles"),
        hints.Average(title="Mean latency", thresholds=((0.25, "orange"), (1.0, "red"))),
    ],
)
STOCK = Gauge("shop.stock", unit="{item}")
COVERAGE = Gauge(
    "shop.coverage",
    unit="%",
    hint=hints.Current(
        title="Coverage", style="stat", thresholds=((90, "orange"), (100, "green")), width=6
    ),
)
BOARD = Dashboard(
    "Shop overview",
    rows=[Row("Sales", [ORDERS, LATENCY]), Row("Stock", [STOCK, COVERAGE])],
)
"""


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def built(project: Project) -> dict[str, dict[str, Any]]:
    """Every generated dashboard by file name."""
    return {p.name: json.loads(p.read_bytes()) for p in sorted(project.generated.glob("*.json"))}


def by_title(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["title"]: p for p in panels(dashboard)}


@pytest.fixture
def shop(project: Project) -> Project:
    project.source("shop.py", SHOP)
    result = project.run("build")
    assert result.exit_code == 0, result.stderr
    return project


# --- thresholds ---------------------------------------------------------------------------


def steps(panel: dict[str, Any]) -> list[tuple[Any, str]]:
    thresholds = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    return [(step["value"], step["color"]) for step in thresholds]


def test_the_base_colour_follows_what_the_steps_mean(shop: Project) -> None:
    """Orange at 90, green at 100: 50% must not show green. Orange at 250 ms, red at 1 s:
    fast is fine."""
    panel = by_title(built(shop)["shop-overview.json"])
    assert steps(panel["Coverage"]) == [(None, "red"), (90, "orange"), (100, "green")]
    assert steps(panel["Mean latency"]) == [(None, "green"), (0.25, "orange"), (1.0, "red")]


@pytest.mark.parametrize(
    ("declared", "base"),
    [
        ((), "green"),
        (((100, "green"),), "red"),
        (((300, "red"),), "green"),
        (((1, "semi-dark-yellow"), (5, "dark-red")), "green"),
        (((1, "dark-orange"), (5, "light-green")), "red"),
        (((1, "blue"), (5, "purple")), "green"),
        (((1, "#ff0000"), (5, "green")), "green"),
    ],
)
def test_implied_base(declared: tuple[tuple[float, str], ...], base: str) -> None:
    assert implied_base(declared) == base


def test_a_declared_base_wins(project: Project) -> None:
    project.source(
        "shop.py",
        SHOP.replace(
            'thresholds=((90, "orange"), (100, "green")), width=6',
            'thresholds=((90, "orange"), (100, "green")), base="purple", width=6',
        ),
    )
    assert project.run("build").exit_code == 0
    assert steps(by_title(built(project)["shop-overview.json"])["Coverage"])[0] == (None, "purple")


def test_set_thresholds_are_drawn_on_time_series_and_others_are_not(shop: Project) -> None:
    panel = by_title(built(shop)["shop-overview.json"])
    assert panel["Mean latency"]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"] == {
        "mode": "line"
    }
    style = panel["Latency quantiles"]["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]
    assert style == {"mode": "off"}


# --- Grafana's vocabulary -----------------------------------------------------------------


def test_every_unit_dashgen_chooses_is_one_grafana_knows() -> None:
    chosen = {units.grafana_unit(worth) for worth in units.OTEL_UNITS.values()}
    chosen |= set(_RATE_UNITS.values()) | {"ops", "short", "percentunit"}
    assert {unit: unit_problem(unit) for unit in sorted(chosen)} == dict.fromkeys(sorted(chosen))


@pytest.mark.parametrize(
    ("unit", "problem"),
    [
        ("ms", None),
        ("reqps", None),
        ("suffix: orders", None),
        ("currencyEUR", None),
        ("milisecond", "'milisecond' is no Grafana unit"),
        ("bytess", "did you mean 'bytes'"),
    ],
)
def test_units(unit: str, problem: str | None) -> None:
    found = unit_problem(unit)
    assert (found is None) if problem is None else (found is not None and problem in found)


@pytest.mark.parametrize(
    ("color", "problem"),
    [
        ("red", None),
        ("semi-dark-green", None),
        ("#73BF69", None),
        ("rgba(50, 172, 45, 0.97)", None),
        ("transparent", None),
        ("redd", "did you mean 'red'"),
        ("Green", "is no Grafana colour"),
        ("#12345", "is no Grafana colour"),
    ],
)
def test_colours(color: str, problem: str | None) -> None:
    found = color_problem(color)
    assert (found is None) if problem is None else (found is not None and problem in found)


# --- identity -----------------------------------------------------------------------------


def test_a_new_title_keeps_the_uid_the_file_and_the_panel_ids(shop: Project) -> None:
    before = built(shop)["shop-overview.json"]
    lock = json.loads((shop.generated / "dashgen.lock").read_text())
    assert lock == {"dashboards": {"src/shop.py:BOARD": "shop-overview"}, "version": 1}
    shop.source("shop.py", SHOP.replace('"Shop overview"', '"Shop: sales and stock"'))
    assert shop.run("build").exit_code == 0
    after = built(shop)
    assert list(after) == ["shop-overview.json"]
    renamed = after["shop-overview.json"]
    assert (renamed["title"], renamed["uid"]) == ("Shop: sales and stock", "shop-overview")
    assert [p["id"] for p in panels(renamed)] == [p["id"] for p in panels(before)]
    assert shop.run("build", "--check").exit_code == 0


def test_inserting_a_panel_changes_no_other_id(shop: Project) -> None:
    before = {p["title"]: p["id"] for p in panels(built(shop)["shop-overview.json"])}
    shop.source(
        "shop.py",
        SHOP.replace(
            '        hints.Quantiles(title="Latency quantiles"),\n',
            '        hints.Heatmap(title="Latency heatmap"),\n'
            '        hints.Quantiles(title="Latency quantiles"),\n',
        ),
    )
    assert shop.run("build").exit_code == 0
    after = {p["title"]: p["id"] for p in panels(built(shop)["shop-overview.json"])}
    assert set(after) == {*before, "Latency heatmap"}
    assert {title: after[title] for title in before} == before
    assert len(set(after.values())) == len(after)


def test_a_new_dashboard_gets_its_slug_and_a_declared_uid_stays_out_of_the_lock(
    shop: Project,
) -> None:
    shop.source(
        "more.py",
        "from dashgen import Gauge, Dashboard, Row\n"
        "LEVEL = Gauge('tank.level')\n"
        "TANKS = Dashboard('Tanks', uid='tanks-v1', rows=[Row('r', [LEVEL])])\n",
    )
    assert shop.run("build").exit_code == 0
    lock = json.loads((shop.generated / "dashgen.lock").read_text())
    assert lock["dashboards"] == {"src/shop.py:BOARD": "shop-overview"}
    assert sorted(built(shop)) == ["shop-overview.json", "tanks-v1.json"]


def test_a_stale_or_damaged_lock(shop: Project) -> None:
    lock = shop.generated / "dashgen.lock"
    lock.write_text('{"dashboards": {"src/shop.py:BOARD": "shop-v2"}, "version": 1}\n')
    check = shop.run("build", "--check")
    assert check.exit_code == 1
    assert "shop-v2.json" in check.stdout  # the lock names the uid: a build would follow it
    lock.write_text("{not json")
    before = shop.snapshot()
    result = shop.run("build")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert "dashgen.lock: cannot read the uid lock" in result.stderr
    assert shop.snapshot() == before


# --- layout -------------------------------------------------------------------------------


def lines(dashboard: dict[str, Any]) -> dict[int, int]:
    """y -> columns taken on that line, for every panel that is not a row header."""
    taken: dict[int, int] = {}
    for panel in panels(dashboard):
        if panel["type"] != "row":
            grid = panel["gridPos"]
            taken[grid["y"]] = taken.get(grid["y"], 0) + grid["w"]
    return taken


def test_every_line_is_filled_to_24_columns(shop: Project) -> None:
    dashboard = built(shop)["shop-overview.json"]
    assert set(lines(dashboard).values()) == {24}
    panel = by_title(dashboard)
    # A width-6 stat beside an unset one: the unset one takes the other 18.
    assert (panel["Coverage"]["gridPos"]["w"], panel["Shop stock"]["gridPos"]["w"]) == (
        6,
        18,
    )


def test_a_line_of_set_widths_with_a_hole_stretches_its_last_panel(project: Project) -> None:
    """The issue's case: a width-6 stat then a width-12 panel used to leave x=18..24 empty."""
    project.source(
        "shop.py",
        "from dashgen import Gauge, Dashboard, Row, hints\n"
        "A = Gauge('a', hint=hints.Current(style='stat', width=6))\n"
        "B = Gauge('b', hint=hints.Current(width=12))\n"
        "C = Gauge('c', hint=hints.Current(width=12))\n"
        "BOARD = Dashboard('Holes', rows=[Row('r', [A, B, C])])\n",
    )
    assert project.run("build").exit_code == 0
    dashboard = built(project)["holes.json"]
    grids = [
        (p["gridPos"]["x"], p["gridPos"]["w"]) for p in panels(dashboard) if p["type"] != "row"
    ]
    assert grids == [(0, 6), (6, 18), (0, 24)]
    assert set(lines(dashboard).values()) == {24}


# --- provisioning -------------------------------------------------------------------------


def provisioning(project: Project, kind: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(
        (project.generated / f"provisioning/{kind}/dashgen.yaml").read_text()
    )
    return document


def test_folders_are_subdirs_grafana_makes_folders_of(shop: Project) -> None:
    shop.source(
        "payments.py",
        "from dashgen import Gauge, Dashboard, Row\n"
        "QUEUE = Gauge('payments.queue')\n"
        "BOARD = Dashboard('Payments', folder='Team: Payments', rows=[Row('r', [QUEUE])])\n",
    )
    assert shop.run("build").exit_code == 0
    assert (shop.generated / "Team: Payments/payments.json").is_file()
    assert (shop.generated / "shop-overview.json").is_file()
    (provider,) = provisioning(shop, "dashboards")["providers"]
    assert provider["options"]["foldersFromFilesStructure"] is True
    assert shop.run("build", "--check").exit_code == 0
    code = shop.run("verify").exit_code
    assert code == 0  # the folder's dashboard is read and checked like the others


@pytest.mark.parametrize("folder", ["a/b", "..", "provisioning", "x\ny", ""])
def test_a_folder_that_is_no_safe_dir_name_is_refused(project: Project, folder: str) -> None:
    project.source(
        "m.py",
        "from dashgen import Gauge, Dashboard, Row\n"
        "G = Gauge('g')\n"
        f"BOARD = Dashboard('B', folder={folder!r}, rows=[Row('r', [G])])\n",
    )
    result = project.run("build")
    assert result.exit_code == 2
    assert "cannot be a directory of the output dir" in result.stderr
    assert result.stderr.count("\n") == 1


def test_the_datasource_is_not_forced_to_be_the_default(shop: Project) -> None:
    (datasource,) = provisioning(shop, "datasources")["datasources"]
    assert (datasource["isDefault"], datasource["uid"]) == (False, "prometheus")
    shop.write(
        "pyproject.toml",
        '[tool.dashgen]\nsources = "src"\ndatasource_default = true\ndatasource_uid = "prom-eu"\n',
    )
    assert shop.run("build").exit_code == 0
    (datasource,) = provisioning(shop, "datasources")["datasources"]
    assert (datasource["isDefault"], datasource["uid"]) == (True, "prom-eu")


# --- titles and links ---------------------------------------------------------------------


def test_default_titles_read_as_words(shop: Project) -> None:
    titles = [p["title"] for p in panels(built(shop)["shop-overview.json"])]
    assert titles == [
        "Sales",
        "Shop orders per second",
        "Latency quantiles",
        "Mean latency",
        "Stock",
        "Shop stock",
        "Coverage",
    ]


def test_dashboards_sharing_a_tag_link_to_each_other(project: Project) -> None:
    project.source(
        "m.py",
        "from dashgen import Gauge, Dashboard, Row\n"
        "A, B, C = Gauge('a'), Gauge('b'), Gauge('c')\n"
        "ONE = Dashboard('One', tags=['shop', 'tier-1'], rows=[Row('r', [A])])\n"
        "TWO = Dashboard('Two', tags=['shop'], rows=[Row('r', [B])])\n"
        "LONE = Dashboard('Lone', tags=['misc'], rows=[Row('r', [C])])\n",
    )
    assert project.run("build").exit_code == 0
    links = {name: [link["tags"] for link in d["links"]] for name, d in built(project).items()}
    assert links == {"one.json": [["shop"]], "two.json": [["shop"]], "lone.json": []}
    (link,) = built(project)["one.json"]["links"]
    assert (link["type"], link["asDropdown"], link["keepTime"], link["includeVars"]) == (
        "dashboards",
        True,
        True,
        True,
    )


# --- variables ----------------------------------------------------------------------------


def variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard["templating"]["list"]}


def exprs(dashboard: dict[str, Any]) -> dict[str, list[str]]:
    return {
        p["title"]: [t["expr"] for t in p["targets"]]
        for p in panels(dashboard)
        if p["type"] != "row"
    }


def test_every_dashboard_filters_by_job_and_instance(shop: Project) -> None:
    dashboard = built(shop)["shop-overview.json"]
    found = variables(dashboard)
    assert list(found) == ["datasource", "job", "instance"]
    job = found["job"]
    assert (job["type"], job["multi"], job["includeAll"], job["allValue"]) == (
        "query",
        True,
        True,
        ".*",
    )
    assert job["query"] == (
        'label_values({__name__=~"shop_coverage_percent|shop_latency_seconds_count|'
        'shop_orders_total|shop_stock"}, job)'
    )
    for title, queries in exprs(dashboard).items():
        for expr in queries:
            selectors = expr.count('job=~"$job", instance=~"$instance"')
            assert selectors >= 1 and selectors == expr.count("{"), (title, expr)
    assert shop.run("verify").exit_code == 0


def test_declared_filters_become_variables_on_the_metrics_that_have_them(
    project: Project,
) -> None:
    project.source(
        "shop.py",
        SHOP.replace('rows=[Row("Sales"', 'filters=["payment.method"], rows=[Row("Sales"'),
    )
    assert project.run("build").exit_code == 0
    dashboard = built(project)["shop-overview.json"]
    method = variables(dashboard)["payment_method"]
    assert method["query"] == 'label_values({__name__=~"shop_orders_total"}, payment_method)'
    found = exprs(dashboard)
    assert found["Shop orders per second"] == [
        'sum(rate(shop_orders_total{job=~"$job", instance=~"$instance", '
        'payment_method=~"$payment_method"}[$__rate_interval]))'
    ]
    assert "payment_method" not in " ".join(found["Shop stock"])
    assert project.run("verify").exit_code == 0


def test_a_filter_no_metric_declares_is_refused(project: Project) -> None:
    project.source(
        "shop.py", SHOP.replace('rows=[Row("Sales"', 'filters=["tenant"], rows=[Row("Sales"')
    )
    result = project.run("build")
    assert result.exit_code == 2
    assert "dashboard 'Shop overview': filters by 'tenant', which none of its metrics declares" in (
        result.stderr
    )


def test_the_scrape_variables_are_configurable(project: Project) -> None:
    project.write(
        "pyproject.toml", '[tool.dashgen]\nsources = "src"\nscrape_variables = ["cluster"]\n'
    )
    project.source("shop.py", SHOP)
    assert project.run("build").exit_code == 0
    dashboard = built(project)["shop-overview.json"]
    assert list(variables(dashboard)) == ["datasource", "cluster"]
    assert exprs(dashboard)["Shop stock"] == ['sum(shop_stock{cluster=~"$cluster"})']
    project.write("pyproject.toml", '[tool.dashgen]\nsources = "src"\nscrape_variables = []\n')
    assert project.run("build").exit_code == 0
    assert exprs(built(project)["shop-overview.json"])["Shop stock"] == ["sum(shop_stock)"]


def test_thresholds_in_any_order_are_drawn_in_rising_order(project: Project) -> None:
    project.source(
        "shop.py",
        SHOP.replace(
            'thresholds=((90, "orange"), (100, "green"))',
            'thresholds=((100, "green"), (90, "orange"))',
        ),
    )
    assert project.run("build").exit_code == 0
    coverage = by_title(built(project)["shop-overview.json"])["Coverage"]
    assert steps(coverage) == [(None, "red"), (90, "orange"), (100, "green")]


# --- custom panels ------------------------------------------------------------------------

CUSTOM = """
from dashgen import Counter, Dashboard, Gauge, Histogram, Panel, Row, expr

REQUESTS = Counter("api.requests", labels=["route", "code"])
LATENCY = Histogram("api.latency", unit="s", labels=["route"])
BUSY = Gauge("api.workers.busy")
ERRORS = expr.rate(REQUESTS, where={"code": "5.."}, by=["route"])
RATIO = Panel("Error ratio", expr.ratio(ERRORS, expr.rate(REQUESTS, by=["route"])),
              unit="percentunit", thresholds=((0.01, "orange"), (0.05, "red")))
BURN = Panel("Budget burn", expr.slo_burn(expr.rate(REQUESTS, where={"code": "5.."}),
             expr.rate(REQUESTS), objective=0.999), style="stat")
BOARD = Dashboard("API", rows=[Row("Errors", [RATIO, BURN]), Row("Load", [LATENCY, BUSY])])
"""


def test_a_custom_panel_queries_declared_metrics_by_their_exported_names(
    project: Project,
) -> None:
    project.source("api.py", CUSTOM)
    result = project.run("build")
    assert result.exit_code == 0, result.stderr
    dashboard = built(project)["api.json"]
    found = exprs(dashboard)
    scraped = 'job=~"$job", instance=~"$instance"'
    assert found["Error ratio"] == [
        f'(sum by (route) (rate(api_requests_total{{{scraped}, code=~"5.."}}'
        "[$__rate_interval]))) / "
        f"(sum by (route) (rate(api_requests_total{{{scraped}}}[$__rate_interval])))"
    ]
    assert found["Budget burn"] == [
        f'((sum(rate(api_requests_total{{{scraped}, code=~"5.."}}[$__rate_interval]))) / '
        f"(sum(rate(api_requests_total{{{scraped}}}[$__rate_interval])))) / 0.001"
    ]
    ratio = by_title(dashboard)["Error ratio"]
    assert (ratio["type"], ratio["fieldConfig"]["defaults"]["unit"]) == (
        "timeseries",
        "percentunit",
    )
    assert ratio["targets"][0]["legendFormat"] == "{{route}}"
    assert by_title(dashboard)["Budget burn"]["type"] == "stat"
    # The panel places the metric it queries: no "no dashboard places it" for REQUESTS.
    assert project.run("verify").exit_code == 0


def test_a_renamed_metric_takes_its_custom_panels_along(project: Project) -> None:
    project.source("api.py", CUSTOM)
    assert project.run("build").exit_code == 0
    project.source("api.py", CUSTOM.replace('"api.requests"', '"api.calls"'))
    report = project.run("verify", "--format", "json")
    assert report.exit_code == 1  # the committed dashboard still reads the old name
    stale = json.loads(report.stdout)["findings"]
    assert ("unknown-metric", "api_requests_total") in {(f["kind"], f["subject"]) for f in stale}
    assert project.run("build").exit_code == 0
    assert "api_calls_total" in exprs(built(project)["api.json"])["Error ratio"][0]
    assert project.run("verify").exit_code == 0


@pytest.mark.parametrize(
    ("panel", "message"),
    [
        (
            'Panel("P", expr.current(REQUESTS))',
            "panel 'P': expr.current() does not fit the Counter 'api.requests'",
        ),
        (
            'Panel("P", expr.rate(REQUESTS, where={"tenant": "a"}))',
            "panel 'P': filters or groups 'api.requests' by 'tenant', which is not among",
        ),
        ('Panel("P", expr.rate(REQUESTS), unit="reqs")', "panel 'P': panel unit=: 'reqs' is no"),
        ('Panel("P", "sum(rate(x[5m]))")', "panel 'P': expr= takes a list of dashgen.expr"),
        (
            'Panel("P", expr.rate(Counter("made.here")))',
            "panel 'P': queries 'made.here', which no declaration names",
        ),
        (
            'Panel("P", expr.slo_burn(expr.rate(REQUESTS), expr.rate(REQUESTS), objective=99))',
            "objective is a share such as 0.999, got 99",
        ),
    ],
)
def test_bad_custom_panels_are_one_line_errors(project: Project, panel: str, message: str) -> None:
    project.source(
        "api.py",
        "from dashgen import Counter, Dashboard, Panel, Row, expr\n"
        'REQUESTS = Counter("api.requests", labels=["route"])\n'
        f"BOARD = Dashboard('API', rows=[Row('r', [REQUESTS, {panel}])])\n",
    )
    result = project.run("build")
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1
    assert message in result.stderr, result.stderr
