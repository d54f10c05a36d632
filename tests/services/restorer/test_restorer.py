"""The restorer handler against moto: upgrade restores, tiers, downgrade schedules archiving."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from gas_core.events import ArchiveRequested, S3RestoreNotification
from gas_core.jobs import JobStatus, StorageState
from gas_core.settings import Tier
from gas_restorer.handler import RestoreFailed
from tests.services.archiver.lifecycle_support import (
    ARCHIVED_KINDS,
    Intercept,
    Lifecycle,
    client_error,
    profile_of,
)

N = len(ARCHIVED_KINDS)


def _tiers_requested(restores: Intercept) -> list[str]:
    return [kwargs["RestoreRequest"]["GlacierJobParameters"]["Tier"]
            for _args, kwargs in restores.calls]


def test_an_upgrade_restores_archived_results_with_expedited_and_marks_them_restoring(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    life.archive(job)
    restores = Intercept(life.aws.s3, "restore_object", times=0)

    life.restore(life.change_tier(user_id, Tier.PREMIUM),
                 restorer=replace(life.restorer, s3=restores))

    restoring = life.job(job)
    assert restoring.storage is StorageState.RESTORING
    assert restoring.restore_tier == "Expedited"
    assert restoring.restore_requested_at is not None
    assert _tiers_requested(restores) == ["Expedited"] * N
    assert {kwargs["Key"] for _a, kwargs in restores.calls} == {
        obj.key for obj in restoring.archived_objects.values()}
    assert life.metric("restorer", "gas_restorer_restores_requested_total", tier="Expedited") == N


def test_expedited_refused_for_capacity_falls_back_to_standard(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    life.archive(job)

    def refuse_expedited(**kwargs: object) -> None:
        if kwargs["RestoreRequest"]["GlacierJobParameters"]["Tier"] == "Expedited":  # type: ignore[index]
            raise client_error("GlacierExpeditedRetrievalNotAvailable", 503)

    restores = Intercept(life.aws.s3, "restore_object", before=refuse_expedited, times=99)
    life.restore(life.change_tier(user_id, Tier.PREMIUM),
                 restorer=replace(life.restorer, s3=restores))

    restoring = life.job(job)
    assert restoring.storage is StorageState.RESTORING
    assert restoring.restore_tier == "Standard"
    assert _tiers_requested(restores) == ["Expedited", "Standard"] * N
    assert life.metric("restorer", "gas_restorer_expedited_refused_total") == N
    assert life.metric("restorer", "gas_restorer_restores_requested_total", tier="Standard") == N


def test_deep_archive_is_restored_with_standard_never_expedited(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str
) -> None:
    life = lifecycle_factory(storage_class="DEEP_ARCHIVE")
    job = life.completed_job(user_id)
    life.archive(job)
    restores = Intercept(life.aws.s3, "restore_object", times=0)

    life.restore(life.change_tier(user_id, Tier.PREMIUM),
                 restorer=replace(life.restorer, s3=restores))

    assert life.job(job).restore_tier == "Standard"
    assert set(_tiers_requested(restores)) == {"Standard"}


def test_glacier_instant_retrieval_needs_no_restore_and_is_handed_to_the_thawer(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str
) -> None:
    life = lifecycle_factory(storage_class="GLACIER_IR")
    job = life.completed_job(user_id)
    life.archive(job)
    life.assert_archived(job, storage_class="GLACIER_IR")

    life.upgrade(user_id)

    assert life.job(job).restore_tier == "Instant"
    messages = life.aws.sqs.receive_message(
        QueueUrl=life.restorer.thawer_queue_url, MaxNumberOfMessages=10
    )["Messages"]
    assert len(messages) == 1
    notification = S3RestoreNotification.parse(messages[0]["Body"])
    assert len(notification.records) == N
    from gas_thawer.handler import handle_restore_notification

    assert handle_restore_notification(notification, thawer=life.thawer) == {
        job.job_id: "thawed"}
    life.assert_hot_and_intact(job)


def test_only_the_upgraded_users_jobs_are_restored(
    life: Lifecycle, user_id: str
) -> None:
    mine = life.completed_job(user_id)
    theirs = life.completed_job(user_id + "-other")
    life.archive(mine)
    life.archive(theirs)

    life.upgrade(user_id)

    assert life.job(mine).storage is StorageState.RESTORING
    assert life.job(theirs).storage is StorageState.ARCHIVED


def test_a_duplicate_upgrade_event_requests_nothing_more(life: Lifecycle, user_id: str) -> None:
    job = life.completed_job(user_id)
    life.archive(job)
    event = life.change_tier(user_id, Tier.PREMIUM)
    life.restore(event)
    restoring = life.job(job)
    restores = Intercept(life.aws.s3, "restore_object", times=0)

    life.restore(event, restorer=replace(life.restorer, s3=restores))

    assert restores.calls == []
    assert life.job(job) == restoring


def test_a_crash_between_the_restore_requests_and_the_state_write_is_redone(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    life.archive(job)
    event = life.change_tier(user_id, Tier.PREMIUM)
    crashing = Intercept(life.repository, "transition_storage",
                         before=lambda *a, **k: (_ for _ in ()).throw(OSError("crash")))

    with pytest.raises(RestoreFailed):
        life.restore(event, restorer=replace(life.restorer, repository=crashing))
    assert life.job(job).storage is StorageState.ARCHIVED

    life.restore(event)  # redelivery: the repeated restore requests are accepted
    assert life.job(job).storage is StorageState.RESTORING


def test_an_archiving_job_is_left_to_the_archiver(life: Lifecycle, user_id: str) -> None:
    job = life.completed_job(user_id)
    archiving = life.repository.transition_storage(life.job(job), StorageState.ARCHIVING)
    restores = Intercept(life.aws.s3, "restore_object", times=0)

    life.restore(life.change_tier(user_id, Tier.PREMIUM),
                 restorer=replace(life.restorer, s3=restores))

    assert restores.calls == []
    assert life.job(job) == archiving
    assert life.metric("restorer", "gas_restorer_jobs_total", action="left_to_archiver") == 1


def test_a_downgrade_schedules_archiving_of_hot_completed_jobs_from_the_downgrade(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str
) -> None:
    life = lifecycle_factory(retention=600)
    done = life.completed_job(user_id, tier=Tier.PREMIUM)
    running = life.repository.create_job(
        done.model_copy(update={"job_id": "01J00000000000000000000001",
                                "status": JobStatus.PENDING, "result_keys": {}})
    )
    del running

    life.restore(life.change_tier(user_id, Tier.FREE))

    requests = [ArchiveRequested.model_validate(e)
                for e in life.sns.events("job.archive_requested")]
    assert [r.job_id for r in requests] == [done.job_id]
    changed_at = profile_of(life, user_id).tier_changed_at
    assert changed_at is not None
    assert requests[0].due_at == changed_at + timedelta(seconds=600)
    assert requests[0].user_tier is Tier.FREE


def test_a_late_downgrade_event_after_a_new_upgrade_acts_on_the_current_tier(
    life: Lifecycle, user_id: str
) -> None:
    """Given an archived job, a downgrade and then an upgrade, when the events arrive in
    either order, then the job is restored and nothing is scheduled for archiving."""
    job = life.completed_job(user_id)
    life.archive(job)
    life.change_tier(user_id, Tier.PREMIUM)
    downgrade = life.change_tier(user_id, Tier.FREE)
    upgrade = life.change_tier(user_id, Tier.PREMIUM)

    life.restore(upgrade)
    life.restore(downgrade)

    assert life.job(job).storage is StorageState.RESTORING
    assert life.sns.events("job.archive_requested") == []


def test_an_archiver_write_between_the_read_and_the_restore_write_does_not_lose_the_restore(
    life: Lifecycle, user_id: str
) -> None:
    """The archiver records `hot_copies_deleted` after `archived`, bumping the version: a
    restorer that read the job in between meets a conflict while the job is still archived.
    That is not a duplicate that recorded the restore first (the chaos run left such jobs
    archived for good, their thaw waiting on a restore nobody recorded)."""
    job = life.completed_job(user_id)
    life.archive(job)
    late_archiver_write = Intercept(
        life.repository, "transition_storage",
        before=lambda read, *a, **k: life.repository.mark_hot_copies_deleted(read))

    restores = Intercept(life.aws.s3, "restore_object", times=0)

    life.restore(life.change_tier(user_id, Tier.PREMIUM),
                 restorer=replace(life.restorer, repository=late_archiver_write, s3=restores))

    restoring = life.job(job)
    assert restoring.storage is StorageState.RESTORING
    assert restoring.restore_tier == "Expedited"
    assert len(late_archiver_write.calls) == 2
    assert _tiers_requested(restores) == ["Expedited"] * N  # the same copies: requested once
