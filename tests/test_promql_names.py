"""Every generated query parses in Prometheus itself, whatever the exporter named the metric.

A metric may be named by any word PromQL's lexer knows (a gauge ``on``, a histogram
``bool``); the generated queries are checked by the real promtool (``promtool check
rules`` parses each expression with Prometheus' own parser) and by verify.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Project

#: The keywords of Prometheus' PromQL lexer (operators, aggregators, modifiers, numbers).
#: The Prometheus exporter lower-cases names, so their upper-case forms collide here.
NAMES = [
    "and",
    "or",
    "unless",
    "atan2",
    "sum",
    "avg",
    "count",
    "min",
    "max",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "count_values",
    "quantile",
    "limitk",
    "limit_ratio",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "bool",
    "start",
    "end",
    "step",
    "inf",
    "nan",
]


def source(names: list[str]) -> str:
    """A gauge, a counter and a histogram named by each word, grouped by keyword labels."""
    lines = ["from dashgen import Counter, Dashboard, Gauge, Histogram, Row, hints", "m = []"]
    for name in names:
        by = "['on', 'bool']"
        lines += [
            f"m.append(Gauge({name!r}, labels=['on', 'bool'], hint=hints.Current(by={by})))",
            f"m.append(Counter({name + '.c'!r}, labels=['on', 'bool'], hint=hints.Rate(by={by})))",
            f"m.append(Histogram({name + '.h'!r}, unit='s', hint=[hints.Quantiles(), "
            "hints.Heatmap(), hints.Average()]))",
        ]
    lines.append("board = Dashboard('Words', rows=[Row('all', m)])")
    return "\n".join(lines) + "\n"


def generated_exprs(generated: Path) -> list[str]:
    board = json.loads((generated / "words.json").read_text(encoding="utf-8"))
    return [t["expr"] for p in board["panels"] if "targets" in p for t in p["targets"]]


@pytest.mark.parametrize(
    ("variables", "on", "on_c"),
    [
        (
            None,
            '{__name__="on", job=~"$job", instance=~"$instance"}',
            'on_c_total{job=~"$job", instance=~"$instance"}',
        ),
        ("[]", '{__name__="on"}', "on_c_total"),
    ],
    ids=["with-the-job-and-instance-matchers", "bare-names"],
)
def test_every_query_of_keyword_named_metrics_parses_in_promtool(
    project: Project, tmp_path: Path, variables: str | None, on: str, on_c: str
) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool is installed with prometheus (.ci/run installs it)"
    if variables is not None:
        project.write(
            "pyproject.toml", f'[tool.dashgen]\nsources = "src"\nscrape_variables = {variables}\n'
        )
    project.source("words.py", source(NAMES))
    built = project.run("build")
    assert built.exit_code == 0, built.stderr
    exprs = generated_exprs(project.generated)
    assert len(exprs) >= 5 * len(NAMES)
    assert f"sum by (on, bool) ({on})" in exprs
    assert f"sum by (on, bool) (rate({on_c}[$__rate_interval]))" in exprs
    rules = ["groups:", "- name: generated", "  rules:"]
    for index, expr in enumerate(exprs):
        concrete = expr.replace("$__rate_interval", "1m").replace("$__range", "1h")
        rules += [f"  - record: query_{index}", f"    expr: {json.dumps(concrete)}"]
    rule_file = tmp_path / "rules.yml"
    rule_file.write_text("\n".join(rules) + "\n", encoding="utf-8")
    checked = subprocess.run(
        [promtool, "check", "rules", str(rule_file)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in checked.stdout

    verified = project.run("verify")
    assert verified.exit_code == 0, verified.stdout
    assert "no findings" in verified.stdout


REFUSED = {
    "group-by-inf": (
        "c = Counter('c', labels=['inf'], hint=hints.Rate(by=['inf']))",
        "hint Rate groups by 'inf', which PromQL reads as a number in by (...): rename the "
        "attribute",
    ),
    "group-by-NaN": (
        "c = Counter('c', labels=['NaN'], hint=hints.Rate(by=['NaN']))",
        "hint Rate groups by 'NaN', which PromQL reads as a number in by (...): rename the "
        "attribute",
    ),
    **{
        f"attribute-{label}": (
            f"c = Counter('c', labels=['route', '{label}'])",
            f"attribute '{label}' exports as label '{label}', which the Prometheus scrape sets "
            f"itself (it would store yours as 'exported_{label}'): rename the attribute",
        )
        for label in ("job", "instance")
    },
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_names_the_query_cannot_say_are_refused(project: Project, case: str) -> None:
    """A grouping PromQL reads as a number, or a label the scrape renames: one line, no build."""
    declaration, message = REFUSED[case]
    project.source(
        "m.py",
        "from dashgen import Counter, Dashboard, Row, hints\n"
        f"{declaration}\n"
        "d = Dashboard('D', rows=[Row('r', [c])])\n",
    )
    result = project.run("build")
    assert result.exit_code == 2
    assert result.stderr == f"error: src/m.py:2: metric 'c': {message}\n"
    assert not project.generated.exists()
