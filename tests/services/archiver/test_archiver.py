"""The archiver handler against moto: retention, tiers, verification, crashes, duplicates."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from gas_archiver.handler import MAX_DELAY_SECONDS, ResultMissing, handle_archive_message
from gas_core.events import ArchiveRequested, JobCompleted
from gas_core.jobs import StorageState
from gas_core.objects import CopyNotVerified
from gas_core.settings import Tier
from tests.services.archiver.lifecycle_support import (
    ARCHIVED_KINDS,
    HOT_KINDS,
    Crash,
    Intercept,
    Lifecycle,
    archive_requested,
    crash,
)


def test_a_free_users_result_is_archived_verified_and_its_hot_copy_removed(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id, with_sha256=False)  # the checksum is computed by reading

    assert life.archive(job) == "archived"

    life.assert_archived(job)
    archived = life.job(job)
    for kind, obj in archived.archived_objects.items():
        assert obj.key == job.result_keys[kind]
        assert obj.size == len(life.contents[obj.key])
        assert obj.storage_class == "GLACIER"
    assert archived.archive_key == f"results/{user_id}/{job.job_id}/"
    total = sum(len(life.contents[job.result_keys[k]]) for k in ARCHIVED_KINDS)
    assert life.metric("archiver", "gas_archiver_archived_bytes_total") == total
    assert life.metric("archiver", "gas_archiver_jobs_total", outcome="archived") == 1


def test_the_configured_storage_class_is_used(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str
) -> None:
    life = lifecycle_factory(storage_class="DEEP_ARCHIVE")
    job = life.completed_job(user_id)
    life.archive(job)
    life.assert_archived(job, storage_class="DEEP_ARCHIVE")


def test_a_window_longer_than_the_sqs_delay_limit_is_waited_out_in_hops(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str
) -> None:
    """Given a one-hour window, the message goes round in 15-minute hops, then archives."""
    life = lifecycle_factory(retention=3600)
    job = life.completed_job(user_id)
    event = life.completed_event(job)
    sends = Intercept(life.aws.sqs, "send_message", times=0)  # records, changes nothing
    archiver = _replace(life, sqs=sends)
    url = life.archiver.queue_url

    for hop in range(4):
        assert handle_archive_message(event, archiver=archiver) == "delayed"
        # Really on the queue, invisible for its delay (moto honours DelaySeconds).
        assert _delayed_count(life, url) == hop + 1
        sent = sends.calls[hop][1]
        assert sent["QueueUrl"] == url and sent["DelaySeconds"] == MAX_DELAY_SECONDS
        # The message sent round is the same event, with the same filter attributes.
        assert JobCompleted.model_validate_json(str(sent["MessageBody"])) == event
        assert {k: v["StringValue"] for k, v in sent["MessageAttributes"].items()} == {
            "event_type": "job.completed", "user_tier": "free"}
        life.clock.advance(MAX_DELAY_SECONDS)
        assert life.job(job).storage is StorageState.HOT

    assert handle_archive_message(event, archiver=archiver) == "archived"
    assert len(sends.calls) == 4
    life.assert_archived(job)


def test_a_message_due_within_the_delay_limit_is_delayed_exactly_until_due(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str
) -> None:
    life = lifecycle_factory(retention=100)
    job = life.completed_job(user_id)
    life.clock.advance(40)
    sends = Intercept(life.aws.sqs, "send_message", times=0)
    assert handle_archive_message(life.completed_event(job),
                                  archiver=_replace(life, sqs=sends)) == "delayed"
    assert 59 <= sends.calls[0][1]["DelaySeconds"] <= 61
    assert life.metric("archiver", "gas_archiver_jobs_total", outcome="delayed") == 1


def _delayed_count(life: Lifecycle, url: str) -> int:
    attributes = life.aws.sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])


def test_a_premium_users_job_is_never_archived_even_when_an_archive_message_arrives(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id, tier=Tier.PREMIUM)
    past = datetime(2020, 1, 1, tzinfo=UTC)

    assert life.archive(job) == "skipped"
    assert handle_archive_message(archive_requested(life, job, past),
                                  archiver=life.archiver) == "skipped"

    life.assert_hot_and_intact(job)
    assert life.job(job).version == job.version


def test_a_downgrade_restarts_the_window_so_an_older_message_waits_for_it(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str
) -> None:
    """Given a job completed at t0 by a free user who upgraded at t0+60 and downgraded at
    t0+80, when the completion message comes due at t0+100, then it waits until t0+180."""
    life = lifecycle_factory(retention=100)
    job = life.completed_job(user_id)
    life.clock.advance(60)
    life.change_tier(user_id, Tier.PREMIUM)
    life.clock.advance(20)
    life.change_tier(user_id, Tier.FREE)
    life.clock.advance(20)

    assert life.archive(job) == "delayed"
    assert life.job(job).storage is StorageState.HOT
    life.clock.advance(80)
    assert life.archive(job) == "archived"
    life.assert_archived(job)


def test_an_archive_request_after_a_downgrade_archives_when_due(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str
) -> None:
    life = lifecycle_factory(retention=30)
    job = life.completed_job(user_id)
    due = datetime.fromtimestamp(life.clock() + 30, UTC)
    request = archive_requested(life, job, due)

    assert handle_archive_message(request, archiver=life.archiver) == "delayed"
    life.clock.advance(30)
    assert handle_archive_message(request, archiver=life.archiver) == "archived"
    life.assert_archived(job)


def test_duplicate_messages_change_nothing_the_second_time(life: Lifecycle, user_id: str) -> None:
    job = life.completed_job(user_id)
    life.archive(job)
    archived = life.job(job)

    assert life.archive(job) == "skipped"
    request = archive_requested(life, job, datetime(2020, 1, 1, tzinfo=UTC))
    assert handle_archive_message(request, archiver=life.archiver) == "skipped"

    assert life.job(job) == archived
    life.assert_archived(job)


def test_messages_for_unknown_or_unfinished_jobs_are_dropped(life: Lifecycle, user_id: str) -> None:
    job = life.completed_job(user_id)
    ghost = ArchiveRequested(user_id=user_id, job_id="01J00000000000000000000000",
                             user_tier=Tier.FREE, due_at=datetime(2020, 1, 1, tzinfo=UTC))
    assert handle_archive_message(ghost, archiver=life.archiver) == "skipped"
    someone_else = job.model_copy(update={"user_id": "someone-else"})
    assert life.archive(someone_else) == "skipped"
    life.assert_hot_and_intact(job)


@pytest.mark.parametrize(
    ("method", "target", "when"),
    [
        ("transition_storage", "repository", "after"),  # hot → archiving written
        ("copy_object", "s3", "after"),  # first object copied
        ("transition_storage_if_profile_unchanged", "repository", "after"),  # archived written
        ("delete_object", "s3", "before"),  # about to delete the first hot copy
    ],
    ids=["after-archiving-write", "after-copy", "after-archived-write", "before-delete"],
)
def test_a_crash_at_any_step_then_redelivery_ends_with_one_copy_and_the_right_state(
    life: Lifecycle, user_id: str, method: str, target: str, when: str
) -> None:
    job = life.completed_job(user_id)
    faulty = Intercept(getattr(life.archiver, target), method, **{when: crash})
    crashing = _replace(life, **{target: faulty})

    with pytest.raises(Crash):
        life.archive(job, archiver=crashing)
    assert life.job(job).storage in (StorageState.ARCHIVING, StorageState.ARCHIVED)
    # Nothing is lost at the crash point: every file has at least one verified copy.
    current = life.job(job)
    assert set(job.result_keys) <= life.hot_kinds(current) | set(life.archive_kinds(current))

    assert life.archive(job) in ("archived", "skipped")  # redelivery
    life.assert_archived(job)
    assert life.archive(job) == "skipped"
    life.assert_archived(job)


def test_a_copy_that_does_not_verify_is_removed_and_the_hot_copy_kept(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)

    class CorruptingCopies:
        """S3 whose copy stores other bytes than the source's (a fault between S3's copy and
        our check): the copy's own version is wrong, not a later writer's."""

        def __getattr__(self, name: str) -> object:
            return getattr(life.aws.s3, name)

        def copy_object(self, **kwargs: object) -> object:
            return life.aws.s3.put_object(Bucket=str(kwargs["Bucket"]), Key=str(kwargs["Key"]),
                                          Body=b"corrupted", StorageClass="GLACIER")

    corrupting = _replace(life, s3=CorruptingCopies())
    with pytest.raises(CopyNotVerified):
        life.archive(job, archiver=corrupting)
    current = life.job(job)
    assert current.storage is StorageState.ARCHIVING
    assert life.hot_kinds(current) == set(job.result_keys)
    assert life.archive_kinds(current) == {}

    assert life.archive(job) == "archived"
    life.assert_archived(job)


def test_a_missing_result_file_is_retried_not_archived(life: Lifecycle, user_id: str) -> None:
    job = life.completed_job(user_id)
    life.aws.s3.delete_object(Bucket=life.results_bucket, Key=job.result_keys["tsv"])
    with pytest.raises(ResultMissing):
        life.archive(job)
    assert life.job(job).storage is StorageState.ARCHIVING
    assert life.hot_kinds(job) == set(job.result_keys) - {"tsv"}


def test_summary_and_log_stay_hot_and_a_job_with_nothing_else_is_not_archived(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    small = life.repository.update_job(
        life.job(job), result_keys={k: v for k, v in job.result_keys.items() if k in HOT_KINDS}
    )
    assert life.archive(small) == "skipped"
    assert life.job(job).storage is StorageState.HOT


def _replace(life: Lifecycle, **dependencies: object):  # type: ignore[no-untyped-def]
    from dataclasses import replace

    return replace(life.archiver, **dependencies)

