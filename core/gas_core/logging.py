"""structlog set-up shared by every service.

JSON lines on stdout in pods (one object per line, what log collectors want), a readable
console renderer on a terminal. stdlib loggers (uvicorn, botocore, ...) go through the same
processors so every line has the same shape. Context such as job_id, message_id and
request_id is bound with `bind_context` (contextvars) and appears on every line below it.

Secrets are redacted twice: in the event's values, at any depth (a key that names a secret,
`key=value` text, presigned URL queries), and again in the final rendered line, so text that
only exists once rendered (a formatted traceback, an object's repr, a stdlib message) is
covered too.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from typing import Any, Literal

import structlog
from structlog.types import EventDict, Processor

# Names of secrets (not one).
_SECRET_WORDS = (
    r"secret|password|passwd|token|authorization|cookie|credential|api[_-]?key|signature"  # noqa: S105
)
# Keys whose values are never logged, whatever service logs them.
_SECRET_KEY = re.compile(f"({_SECRET_WORDS})", re.IGNORECASE)
# The same names in free text: `token=abc`, `Authorization: Bearer abc`, `'secret': 'abc'`,
# `X-Amz-Signature=abc` in a presigned URL's query. The value stops at whitespace, a quote, a
# backslash (JSON escapes) or a separator, so a rendered JSON line stays valid.
_TEXT_SECRET = re.compile(
    rf"(?P<key>[\w.-]*(?:{_SECRET_WORDS})[\w.-]*)"
    r"(?P<sep>[\"']?\s*[=:]\s*[\"']?(?:(?:Bearer|Basic|Token|AWS4-HMAC-SHA256)\s+)?)"
    r"[^\s&\"',;\\]+",
    re.IGNORECASE,
)
# Presigned URL parameters that carry credentials without a secret-sounding name.
_URL_CREDENTIALS = re.compile(r"([?&]AWSAccessKeyId=)[^&\s\"'\\]+", re.IGNORECASE)
REDACTED = "[REDACTED]"
# structlog's own bookkeeping in an event dict, never rendered as text here.
_INTERNAL_KEYS = frozenset({"exc_info", "stack_info", "_record", "_from_structlog"})


def redact_text(text: str) -> str:
    """`text` with every secret-looking `name=value` and presigned credential replaced."""
    if "=" not in text and ":" not in text:
        return text
    text = _TEXT_SECRET.sub(lambda m: m["key"] + m["sep"] + REDACTED, text)
    return _URL_CREDENTIALS.sub(r"\1" + REDACTED, text)


def _redact_value(key: str, value: Any) -> Any:
    if _SECRET_KEY.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {k: _redact_value(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_redact_value("", item) for item in value)
    return value


def redact_secrets(_logger: Any, _method: str, event_dict: EventDict) -> EventDict:
    """Replace secret-looking values at any depth (dicts, lists, tuples) and strings."""
    for key, value in list(event_dict.items()):
        if key not in _INTERNAL_KEYS:
            event_dict[key] = _redact_value(key, value)
    return event_dict


def _redacting(renderer: Processor) -> Callable[..., str]:
    """The renderer, then redaction of the rendered line itself: a traceback, an object's
    repr and anything else that only becomes text while rendering is covered too."""

    def render(logger: Any, method: str, event_dict: EventDict) -> str:
        rendered = renderer(logger, method, event_dict)
        return redact_text(rendered if isinstance(rendered, str) else str(rendered))

    return render


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
            _redacting(renderer),
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
