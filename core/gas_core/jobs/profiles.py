"""User profiles: one item per user (`PROFILE` under the user's partition)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gas_core.jobs.codec import is_conditional_failure, profile_from_item, serialize_attributes
from gas_core.jobs.keys import PROFILE_SK, user_pk
from gas_core.jobs.models import UserProfile
from gas_core.jobs.store import TableStore

if TYPE_CHECKING:
    from gas_core.events import Event


class ProfileStore(TableStore):
    def get_profile(self, user_id: str) -> UserProfile | None:
        response = self._db.get_item(
            TableName=self._table, Key=self._profile_key(user_id), ConsistentRead=True
        )
        return profile_from_item(response["Item"]) if "Item" in response else None

    def ensure_profile(self, user_id: str, *, name: str = "", email: str = "") -> UserProfile:
        """The user's profile, created (free tier) on first use."""
        existing = self.get_profile(user_id)
        if existing is not None:
            return existing
        profile = UserProfile(user_id=user_id, name=name, email=email, version=1)
        item = serialize_attributes(
            {**profile.model_dump(exclude_none=True), "pk": user_pk(user_id), "sk": PROFILE_SK,
             "entity": "profile"}
        )
        try:
            self._db.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            # Created concurrently (two first requests at once): use the winner's.
            winner = self.get_profile(user_id)
            assert winner is not None
            return winner
        return profile

    def update_profile(
        self, profile: UserProfile, *, events: Sequence[Event] = (), **fields: Any
    ) -> UserProfile:
        """Change profile fields (name, email, notify_email, tier...), conditional on version;
        `events` (user.tier_changed) are recorded in the same write."""
        if "tier" in fields and fields["tier"] != profile.tier:
            fields.setdefault("tier_changed_at", datetime.fromtimestamp(self._clock(), UTC))
        attributes = self._update(
            self._profile_key(profile.user_id),
            fields,
            condition="version = :expected_version",
            values={":expected_version": profile.version},
            events=events,
        )
        return profile_from_item(attributes)
