"""Globus Auth: the browser login (authorization-code flow), API token introspection, logout.

One `GlobusAuth` per process. Flows get a fresh `ConfidentialAppAuthClient` each (the SDK keeps
the flow on the client object, so a shared one would mix up concurrent logins); introspection
answers are cached briefly by a hash of the token, never by the token itself.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import globus_sdk
from globus_sdk.transport import RetryConfig

from gas_core.logging import get_logger

log = get_logger(__name__)

AUTH_RESOURCE_SERVER = "auth.globus.org"
LOGIN_SCOPES = ("openid", "profile", "email")
GLOBUS_LOGOUT_URL = "https://auth.globus.org/v2/web/logout"
_CACHE_LIMIT = 10_000


@dataclass(frozen=True)
class Identity:
    """Who a login or a token belongs to. `user_id` is the Globus identity id (`sub`)."""

    user_id: str
    name: str = ""
    email: str = ""
    username: str = ""


@dataclass(frozen=True)
class Login:
    identity: Identity
    # Every access and refresh token granted, so logout can revoke them all.
    tokens: list[str]


class LoginFailed(Exception):
    """Globus refused the login; the message is safe to show to the user."""


class GlobusAuth:
    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        redirect_uri: str,
        cache_seconds: int = 60,
        retry_config: RetryConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.client_id = client_id
        self._secret = client_secret
        self.redirect_uri = redirect_uri
        self._cache_seconds = cache_seconds
        self._retry_config = retry_config
        self._clock = clock
        self._wall_clock = wall_clock
        self._cache: dict[str, tuple[float, Identity | None]] = {}
        self._lock = threading.Lock()
        self._introspector = self._client()

    def _client(self) -> globus_sdk.ConfidentialAppAuthClient:
        return globus_sdk.ConfidentialAppAuthClient(
            client_id=self.client_id, client_secret=self._secret,
            app_name="gas-web", retry_config=self._retry_config,
        )

    # -- browser login -----------------------------------------------------------------------

    def authorize_url(self, *, state: str) -> str:
        client = self._client()
        client.oauth2_start_flow(self.redirect_uri, requested_scopes=LOGIN_SCOPES, state=state)
        return client.oauth2_get_authorize_url()

    def complete_login(self, code: str) -> Login:
        client = self._client()
        client.oauth2_start_flow(self.redirect_uri, requested_scopes=LOGIN_SCOPES)
        try:
            response = client.oauth2_exchange_code_for_tokens(code)
        except globus_sdk.GlobusAPIError as error:
            log.warning("globus code exchange refused", http_status=error.http_status,
                        globus_error=error.code)
            raise LoginFailed(
                "Globus did not accept this login (the link may have expired). Please sign in "
                "again."
            ) from None
        except globus_sdk.NetworkError:
            raise LoginFailed("Globus could not be reached. Please try again.") from None
        by_server: dict[str, dict[str, Any]] = dict(response.by_resource_server)
        tokens = [
            str(value)
            for data in by_server.values()
            for name in ("access_token", "refresh_token")
            if (value := data.get(name))
        ]
        auth_tokens = by_server.get(AUTH_RESOURCE_SERVER)
        if not auth_tokens:
            self.revoke(tokens)
            raise LoginFailed("Globus did not share your identity with GAS. Please try again.")
        identity = self._userinfo(str(auth_tokens["access_token"]))
        if identity is None:
            self.revoke(tokens)
            raise LoginFailed("Globus did not share your identity with GAS. Please try again.")
        return Login(identity=identity, tokens=tokens)

    def _userinfo(self, access_token: str) -> Identity | None:
        client = globus_sdk.AuthClient(
            authorizer=globus_sdk.AccessTokenAuthorizer(access_token),
            app_name="gas-web", retry_config=self._retry_config,
        )
        try:
            info = client.userinfo()
        except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as error:
            log.warning("globus userinfo failed", error=type(error).__name__)
            return None
        sub = info.get("sub")
        if not sub:
            return None
        return Identity(
            user_id=str(sub),
            name=str(info.get("name") or ""),
            email=str(info.get("email") or ""),
            username=str(info.get("preferred_username") or ""),
        )

    def revoke(self, tokens: Iterable[str]) -> None:
        """Revoke tokens; failures are logged, never raised (logout must always work)."""
        client = self._client()
        for token in tokens:
            try:
                client.oauth2_revoke_token(token)
            except (globus_sdk.GlobusAPIError, globus_sdk.NetworkError) as error:
                log.warning("globus token revocation failed", error=type(error).__name__)

    def logout_url(self, *, return_to: str) -> str:
        """Globus's own logout page, which ends the Globus session and links back to GAS."""
        query = urlencode({"client_id": self.client_id, "redirect_uri": return_to,
                           "redirect_name": "GAS"})
        return f"{GLOBUS_LOGOUT_URL}?{query}"

    # -- API tokens ----------------------------------------------------------------------------

    def introspect(self, token: str) -> Identity | None:
        """The identity behind an API bearer token, or None if it is not active for GAS."""
        key = hashlib.sha256(token.encode()).hexdigest()
        now = self._clock()
        with self._lock:
            cached = self._cache.get(key)
            if cached is not None and cached[0] > now:
                return cached[1]
        try:
            data = self._introspector.oauth2_token_introspect(token, include="identity_set")
        except globus_sdk.GlobusAPIError as error:
            log.warning("globus introspection refused", http_status=error.http_status)
            return None
        identity = self._identity_from_introspection(dict(data.data or {}))
        ttl = float(self._cache_seconds)
        expires = data.get("exp")
        if identity is not None and isinstance(expires, int | float):
            # Never cache past the token's own expiry.
            ttl = min(ttl, max(float(expires) - self._wall_clock(), 0.0))
        if ttl > 0:
            with self._lock:
                if len(self._cache) >= _CACHE_LIMIT:
                    self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                    if len(self._cache) >= _CACHE_LIMIT:
                        self._cache.clear()
                self._cache[key] = (now + ttl, identity)
        return identity

    def _identity_from_introspection(self, data: dict[str, Any]) -> Identity | None:
        if not data.get("active"):
            return None
        audience = data.get("aud") or []
        if isinstance(audience, str):
            audience = [audience]
        # A token issued for some other service must not open GAS.
        if self.client_id not in audience:
            log.warning("api token for another audience refused")
            return None
        sub = data.get("sub")
        if not sub:
            return None
        return Identity(
            user_id=str(sub),
            name=str(data.get("name") or ""),
            email=str(data.get("email") or ""),
            username=str(data.get("username") or ""),
        )
