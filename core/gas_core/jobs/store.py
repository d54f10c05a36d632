"""The table client every part of the repository shares: keys and conditional updates."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gas_core.jobs.codec import (
    SERIALIZER,
    attribute_value,
    is_conditional_failure,
    job_from_item,
    to_dynamo,
)
from gas_core.jobs.keys import JOB_PREFIX, PROFILE_SK, job_sk, user_pk
from gas_core.jobs.models import ConflictError, Job, JobNotFound, JobStatus
from gas_core.resources import OUTBOX_INDEX, OUTBOX_PENDING, QUEUE_INDEX

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

    from gas_core.events import Event

# The item attribute holding pending events (their JSON bodies, oldest first).
OUTBOX_ATTRIBUTE = "outbox"
# An event still pending this long after its write is published by the reconciler: the
# writer normally publishes it within moments, so only a writer that died leaves it due.
OUTBOX_GRACE_SECONDS = 60.0


class TableStore:
    """One DynamoDB table: the conditional-update machinery the job, profile and
    notification operations are built on. Thread-safe (boto3 clients are).

    Any state write may carry events (`events=`): they are recorded as pending in the item's
    outbox by that same conditional write, so an event exists exactly when its state change
    does (gas_core.outbox publishes them and marks them sent).
    """

    def __init__(
        self,
        dynamodb: DynamoDBClient,
        table_name: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._db = dynamodb
        self._table = table_name
        self._clock = clock

    # -- internals -----------------------------------------------------------------------------

    def _job_key(self, user_id: str, job_id: str) -> dict[str, Any]:
        return {"pk": {"S": user_pk(user_id)}, "sk": {"S": job_sk(job_id)}}

    def _profile_key(self, user_id: str) -> dict[str, Any]:
        return {"pk": {"S": user_pk(user_id)}, "sk": {"S": PROFILE_SK}}

    def _versioned_update(
        self,
        job: Job,
        fields: dict[str, Any],
        guard: str | None,
        *,
        events: Sequence[Event] = (),
    ) -> Job:
        condition = "version = :expected_version"
        values: dict[str, Any] = {":expected_version": job.version}
        if guard:
            condition += f" AND #{guard} = :expected_{guard}"
            values[f":expected_{guard}"] = getattr(job, guard)
        try:
            attributes = self._update(
                self._job_key(job.user_id, job.job_id), fields, condition=condition, values=values,
                events=events,
            )
        except ConflictError as conflict:
            raise ConflictError(
                f"job {job.job_id} changed since it was read (version {job.version})",
                conflict.current,
            ) from None
        return job_from_item(attributes)

    def _leased_update(
        self,
        user_id: str,
        job_id: str,
        owner: str,
        fields: dict[str, Any],
        *,
        release: bool = False,
        events: Sequence[Event] = (),
    ) -> Job:
        if release:
            fields = {**fields, "lease_owner": None, "lease_expires_at": None}
        try:
            attributes = self._update(
                self._job_key(user_id, job_id),
                fields,
                condition="#status = :running AND lease_owner = :owner",
                values={":running": JobStatus.RUNNING, ":owner": owner},
                events=events,
            )
        except ConflictError as conflict:
            raise ConflictError(
                f"job {job_id}: lease is no longer held by {owner}", conflict.current
            ) from None
        return job_from_item(attributes)

    def _update(
        self,
        key: dict[str, Any],
        fields: dict[str, Any],
        *,
        condition: str,
        values: dict[str, Any],
        events: Sequence[Event] = (),
    ) -> dict[str, Any]:
        """One conditional UpdateItem: SET non-None fields, REMOVE None ones, bump version,
        append `events` to the outbox."""
        try:
            response = self._db.update_item(
                TableName=self._table,
                **self._update_arguments(
                    key, fields, condition=condition, values=values, events=events
                ),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
            old: dict[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
            if old is None:
                raise JobNotFound(key["sk"]["S"].removeprefix(JOB_PREFIX)) from None
            is_job = old.get("sk", {}).get("S", "").startswith(JOB_PREFIX)
            raise ConflictError(
                "conditional write refused", job_from_item(old) if is_job else None
            ) from None
        return response["Attributes"]

    def _update_arguments(
        self,
        key: dict[str, Any],
        fields: dict[str, Any],
        *,
        condition: str,
        values: dict[str, Any],
        events: Sequence[Event] = (),
    ) -> dict[str, Any]:
        """Key and expressions of a conditional update (for UpdateItem or a transaction)."""
        names = {"#version": "version", "#updated_at": "updated_at"}
        placeholders: dict[str, Any] = {
            **values,
            ":one": 1,
            ":updated_at": datetime.fromtimestamp(self._clock(), UTC),
        }
        sets = ["#version = #version + :one", "#updated_at = :updated_at"]
        removes: list[str] = []
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            if value is None:
                removes.append(f"#f{index}")
            else:
                sets.append(f"#f{index} = :f{index}")
                placeholders[f":f{index}"] = attribute_value(name, value)
        if fields.get("status") not in (None, JobStatus.PENDING):
            # Leaving PENDING leaves the queue index in the same write (gas_core.jobs.queue).
            names.update({"#q_pending": QUEUE_INDEX.hash_key, "#q_at": QUEUE_INDEX.range_key})
            removes += ["#q_pending", "#q_at"]
        if events:
            # Appended (never overwritten: earlier events may still be pending); the index
            # attributes make the item visible to the reconciler until the outbox is empty.
            names.update({"#outbox": OUTBOX_ATTRIBUTE, "#ob_pending": OUTBOX_INDEX.hash_key,
                          "#ob_due": OUTBOX_INDEX.range_key})
            placeholders.update({
                ":ob_empty": [],
                ":ob_new": [event.model_dump_json() for event in events],
                ":ob_pending": OUTBOX_PENDING,
                ":ob_due": int(self._clock() + OUTBOX_GRACE_SECONDS),
            })
            sets += ["#outbox = list_append(if_not_exists(#outbox, :ob_empty), :ob_new)",
                     "#ob_pending = :ob_pending", "#ob_due = if_not_exists(#ob_due, :ob_due)"]
        # Conditions refer to states as `#status` / `#storage` (reserved words in DynamoDB).
        for word in ("status", "storage"):
            if f"#{word}" in condition:
                names[f"#{word}"] = word
        expression = "SET " + ", ".join(sets)
        if removes:
            expression += " REMOVE " + ", ".join(removes)
        return {
            "Key": key,
            "UpdateExpression": expression,
            "ConditionExpression": f"attribute_exists(pk) AND {condition}",
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": {
                name: SERIALIZER.serialize(to_dynamo(value))
                for name, value in placeholders.items()
            },
        }
