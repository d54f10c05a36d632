"""/api/v1/me: the caller's profile and tier."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from gas_core.jobs import ConflictError
from gas_core.resources import Topic
from gas_core.tiers import change_tier
from gas_web.app.api.schemas import Profile, TierChange
from gas_web.app.core.errors import Problem
from gas_web.app.deps import Aws, CurrentUser, Jobs

router = APIRouter(prefix="/api/v1/me", tags=["me"])


@router.get("", response_model=Profile)
def read_me(user: CurrentUser) -> dict[str, Any]:
    return user.to_api()


@router.post("/tier", response_model=Profile,
             responses={409: {"description": "The profile changed at the same time"}})
def set_tier(body: TierChange, user: CurrentUser, jobs: Jobs, aws: Aws) -> dict[str, Any]:
    """Upgrade or downgrade (billing provider `none`: immediate). An upgrade restores archived
    results; a downgrade starts the retention window of hot ones."""
    try:
        updated = change_tier(
            repository=jobs, sns=aws.sns, user_events_topic_arn=aws.topic_arn(Topic.USER_EVENTS),
            profile=user, new_tier=body.tier,
        )
    except ConflictError:
        raise Problem(409, "Your profile changed at the same time; try again.") from None
    return updated.to_api()
