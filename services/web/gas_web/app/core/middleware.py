"""One ASGI middleware for what every response needs: request id, access log, metrics and
security headers.

Written as plain ASGI (not BaseHTTPMiddleware) so it sees the final status of every response,
including errors and static files, and adds no task hop per request.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gas_core.logging import bind_context, get_logger
from gas_web.app.core.metrics import WebMetrics

log = get_logger("gas_web.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
# Probes and scrapes every few seconds would drown the access log; they are still counted.
_QUIET_ROUTES = frozenset({"/healthz", "/readyz", "/metrics"})


def route_template(scope: Scope) -> str:
    """The matched route's template (`/api/v1/jobs/{job_id}`), never the raw path: raw paths
    would make one metric series per job id."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(path, str) and path:
        return path
    if scope.get("path", "").startswith("/static/"):
        return "/static"
    return "<unmatched>"


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: WebMetrics,
        security_headers: Callable[[str], dict[str, str]],
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.security_headers = security_headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        path: str = scope.get("path", "")
        status = 500
        started = time.perf_counter()

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers["X-Request-ID"] = request_id
                for name, value in self.security_headers(path).items():
                    headers.setdefault(name, value)
            await send(message)

        with bind_context(request_id=request_id):
            try:
                await self.app(scope, receive, send_with_headers)
            finally:
                seconds = time.perf_counter() - started
                route = route_template(scope)
                method = scope.get("method", "GET")
                self.metrics.requests.labels(method, route, str(status)).inc()
                self.metrics.seconds.labels(method, route).observe(seconds)
                if route not in _QUIET_ROUTES:
                    state = scope.get("state") or {}
                    # Path only: query strings can carry OAuth codes and state.
                    log.info(
                        "request",
                        method=method,
                        path=path,
                        route=route,
                        status=status,
                        duration_ms=round(seconds * 1000, 1),
                        user_id=state.get("user_id"),
                    )


def security_headers_for(
    *, production: bool, connect_origins: Callable[[], list[str]], form_origins: list[str]
) -> Callable[[str], dict[str, str]]:
    """Headers for every response; the CSP allows no inline script anywhere."""

    def headers(path: str) -> dict[str, str]:
        # Swagger UI sets inline styles on its own elements; the app's pages need none.
        style = "'self' 'unsafe-inline'" if path.startswith("/api/docs") else "'self'"
        csp = "; ".join([
            "default-src 'self'",
            "script-src 'self'",
            f"style-src {style}",
            "img-src 'self' data:",
            "connect-src " + " ".join(["'self'", *connect_origins()]),
            "form-action " + " ".join(["'self'", *form_origins]),
            "frame-ancestors 'none'",
            "base-uri 'none'",
            "object-src 'none'",
        ])
        values = {
            "Content-Security-Policy": csp,
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Cross-Origin-Opener-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
        }
        if not path.startswith("/static/"):
            # Pages and API answers are per user: no shared or browser cache keeps them.
            values["Cache-Control"] = "no-store"
        if production:
            values["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
        return values

    return headers
