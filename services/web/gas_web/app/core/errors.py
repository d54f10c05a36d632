"""Errors: `application/problem+json` (RFC 9457) for the API, friendly HTML pages for people.

Routes raise `Problem` (or FastAPI's HTTPException); the handlers here decide the format from
the path (`/api/...` always gets JSON) and the Accept header. Messages are written for users:
they never include stack traces, keys, or another user's data.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from gas_core.logging import get_logger

if TYPE_CHECKING:
    from fastapi.templating import Jinja2Templates

PROBLEM_JSON = "application/problem+json"
log = get_logger(__name__)


class Problem(Exception):
    """An error with a status, a short title and a user-readable detail."""

    def __init__(
        self,
        status: int,
        detail: str,
        *,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title or HTTPStatus(status).phrase
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


class LoginRequired(Exception):
    """A page needs a signed-in user: send the browser to /login and back afterwards."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def not_found(what: str = "job") -> Problem:
    # One message for "does not exist" and "is someone else's": existence is not disclosed.
    return Problem(404, f"No such {what}.")


def wants_json(request: Request) -> bool:
    if request.url.path.startswith("/api/"):
        return True
    accept = request.headers.get("accept", "")
    return "text/html" not in accept and ("json" in accept or not accept)


def problem_response(request: Request, problem: Problem) -> Response:
    body = {
        "type": "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": request.url.path,
        **problem.extra,
    }
    return JSONResponse(body, status_code=problem.status, media_type=PROBLEM_JSON,
                        headers=problem.headers)


def _signed_in_user(request: Request) -> Any:
    """The page's signed-in user for the error page's navigation, if there is one.

    A page route records its user on `request.state.page_user`; errors raised before the route
    ran (an unknown job, an unknown address) look the session up. Never an error of its own:
    the page being rendered may be about the very failure the lookup would hit.
    """
    user = getattr(request.state, "page_user", None)
    if user is not None or "session" not in request.scope:
        return user
    from gas_web.app.deps import maybe_page_user  # deps imports this module

    try:
        return maybe_page_user(request, request.app.state.jobs)
    except Exception:  # the error page is shown without a user instead
        return None


def install_error_handlers(app: FastAPI, templates: Jinja2Templates) -> None:
    def render(request: Request, problem: Problem) -> Response:
        if wants_json(request):
            return problem_response(request, problem)
        # `request.state.back_links`: where a page route sends people back to, such as the
        # results browser with the same filters, so an error never loses them.
        return templates.TemplateResponse(
            request,
            "error.html",
            {"status": problem.status, "title": problem.title, "detail": problem.detail,
             "user": _signed_in_user(request),
             "back_links": getattr(request.state, "back_links", [])},
            status_code=problem.status,
            headers=problem.headers,
        )

    @app.exception_handler(Problem)
    async def on_problem(request: Request, exc: Problem) -> Response:
        return render(request, exc)

    @app.exception_handler(LoginRequired)
    async def on_login_required(request: Request, exc: LoginRequired) -> Response:
        return RedirectResponse(f"/login?next={quote(exc.next_path, safe='/')}", status_code=303)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_exception(request: Request, exc: StarletteHTTPException) -> Response:
        detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
        if exc.status_code == 404 and detail == "Not Found":
            detail = "There is nothing at this address."
        elif exc.status_code == 405:
            detail = f"{request.method} is not allowed here."
        return render(request, Problem(exc.status_code, detail, headers=dict(exc.headers or {})))

    @app.exception_handler(RequestValidationError)
    async def on_validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = [
            {"field": ".".join(str(p) for p in error.get("loc", ()) if p != "body"),
             "message": error.get("msg", "invalid")}
            for error in exc.errors()
        ]
        summary = "; ".join(
            f"{e['field']}: {e['message']}" if e["field"] else e["message"] for e in errors
        )
        return render(request, Problem(422, summary or "The request is not valid.",
                                       title="Invalid request", errors=errors))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", path=request.url.path)
        return render(request, Problem(
            500, "Something went wrong on our side. It has been logged; please try again."))
