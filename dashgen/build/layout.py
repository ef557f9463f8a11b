"""The output dir's layout: the names of what a build writes besides the dashboards, kept
apart from the stages that write them so that reading the layout imports none of them."""

LOCK = "dashgen.lock"
"""The uid lock (see :mod:`dashgen.build.identity`)."""
RULES_DIR = "rules"
"""Prometheus rule files, and their promtool tests in ``rules/tests/``."""
