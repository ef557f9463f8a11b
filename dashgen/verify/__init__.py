"""Verifying dashboards against the code: read every dashboard file -> every query -> PromQL
parsed -> compared with the exported families (the contract), then baseline and report.
``stages`` is the command."""
