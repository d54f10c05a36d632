"""`python -m gas_web`: serve the web app with uvicorn."""

from __future__ import annotations

import uvicorn

from gas_core.logging import configure_logging
from gas_core.metrics import MetricsServer
from gas_core.service import load_settings
from gas_web.app.main import create_app
from gas_web.settings import WebSettings


def main() -> None:
    settings = load_settings(WebSettings, service="web")
    configure_logging(service="web", log_format=settings.log_format, level=settings.log_level)
    app = create_app(settings)
    # /metrics on its own port (GAS_METRICS_PORT, as the workers): the public port, the one the
    # Ingress routes, never serves it.
    MetricsServer(port=settings.metrics_port, registry=app.state.registry).start()
    uvicorn.run(
        app,
        host=settings.web_host,
        port=settings.web_port,
        log_config=None,  # our structlog handlers, set up above
        access_log=False,  # the app logs one line per request itself
        timeout_graceful_shutdown=20,
    )


if __name__ == "__main__":
    main()
