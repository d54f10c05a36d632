"""Sign in and out: Globus Auth (authorization-code flow), or a name form in development."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gas_core.logging import get_logger
from gas_web.app.core.auth import LoginFailed
from gas_web.app.core.errors import Problem
from gas_web.app.core.security import dev_user_id, safe_next
from gas_web.app.deps import (
    SESSION_EMAIL,
    SESSION_ID,
    SESSION_NAME,
    SESSION_USER,
    CsrfChecked,
    Globus,
    Jobs,
    Sessions,
    Settings,
    dev_email,
)
from gas_web.app.sessions import SessionStore

router = APIRouter(include_in_schema=False)
log = get_logger(__name__)

OAUTH_STATE = "oauth_state"
NEXT = "next"
SEALED_TOKENS = "tok"


def _start_session(request: Request, sessions: SessionStore, *, user_id: str, name: str,
                   email: str) -> None:
    # A fresh session (and CSRF token) at login: nothing planted before login survives it.
    # Its server-side record is what logout revokes.
    request.session.clear()
    request.session.update({SESSION_USER: user_id, SESSION_NAME: name, SESSION_EMAIL: email,
                            SESSION_ID: sessions.start(user_id)})


@router.get("/login")
def login(request: Request, settings: Settings, globus: Globus,
          next: str | None = None) -> Response:
    destination = safe_next(next)
    if settings.auth_mode == "dev":
        templates = request.app.state.templates
        return templates.TemplateResponse(request, "login_dev.html",  # type: ignore[no-any-return]
                                          {"next": destination, "user": None})
    assert globus is not None
    state = secrets.token_urlsafe(32)
    request.session[OAUTH_STATE] = state
    request.session[NEXT] = destination
    return RedirectResponse(globus.authorize_url(state=state), status_code=303)


@router.post("/login")
def dev_login(
    *,
    request: Request,
    settings: Settings,
    jobs: Jobs,
    sessions: Sessions,
    _csrf: CsrfChecked,
    username: Annotated[str, Form(max_length=64)],
    next: Annotated[str, Form()] = "/",
) -> Response:
    if settings.auth_mode != "dev":
        raise Problem(404, "There is nothing at this address.")
    user_id = dev_user_id(username)
    if user_id is None:
        raise Problem(422, "Use letters, digits, '.', '_', '@' or '-' in the user name.",
                      title="Invalid user name")
    profile = jobs.ensure_profile(user_id, name=username.strip(), email=dev_email(user_id))
    _start_session(request, sessions, user_id=user_id, name=profile.name, email=profile.email)
    log.info("dev login", user_id=user_id)
    return RedirectResponse(safe_next(next), status_code=303)


@router.get("/auth/callback")
def auth_callback(
    *,
    request: Request,
    settings: Settings,
    jobs: Jobs,
    sessions: Sessions,
    globus: Globus,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    if settings.auth_mode != "globus" or globus is None:
        raise Problem(404, "There is nothing at this address.")
    expected = request.session.pop(OAUTH_STATE, None)
    destination = safe_next(request.session.pop(NEXT, None))
    if error:
        raise Problem(400, "The login was cancelled or refused at Globus. Please try again.",
                      title="Login failed")
    if not (isinstance(expected, str) and state and code
            and secrets.compare_digest(expected.encode(), state.encode())):
        log.warning("oauth state mismatch")
        raise Problem(400, "This login link is not valid for this browser (it may be old or "
                           "forged). Please sign in again.", title="Login failed")
    try:
        result = globus.complete_login(code)
    except LoginFailed as failure:
        raise Problem(400, str(failure), title="Login failed") from None
    identity = result.identity
    profile = jobs.ensure_profile(identity.user_id, name=identity.name, email=identity.email)
    _start_session(request, sessions, user_id=identity.user_id, name=profile.name,
                   email=profile.email)
    request.session[SEALED_TOKENS] = request.app.state.sealer.seal({"t": result.tokens})
    log.info("globus login", user_id=identity.user_id)
    return RedirectResponse(destination, status_code=303)


@router.post("/logout")
def logout(request: Request, settings: Settings, globus: Globus, sessions: Sessions,
           _csrf: CsrfChecked) -> Response:
    tokens = request.app.state.sealer.open(request.session.get(SEALED_TOKENS)).get("t", [])
    user_id, session_id = request.session.get(SESSION_USER), request.session.get(SESSION_ID)
    if isinstance(user_id, str) and isinstance(session_id, str):
        # Server-side: a copy of the old cookie no longer signs anyone in.
        sessions.revoke(user_id, session_id)
    request.session.clear()
    if settings.auth_mode == "globus" and globus is not None:
        globus.revoke(str(token) for token in tokens)
        # Globus's logout page ends the Globus session too, then links back here.
        return RedirectResponse(
            globus.logout_url(return_to=settings.web_base_url.rstrip("/") + "/"), status_code=303
        )
    return RedirectResponse("/", status_code=303)
