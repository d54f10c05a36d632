"""Settings of the web service."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from gas_core.settings import DEVELOPMENT_SECRET_PREFIX, GasSettings


class WebSettings(GasSettings):
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8000, ge=1, le=65535)
    # `dev` accepts a user name at a login form and `Bearer dev:<user_id>` tokens: never in
    # production (refused below).
    auth_mode: Literal["globus", "dev"] = "globus"
    session_secret: SecretStr = SecretStr(DEVELOPMENT_SECRET_PREFIX + "session-secret")
    # A signed-in browser session lasts this long without a new login.
    session_max_age_seconds: int = Field(default=12 * 3600, ge=60)

    # Globus Auth: the confidential client of this web app (authorization-code flow and token
    # introspection) and the public native-app client the `gas` CLI logs in with.
    globus_client_id: str | None = None
    globus_client_secret: SecretStr | None = None
    globus_native_client_id: str | None = None
    # The scope API tokens must carry (what `gas login` requests); default: this app's `all`.
    globus_api_scope: str | None = None
    # Introspection answers are cached this long (never past the token's own expiry).
    globus_introspection_cache_seconds: int = Field(default=60, ge=0, le=3600)

    # Presigned URLs: long enough for a large upload on a slow link; downloads start at once.
    upload_url_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    download_url_seconds: int = Field(default=300, ge=10, le=3600)
    # Results (Parquet) downloaded for the variant browser are kept here, per job, up to a size.
    web_cache_dir: Path = Path(tempfile.gettempdir()) / "gas-web-cache"
    web_cache_max_bytes: int = Field(default=2 * 1024**3, gt=0)

    @model_validator(mode="after")
    def _production_refuses_dev_login(self) -> Self:
        if self.is_production and self.auth_mode == "dev":
            raise ValueError("GAS_AUTH_MODE=dev is refused when GAS_ENV=production")
        if self.auth_mode == "globus" and not (self.globus_client_id and self.globus_client_secret):
            raise ValueError(
                "GAS_AUTH_MODE=globus needs GAS_GLOBUS_CLIENT_ID and GAS_GLOBUS_CLIENT_SECRET "
                "(register a confidential client at app.globus.org), or GAS_AUTH_MODE=dev locally"
            )
        return self

    @property
    def api_scope(self) -> str:
        if self.globus_api_scope:
            return self.globus_api_scope
        return f"https://auth.globus.org/scopes/{self.globus_client_id}/all"

    @property
    def dev_tools_enabled(self) -> bool:
        """Development-only pages (the emulator's outbox) exist only against an emulator."""
        return not self.is_production and self.aws_endpoint_url is not None
