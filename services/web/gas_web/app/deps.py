"""Dependencies shared by API routes and pages, as `Annotated` aliases (`CurrentUser`, `Jobs`...).

Who is asking:
* API: `Authorization: Bearer <Globus token>` (introspected), `Bearer dev:<user_id>` in
  development mode, or the browser's session cookie — cookie-authenticated writes must echo the
  session's CSRF token in `X-CSRF-Token` (the page's own JavaScript does).
* Pages: the session cookie; no session redirects to /login and back.
A session cookie counts only while its server-side record lives (gas_web.app.sessions): logout
and the absolute session lifetime end every copy of the cookie.
Jobs are always read under the caller's own partition, so another user's job id is a 404.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Form, Header, Request, Security
from fastapi.security import HTTPBearer

from gas_core.aws import AwsClients
from gas_core.jobs import (
    Job,
    JobNotFound,
    JobRepository,
    SavedFilterStore,
    UserProfile,
    is_job_id,
)
from gas_web.app.core.auth import GlobusAuth
from gas_web.app.core.errors import LoginRequired, Problem, not_found
from gas_web.app.core.security import CSRF_FORM_FIELD, csrf_ok, is_valid_user_id
from gas_web.app.sessions import SessionStore
from gas_web.app.uploads import UploadReservations
from gas_web.app.variants import VariantStore
from gas_web.settings import WebSettings

SESSION_USER = "uid"
SESSION_NAME = "name"
SESSION_EMAIL = "email"
SESSION_ID = "sid"
DEV_TOKEN_PREFIX = "dev:"  # noqa: S105 - a scheme marker, not a secret
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def get_settings(request: Request) -> WebSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_aws(request: Request) -> AwsClients:
    return request.app.state.aws  # type: ignore[no-any-return]


def get_jobs(request: Request) -> JobRepository:
    return request.app.state.jobs  # type: ignore[no-any-return]


def get_variants(request: Request) -> VariantStore:
    return request.app.state.variants  # type: ignore[no-any-return]


def get_globus(request: Request) -> GlobusAuth | None:
    return request.app.state.globus  # type: ignore[no-any-return]


def get_sessions(request: Request) -> SessionStore:
    return request.app.state.sessions  # type: ignore[no-any-return]


def get_uploads(request: Request) -> UploadReservations:
    return request.app.state.uploads  # type: ignore[no-any-return]


def get_saved_filters(request: Request) -> SavedFilterStore:
    return request.app.state.saved_filters  # type: ignore[no-any-return]


Settings = Annotated[WebSettings, Depends(get_settings)]
Aws = Annotated[AwsClients, Depends(get_aws)]
Jobs = Annotated[JobRepository, Depends(get_jobs)]
Variants = Annotated[VariantStore, Depends(get_variants)]
Globus = Annotated[GlobusAuth | None, Depends(get_globus)]
Sessions = Annotated[SessionStore, Depends(get_sessions)]
Uploads = Annotated[UploadReservations, Depends(get_uploads)]
SavedFilters = Annotated[SavedFilterStore, Depends(get_saved_filters)]


def dev_email(user_id: str) -> str:
    return f"{user_id}@example.org"


def _unauthorized(detail: str) -> Problem:
    return Problem(401, detail, headers={"WWW-Authenticate": 'Bearer realm="gas"'})


def _session_profile(request: Request, jobs: JobRepository) -> UserProfile | None:
    user_id = request.session.get(SESSION_USER)
    session_id = request.session.get(SESSION_ID)
    if not isinstance(user_id, str) or not is_valid_user_id(user_id):
        return None
    if not isinstance(session_id, str) or not get_sessions(request).is_active(user_id,
                                                                             session_id):
        # Logged out, expired, or a cookie from before server-side sessions: start afresh.
        request.session.clear()
        return None
    profile = jobs.ensure_profile(
        user_id,
        name=str(request.session.get(SESSION_NAME) or ""),
        email=str(request.session.get(SESSION_EMAIL) or ""),
    )
    request.state.user_id = user_id
    return profile


class _BearerHeader(HTTPBearer):
    """Declares the bearer scheme in OpenAPI (`securitySchemes`, per-operation `security`) but
    hands `api_user` the raw Authorization header, which judges it (and answers a wrong scheme)."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return request.headers.get("authorization")


_bearer = _BearerHeader(scheme_name="bearer", auto_error=False,
                        description="A Globus access token (`gas login`), or `dev:<user_id>` "
                                    "in development mode.")


def api_user(
    *,
    request: Request,
    settings: Settings,
    jobs: Jobs,
    globus: Globus,
    authorization: Annotated[str | None, Security(_bearer)] = None,
    x_csrf_token: Annotated[str | None, Header()] = None,
) -> UserProfile:
    if authorization:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise _unauthorized("Send `Authorization: Bearer <token>`.")
        if token.startswith(DEV_TOKEN_PREFIX):
            user_id = token.removeprefix(DEV_TOKEN_PREFIX)
            if settings.auth_mode != "dev" or not is_valid_user_id(user_id):
                raise _unauthorized("This token is not valid here.")
            request.state.user_id = user_id
            return jobs.ensure_profile(user_id, name=user_id, email=dev_email(user_id))
        identity = globus.introspect(token) if globus is not None else None
        if identity is None:
            raise _unauthorized("The token is not valid or has expired: run `gas login`.")
        request.state.user_id = identity.user_id
        return jobs.ensure_profile(identity.user_id, name=identity.name, email=identity.email)
    profile = _session_profile(request, jobs)
    if profile is None:
        raise _unauthorized("Sign in, or send `Authorization: Bearer <token>`.")
    if request.method not in _SAFE_METHODS and not csrf_ok(request, x_csrf_token):
        raise Problem(403, "Missing or wrong X-CSRF-Token for a cookie-authenticated request.")
    return profile


def page_user(request: Request, jobs: Jobs) -> UserProfile:
    profile = _session_profile(request, jobs)
    if profile is None:
        raise LoginRequired(request.url.path + (f"?{request.url.query}" if request.url.query
                                                 else ""))
    return profile


def maybe_page_user(request: Request, jobs: Jobs) -> UserProfile | None:
    return _session_profile(request, jobs)


CurrentUser = Annotated[UserProfile, Depends(api_user)]
PageUser = Annotated[UserProfile, Depends(page_user)]
MaybeUser = Annotated[UserProfile | None, Depends(maybe_page_user)]


def _owned(job_id: str, user: UserProfile, jobs: JobRepository) -> Job:
    if not is_job_id(job_id):
        raise not_found()
    try:
        return jobs.get_job(user.user_id, job_id)
    except JobNotFound:
        raise not_found() from None


def api_job(job_id: str, user: CurrentUser, jobs: Jobs) -> Job:
    return _owned(job_id, user, jobs)


def page_job(job_id: str, user: PageUser, jobs: Jobs) -> Job:
    return _owned(job_id, user, jobs)


UserJob = Annotated[Job, Depends(api_job)]
PageJob = Annotated[Job, Depends(page_job)]


def check_csrf_form(
    request: Request, csrf_token: Annotated[str | None, Form(alias=CSRF_FORM_FIELD)] = None
) -> None:
    if not csrf_ok(request, csrf_token):
        raise Problem(403, "This form has expired or did not come from GAS. Reload the page and "
                           "try again.", title="Form expired")


CsrfChecked = Annotated[None, Depends(check_csrf_form)]
