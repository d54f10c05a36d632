"""Jobs and user profiles in the one shared DynamoDB table.

This module owns every key format, attribute name and state transition; nothing else builds a
key or writes the table. Two kinds of write keep concurrent services honest:

* version-guarded transitions: read the item, decide, then write with the condition
  "status/storage and version are still what I read" (`transition_status`, `transition_storage`,
  `claim_lease`, profile updates). The loser gets `ConflictError` with the current item.
* lease-guarded writes by the worker that holds a job's lease (`renew_lease`, `update_progress`,
  `complete_job`, `fail_job(owner=...)`): the condition is "RUNNING and the lease is still mine",
  so a worker whose lease was taken over can no longer change the job.

Every write bumps `version`. Items live under their owner's partition, so a job read under
another user's id simply does not exist.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID

from gas_core.settings import Tier

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

# --- keys ------------------------------------------------------------------------------------

USER_PREFIX = "USER#"
JOB_PREFIX = "JOB#"
PROFILE_SK = "PROFILE"
# Idempotency markers of sent emails live under the user's partition too (never listed as
# jobs: job queries select `JOB#` sort keys only).
NOTIFIED_PREFIX = "NOTIFIED#"
# Result objects, in the results bucket and (same key) in the archive bucket.
RESULTS_KEY_PREFIX = "results/"


def user_pk(user_id: str) -> str:
    return f"{USER_PREFIX}{user_id}"


def job_sk(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


def new_job_id() -> str:
    """Time-ordered (ULID), so a user's jobs sort newest-first by sort key alone."""
    return str(ULID())


def notified_sk(kind: str, job_id: str, occurrence: str | None = None) -> str:
    """Marker of one sent email: `NOTIFIED#{kind}#{job_id}` (+ `#{occurrence}` for events that
    can recur for the same job, e.g. a second restore after a second archive)."""
    return f"{NOTIFIED_PREFIX}{kind}#{job_id}" + (f"#{occurrence}" if occurrence else "")


def results_prefix(user_id: str, job_id: str) -> str:
    """Where a job's result objects live: `results/{user_id}/{job_id}/`."""
    return f"{RESULTS_KEY_PREFIX}{user_id}/{job_id}/"


def parse_results_key(key: str) -> tuple[str, str] | None:
    """(user_id, job_id) of a result object's key, or None for a key of any other shape."""
    parts = key.split("/")
    if len(parts) < 4 or f"{parts[0]}/" != RESULTS_KEY_PREFIX or not all(parts[1:4]):
        return None
    user_id, job_id = parts[1], parts[2]
    return (user_id, job_id) if is_job_id(job_id) else None


def is_job_id(value: str) -> bool:
    try:
        ULID.from_str(value)
    except ValueError:
        return False
    return True


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- states ----------------------------------------------------------------------------------


class JobStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class StorageState(StrEnum):
    HOT = "hot"
    ARCHIVING = "archiving"
    ARCHIVED = "archived"
    RESTORING = "restoring"


STATUS_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.PENDING: frozenset({JobStatus.RUNNING, JobStatus.FAILED}),
    JobStatus.RUNNING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
}

STORAGE_TRANSITIONS: dict[StorageState, frozenset[StorageState]] = {
    StorageState.HOT: frozenset({StorageState.ARCHIVING}),
    # ARCHIVING → HOT: the archive was abandoned (the user upgraded before it finished).
    StorageState.ARCHIVING: frozenset({StorageState.ARCHIVED, StorageState.HOT}),
    StorageState.ARCHIVED: frozenset({StorageState.RESTORING}),
    StorageState.RESTORING: frozenset({StorageState.HOT}),
}

# --- errors ----------------------------------------------------------------------------------


class JobNotFound(LookupError):
    pass


class IllegalTransition(ValueError):
    pass


class ConflictError(Exception):
    """The item changed since it was read (or the lease is not ours); `current` is its state now."""

    def __init__(self, message: str, current: Job | None = None) -> None:
        super().__init__(message)
        self.current = current


