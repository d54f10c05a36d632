"""States, transitions, errors and the pydantic models of jobs and profiles."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gas_core.jobs.keys import utc_now
from gas_core.settings import Tier


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
    # An earlier sender claimed it and died before recording the outcome: this caller sends
    # it, and if that sender died after SES accepted, the user gets a second copy.
    TAKEN_OVER = "taken_over"


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
