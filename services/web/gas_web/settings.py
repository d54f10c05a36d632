"""Settings of the web service."""

from __future__ import annotations

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

    @model_validator(mode="after")
    def _production_refuses_dev_login(self) -> Self:
        if self.is_production and self.auth_mode == "dev":
            raise ValueError("GAS_AUTH_MODE=dev is refused when GAS_ENV=production")
        return self
