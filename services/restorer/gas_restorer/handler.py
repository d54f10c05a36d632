"""The restorer: what a tier change means for a user's results.

It acts on the tier in the profile when the message is handled, never on the event's: a
late or duplicate event then does the right thing for where the user is now (a downgrade
event handled after a later upgrade restores; an upgrade event handled after a later
downgrade schedules archiving).

Upgrade (premium now), for the user's jobs found by a Query:
* `archived` → RestoreObject for each archived object (Expedited, or Standard when
  Expedited capacity is refused; DEEP_ARCHIVE has no Expedited: Standard or Bulk by setting;
  GLACIER_IR needs no restore at all), then archived → restoring with the tier used. When the
  restores are complete, S3 sends `ObjectRestore:Completed` and the thawer takes over. For
  GLACIER_IR objects S3 sends nothing, so the restorer hands them to the thawer itself, in
  the shape of S3's own event.
* `archiving` → left to the archiver, which is guaranteed to abandon: its final `archived`
  write is conditional on the profile being unchanged since it read it as free, and the
  upgrade changed it (see docs/lifecycle.md for every interleaving).
* `restoring` / `hot` → nothing left to do (a duplicate event finds it so).

Downgrade (free now): each hot completed job gets `job.archive_requested` due at the end of
the retention window counted from the tier change; the archiver does the rest.

Each job is handled on its own; if any failed, the message is retried as a whole (jobs
already restoring are skipped the second time).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import quote_plus

from gas_core.events import ArchiveRequested, UserTierChanged, publish
from gas_core.jobs import (
    ArchivedObject,
    ConflictError,
    Job,
    JobRepository,
    JobStatus,
    StorageState,
    UserProfile,
)
from gas_core.logging import bind_context, bind_message_fields, get_logger
from gas_core.objects import RESTORE_REQUIRED_CLASSES, head_object, request_restore
from gas_core.settings import Tier

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sqs import SQSClient

    from gas_core.worker import MessageContext
    from gas_restorer.metrics import RestorerMetrics
    from gas_restorer.settings import RestorerSettings

log = get_logger("gas.restorer")

# Recorded as the restore tier of objects whose class needs no restore (GLACIER_IR).
INSTANT = "Instant"
# Fastest first: a job is as slow as its slowest object.
TIER_ORDER = (INSTANT, "Expedited", "Standard", "Bulk")
RESTORE_COMPLETED = "ObjectRestore:Completed"
# Writes of `restoring` tried against a job that keeps changing under us before the message
# is retried as a whole.
RESTORE_WRITE_ATTEMPTS = 3


class RestoreFailed(Exception):
    """Some jobs could not be restored this time (transient: the message is retried)."""


@dataclass
class Restorer:
    """Everything the handler needs, passed in (`__main__` builds it)."""

    settings: RestorerSettings
    repository: JobRepository
    s3: S3Client
    sns: SNSClient
    sqs: SQSClient
    results_topic_arn: str
    thawer_queue_url: str
    metrics: RestorerMetrics
    clock: Callable[[], float] = field(default=time.time)

    def __call__(self, event: UserTierChanged, context: MessageContext) -> None:
        handle_tier_changed(event, restorer=self)

    @property
    def archive_bucket(self) -> str:
        return self.settings.names.archive_bucket


def handle_tier_changed(event: UserTierChanged, *, restorer: Restorer) -> None:
    profile = restorer.repository.get_profile(event.user_id)
    if profile is None:
        log.warning("tier_change_for_unknown_user")
        return
    bind_message_fields(user_id=profile.user_id, tier=profile.tier.value,
                        event_tier=event.new_tier.value)
    if profile.tier is Tier.PREMIUM:
        restore_archived_results(profile, restorer=restorer)
    else:
        schedule_archiving(profile, restorer=restorer)


# -- upgrade --------------------------------------------------------------------------------------


def restore_archived_results(profile: UserProfile, *, restorer: Restorer) -> None:
    failed: list[str] = []
    jobs = restorer.repository.iter_jobs(
        profile.user_id, storage=[StorageState.ARCHIVED, StorageState.ARCHIVING]
    )
    for job in jobs:
        with bind_context(job_id=job.job_id):
            if job.storage is StorageState.ARCHIVING:
                log.info("archiving_job_left_to_archiver",
                         reason="its archived write is conditional on the free profile it read")
                restorer.metrics.jobs.labels(action="left_to_archiver").inc()
                continue
            try:
                _restore_job(job, restorer=restorer)
            except Exception:
                log.exception("restore_failed")
                restorer.metrics.jobs.labels(action="failed").inc()
                failed.append(job.job_id)
    if failed:
        raise RestoreFailed(f"restore of {len(failed)} job(s) failed: {', '.join(failed)}")


def _restore_job(job: Job, *, restorer: Restorer) -> None:
    requested: list[ArchivedObject] | None = None
    for _ in range(RESTORE_WRITE_ATTEMPTS):
        objects = list(job.archived_objects.values())
        if objects != requested:
            tiers = [_request_restore(obj, restorer=restorer) for obj in objects]
            tier = max(tiers, key=TIER_ORDER.index) if tiers else INSTANT
            requested = objects
        try:
            job = restorer.repository.transition_storage(
                job,
                StorageState.RESTORING,
                restore_tier=tier,
                restore_requested_at=datetime.fromtimestamp(restorer.clock(), UTC),
            )
            break
        except ConflictError as conflict:
            current = conflict.current
            if current is None or current.storage is not StorageState.ARCHIVED:
                # A duplicate message recorded it first (the requests above were idempotent),
                # or the job left `archived` some other way: nothing is ours to record.
                log.info("restore_already_recorded",
                         storage=current.storage if current else None)
                return
            # Still archived at a newer version: another write landed between our read and
            # ours (the archiver's `hot_copies_deleted`). Write again, requesting restores
            # first only if the archived copies are not the ones just requested.
            log.info("job_changed_before_restore_write", version=current.version)
            job = current
    else:
        raise ConflictError(f"job {job.job_id} kept changing while its restore was recorded", job)
    restorer.metrics.jobs.labels(action="restore_requested").inc()
    log.info("restore_requested", tier=tier, objects=len(objects))
    instant = [obj for obj, used in zip(objects, tiers, strict=True) if used == INSTANT]
    if instant:
        _hand_to_thawer(instant, restorer=restorer)
    for obj in objects:
        if obj not in instant:
            # How the restore stands (AWS: ongoing-request="true"). In the local emulator a
            # restore completes, and S3's completion event fires, on this first read.
            info = head_object(restorer.s3, restorer.archive_bucket, obj.key)
            log.info("restore_status", key=obj.key, restore=info.restore if info else None)


def _request_restore(obj: ArchivedObject, *, restorer: Restorer) -> str:
    """Request the restore of one object; returns the tier used."""
    if obj.storage_class not in RESTORE_REQUIRED_CLASSES:
        tier = INSTANT
    else:
        tiers: list[str] = (
            ["Expedited", "Standard"]
            if obj.storage_class == "GLACIER"
            else [restorer.settings.deep_archive_restore_tier]
        )
        tier = _first_accepted_tier(obj, tiers, restorer=restorer)
    restorer.metrics.restores.labels(tier=tier).inc()
    restorer.metrics.restore_bytes.inc(obj.size)
    return tier


def _first_accepted_tier(obj: ArchivedObject, tiers: list[str], *, restorer: Restorer) -> str:
    def refused(tier: str, falling_back_to: str) -> None:
        restorer.metrics.expedited_refused.inc()
        log.warning("expedited_restore_refused", key=obj.key, refused=tier,
                    falling_back_to=falling_back_to)

    return request_restore(restorer.s3, bucket=restorer.archive_bucket, key=obj.key,
                           days=restorer.settings.restore_days, tiers=tiers, on_fallback=refused)


def _hand_to_thawer(objects: list[ArchivedObject], *, restorer: Restorer) -> None:
    """Objects in a class that needs no restore get no S3 completion event: send the thawer
    one in S3's format, so it has a single way in."""
    now = datetime.fromtimestamp(restorer.clock(), UTC).isoformat().replace("+00:00", "Z")
    records = [
        {
            "eventVersion": "2.1",
            "eventSource": "gas:restorer",
            "eventName": RESTORE_COMPLETED,
            "eventTime": now,
            "s3": {
                "bucket": {"name": restorer.archive_bucket},
                "object": {"key": quote_plus(obj.key), "size": obj.size},
            },
        }
        for obj in objects
    ]
    restorer.sqs.send_message(
        QueueUrl=restorer.thawer_queue_url, MessageBody=json.dumps({"Records": records})
    )


# -- downgrade ------------------------------------------------------------------------------------


def schedule_archiving(profile: UserProfile, *, restorer: Restorer) -> None:
    """Hot completed results of a (now) free user are due after the retention window,
    counted from the downgrade."""
    changed_at = profile.tier_changed_at or datetime.fromtimestamp(restorer.clock(), UTC)
    due_at = datetime.fromtimestamp(
        changed_at.timestamp() + restorer.settings.free_retention_seconds, UTC
    )
    scheduled = 0
    for job in restorer.repository.iter_jobs(profile.user_id, storage=[StorageState.HOT]):
        if job.status is not JobStatus.COMPLETED:
            continue
        publish(
            restorer.sns,
            restorer.results_topic_arn,
            ArchiveRequested(
                user_id=job.user_id, job_id=job.job_id, user_tier=Tier.FREE, due_at=due_at
            ),
        )
        scheduled += 1
        restorer.metrics.jobs.labels(action="archive_scheduled").inc()
    log.info("archiving_scheduled", jobs=scheduled, due_at=due_at.isoformat())
