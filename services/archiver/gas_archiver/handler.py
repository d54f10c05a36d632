"""The archiver: free users' results move to the archive bucket after retention.

One message (`job.completed` for a free user, or `job.archive_requested` after a downgrade)
walks a job through these steps; every step is idempotent, so a crash anywhere followed by
redelivery converges on exactly one copy and the right state:

1. Not due yet → re-send the message to our own queue with a delay (SQS delays stop at
   15 minutes, so longer windows take several hops) and let the worker delete the original.
   The window is computed from the table, never from the message: it starts at completion
   or at the user's last tier change, whichever is later.
2. Due: re-read the user's tier (the message's tier is a routing snapshot). Premium → nothing.
3. hot → archiving (conditional write).
4. Copy each big result file (everything in `result_keys` except the summary and log, which
   stay hot so users still see what a job found) to the archive bucket, same key, in the
   configured storage class; verify size and SHA-256 as S3 reports them. A copy that already
   exists and matches is reused.
5. Re-read the profile; premium now → abandon: archiving → hot, then delete the archive
   copies. Otherwise archiving → archived in one transaction with "the profile is unchanged
   since that read": an upgrade landing after the read cancels it and we abandon instead;
   an upgrade landing after the commit finds the job archived, so the restorer restores it.
   Whenever a write conflicts (or a copy fails) and the job turns out to have moved on
   without us - typically a duplicate delivery's archiver abandoned it while our slower
   copies were still landing - the copies not recorded in the job's `archived_objects` are
   removed, so none is left orphaned in the archive bucket.
   Deletes are by version (the archive bucket is versioned): an archiver removes the versions
   its own run made or reused, or, for a hot job's leftovers, versions it saw while the job
   was still hot (re-read after looking). A stale archiver therefore never removes the copy
   of a newer archive run (one started after another downgrade), and a run reuses only a
   copy tagged with its own run (the job's version while archiving), never a leftover
   another archiver may still delete.
6. Only then delete the hot copies, each only while its archive copy exists, matches, and
   has no restore under way (a restore means the thaw owns the key now).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from gas_core.events import ArchiveRequested, JobCompleted
from gas_core.jobs import (
    ArchivedObject,
    ConflictError,
    Job,
    JobNotFound,
    JobRepository,
    JobStatus,
    ProfileChanged,
    StorageState,
    UserProfile,
    results_prefix,
)
from gas_core.logging import bind_message_fields, get_logger
from gas_core.objects import content_checksums, copy_verified, head_object, matches
from gas_core.settings import Tier

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

    from gas_archiver.metrics import ArchiverMetrics
    from gas_archiver.settings import ArchiverSettings
    from gas_core.worker import MessageContext

log = get_logger("gas.archiver")

ArchiveEvent = JobCompleted | ArchiveRequested

# SQS DelaySeconds maximum:
# https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-delay-queues.html
MAX_DELAY_SECONDS = 900
# A message this close to due is handled now rather than sent round again for a second.
DUE_SLACK_SECONDS = 1.0
# Result kinds that stay hot whatever the tier: small, and what users read to see what a job
# found. Everything else in `result_keys` (VCF + index, TSV, parquet) is archived.
ALWAYS_HOT_KINDS = frozenset({"summary", "log"})
# The final write retries this often when only unrelated profile fields changed meanwhile.
PROFILE_RACE_ATTEMPTS = 3
# Archive copies carry the run that made them (the job's version while it is archiving), so a
# redelivery of that run reuses them and a later run does not.
ARCHIVE_RUN_METADATA = "gas-archive-run"


class ResultMissing(Exception):
    """A result file of a job being archived is not in the results bucket (transient: the
    message is retried, then kept in the DLQ for an operator; nothing is changed)."""


@dataclass
class Archiver:
    """Everything the handler needs, passed in (`__main__` builds it)."""

    settings: ArchiverSettings
    repository: JobRepository
    s3: S3Client
    sqs: SQSClient
    queue_url: str
    metrics: ArchiverMetrics
    clock: Callable[[], float] = field(default=time.time)

    def __call__(self, event: ArchiveEvent, context: MessageContext) -> None:
        handle_archive_message(event, archiver=self)

    @property
    def results_bucket(self) -> str:
        return self.settings.names.results_bucket

    @property
    def archive_bucket(self) -> str:
        return self.settings.names.archive_bucket


def handle_archive_message(event: ArchiveEvent, *, archiver: Archiver) -> str:
    """Handle one archive message; returns the outcome (also the metric label)."""
    outcome = _handle(event, archiver=archiver)
    bind_message_fields(event_type=event.type, archive_outcome=outcome)
    archiver.metrics.jobs.labels(outcome=outcome).inc()
    return outcome


def _handle(event: ArchiveEvent, *, archiver: Archiver) -> str:
    hinted_due = _message_due(event, archiver.settings)
    if hinted_due - archiver.clock() > DUE_SLACK_SECONDS:
        # Not due by the message's own reckoning: no need to read anything yet.
        return _delay(event, until=hinted_due, archiver=archiver)
    job = _completed_job(event, archiver=archiver)
    if job is None:
        return "skipped"
    bind_message_fields(storage=job.storage.value)
    if job.storage is StorageState.HOT:
        started = _start_archiving(job, event=event, archiver=archiver)
        if isinstance(started, str):
            return started
        job = started
    outcome = "skipped"
    if job.storage is StorageState.ARCHIVING:
        job = _archive(job, archiver=archiver)
        if job.storage is StorageState.HOT:
            return "abandoned"
        outcome = "archived"
    if job.storage in (StorageState.ARCHIVED, StorageState.RESTORING) and (
        not job.hot_copies_deleted
    ):
        # Also after an upgrade moved the job on to restoring: the thaw waits for this step.
        _delete_hot_copies(job, archiver=archiver)
        _mark_hot_copies_deleted(job, archiver=archiver)
        return outcome
    log.info("archive_skipped", reason=f"storage is {job.storage}")
    return "skipped"


def _completed_job(event: ArchiveEvent, *, archiver: Archiver) -> Job | None:
    try:
        job = archiver.repository.get_job(event.user_id, event.job_id)
    except JobNotFound:
        log.info("archive_skipped", reason="job not found")
        return None
    if job.status is not JobStatus.COMPLETED:
        log.info("archive_skipped", reason=f"job is {job.status}")
        return None
    return job


def _start_archiving(job: Job, *, event: ArchiveEvent, archiver: Archiver) -> Job | str:
    """hot → archiving when the user is free and the window is over; else the outcome."""
    profile = archiver.repository.get_profile(job.user_id)
    if _is_premium(profile):
        _remove_archive_copies(job, archiver=archiver)
        log.info("archive_skipped", reason="premium user: results stay hot")
        return "skipped"
    if not any(kind not in ALWAYS_HOT_KINDS for kind in job.result_keys):
        log.info("archive_skipped", reason="no result files to archive")
        return "skipped"
    due = _window_end(job, profile, archiver.settings)
    if due - archiver.clock() > DUE_SLACK_SECONDS:
        # E.g. a stale message from before a downgrade restarted the window.
        return _delay(event, until=due, archiver=archiver)
    try:
        return archiver.repository.transition_storage(
            job, StorageState.ARCHIVING, archive_key=results_prefix(job.user_id, job.job_id),
            hot_copies_deleted=None,
        )
    except ConflictError as conflict:
        # A duplicate message got there first; carry on from whatever it reached.
        if conflict.current is None:
            raise
        return conflict.current


# -- the archive steps ------------------------------------------------------------------------


def _archive(job: Job, *, archiver: Archiver) -> Job:
    """archiving → archived (or → hot when the user is premium by now)."""
    repo = archiver.repository
    # key -> version of the copies this run made or reused (None: unversioned bucket).
    made: dict[str, str | None] = {}
    if _is_premium(repo.get_profile(job.user_id)):
        return _abandon(job, made, archiver=archiver)
    try:
        archived = {
            kind: _archive_object(key, run=str(job.version), made=made, archiver=archiver)
            for kind, key in sorted(job.result_keys.items())
            if kind not in ALWAYS_HOT_KINDS
        }
    except Exception:
        # Retried later, but a duplicate may have abandoned the job meanwhile, and then the
        # copies that did land would be orphans (a hot job's retry may never come back here).
        _discard_copies(repo.get_job(job.user_id, job.job_id), made, archiver=archiver)
        raise
    # The read the final write is conditional on: a tier change after it cancels the write.
    profile = repo.get_profile(job.user_id)
    for _ in range(PROFILE_RACE_ATTEMPTS):
        if _is_premium(profile):
            return _abandon(job, made, archiver=archiver)
        try:
            if profile is None:
                # No profile: no tier can change under us (change_tier needs a profile).
                done = repo.transition_storage(
                    job, StorageState.ARCHIVED, archived_objects=archived
                )
            else:
                done = repo.transition_storage_if_profile_unchanged(
                    job, StorageState.ARCHIVED, profile=profile, archived_objects=archived
                )
        except ProfileChanged as changed:
            log.info("profile_changed_while_archiving")
            profile = changed.profile
            continue
        except ConflictError as conflict:
            if conflict.current is None:
                raise
            log.info("job_changed_while_archiving", storage=conflict.current.storage)
            _discard_copies(conflict.current, made, archiver=archiver)
            return conflict.current
        total = sum(obj.size for obj in archived.values())
        log.info("archived", objects=len(archived), bytes=total,
                 storage_class=archiver.settings.archive_storage_class)
        return done
    raise RuntimeError(f"profile of {job.user_id} kept changing; will retry")


def _archive_object(
    key: str, *, run: str, made: dict[str, str | None], archiver: Archiver
) -> ArchivedObject:
    s3 = archiver.s3
    storage_class = archiver.settings.archive_storage_class
    source = head_object(s3, archiver.results_bucket, key)
    if source is None:
        # Hot copies are deleted only after `archived` is recorded, so while archiving they
        # exist; a missing one means the results were never (fully) written.
        raise ResultMissing(f"s3://{archiver.results_bucket}/{key} is missing")
    checksums = content_checksums(s3, source)
    existing = head_object(s3, archiver.archive_bucket, key)
    if matches(existing, size=source.size, sha256=checksums.sha256,
               composite_sha256=checksums.composite_sha256) and (
        existing is not None and existing.storage_class == storage_class
        and existing.metadata.get(ARCHIVE_RUN_METADATA) == run
    ):  # fmt: skip
        copied = existing  # copied and verified by an earlier attempt of this run
    else:
        copied = copy_verified(
            s3, source=source, checksums=checksums, bucket=archiver.archive_bucket, key=key,
            storage_class=storage_class, metadata={ARCHIVE_RUN_METADATA: run},
        )
        archiver.metrics.objects.inc()
        archiver.metrics.bytes.inc(source.size)
        if existing is not None and existing.version_id is not None and (
            existing.metadata.get(ARCHIVE_RUN_METADATA) != run
        ):
            # An earlier run's leftover, now non-current: that run ended (this one started
            # from hot), so nothing will read it; its own archiver deletes only its versions.
            s3.delete_object(Bucket=archiver.archive_bucket, Key=key,
                             VersionId=existing.version_id)
    made[key] = copied.version_id
    return ArchivedObject(
        key=key, size=copied.size, sha256=checksums.sha256, storage_class=copied.storage_class,
        composite_sha256=checksums.composite_sha256,
    )


def _abandon(job: Job, made: dict[str, str | None], *, archiver: Archiver) -> Job:
    """The user is premium now: archiving → hot (the hot copies were never touched), then
    remove the archive copies. State first: a concurrent duplicate that already recorded
    `archived` makes this write fail, and then its archive copies must stay. One that
    abandoned first makes it fail too, and then our copies (which may have landed after it
    removed its own) must go."""
    try:
        job = archiver.repository.transition_storage(
            job, StorageState.HOT, archive_key=None, archived_objects=None
        )
    except ConflictError as conflict:
        if conflict.current is None:
            raise
        _discard_copies(conflict.current, made, archiver=archiver)
        return conflict.current
    _delete_versions(made, archiver=archiver)
    _remove_archive_copies(job, archiver=archiver)  # an earlier attempt's, if any
    log.info("archive_abandoned", reason="user is premium now")
    return job


def _discard_copies(
    current: Job, made: dict[str, str | None], *, archiver: Archiver
) -> None:
    """After the job moved on without this worker (`current` as last read): remove the copies
    this run made, except those the job records (an archived job's copy may be its only
    one). While the job is archiving they stay: that archive's worker records or removes them."""
    if current.storage is StorageState.ARCHIVING:
        return
    recorded = {obj.key for obj in current.archived_objects.values()}
    unrecorded = {key: version for key, version in made.items()
                  if key not in recorded or _has_other_version(key, version, archiver=archiver)}
    _delete_versions(unrecorded, archiver=archiver)
    if unrecorded:
        log.info("unrecorded_archive_copies_removed", keys=sorted(unrecorded),
                 storage=current.storage)


