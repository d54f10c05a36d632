"""/api/docs: Swagger UI served from the swagger-ui-bundle package (offline, no inline script)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

router = APIRouter(include_in_schema=False)


@router.get("/api/docs")
def api_docs(request: Request) -> Response:
    response: Response = request.app.state.templates.TemplateResponse(
        request, "api_docs.html", {"user": None})
    return response