class InvalidCursor(ValueError):
    pass


class ProfileChanged(ConflictError):
    """A write conditional on the owner's profile found the profile changed (e.g. the tier)."""

    def __init__(self, message: str, profile: UserProfile | None = None) -> None:
        super().__init__(message)
        self.profile = profile


class NotificationClaim(StrEnum):
    CLAIMED = "claimed"  # this caller sends it, then calls finish_notification
    ALREADY_SENT = "already_sent"  # a duplicate event: nothing to do
    IN_PROGRESS = "in_progress"  # another consumer is sending it right now: retry later


# --- models ----------------------------------------------------------------------------------


class ArchivedObject(BaseModel):
    """One result object copied to the archive bucket, as verified when it was copied."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    key: str  # key in the archive bucket (the same as its key in the results bucket)
    size: int
    sha256: str  # base64 SHA-256 of the content, as S3 reports it (ChecksumSHA256)
    storage_class: str
    # Objects over 5 GiB are copied in parts: the composite SHA-256 every copy of them holds
    # (gas_core.objects).
    composite_sha256: str | None = None


class Job(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    user_id: str
    job_id: str
    status: JobStatus = JobStatus.PENDING
    storage: StorageState = StorageState.HOT
    input_file_name: str
    input_key: str
    input_bytes: int | None = None
    # The exact input object checked at submit (S3 ETag and, on a versioned bucket, VersionId):
    # the annotator downloads only that object, so a file re-uploaded to the same key after
    # the checks is never annotated.
    input_etag: str | None = None
    input_version_id: str | None = None
    assembly: str = "GRCh38"
    user_tier: Tier = Tier.FREE
    submitted_at: datetime = Field(default_factory=utc_now)
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime | None = None
    progress: float = 0.0
    error: str | None = None
    summary: dict[str, Any] | None = None
    # Result files by kind (vcf, tsv, summary, log, parquet...) → S3 key in the results bucket.
    result_keys: dict[str, str] = Field(default_factory=dict)
    # Where the archived copy lives while storage is archiving/archived/restoring (the job's
    # prefix in the archive bucket); `archived_objects` lists each archived object by kind.
    archive_key: str | None = None
    archived_objects: dict[str, ArchivedObject] = Field(default_factory=dict)
    # Set by the archiver once it is done with the hot copies of an archived job (deleted, or
    # kept because a restore had already begun). The thawer waits for it: otherwise a thaw
    # that finished between the archiver's last check and its delete would lose the copy.
    hot_copies_deleted: bool = False
    restore_tier: str | None = None
    restore_requested_at: datetime | None = None
    attempts: int = 0
    lease_owner: str | None = None
    lease_expires_at: float | None = None
    version: int = 0

    def lease_is_live(self, now: float) -> bool:
        return self.lease_owner is not None and (self.lease_expires_at or 0) > now

    @property
    def is_finished(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED)

    def to_api(self) -> dict[str, Any]:
        """The job as the REST API shows it: no keys, leases or internals."""
        return {
            "job_id": self.job_id,
            "status": self.status.value,
            "storage": self.storage.value,
            "input_file_name": self.input_file_name,
            "assembly": self.assembly,
            "submitted_at": _iso(self.submitted_at),
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
            "progress": self.progress,
            "error": self.error if self.status is JobStatus.FAILED else None,
            "summary": self.summary if self.status is JobStatus.COMPLETED else None,
            "restore_tier": self.restore_tier,
            "restore_requested_at": _iso(self.restore_requested_at),
        }


class UserProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    user_id: str
    name: str = ""
    email: str = ""
    tier: Tier = Tier.FREE
    tier_changed_at: datetime | None = None
    notify_email: bool = True
    created_at: datetime = Field(default_factory=utc_now)
    version: int = 0

    def to_api(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "name": self.name,
            "email": self.email,
            "tier": self.tier.value,
            "tier_changed_at": _iso(self.tier_changed_at),
            "notify_email": self.notify_email,
        }


@dataclass(frozen=True)
class Page:
    items: list[Job]
    next_cursor: str | None


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


# --- (de)serialisation -----------------------------------------------------------------------

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()
# Stored as JSON text: nested numbers would otherwise need Decimal all the way down.
_JSON_ATTRIBUTES = frozenset({"summary"})


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, StrEnum):
        return value.value
    if isinstance(value, BaseModel):
        return _to_dynamo(value.model_dump(mode="json"))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items()}
    return value


def _serialize_attributes(values: dict[str, Any]) -> dict[str, Any]:
    return {
        name: _serializer.serialize(_to_dynamo(_attribute_value(name, value)))
        for name, value in values.items()
    }


def _deserialize_item(item: dict[str, Any]) -> dict[str, Any]:
    plain = {k: _deserializer.deserialize(v) for k, v in item.items()}
    for name in _JSON_ATTRIBUTES:
        if isinstance(plain.get(name), str):
            plain[name] = json.loads(plain[name])
    return plain


def _job_from_item(item: dict[str, Any]) -> Job:
    return Job.model_validate(_deserialize_item(item))


def _profile_from_item(item: dict[str, Any]) -> UserProfile:
    return UserProfile.model_validate(_deserialize_item(item))


# --- the repository --------------------------------------------------------------------------


class JobRepository:
    """All reads and writes of jobs and profiles. Thread-safe (boto3 clients are)."""

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

    # -- jobs: create and read ----------------------------------------------------------------

    def create_job(self, job: Job) -> Job:
        """Insert a new job; a job with the same id (a retried submit) is returned unchanged."""
        item = _serialize_attributes(
            {**job.model_dump(exclude_none=True), "pk": user_pk(job.user_id),
             "sk": job_sk(job.job_id), "entity": "job", "version": 1}
        )
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except ClientError as error:
            if _is_conditional_failure(error):
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
        return _job_from_item(response["Item"])

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
                "sk": {"S": job_sk(_decode_cursor(cursor))},
            }
        response = self._db.query(**request)
        items = [_job_from_item(item) for item in response.get("Items", [])]
        last = response.get("LastEvaluatedKey")
        next_cursor = _encode_cursor(last["sk"]["S"].removeprefix(JOB_PREFIX)) if last else None
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
                yield _job_from_item(item)
            if "LastEvaluatedKey" not in response:
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- jobs: version-guarded transitions ----------------------------------------------------

    def transition_status(self, job: Job, to: JobStatus, **fields: Any) -> Job:
        """Move `job` (as read) to status `to`, setting `fields`; conditional on status+version."""
        if to not in STATUS_TRANSITIONS[job.status]:
            raise IllegalTransition(f"job {job.job_id}: status {job.status} → {to} is not allowed")
        return self._versioned_update(job, {"status": to, **fields}, guard="status")

    def transition_storage(self, job: Job, to: StorageState, **fields: Any) -> Job:
        """Move `job` (as read) to storage `to`; conditional on storage+version."""
        if to not in STORAGE_TRANSITIONS[job.storage]:
            raise IllegalTransition(
                f"job {job.job_id}: storage {job.storage} → {to} is not allowed"
            )
        return self._versioned_update(job, {"storage": to, **fields}, guard="storage")

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
        return _job_from_item(attributes)

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
    ) -> Job:
        return self._leased_update(
            user_id,
            job_id,
            owner,
            {
                "status": JobStatus.COMPLETED,
                "progress": 1.0,
                "summary": summary,
                "result_keys": result_keys,
                "completed_at": datetime.fromtimestamp(self._clock(), UTC),
            },
            release=True,
        )

    def fail_job(self, user_id: str, job_id: str, *, reason: str, owner: str | None = None) -> Job:
        """FAILED with a user-readable reason: by the lease holder, or (owner=None) from PENDING."""
        fields = {"status": JobStatus.FAILED, "error": reason,
                  "completed_at": datetime.fromtimestamp(self._clock(), UTC)}
        if owner is not None:
            return self._leased_update(user_id, job_id, owner, fields, release=True)
        job = self.get_job(user_id, job_id)
        return self.transition_status(job, JobStatus.FAILED, **fields)

    # -- email idempotency markers --------------------------------------------------------------

    def claim_notification(
        self, user_id: str, marker: str, *, owner: str, ttl_seconds: float
    ) -> NotificationClaim:
        """Claim the right to send one email (`marker` from `notified_sk`).

        A conditional put: it succeeds when no marker exists, or when a previous claim was
        never finished and has expired (its sender died mid-way). The caller then sends and
        calls `finish_notification`.
        """
        now = self._clock()
        item = _serialize_attributes({
            "pk": user_pk(user_id), "sk": marker, "entity": "notification",
            "state": "sending", "owner": owner, "claim_expires_at": now + ttl_seconds,
        })
        try:
            self._db.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression=(
                    "attribute_not_exists(pk) OR (#state = :sending AND claim_expires_at < :now)"
                ),
                ExpressionAttributeNames={"#state": "state"},
                ExpressionAttributeValues={
                    ":sending": {"S": "sending"},
                    ":now": _serializer.serialize(_to_dynamo(float(now))),
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            old: dict[str, Any] = error.response.get("Item") or {}  # type: ignore[assignment]
            state = old.get("state", {}).get("S")
            return (NotificationClaim.ALREADY_SENT if state == "sent"
                    else NotificationClaim.IN_PROGRESS)
        return NotificationClaim.CLAIMED

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
            if not _is_conditional_failure(error):
                raise

    # -- profiles ------------------------------------------------------------------------------

    def get_profile(self, user_id: str) -> UserProfile | None:
        response = self._db.get_item(
            TableName=self._table, Key=self._profile_key(user_id), ConsistentRead=True
        )
        return _profile_from_item(response["Item"]) if "Item" in response else None

    def ensure_profile(self, user_id: str, *, name: str = "", email: str = "") -> UserProfile:
        """The user's profile, created (free tier) on first use."""
        existing = self.get_profile(user_id)
        if existing is not None:
            return existing
        profile = UserProfile(user_id=user_id, name=name, email=email, version=1)
        item = _serialize_attributes(
            {**profile.model_dump(exclude_none=True), "pk": user_pk(user_id), "sk": PROFILE_SK,
             "entity": "profile"}
        )
        try:
            self._db.put_item(
                TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(pk)"
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            # Created concurrently (two first requests at once): use the winner's.
            winner = self.get_profile(user_id)
            assert winner is not None
            return winner
        return profile

    def update_profile(self, profile: UserProfile, **fields: Any) -> UserProfile:
        """Change profile fields (name, email, notify_email, tier...), conditional on version."""
        if "tier" in fields and fields["tier"] != profile.tier:
            fields.setdefault("tier_changed_at", datetime.fromtimestamp(self._clock(), UTC))
        attributes = self._update(
            self._profile_key(profile.user_id),
            fields,
            condition="version = :expected_version",
            values={":expected_version": profile.version},
        )
        return _profile_from_item(attributes)

    # -- internals -----------------------------------------------------------------------------

    def _job_key(self, user_id: str, job_id: str) -> dict[str, Any]:
        return {"pk": {"S": user_pk(user_id)}, "sk": {"S": job_sk(job_id)}}

    def _profile_key(self, user_id: str) -> dict[str, Any]:
        return {"pk": {"S": user_pk(user_id)}, "sk": {"S": PROFILE_SK}}

    def _versioned_update(self, job: Job, fields: dict[str, Any], guard: str | None) -> Job:
        condition = "version = :expected_version"
        values: dict[str, Any] = {":expected_version": job.version}
        if guard:
            condition += f" AND #{guard} = :expected_{guard}"
            values[f":expected_{guard}"] = getattr(job, guard)
        try:
            attributes = self._update(
                self._job_key(job.user_id, job.job_id), fields, condition=condition, values=values
            )
        except ConflictError as conflict:
            raise ConflictError(
                f"job {job.job_id} changed since it was read (version {job.version})",
                conflict.current,
            ) from None
        return _job_from_item(attributes)

    def _leased_update(
        self,
        user_id: str,
        job_id: str,
        owner: str,
        fields: dict[str, Any],
        *,
        release: bool = False,
    ) -> Job:
        if release:
            fields = {**fields, "lease_owner": None, "lease_expires_at": None}
        try:
            attributes = self._update(
                self._job_key(user_id, job_id),
                fields,
                condition="#status = :running AND lease_owner = :owner",
                values={":running": JobStatus.RUNNING, ":owner": owner},
            )
        except ConflictError as conflict:
            raise ConflictError(
                f"job {job_id}: lease is no longer held by {owner}", conflict.current
            ) from None
        return _job_from_item(attributes)

    def _update(
        self,
        key: dict[str, Any],
        fields: dict[str, Any],
        *,
        condition: str,
        values: dict[str, Any],
    ) -> dict[str, Any]:
        """One conditional UpdateItem: SET non-None fields, REMOVE None ones, bump version."""
        try:
            response = self._db.update_item(
                TableName=self._table,
                **self._update_arguments(key, fields, condition=condition, values=values),
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except ClientError as error:
            if not _is_conditional_failure(error):
                raise
            old: dict[str, Any] | None = error.response.get("Item")  # type: ignore[assignment]
            if old is None:
                raise JobNotFound(key["sk"]["S"].removeprefix(JOB_PREFIX)) from None
            is_job = old.get("sk", {}).get("S", "").startswith(JOB_PREFIX)
            raise ConflictError(
                "conditional write refused", _job_from_item(old) if is_job else None
            ) from None
        return response["Attributes"]

    def _update_arguments(
        self,
        key: dict[str, Any],
        fields: dict[str, Any],
        *,
        condition: str,
        values: dict[str, Any],
    ) -> dict[str, Any]:
        """Key and expressions of a conditional update (for UpdateItem or a transaction)."""
        names = {"#version": "version", "#updated_at": "updated_at"}
        placeholders: dict[str, Any] = {
            **values,
            ":one": 1,
            ":updated_at": datetime.fromtimestamp(self._clock(), UTC),
        }
        sets = ["#version = #version + :one", "#updated_at = :updated_at"]
        removes = []
        for index, (name, value) in enumerate(fields.items()):
            names[f"#f{index}"] = name
            if value is None:
                removes.append(f"#f{index}")
            else:
                sets.append(f"#f{index} = :f{index}")
                placeholders[f":f{index}"] = _attribute_value(name, value)
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
                name: _serializer.serialize(_to_dynamo(value))
                for name, value in placeholders.items()
            },
        }


def _attribute_value(name: str, value: Any) -> Any:
    if name in _JSON_ATTRIBUTES:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value


def _is_conditional_failure(error: ClientError) -> bool:
    return error.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _encode_cursor(job_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"j": job_id}).encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        job_id = json.loads(base64.urlsafe_b64decode(padded))["j"]
    except (binascii.Error, ValueError, KeyError, TypeError) as error:
        raise InvalidCursor("invalid cursor") from error
    if not isinstance(job_id, str) or not is_job_id(job_id):
        raise InvalidCursor("invalid cursor")
    return job_id


__all__ = [
    "ArchivedObject",
    "ConflictError",
    "IllegalTransition",
    "InvalidCursor",
    "Job",
    "JobNotFound",
    "JobRepository",
    "JobStatus",
    "NotificationClaim",
    "Page",
    "ProfileChanged",
    "StorageState",
    "UserProfile",
]