def _has_other_version(key: str, version: str | None, *, archiver: Archiver) -> bool:
    """Whether the key holds a version besides ours: a duplicate of this run that looked
    before either copy landed made its own, recorded the job with it, and ours is the extra
    one (same verified content: the recorded object's checksums hold for either)."""
    if version is None:  # unversioned bucket: one object per key, the recorded one
        return False
    listed = archiver.s3.list_object_versions(Bucket=archiver.archive_bucket, Prefix=key)
    return any(v["Key"] == key and v["VersionId"] != version
               for v in listed.get("Versions", []))


def _delete_versions(versions: dict[str, str | None], *, archiver: Archiver) -> None:
    """Delete exactly these versions: whatever was written at those keys since (a newer
    archive run's copy) stays. Without a version (an unversioned bucket) by key, which a
    newer run racing this delete could lose its copy to (docs/lifecycle.md)."""
    for key, version in sorted(versions.items()):
        if version is None:
            archiver.s3.delete_object(Bucket=archiver.archive_bucket, Key=key)
        else:
            archiver.s3.delete_object(Bucket=archiver.archive_bucket, Key=key, VersionId=version)


def _remove_archive_copies(job: Job, *, archiver: Archiver) -> None:
    """Delete archive copies of a hot job (left by an abandon that crashed half-way).
    A hot job never needs them: nothing archives or thaws it while it is hot. Only versions
    seen while the job was still hot, unchanged, after looking: a newer archive run starts by
    moving the job out of hot, so its copies are made after that read and are never these."""
    seen: dict[str, str | None] = {}
    for kind, key in job.result_keys.items():
        if kind in ALWAYS_HOT_KINDS:
            continue
        info = head_object(archiver.s3, archiver.archive_bucket, key)
        if info is not None:
            seen[key] = info.version_id
    if not seen:
        return
    now = archiver.repository.get_job(job.user_id, job.job_id)
    if now.storage is not StorageState.HOT or now.version != job.version:
        log.info("leftover_archive_copies_kept", reason=f"the job moved on ({now.storage})")
        return
    _delete_versions(seen, archiver=archiver)


