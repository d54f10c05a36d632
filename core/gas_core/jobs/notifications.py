"""Idempotency markers of sent emails (one item per email, under the user's partition)."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from gas_core.jobs.codec import SERIALIZER, is_conditional_failure, to_dynamo
from gas_core.jobs.keys import user_pk
from gas_core.jobs.models import NotificationClaim
from gas_core.jobs.store import TableStore


class NotificationStore(TableStore):
    def claim_notification(
        self, user_id: str, marker: str, *, owner: str, ttl_seconds: float
    ) -> NotificationClaim:
        """Claim the right to send one email (`marker` from `notified_sk`).

        A conditional write: it succeeds when no marker exists, or when a previous claim was
        never finished and has expired (its sender died mid-way: TAKEN_OVER). The caller then
        sends and calls `finish_notification`. The marker counts its claims (`claims`): an
        email is sent at most once per claim, so that bounds the copies a user can have got.
        """
        now = self._clock()
        try:
            response = self._db.update_item(
                TableName=self._table,
                Key={"pk": {"S": user_pk(user_id)}, "sk": {"S": marker}},
                UpdateExpression=(
                    "SET entity = :entity, #state = :sending, #owner = :owner, "
                    "claim_expires_at = :expires, claims = if_not_exists(claims, :zero) + :one"
                ),
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (#state = :sending AND claim_expires_at < :now)"
                ),
                ExpressionAttributeNames={"#state": "state", "#owner": "owner"},
                ExpressionAttributeValues={
                    ":entity": {"S": "notification"},
                    ":sending": {"S": "sending"},
                    ":owner": {"S": owner},
                    ":expires": SERIALIZER.serialize(to_dynamo(float(now + ttl_seconds))),
                    ":now": SERIALIZER.serialize(to_dynamo(float(now))),
                    ":zero": {"N": "0"},
                    ":one": {"N": "1"},
                },
                ReturnValues="UPDATED_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            old: dict[str, Any] = error.response.get("Item") or {}  # type: ignore[assignment]
            state = old.get("state", {}).get("S")
            return (NotificationClaim.ALREADY_SENT if state == "sent"
                    else NotificationClaim.IN_PROGRESS)
        claims = int(response.get("Attributes", {}).get("claims", {}).get("N", "1"))
        return NotificationClaim.CLAIMED if claims == 1 else NotificationClaim.TAKEN_OVER

    def finish_notification(
        self, user_id: str, marker: str, *, owner: str, sent: bool, keep_seconds: float
    ) -> None:
        """Record the email as sent (kept `keep_seconds`, longer than any redelivery), or,
        when sending failed, drop the claim so a retry may send it."""
        key = {"pk": {"S": user_pk(user_id)}, "sk": {"S": marker}}
        try:
            if sent:
                self._db.update_item(
                    TableName=self._table,
                    Key=key,
                    UpdateExpression="SET #state = :sent, expires_at = :expires REMOVE "
                                     "claim_expires_at",
                    ConditionExpression="#owner = :owner",
                    ExpressionAttributeNames={"#state": "state", "#owner": "owner"},
                    ExpressionAttributeValues={
                        ":sent": {"S": "sent"},
                        ":owner": {"S": owner},
                        ":expires": {"N": str(int(self._clock() + keep_seconds))},
                    },
                )
            else:
                self._db.delete_item(
                    TableName=self._table,
                    Key=key,
                    ConditionExpression="#owner = :owner AND #state = :sending",
                    ExpressionAttributeNames={"#state": "state", "#owner": "owner"},
                    ExpressionAttributeValues={
                        ":owner": {"S": owner}, ":sending": {"S": "sending"},
                    },
                )
        except ClientError as error:
            # Our claim expired and someone else took it over: theirs decides.
            if not is_conditional_failure(error):
                raise
