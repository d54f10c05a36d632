"""Prometheus metrics: shared metric families and the /metrics endpoints.

Names are in base units (`_seconds`, `_bytes`, `_total`) with few, fixed labels. Each process
registers into one registry (the default in production, an isolated one in tests) and serves
it either from a small HTTP server (workers, which also answer health probes on the same
port) or mounted in the web app.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

# Buckets for message handling: milliseconds for emails up to an hour for large annotations.
MESSAGE_SECONDS_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


class WorkerMetrics:
    """Metrics every SQS consumer exports."""

    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.messages = Counter(
            "gas_messages_total",
            "SQS messages handled, by outcome (ok, retry, failed, poison, released).",
            ["service", "queue", "outcome"],
            registry=registry,
        )
        self.message_seconds = Histogram(
            "gas_message_seconds",
            "Time to handle one SQS message.",
            ["service", "queue"],
            buckets=MESSAGE_SECONDS_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "gas_messages_in_flight",
            "Messages being handled right now.",
            ["service", "queue"],
            registry=registry,
        )
        self.last_poll = Gauge(
            "gas_worker_last_poll_timestamp_seconds",
            "Unix time the worker last finished a receive call (liveness).",
            ["service", "queue"],
            registry=registry,
        )


HealthCheck = Callable[[], tuple[bool, str]]


class MetricsServer:
    """Serves /metrics, /healthz and /readyz for a worker process on one port."""

    def __init__(
        self,
        *,
        port: int,
        registry: CollectorRegistry = REGISTRY,
        liveness: HealthCheck | None = None,
        readiness: HealthCheck | None = None,
        host: str = "0.0.0.0",  # noqa: S104 - probes and Prometheus reach pods on their IP
    ) -> None:
        checks = {"/healthz": liveness, "/readyz": readiness}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path == "/metrics":
                    self._reply(200, generate_latest(registry), CONTENT_TYPE_LATEST)
                elif path in checks:
                    check = checks[path]
                    ok, detail = check() if check else (True, "ok")
                    self._reply(200 if ok else 503, detail.encode(), "text/plain")
                else:
                    self._reply(404, b"not found", "text/plain")

            def _reply(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Probes every few seconds would drown the logs."""

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def metrics_response(registry: CollectorRegistry = REGISTRY) -> tuple[bytes, str]:
    """Body and content type for a /metrics route in a web framework."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
