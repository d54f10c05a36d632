"""/api/docs: Swagger UI 5 (renders OpenAPI 3.1), served offline from the fastapi-offline package
by /static/swagger/, with no inline script (the CSP forbids it)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)


@router.get("/api/docs")
def api_docs(request: Request) -> Response:
    response: Response = request.app.state.templates.TemplateResponse(
        request, "api_docs.html", {"user": None})
    return response
