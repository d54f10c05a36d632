"""The profile page: name, email, notifications, and tier changes (billing provider `none`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from gas_core.jobs import ConflictError
from gas_core.resources import Topic
from gas_core.settings import Tier
from gas_core.tiers import change_tier
from gas_web.app.core.errors import Problem
from gas_web.app.deps import SESSION_EMAIL, SESSION_NAME, Aws, CsrfChecked, Jobs, PageUser, Settings

router = APIRouter(include_in_schema=False)
FLASH = "flash"
_EMAIL = r"^[^@\s]{1,64}@[^@\s]{1,255}$"


@router.get("/profile")
def profile_page(request: Request, user: PageUser, settings: Settings) -> Response:
    flash = request.session.pop(FLASH, None)
    response: Response = request.app.state.templates.TemplateResponse(
        request, "profile.html",
        {"user": user, "flash": flash, "free_max": settings.max_upload_bytes(Tier.FREE),
         "premium_max": settings.max_upload_bytes(Tier.PREMIUM),
         "retention_seconds": settings.free_retention_seconds},
    )
    return response


@router.post("/profile")
def update_profile(
    *,
    request: Request,
    user: PageUser,
    jobs: Jobs,
    _csrf: CsrfChecked,
    name: Annotated[str, Form(max_length=100)] = "",
    email: Annotated[str, Form(max_length=320, pattern=_EMAIL)] = "",
    notify_email: Annotated[bool, Form()] = False,
) -> Response:
    try:
        updated = jobs.update_profile(user, name=name.strip(), email=email.strip(),
                                      notify_email=notify_email)
    except ConflictError:
        raise Problem(409, "Your profile changed at the same time; reload and try again.") from None
    request.session[SESSION_NAME] = updated.name
    request.session[SESSION_EMAIL] = updated.email
    request.session[FLASH] = "Profile saved."
    return RedirectResponse("/profile", status_code=303)


@router.post("/profile/tier")
def set_tier(
    request: Request,
    user: PageUser,
    jobs: Jobs,
    aws: Aws,
    _csrf: CsrfChecked,
    tier: Annotated[Tier, Form()],
) -> Response:
    try:
        updated = change_tier(repository=jobs, sns=aws.sns,
                              user_events_topic_arn=aws.topic_arn(Topic.USER_EVENTS),
                              profile=user, new_tier=tier)
    except ConflictError:
        raise Problem(409, "Your profile changed at the same time; reload and try again.") from None
    if updated.tier is Tier.PREMIUM and user.tier is not Tier.PREMIUM:
        message = "Welcome to premium. Archived results are being restored."
    elif updated.tier is Tier.FREE and user.tier is not Tier.FREE:
        message = ("You are on the free tier now; results will be archived after the "
                   "retention window.")
    else:
        message = f"You are already on the {updated.tier.value} tier."
    request.session[FLASH] = message
    return RedirectResponse("/profile", status_code=303)
