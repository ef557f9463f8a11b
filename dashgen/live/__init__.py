"""The live check: the catalog's history fed into a real Prometheus or VictoriaMetrics on
127.0.0.1 (or an existing endpoint), then every query run over HTTP. ``stages`` is the
check."""
