"""Tier changes: the one function the web (and billing, later) calls to upgrade or downgrade.

The profile write is conditional (version-guarded) and records `user.tier_changed` in the
profile's outbox in that same write (gas_core.outbox), so the event exists exactly when the
change does; it is then published. The restorer reacts to the event (restore archived results
on upgrade; start the retention window of hot results on downgrade), always re-reading the
tier it acts on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gas_core.events import UserTierChanged
from gas_core.jobs import ItemKey, JobRepository, UserProfile
from gas_core.outbox import Outbox
from gas_core.resources import Topic
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
    """Set the user's tier; `user.tier_changed` is published when it actually changed.

    Raises ConflictError if the profile changed since it was read (the caller re-reads and
    retries or reports the conflict). Setting the current tier again changes nothing, but
    publishes any event an earlier call recorded and did not get out (it crashed between the
    write and the publish; the client's retry lands here).
    """
    outbox = Outbox(repository, sns, lambda topic: _only_user_events(topic, user_events_topic_arn))
    key = ItemKey.of_profile(profile.user_id)
    if profile.tier == new_tier:
        outbox.flush(key)
        return profile
    event = UserTierChanged(
        user_id=profile.user_id, old_tier=profile.tier, new_tier=new_tier, user_tier=new_tier
    )
    updated = repository.update_profile(profile, tier=new_tier, events=[event])
    outbox.deliver(key, [event])
    return updated


def _only_user_events(topic: Topic, arn: str) -> str:
    # A profile only ever carries user events; anything else is left to the reconciler.
    if topic is not Topic.USER_EVENTS:
        raise LookupError(f"no topic ARN for {topic} here")
    return arn
