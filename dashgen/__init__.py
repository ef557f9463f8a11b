"""dashgen: keep Grafana dashboards and OTel metric code in step."""