def _delete_hot_copies(job: Job, *, archiver: Archiver) -> None:
    for obj in job.archived_objects.values():
        archived = head_object(archiver.s3, archiver.archive_bucket, obj.key)
        if not matches(archived, size=obj.size, sha256=obj.sha256,
                       composite_sha256=obj.composite_sha256):
            log.error("archive_copy_missing_hot_copy_kept", key=obj.key)
            continue
        assert archived is not None
        if archived.restore is not None:
            # Restore requested (the user upgraded meanwhile): the thawer owns this key now.
            log.info("hot_copy_kept_restore_under_way", key=obj.key)
            continue
        archiver.s3.delete_object(Bucket=archiver.results_bucket, Key=obj.key)
        archiver.metrics.hot_deleted.inc()


def _mark_hot_copies_deleted(job: Job, *, archiver: Archiver) -> None:
    try:
        archiver.repository.mark_hot_copies_deleted(job)
    except ConflictError as conflict:
        # Only an abandon (→ hot) gets here, and it never deleted hot copies.
        log.info("hot_copies_mark_skipped",
                 storage=conflict.current.storage if conflict.current else None)


# -- timing -------------------------------------------------------------------------------------


def _message_due(event: ArchiveEvent, settings: ArchiverSettings) -> float:
    if isinstance(event, ArchiveRequested):
        return event.due_at.timestamp()
    return event.completed_at.timestamp() + settings.free_retention_seconds


