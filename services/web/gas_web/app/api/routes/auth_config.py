"""/api/v1/auth: how clients log in here (so `gas login` needs only the server's address)."""

from __future__ import annotations

from fastapi import APIRouter

from gas_web.app.api.schemas import AuthConfig
from gas_web.app.deps import Settings

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.get("/auth", response_model=AuthConfig)
def auth_config(settings: Settings) -> AuthConfig:
    if settings.auth_mode == "dev":
        return AuthConfig(mode="dev")
    return AuthConfig(mode="globus", globus_native_client_id=settings.globus_native_client_id,
                      scopes=[settings.api_scope])
