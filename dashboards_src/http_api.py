"""An HTTP API service: traffic, errors, latency, concurrency and payload size."""

from dashgen import Counter, Dashboard, Histogram, Row, UpDownCounter, hints

ROUTE = "http.route"
STATUS = "http.response.status_code"
METHOD = "http.request.method"

REQUESTS = Counter(
    "http.server.requests",
    unit="{request}",
    description="Requests handled, by route, method and status code.",
    labels=[ROUTE, METHOD, STATUS],
    hint=[
        hints.Rate(title="Requests per second by route", by=(ROUTE,)),
        hints.Rate(title="Requests per second by status", by=(STATUS,)),
        hints.Increase(title="Requests in range", width=6, height=4),
    ],
)

DURATION = Histogram(
    "http.server.request.duration",
    unit="s",
    description="Time from request received to response sent.",
    labels=[ROUTE, METHOD],
    buckets=[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    hint=[
        hints.Quantiles(title="Latency p50/p90/p99 by route", by=(ROUTE,)),
        hints.Heatmap(title="Latency distribution"),
        hints.Average(title="Mean latency", thresholds=((0.25, "orange"), (1.0, "red"))),
    ],
)

ACTIVE = UpDownCounter(
    "http.server.active_requests",
    unit="{request}",
    description="Requests being handled right now.",
    labels=[ROUTE],
    hint=hints.Current(title="In-flight requests", by=(ROUTE,)),
)

RESPONSE_BYTES = Counter(
    "http.server.response.body.size",
    unit="By",
    description="Bytes of response bodies sent.",
    labels=[ROUTE],
    hint=hints.Rate(title="Response throughput by route", by=(ROUTE,)),
)

DASHBOARD = Dashboard(
    "HTTP API",
    uid="http-api",
    description="Traffic, errors, latency and load of the HTTP API.",
    tags=["example", "http"],
    rows=[
        Row("Traffic", [REQUESTS, RESPONSE_BYTES]),
        Row("Latency", [DURATION]),
        Row("Load", [ACTIVE]),
    ],
)
