"""The thawer: restored archive objects go back to the results bucket.

S3 sends one `ObjectRestore:Completed` notification per object. The archive key is the
object's results key (`results/{user_id}/{job_id}/...`), so it names the job. Each
notification reconciles the whole job rather than its one object, which makes every event
(duplicate, late, out of order, for an unknown or already thawed job) safe:

1. The job must be `restoring`. `archived` with a restore on its archive copies means the
   restorer requested the restore but has not recorded it yet (it crashed in between, and
   its message comes back after a visibility timeout): wait for it with `RetryLater`, like
   the wait below. `archived` with no restore on them: a stale event (its restored copy
   expired), nothing to do. Any other state: nothing to do. A `restoring` job whose
   archiver has not yet recorded `hot_copies_deleted` (it crashed in between, and its message
   comes back after a visibility timeout) waits for it: `RetryLater`, so however long that
   takes, the event is re-sent with a delay and never spends its receives into the DLQ.
2. For each archived object: a hot copy with the recorded size and SHA-256 is done; else,
   when the archive copy is readable (restored), copy it back (STANDARD) and verify against
   the checksum recorded at archive time; else it is still restoring (its own event will come)
   or, with no restore on it at all, its restored copy expired before we got to it (a thawer
   outage longer than GAS_RESTORE_DAYS): the restore is requested again, and its completion
   brings a new event.
3. When every object is back: delete the archive copies, then restoring → hot, recording
   `job.restored` (and, step 4, `job.archive_requested`) in that same write (the job's
   outbox, gas_core.outbox), then publish them (the notifier de-duplicates). Crash before
   the state write and redelivery find the hot copies verified and finish the remaining
   steps; crash after it and redelivery (or the outbox reconciler) publishes. Deleting the
   archive copies before the state write leaves no orphan: once the job is hot, nobody looks
   for them.
4. If the user is free again by now, the result is due for archiving again after the
   retention window counted from that downgrade.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from gas_core.events import ArchiveRequested, Event, JobRestored, S3RestoreNotification
from gas_core.jobs import (
    ArchivedObject,
    ConflictError,
    ItemKey,
    Job,
    JobNotFound,
    JobRepository,
    StorageState,
    parse_results_key,
)
from gas_core.logging import bind_context, bind_message_fields, get_logger
from gas_core.objects import (
    RESTORE_REQUIRED_CLASSES,
    Checksums,
    copy_verified,
    head_object,
    matches,
    request_restore,
)
from gas_core.outbox import Outbox
from gas_core.settings import Tier
from gas_core.worker import RetryLater

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

    from gas_core.worker import MessageContext
    from gas_thawer.metrics import ThawerMetrics
    from gas_thawer.settings import ThawerSettings

log = get_logger("gas.thawer")

RESTORE_COMPLETED = "ObjectRestore:Completed"


class RestoreNotRecorded(RetryLater):
    """The restore finished before the restorer recorded `restoring`: wait for the restorer
    without spending the event's receives. The restorer's message comes back after a
    visibility timeout (or an operator redrives it); a retry-with-back-off would push the
    job's only restore events into the DLQ first. Bounded: once the restored copies expire
    the event is dropped as stale."""

    def __init__(self, reason: str, *, delay_seconds: float) -> None:
        super().__init__(delay_seconds, reason)


class HotCopiesPending(RetryLater):
    """The archiver has not yet finished with the hot copies: wait for it without spending
    the event's receives. Its message may need a whole visibility timeout (or more) to come
    back after a crash; a retry-with-back-off would push the job's only restore events into
    the DLQ first and leave the job `restoring` for good."""

    def __init__(self, reason: str, *, delay_seconds: float) -> None:
        super().__init__(delay_seconds, reason)


class ArchiveCopyMissing(Exception):
    """Neither a verified hot copy nor an archive copy exists (transient, so it ends in the
    DLQ for an operator instead of being dropped)."""


@dataclass
class Thawer:
    """Everything the handler needs, passed in (`__main__` builds it)."""

    settings: ThawerSettings
    repository: JobRepository
    s3: S3Client
    sns: SNSClient
    results_topic_arn: str
    metrics: ThawerMetrics
    clock: Callable[[], float] = field(default=time.time)
    # How long an event that found the archiver still finishing waits before looking again.
    hot_copies_wait_seconds: float = 30.0
    # How long an event that found the restore not yet recorded waits before looking again.
    restore_not_recorded_wait_seconds: float = 30.0

    def __call__(self, notification: S3RestoreNotification, context: MessageContext) -> None:
        handle_restore_notification(notification, thawer=self)

    @property
    def results_bucket(self) -> str:
        return self.settings.names.results_bucket

    @property
    def archive_bucket(self) -> str:
        return self.settings.names.archive_bucket


def handle_restore_notification(
    notification: S3RestoreNotification, *, thawer: Thawer
) -> dict[str, str]:
    """Thaw every job the notification names; returns the outcome per job id."""
    owners: dict[tuple[str, str], None] = {}  # ordered, de-duplicated
    for record in notification.records:
        owner = parse_results_key(record.key)
        if record.bucket != thawer.archive_bucket or owner is None:
            log.info("restore_event_ignored", bucket=record.bucket, key=record.key,
                     reason="not a result object of this deployment's archive")
            continue
        if not record.event_name.startswith(RESTORE_COMPLETED):
            log.info("restore_event_ignored", event_name=record.event_name, key=record.key)
            continue
        owners[owner] = None
    outcomes: dict[str, str] = {}
    for user_id, job_id in owners:
        with bind_context(job_id=job_id):
            outcomes[job_id] = thaw_job(user_id, job_id, thawer=thawer)
        thawer.metrics.jobs.labels(outcome=outcomes[job_id]).inc()
    bind_message_fields(records=len(notification.records),
                        **({"job_id": job_id, "thaw_outcome": outcomes[job_id]}
                           if len(outcomes) == 1 else {"thaw_outcomes": outcomes}))
    return outcomes


def thaw_job(user_id: str, job_id: str, *, thawer: Thawer) -> str:
    repo = thawer.repository
    try:
        job = repo.get_job(user_id, job_id)
    except JobNotFound:
        log.info("thaw_skipped", reason="job not found")
        return "skipped"
    if job.storage is StorageState.ARCHIVED:
        if _restore_requested(job, thawer=thawer):
            raise RestoreNotRecorded(
                f"job {job_id} is still archived; the restorer is recording its restore",
                delay_seconds=thawer.restore_not_recorded_wait_seconds)
        log.info("thaw_skipped", reason="archived, and no restore on its archive copies")
        return "skipped"
    if job.storage is not StorageState.RESTORING:
        log.info("thaw_skipped", reason=f"storage is {job.storage}")
        # A thaw that crashed after its state write left its events pending: send them.
        _outbox(thawer).flush(ItemKey.of_job(user_id, job_id))
        return "skipped"
    if not job.hot_copies_deleted:
        # The archiver has not finished with the hot copies: thawing now could race its
        # delete of a copy we just put back. Look again later (RetryLater: as long as it
        # takes, even the archiver's own redelivery after a crash, without reaching the DLQ).
        raise HotCopiesPending(f"job {job_id}: the archiver is still finishing",
                               delay_seconds=thawer.hot_copies_wait_seconds)
    pending = [
        kind for kind, obj in sorted(job.archived_objects.items())
        if not _thaw_object(job, kind, obj, thawer=thawer)
    ]
    if pending:
        log.info("thaw_waiting", still_restoring=pending)
        return "waiting"
    for obj in job.archived_objects.values():
        _delete_archive_copy(obj.key, thawer=thawer)
    profile = repo.get_profile(user_id)
    tier = profile.tier if profile else job.user_tier
    # Recorded by the state write itself (the job's outbox, gas_core.outbox), then published:
    # a crash after the write loses neither event (the notifier sends one email per restore
    # whatever the number of events).
    # The event names its restore (from the job this write is conditional on): it may reach
    # the notifier after the next restore began, and each restore gets its own email.
    events: list[Event] = [JobRestored(user_id=user_id, job_id=job_id, user_tier=tier,
                                       restore_requested_at=job.restore_requested_at)]
    if tier is Tier.FREE:
        events.append(_archive_again(job, changed_at=profile.tier_changed_at if profile else None,
                                     thawer=thawer))
    try:
        job = repo.transition_storage(
            job, StorageState.HOT, events=events, archive_key=None, archived_objects=None,
            hot_copies_deleted=None,
        )
    except ConflictError as conflict:
        # A concurrent notification of the same job finished first.
        if conflict.current is None or conflict.current.storage is not StorageState.HOT:
            raise
        return "skipped"
    if job.restore_requested_at is not None:
        thawer.metrics.restore_seconds.observe(
            max(0.0, thawer.clock() - job.restore_requested_at.timestamp())
        )
    _outbox(thawer).deliver(ItemKey.of_job(user_id, job_id), events)
    log.info("thawed", objects=len(job.result_keys), restore_tier=job.restore_tier)
    return "thawed"


def _delete_archive_copy(key: str, *, thawer: Thawer) -> None:
    """By its version on the versioned archive bucket: a delete by key would leave the copy
    behind as a non-current version (billed). While the job is `restoring` no archive run can
    write the key (runs start from hot), so the current version is the one thawed."""
    info = head_object(thawer.s3, thawer.archive_bucket, key)
    if info is None:
        return  # deleted by an earlier attempt
    if info.version_id is None:
        thawer.s3.delete_object(Bucket=thawer.archive_bucket, Key=key)
    else:
        thawer.s3.delete_object(Bucket=thawer.archive_bucket, Key=key, VersionId=info.version_id)


def _restore_requested(job: Job, *, thawer: Thawer) -> bool:
    """Some archive copy of the job has a restore on it (ongoing, or done and not expired)."""
    for obj in job.archived_objects.values():
        info = head_object(thawer.s3, thawer.archive_bucket, obj.key)
        if info is not None and info.restore is not None:
            return True
    return False


def _thaw_object(job: Job, kind: str, obj: ArchivedObject, *, thawer: Thawer) -> bool:
    """True when the object is back in the results bucket, verified."""
    hot_key = job.result_keys.get(kind, obj.key)
    if matches(head_object(thawer.s3, thawer.results_bucket, hot_key),
               size=obj.size, sha256=obj.sha256, composite_sha256=obj.composite_sha256):
        return True
    archived = head_object(thawer.s3, thawer.archive_bucket, obj.key)
    if archived is None:
        raise ArchiveCopyMissing(
            f"s3://{thawer.archive_bucket}/{obj.key} is gone and no verified hot copy exists"
        )
    if not archived.is_readable:
        if archived.restore is None and archived.storage_class in RESTORE_REQUIRED_CLASSES:
            # The restorer asked for every object before recording `restoring`, and S3 shows a
            # restore (ongoing or done) until its copy expires: none at all means it expired.
            _restore_again(job, archived.key, archived.storage_class, thawer=thawer)
        return False
    copy_verified(thawer.s3, source=archived,
                  checksums=Checksums(obj.size, obj.sha256, obj.composite_sha256),
                  bucket=thawer.results_bucket,
                  key=hot_key, storage_class="STANDARD")
    thawer.metrics.objects.inc()
    thawer.metrics.bytes.inc(obj.size)
    return True


def _restore_again(job: Job, key: str, storage_class: str, *, thawer: Thawer) -> None:
    """Request an expired restore again: the job's own tier first when S3 offers it for the
    class, then Standard (always accepted; DEEP_ARCHIVE has no Expedited)."""
    preferred = job.restore_tier if job.restore_tier in ("Expedited", "Bulk") else None
    if storage_class == "DEEP_ARCHIVE" and preferred == "Expedited":
        preferred = None
    tiers = [preferred, "Standard"] if preferred else ["Standard"]
    tier = request_restore(
        thawer.s3, bucket=thawer.archive_bucket, key=key, days=thawer.settings.restore_days,
        tiers=tiers,
        on_fallback=lambda refused, nxt: log.warning("expedited_restore_refused", key=key,
                                                     refused=refused, falling_back_to=nxt),
    )
    thawer.metrics.restores_requested_again.inc()
    log.warning("expired_restore_requested_again", key=key, tier=tier,
                restore_days=thawer.settings.restore_days)


def _outbox(thawer: Thawer) -> Outbox:
    # The thawer's events all go to the results topic.
    return Outbox(thawer.repository, thawer.sns, lambda _topic: thawer.results_topic_arn)


def _archive_again(
    job: Job, *, changed_at: datetime | None, thawer: Thawer
) -> ArchiveRequested:
    """The user downgraded while the restore ran: the window counts from the downgrade."""
    start = changed_at or datetime.fromtimestamp(thawer.clock(), UTC)
    due_at = datetime.fromtimestamp(start.timestamp() + thawer.settings.free_retention_seconds,
                                    UTC)
    log.info("archiving_scheduled_again", due_at=due_at.isoformat())
    return ArchiveRequested(user_id=job.user_id, job_id=job.job_id, user_tier=Tier.FREE,
                            due_at=due_at)
