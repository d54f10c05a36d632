"""Development-only pages: the emulator's outbox (mail the notifier sent through SES)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gas_web.app.core.errors import Problem
from gas_web.app.deps import PageUser, Settings
from gas_web.app.outbox import read_outbox

router = APIRouter(include_in_schema=False)


@router.get("/dev/outbox")
def outbox(request: Request, user: PageUser, settings: Settings) -> Response:
    if not settings.dev_tools_enabled or settings.aws_endpoint_url is None:
        raise Problem(404, "There is nothing at this address.")
    try:
        mails = read_outbox(endpoint=settings.aws_endpoint_url, recipient=user.email)
    except httpx.HTTPError:
        raise Problem(503, "The local AWS emulator did not answer.") from None
    response: Response = request.app.state.templates.TemplateResponse(
        request, "outbox.html", {"user": user, "mails": mails})
    return response