def _window_end(job: Job, profile: UserProfile | None, settings: ArchiverSettings) -> float:
    """When this job's hot window ends: retention after completion, or after the user's last
    tier change if that came later (a downgrade restarts the window)."""
    starts: list[datetime] = [t for t in (job.completed_at, job.updated_at) if t is not None]
    start = starts[0] if starts else job.submitted_at
    if profile is not None and profile.tier_changed_at and profile.tier_changed_at > start:
        start = profile.tier_changed_at
    return start.timestamp() + settings.free_retention_seconds


def _delay(event: ArchiveEvent, *, until: float, archiver: Archiver) -> str:
    """Send the message round again, due at `until` (in hops of at most 15 minutes)."""
    seconds = min(MAX_DELAY_SECONDS, max(1, math.ceil(until - archiver.clock())))
    archiver.sqs.send_message(
        QueueUrl=archiver.queue_url,
        MessageBody=event.model_dump_json(),
        DelaySeconds=seconds,
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value}
            for name, value in event.attributes().items()
        },
    )
    bind_message_fields(delay_s=seconds)
    log.info("archive_delayed", delay_s=seconds, due_in_s=round(until - archiver.clock()))
    return "delayed"


def _is_premium(profile: UserProfile | None) -> bool:
    return profile is not None and profile.tier is Tier.PREMIUM
