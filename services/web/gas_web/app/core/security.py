"""Session-bound CSRF tokens, safe redirects, sealed tokens and user-id checks."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken
from starlette.requests import Request

CSRF_SESSION_KEY = "csrf"
CSRF_FORM_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"

# User ids become part of DynamoDB keys and S3 prefixes: a strict alphabet, no separators
# (`#`, `/`) that could reach into another partition or prefix.
_USER_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$")


def csrf_token(request: Request) -> str:
    """The session's CSRF token (created on first use); forms and the page's JS echo it."""
    token = request.session.get(CSRF_SESSION_KEY)
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        request.session[CSRF_SESSION_KEY] = token
    return token


def csrf_ok(request: Request, submitted: str | None) -> bool:
    expected = request.session.get(CSRF_SESSION_KEY)
    if not isinstance(expected, str) or not submitted:
        return False
    return secrets.compare_digest(expected.encode(), submitted.encode())


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to return to after login; anything pointing elsewhere becomes `default`.

    Rejects absolute URLs, scheme-relative `//host`, backslash tricks (`/\\host`, which some
    browsers read as `//host`) and control characters.
    """
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    if any(ord(ch) < 0x20 or ch == "\\" for ch in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def is_valid_user_id(value: str) -> bool:
    return bool(_USER_ID.match(value))


def dev_user_id(name: str) -> str | None:
    """The user id of a development login name (`Ada Lovelace` → `ada-lovelace`)."""
    slug = re.sub(r"[^a-z0-9._@-]+", "-", name.strip().lower()).strip("-.")[:64]
    return slug if slug and is_valid_user_id(slug) else None


class TokenSealer:
    """Encrypts tokens kept in the (signed, but readable) session cookie.

    The key is derived from the session secret, so rotating that secret ends every session.
    """

    def __init__(self, secret: str) -> None:
        digest = hashlib.sha256(b"gas-web-token-sealer:" + secret.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    def seal(self, value: dict[str, Any]) -> str:
        return self._fernet.encrypt(json.dumps(value).encode()).decode()

    def open(self, sealed: str | None) -> dict[str, Any]:
        if not sealed:
            return {}
        try:
            value = json.loads(self._fernet.decrypt(sealed.encode()))
        except (InvalidToken, ValueError):
            return {}
        return value if isinstance(value, dict) else {}
