"""Development-only pages: the emulator's outbox (mail the notifier sent through SES)."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from gas_core.jobs import JobRepository, UserProfile
from gas_web.app.core.errors import Problem
from gas_web.app.deps import Jobs, PageUser, Settings
from gas_web.app.outbox import (
    MAIL_PAGE_CSP,
    OutboxMail,
    OutboxUnavailable,
    mail_page,
    read_outbox,
)
from gas_web.settings import WebSettings

router = APIRouter(include_in_schema=False)


def _my_mail(user: UserProfile, settings: WebSettings, jobs: JobRepository) -> list[OutboxMail]:
    if not settings.dev_tools_enabled or settings.aws_endpoint_url is None:
        raise Problem(404, "There is nothing at this address.")
    # Mail about the user's own jobs only (never by address: a profile's email is user-set).
    job_ids = {job.job_id for job in jobs.iter_jobs(user.user_id)}
    try:
        return read_outbox(endpoint=settings.aws_endpoint_url, job_ids=job_ids)
    except OutboxUnavailable:
        raise Problem(503, "The outbox needs the GAS emulator (`gas dev`), which serves sent "
                           "mail on its own.") from None
    except httpx.HTTPError:
        raise Problem(503, "The local AWS emulator did not answer.") from None


@router.get("/dev/outbox")
def outbox(request: Request, user: PageUser, settings: Settings, jobs: Jobs) -> Response:
    mails = _my_mail(user, settings, jobs)
    response: Response = request.app.state.templates.TemplateResponse(
        request, "outbox.html", {"user": user, "mails": mails})
    return response


@router.get("/dev/outbox/{mail_id}/html")
def outbox_mail_html(mail_id: str, user: PageUser, settings: Settings, jobs: Jobs) -> Response:
    """One mail's HTML body, for the outbox's sandboxed frame (its own CSP: no script)."""
    found = next((m for m in _my_mail(user, settings, jobs)
                  if m.id == mail_id and m.html is not None), None)
    if found is None or found.html is None:
        raise Problem(404, "There is nothing at this address.")
    return HTMLResponse(mail_page(found.html), headers={
        "Content-Security-Policy": MAIL_PAGE_CSP,
        "X-Frame-Options": "SAMEORIGIN",
    })
