"""structlog set-up shared by every service.

JSON lines on stdout in pods (one object per line, what log collectors want), a readable
console renderer on a terminal. stdlib loggers (uvicorn, botocore, ...) go through the same
processors so every line has the same shape. Context such as job_id, message_id and
request_id is bound with `bind_context` (contextvars) and appears on every line below it.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal

import structlog
from structlog.types import EventDict, Processor

# Keys whose values are never logged, whatever service logs them.
_SECRET_KEY = re.compile(
    r"(secret|password|passwd|token|authorization|cookie|credential|api[_-]?key|signature)",
    re.IGNORECASE,
)
# Presigned URLs carry credentials in the query string.
_URL_CREDENTIALS = re.compile(
    r"([?&](?:X-Amz-Signature|X-Amz-Credential|X-Amz-Security-Token|Signature|AWSAccessKeyId)=)"
    r"[^&\s\"']+",
    re.IGNORECASE,
)
REDACTED = "[REDACTED]"


def redact_secrets(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Replace secret-looking values; strip credentials from presigned URLs in any string."""
    for key, value in list(event_dict.items()):
        if _SECRET_KEY.search(key):
            event_dict[key] = REDACTED
        elif isinstance(value, str) and "=" in value:
            event_dict[key] = _URL_CREDENTIALS.sub(r"\1" + REDACTED, value)
    return event_dict


def _add_service(service: str) -> Processor:
    def add_service(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    return add_service


def configure_logging(
    *,
    service: str,
    log_format: Literal["auto", "json", "console"] = "auto",
    level: str = "INFO",
) -> None:
    """Configure structlog and the stdlib root logger once per process."""
    use_json = log_format == "json" or (log_format == "auto" and not sys.stdout.isatty())
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _add_service(service),
        redact_secrets,
    ]
    renderer: Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        # Plain tracebacks: the default (rich, with locals) can take seconds per exception.
        else structlog.dev.ConsoleRenderer(
            colors=sys.stdout.isatty(), exception_formatter=structlog.dev.plain_traceback
        )
    )
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info if use_json else _keep,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Libraries that are chatty at INFO, or that would log request details.
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # uvicorn installs its own handlers; route its loggers through ours instead.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uv_logger = logging.getLogger(name)
        uv_logger.handlers[:] = []
        uv_logger.propagate = True
    # The web app writes its own access line per request, with request_id.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def _keep(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    return event_dict


def get_logger(name: str | None = None) -> structlog.stdlib.BoundLogger:
    return structlog.stdlib.get_logger(name)


@contextmanager
def bind_context(**values: Any) -> Iterator[None]:
    """Bind values (job_id, message_id, request_id...) to every log line in this context."""
    tokens = structlog.contextvars.bind_contextvars(**values)
    try:
        yield
    finally:
        structlog.contextvars.reset_contextvars(**tokens)


def context() -> MutableMapping[str, Any]:
    return structlog.contextvars.get_contextvars()


def bind_message_fields(**values: Any) -> None:
    """Add fields to every later log line of the message being handled, including the
    worker's canonical `message` line (which `bind_context` blocks inside a handler do not
    reach, as they end before it). Safe only in a worker's handler thread: each message is
    handled in a thread of its own, and the thread's context ends with it."""
    structlog.contextvars.bind_contextvars(**values)
