"""The OpenAPI document, made to tell the truth about what the API sends.

FastAPI's defaults describe errors as `application/json` `HTTPValidationError` bodies; the API
actually answers every error with an RFC 9457 `application/problem+json` body
(gas_web.app.core.errors). Here every error response of every operation is declared with that
media type and the `Problem` schema, and the statuses the shared dependencies raise are added
(401/403 from the caller check, 404 from the job lookup, 500 from the catch-all handler).
Operation ids are the route functions' names (`list_jobs`), not FastAPI's path-derived ids.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict

from gas_web.app.core.errors import PROBLEM_JSON

if TYPE_CHECKING:
    from fastapi import FastAPI
    from fastapi.routing import APIRoute

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
_SAFE_METHODS = frozenset({"get", "head", "options"})
# FastAPI's own validation-error schemas, unused once 422 is described as a Problem.
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """An error (RFC 9457). Some errors add members, e.g. `errors` for invalid requests."""

    model_config = ConfigDict(extra="allow", title="Problem")

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str
    errors: list[FieldError] | None = None


def operation_id(route: APIRoute) -> str:
    """Readable, stable operation ids: the route function's name (unique in this app)."""
    return route.name


def problem_response(description: str) -> dict[str, Any]:
    return {"description": description, "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def _describe_errors(path: str, method: str, operation: dict[str, Any]) -> None:
    responses: dict[str, Any] = operation.setdefault("responses", {})
    if operation.get("security"):
        responses.setdefault("401", {"description": "Not signed in, or the token is not valid"})
        if method not in _SAFE_METHODS:
            responses.setdefault("403", {"description": "A cookie-authenticated write without "
                                                        "the session's X-CSRF-Token"})
    if "{job_id}" in path:
        responses.setdefault("404", {"description": "No such job (or another user's)"})
    responses.setdefault("500", {"description": "Unexpected error (logged)"})
    for status, response in responses.items():
        if status.isdigit() and int(status) >= 400:
            description = response.get("description") or HTTPStatus(int(status)).phrase
            if description == "Validation Error":
                description = "The request is not valid (each field's error in `errors`)"
            responses[status] = problem_response(description)


def build_openapi(app: FastAPI) -> dict[str, Any]:
    schema = get_openapi(title=app.title, version=app.version, description=app.description,
                         routes=app.routes)
    schemas: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
    problem = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    for name in _FASTAPI_ERROR_SCHEMAS:
        schemas.pop(name, None)
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            _describe_errors(path, method, operation)
    return schema


def install_openapi(app: FastAPI) -> None:
    """Serve the corrected document at the app's openapi_url (built once, on first request)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = build_openapi(app)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
