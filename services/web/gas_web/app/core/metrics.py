"""HTTP metrics of the web app (base units, few fixed labels; route templates, not paths)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# Page renders and API calls take milliseconds; result downloads are redirects.
HTTP_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class WebMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "gas_http_requests_total",
            "HTTP requests by method, route template and status code.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.seconds = Histogram(
            "gas_http_request_seconds",
            "Time to answer an HTTP request, by method and route template.",
            ["method", "route"],
            buckets=HTTP_SECONDS_BUCKETS,
            registry=registry,
        )
