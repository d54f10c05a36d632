"""Tier changes: the one function the web (and billing, later) calls to upgrade or downgrade.

The profile write is conditional (version-guarded), and the event is published only after it
succeeds; the restorer reacts to the event (restore archived results on upgrade; start the
retention window of hot results on downgrade), always re-reading the tier it acts on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gas_core.events import UserTierChanged, publish
from gas_core.jobs import JobRepository, UserProfile
from gas_core.settings import Tier

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


def change_tier(
    *,
    repository: JobRepository,
    sns: SNSClient,
    user_events_topic_arn: str,
    profile: UserProfile,
    new_tier: Tier,
) -> UserProfile:
    """Set the user's tier; publishes `user.tier_changed` when it actually changed.

    Raises ConflictError if the profile changed since it was read (the caller re-reads and
    retries or reports the conflict). Setting the current tier again is a no-op.
    """
    if profile.tier == new_tier:
        return profile
    updated = repository.update_profile(profile, tier=new_tier)
    publish(
        sns,
        user_events_topic_arn,
        UserTierChanged(
            user_id=profile.user_id, old_tier=profile.tier, new_tier=new_tier, user_tier=new_tier
        ),
    )
    return updated
