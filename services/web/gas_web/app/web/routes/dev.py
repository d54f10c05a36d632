"""Development-only pages: the emulator's outbox (mail the notifier sent through SES)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response

from gas_web.app.core.errors import Problem
from gas_web.app.deps import Jobs, PageUser, Settings
from gas_web.app.outbox import OutboxUnavailable, read_outbox

router = APIRouter(include_in_schema=False)


@router.get("/dev/outbox")
def outbox(request: Request, user: PageUser, settings: Settings, jobs: Jobs) -> Response:
    if not settings.dev_tools_enabled or settings.aws_endpoint_url is None:
        raise Problem(404, "There is nothing at this address.")
    # Mail about the user's own jobs only (never by address: a profile's email is user-set).
    job_ids = {job.job_id for job in jobs.iter_jobs(user.user_id)}
    try:
        mails = read_outbox(endpoint=settings.aws_endpoint_url, job_ids=job_ids)
    except OutboxUnavailable:
        raise Problem(503, "The outbox needs the GAS emulator (`gas dev`), which serves sent "
                           "mail on its own.") from None
    except httpx.HTTPError:
        raise Problem(503, "The local AWS emulator did not answer.") from None
    response: Response = request.app.state.templates.TemplateResponse(
        request, "outbox.html", {"user": user, "mails": mails})
    return response
