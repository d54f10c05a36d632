"""Jinja2 set-up: templates, filters and what every page knows (user, CSRF token, mode)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi.templating import Jinja2Templates
from starlette.requests import Request

from gas_web.app.core.security import CSRF_FORM_FIELD, csrf_token
from gas_web.app.submissions import human_bytes

TEMPLATES_DIR = Path(__file__).resolve().parents[2] / "templates"

STATUS_BADGES = {
    "PENDING": "text-bg-secondary",
    "RUNNING": "text-bg-primary",
    "COMPLETED": "text-bg-success",
    "FAILED": "text-bg-danger",
}
STORAGE_BADGES = {
    "archiving": "text-bg-info",
    "archived": "text-bg-dark",
    "restoring": "text-bg-warning",
}
IMPACT_BADGES = {
    "HIGH": "text-bg-danger",
    "MODERATE": "text-bg-warning",
    "LOW": "text-bg-info",
    "MODIFIER": "text-bg-light",
}


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else "—"


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _common(request: Request) -> dict[str, Any]:
    settings = request.app.state.settings
    return {
        "csrf_token": csrf_token(request),
        "csrf_field": CSRF_FORM_FIELD,
        "auth_mode": settings.auth_mode,
        "dev_tools": settings.dev_tools_enabled,
        # The deployment's reference is the synthetic demo bundle (base.html's banner).
        "synthetic_reference": settings.reference_synthetic,
    }


def annotated_on_synthetic(job: Any) -> bool:
    """The job's results came from the synthetic demo bundle (the engine says so in the
    summary), whatever reference the deployment uses now."""
    summary = getattr(job, "summary", None) or {}
    reference = summary.get("reference") if isinstance(summary, dict) else None
    return isinstance(reference, dict) and reference.get("synthetic") is True


def make_templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=TEMPLATES_DIR, context_processors=[_common])
    env = templates.env
    env.filters["when"] = _when
    env.filters["iso"] = _iso
    env.filters["bytes"] = human_bytes
    env.globals["STATUS_BADGES"] = STATUS_BADGES
    env.globals["STORAGE_BADGES"] = STORAGE_BADGES
    env.globals["IMPACT_BADGES"] = IMPACT_BADGES
    env.globals["annotated_on_synthetic"] = annotated_on_synthetic
    return templates
