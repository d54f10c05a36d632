"""Jobs: creation, reads, version-guarded transitions and the worker lease."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gas_core.jobs.codec import (
    decode_cursor,
    encode_cursor,
    is_conditional_failure,
    job_from_item,
    serialize_attributes,
)
from gas_core.jobs.keys import JOB_PREFIX, job_sk, user_pk
from gas_core.jobs.models import (
    STATUS_TRANSITIONS,
    STORAGE_TRANSITIONS,
    ConflictError,
    IllegalTransition,
    Job,
    JobNotFound,
    JobStatus,
    Page,
    ProfileChanged,
    StorageState,
    UserProfile,
)
from gas_core.jobs.notifications import NotificationStore
from gas_core.jobs.outbox import OutboxStore, outbox_item_attributes
from gas_core.jobs.profiles import ProfileStore
from gas_core.jobs.queue import QueueStore, queue_item_attributes

if TYPE_CHECKING:
    from gas_core.events import Event


class JobRepository(ProfileStore, NotificationStore, OutboxStore, QueueStore):
    """All reads and writes of jobs, profiles, email markers, outboxes and the queue's
    statistics. Thread-safe."""

    # -- jobs: create and read ----------------------------------------------------------------

    def create_job(self, job: Job, *, events: Sequence[Event] = ()) -> Job:
        """Insert a new job (with `events` pending in its outbox); a job with the same id (a
        retried submit) is returned unchanged."""
        item = serialize_attributes(
            {**job.model_dump(exclude_none=True), "pk": user_pk(job.user_id),
             "sk": job_sk(job.job_id), "entity": "job", "version": 1,
             **outbox_item_attributes(events, self._clock()), **queue_item_attributes(job)}
        )
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if is_conditional_failure(error):
                return self.get_job(job.user_id, job.job_id)
            raise
        return job.model_copy(update={"version": 1})

    def get_job(self, user_id: str, job_id: str) -> Job:
        """The job, read under its owner's partition; JobNotFound for anyone else's id."""
        response = self._db.get_item(
            TableName=self._table,
            Key=self._job_key(user_id, job_id),
            ConsistentRead=True,
        )
        if "Item" not in response:
            raise JobNotFound(job_id)
        return job_from_item(response["Item"])

    def list_jobs(self, user_id: str, *, limit: int = 20, cursor: str | None = None) -> Page:
        """A page of the user's jobs, newest first. The cursor is opaque and owner-bound."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": user_pk(user_id)},
                ":prefix": {"S": JOB_PREFIX},
            },
            "ScanIndexForward": False,
            "Limit": max(1, min(limit, 100)),
        }
        if cursor:
            request["ExclusiveStartKey"] = {
                "pk": {"S": user_pk(user_id)},
                "sk": {"S": job_sk(decode_cursor(cursor))},
            }
        response = self._db.query(**request)
        items = [job_from_item(item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        next_cursor = encode_cursor(last["sk"]["S"].removeprefix(JOB_PREFIX)) if last else None
        return Page(items=items, next_cursor=next_cursor)

    def iter_jobs(
        self, user_id: str, *, storage: Iterable[StorageState] | None = None
    ) -> Iterator[Job]:
        """Every job of one user (a Query, never a Scan), optionally only in some storage states."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :prefix)",
            "ExpressionAttributeValues": {
                ":pk": {"S": user_pk(user_id)},
                ":prefix": {"S": JOB_PREFIX},
            },
            "ConsistentRead": True,
        }
        if storage is not None:
            states = sorted(s.value for s in storage)
            names = [f":s{i}" for i in range(len(states))]
            request["FilterExpression"] = f"#storage IN ({', '.join(names)})"
            request["ExpressionAttributeNames"] = {"#storage": "storage"}
            for name, state in zip(names, states, strict=True):
                request["ExpressionAttributeValues"][name] = {"S": state}
        while True:
            response = self._db.query(**request)
            for item in response.get("Items", []):
                yield job_from_item(item)
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- jobs: version-guarded transitions ----------------------------------------------------

    def transition_status(
        self, job: Job, to: JobStatus, *, events: Sequence[Event] = (), **fields: Any
    ) -> Job:
        """Move `job` (as read) to status `to`, setting `fields`; conditional on status+version."""
        if to not in STATUS_TRANSITIONS[job.status]:
            raise IllegalTransition(f"job {job.job_id}: status {job.status} → {to} is not allowed")
        return self._versioned_update(
            job, {"status": to, **fields}, guard="status", events=events
        )

    def transition_storage(
        self, job: Job, to: StorageState, *, events: Sequence[Event] = (), **fields: Any
    ) -> Job:
        """Move `job` (as read) to storage `to`; conditional on storage+version."""
        if to not in STORAGE_TRANSITIONS[job.storage]:
            raise IllegalTransition(
                f"job {job.job_id}: storage {job.storage} → {to} is not allowed"
            )
        return self._versioned_update(
            job, {"storage": to, **fields}, guard="storage", events=events
        )

    def transition_storage_if_profile_unchanged(
        self, job: Job, to: StorageState, *, profile: UserProfile, **fields: Any
    ) -> Job:
        """Like `transition_storage`, in one transaction with the condition that the owner's
        profile is still at the version read (`profile`).

        The archiver records `archived` this way: a tier change that lands after it read the
        profile as free cancels the write (ProfileChanged), so an upgrade can never leave a
        result archived behind the restorer's back. Raises ProfileChanged (with the current
        profile) or ConflictError (with the current job).
        """
        if to not in STORAGE_TRANSITIONS[job.storage]:
            raise IllegalTransition(
                f"job {job.job_id}: storage {job.storage} → {to} is not allowed"
            )
        update = self._update_arguments(
            self._job_key(job.user_id, job.job_id),
            {"storage": to, **fields},
            condition="version = :expected_version AND #storage = :expected_storage",
            values={":expected_version": job.version, ":expected_storage": job.storage},
        )
        # A plain list: the stubs' TypedDicts cannot type the shared update arguments.
        items: Any = [
            {
                "ConditionCheck": {
                    "TableName": self._table,
                    "Key": self._profile_key(profile.user_id),
                    "ConditionExpression": "version = :expected_version",
                    "ExpressionAttributeValues": {
                        ":expected_version": {"N": str(profile.version)}
                    },
                }
            },
            {"Update": {"TableName": self._table, **update}},
        ]
        try:
            self._db.transact_write_items(TransactItems=items)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            reasons = [
                reason.get("Code")
                for reason in error.response.get("CancellationReasons", [])
            ]
            if reasons and reasons[0] == "ConditionalCheckFailed":
                raise ProfileChanged(
                    f"profile of {profile.user_id} changed since version {profile.version}",
                    self.get_profile(profile.user_id),
                ) from None
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                raise ConflictError(
                    f"job {job.job_id} changed since it was read (version {job.version})",
                    self.get_job(job.user_id, job.job_id),
                ) from None
            raise
        return self.get_job(job.user_id, job.job_id)

    def mark_hot_copies_deleted(self, job: Job) -> Job:
        """Record that the archiver is done with the hot copies (see Job.hot_copies_deleted).

        Conditional on the job still being archived or restoring, not on its version: the
        restorer may have moved it to restoring meanwhile, and the fact holds either way.
        """
        attributes = self._update(
            self._job_key(job.user_id, job.job_id),
            {"hot_copies_deleted": True},
            condition="#storage IN (:archived, :restoring)",
            values={":archived": StorageState.ARCHIVED, ":restoring": StorageState.RESTORING},
        )
        return job_from_item(attributes)

    def update_job(self, job: Job, **fields: Any) -> Job:
        """Change fields that are not states (e.g. user_tier), conditional on version."""
        if "status" in fields or "storage" in fields:
            raise IllegalTransition("use transition_status/transition_storage to change states")
        return self._versioned_update(job, fields, guard=None)

    # -- jobs: worker lease ---------------------------------------------------------------------

    def claim_lease(self, job: Job, *, owner: str, ttl_seconds: float) -> Job:
        """Take the job's lease: PENDING → RUNNING, or take over a RUNNING job whose lease expired.

        Raises ConflictError when the job is finished, someone else holds a live lease, or the
        job changed since it was read.
        """
        now = self._clock()
        if job.is_finished:
            raise ConflictError(f"job {job.job_id} is already {job.status}", job)
        if job.status is JobStatus.RUNNING and job.lease_is_live(now) and job.lease_owner != owner:
            raise ConflictError(f"job {job.job_id} is held by a live lease", job)
        fields: dict[str, Any] = {
            "status": JobStatus.RUNNING,
            "lease_owner": owner,
            "lease_expires_at": now + ttl_seconds,
            "attempts": job.attempts + 1,
            "started_at": job.started_at or datetime.fromtimestamp(now, UTC),
        }
        return self._versioned_update(job, fields, guard="status")

    def renew_lease(self, user_id: str, job_id: str, *, owner: str, ttl_seconds: float) -> Job:
        return self._leased_update(
            user_id, job_id, owner, {"lease_expires_at": self._clock() + ttl_seconds}
        )

    def update_progress(
        self, user_id: str, job_id: str, *, owner: str, progress: float, ttl_seconds: float
    ) -> Job:
        """Record progress (0..1) and renew the lease in the same write."""
        return self._leased_update(
            user_id,
            job_id,
            owner,
            {
                "progress": round(min(max(progress, 0.0), 1.0), 4),
                "lease_expires_at": self._clock() + ttl_seconds,
            },
        )

    def release_lease(self, user_id: str, job_id: str, *, owner: str) -> Job:
        """Give up a RUNNING job's lease (after a transient failure) so any worker can take
        it over at once, instead of waiting for the lease to expire."""
        return self._leased_update(user_id, job_id, owner, {"lease_expires_at": 0.0})

    def complete_job(
        self,
        user_id: str,
        job_id: str,
        *,
        owner: str,
        summary: dict[str, Any],
        result_keys: dict[str, str],
        completed_at: datetime | None = None,
        events: Sequence[Event] = (),
    ) -> Job:
        """COMPLETED by the lease holder, with `events` (job.completed) in the same write."""
        return self._leased_update(
            user_id,
            job_id,
            owner,
            {
                "status": JobStatus.COMPLETED,
                "progress": 1.0,
                "summary": summary,
                "result_keys": result_keys,
                "completed_at": completed_at or datetime.fromtimestamp(self._clock(), UTC),
            },
            release=True,
            events=events,
        )

    def fail_job(
        self,
        user_id: str,
        job_id: str,
        *,
        reason: str,
        owner: str | None = None,
        events: Sequence[Event] = (),
    ) -> Job:
        """FAILED with a user-readable reason: by the lease holder, or (owner=None) from PENDING;
        `events` (job.failed) are recorded in the same write."""
        fields = {"status": JobStatus.FAILED, "error": reason,
                  "completed_at": datetime.fromtimestamp(self._clock(), UTC)}
        if owner is not None:
            return self._leased_update(
                user_id, job_id, owner, fields, release=True, events=events
            )
        job = self.get_job(user_id, job_id)
        return self._versioned_update(job, fields, guard="status", events=events)
