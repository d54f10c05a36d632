"""The thawer handler against moto: copy back, verify, hot, and harmless stray events."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from gas_core.events import ArchiveRequested, JobRestored, S3RestoreNotification
from gas_core.jobs import Job, StorageState
from gas_core.settings import Tier
from gas_core.worker import RetryLater
from gas_restorer.handler import RestoreFailed
from gas_thawer.handler import RestoreNotRecorded, handle_restore_notification
from tests.services.archiver.lifecycle_support import (
    ARCHIVED_KINDS,
    Crash,
    Intercept,
    Lifecycle,
    crash,
    s3_restore_notification,
)


def _archived_and_restoring(life: Lifecycle, user_id: str):  # type: ignore[no-untyped-def]
    job = life.completed_job(user_id)
    life.archive(job)
    life.upgrade(user_id)
    assert life.job(job).storage is StorageState.RESTORING
    return job


def _recorded_restoring(life: Lifecycle, user_id: str, **fields: str) -> tuple[Job, Job, Job]:
    """A job archived, then recorded `restoring` with no restore on its objects: (as submitted,
    archived, restoring)."""
    job = life.completed_job(user_id)
    life.archive(job)
    archived = life.job(job)
    return job, archived, life.repository.transition_storage(
        archived, StorageState.RESTORING, **fields)


def test_a_finished_restore_is_copied_back_verified_and_the_job_is_hot_again(
    life: Lifecycle, user_id: str
) -> None:
    job = _archived_and_restoring(life, user_id)

    assert life.thaw(job) == {job.job_id: "thawed"}

    life.assert_hot_and_intact(job)
    hot = life.job(job)
    assert hot.archive_key is None and hot.restore_tier == "Expedited"
    [restored] = life.sns.events("job.restored")
    assert JobRestored.model_validate(restored).job_id == job.job_id
    assert life.metric("thawer", "gas_thawer_objects_thawed_total") == len(ARCHIVED_KINDS)
    assert life.metric("thawer", "gas_thawer_restore_seconds_count") == 1
    assert life.sns.events("job.archive_requested") == []


def test_the_job_stays_restoring_until_every_object_is_back(
    life: Lifecycle, user_id: str
) -> None:
    job, archived, restoring = _recorded_restoring(life, user_id)
    first, *rest = sorted(archived.archived_objects.values(), key=lambda o: o.key)
    s3 = life.aws.s3

    def restore(key: str) -> None:
        s3.restore_object(Bucket=life.archive_bucket, Key=key,
                          RestoreRequest={"Days": 1, "GlacierJobParameters": {"Tier": "Standard"}})
        s3.head_object(Bucket=life.archive_bucket, Key=key)  # moto completes it on a read

    restore(first.key)
    event = s3_restore_notification(life.archive_bucket, first.key)
    assert handle_restore_notification(event, thawer=life.thawer) == {job.job_id: "waiting"}
    assert life.job(job).storage is StorageState.RESTORING
    assert first.key in life.keys(life.results_bucket, restoring)

    for obj in rest:
        restore(obj.key)
    last = s3_restore_notification(life.archive_bucket, rest[-1].key)
    assert handle_restore_notification(last, thawer=life.thawer) == {job.job_id: "thawed"}
    life.assert_hot_and_intact(job)


def test_a_restore_that_expired_before_the_thaw_is_requested_again_then_thawed(
    life: Lifecycle, user_id: str
) -> None:
    # The restorer asked for every object and recorded `restoring`, then the thawer was down
    # longer than GAS_RESTORE_DAYS: the restored copies expired, S3 shows no restore any more.
    job, archived, _ = _recorded_restoring(life, user_id, restore_tier="Expedited")
    s3 = Intercept(life.aws.s3, "restore_object")

    late_event = life.restore_event(archived)
    outcome = handle_restore_notification(late_event, thawer=replace(life.thawer, s3=s3))

    assert outcome == {job.job_id: "waiting"}
    assert life.job(job).storage is StorageState.RESTORING
    requested = sorted(kwargs["Key"] for _args, kwargs in s3.calls)
    assert requested == sorted(obj.key for obj in archived.archived_objects.values())
    for _args, kwargs in s3.calls:
        assert kwargs["RestoreRequest"] == {
            "Days": life.thawer.settings.restore_days,
            "GlacierJobParameters": {"Tier": "Expedited"}}
    assert life.metric("thawer", "gas_thawer_restores_requested_again_total") == len(
        archived.archived_objects)
    # The new restores complete; S3's events for them finish the thaw.
    assert life.thaw(job) == {job.job_id: "thawed"}
    life.assert_hot_and_intact(job)


def test_events_for_unknown_foreign_or_already_thawed_objects_are_harmless(
    life: Lifecycle, user_id: str
) -> None:
    job = _archived_and_restoring(life, user_id)
    life.thaw(job)
    hot = life.job(job)
    thawer = life.thawer

    assert handle_restore_notification(life.restore_event(job), thawer=thawer) == {
        job.job_id: "skipped"}
    unknown = f"results/{user_id}/01J00000000000000000000009/x.vcf.gz"
    assert handle_restore_notification(
        s3_restore_notification(life.archive_bucket, unknown), thawer=thawer
    ) == {"01J00000000000000000000009": "skipped"}
    assert handle_restore_notification(
        s3_restore_notification(life.archive_bucket, "elsewhere/file"), thawer=thawer) == {}
    assert handle_restore_notification(
        s3_restore_notification("another-bucket", job.result_keys["vcf"]), thawer=thawer) == {}
    test_event = S3RestoreNotification.parse(json.dumps({"Event": "s3:TestEvent"}))
    assert handle_restore_notification(test_event, thawer=thawer) == {}

    assert life.job(job) == hot
    assert len(life.sns.events("job.restored")) == 1


def test_a_restore_that_finishes_before_the_restorer_recorded_it_waits_for_the_restorer(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    life.archive(job)
    # The restorer requests the restores, then dies before it records `restoring`.
    dying = Intercept(life.repository, "transition_storage", before=crash)
    with pytest.raises(RestoreFailed):
        life.restore(life.change_tier(user_id, Tier.PREMIUM),
                     restorer=replace(life.restorer, repository=dying))
    with pytest.raises(RestoreNotRecorded) as waiting:
        life.thaw(job)
    assert isinstance(waiting.value, RetryLater)  # re-sent later, no receive spent
    assert life.job(job).storage is StorageState.ARCHIVED


def test_a_restore_event_for_an_archived_job_with_no_restore_on_its_copies_is_dropped(
    life: Lifecycle, user_id: str
) -> None:
    """A stale event (its restored copy expired): waiting would never end."""
    job = life.completed_job(user_id)
    life.archive(job)
    outcome = handle_restore_notification(life.restore_event(life.job(job)), thawer=life.thawer)
    assert outcome == {job.job_id: "skipped"}
    assert life.job(job).storage is StorageState.ARCHIVED


@pytest.mark.parametrize(
    ("target", "method", "when"),
    [
        ("s3", "copy_object", "after"),  # first object copied back
        ("s3", "delete_object", "after"),  # first archive copy deleted
        ("sns", "publish", "after"),  # job.restored published, state not yet written
        ("repository", "transition_storage", "after"),  # hot written
    ],
    ids=["after-copy", "after-archive-delete", "after-publish", "after-hot-write"],
)
def test_a_crash_at_any_step_of_the_thaw_then_redelivery_ends_hot_with_one_copy(
    life: Lifecycle, user_id: str, target: str, method: str, when: str
) -> None:
    job = _archived_and_restoring(life, user_id)
    hooked = Intercept(getattr(life.thawer, target), method, **{when: crash})

    with pytest.raises(Crash):
        life.thaw(job, thawer=replace(life.thawer, **{target: hooked}))
    life.thaw(job)  # redelivery

    life.assert_hot_and_intact(job)
    assert 1 <= len(life.sns.events("job.restored")) <= 2  # the notifier de-duplicates


def test_a_user_who_downgraded_during_the_restore_gets_a_new_retention_window(
    life: Lifecycle, user_id: str
) -> None:
    job = _archived_and_restoring(life, user_id)
    life.change_tier(user_id, Tier.FREE)  # its restorer event would find nothing hot yet

    life.thaw(job)

    life.assert_hot_and_intact(job)
    [scheduled] = life.sns.events("job.archive_requested")
    request = ArchiveRequested.model_validate(scheduled)
    assert request.job_id == job.job_id and request.user_tier is Tier.FREE
    assert request.due_at >= datetime.fromtimestamp(life.clock() - 5, UTC)
