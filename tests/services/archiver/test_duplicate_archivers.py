"""Two archivers on the same job (duplicate `job.completed` deliveries), interleaved
deterministically with an upgrade: whichever finishes last, the job ends hot with nothing left
in the archive bucket (an orphan copy would be billed forever and never read)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from gas_core.jobs import StorageState
from gas_core.objects import head_object, matches
from gas_core.settings import Tier
from tests.services.archiver.lifecycle_support import (
    Crash,
    Intercept,
    Lifecycle,
    client_error,
    crash,
)


@pytest.mark.parametrize(
    "then_downgrade",
    [False, True],
    # Still premium: the slow archiver's re-read sees premium and its abandon conflicts.
    # Free again: its re-read sees free, and its `archived` write conflicts with a hot job.
    ids=["abandon-conflicts", "archived-write-conflicts"],
)
def test_a_slow_duplicate_archivers_copies_landing_after_the_other_abandoned_are_removed(
    life: Lifecycle, user_id: str, then_downgrade: bool
) -> None:
    """Given archiver-1 is copying, when the user upgrades and archiver-0 (handling the
    duplicate event) abandons and removes the copies before archiver-1's copies land, then
    archiver-1 removes the copies it made once it finds the job hot."""
    job = life.completed_job(user_id)
    first: list[str] = []

    def upgrade_and_duplicate_abandons(*_args: object, **_kwargs: object) -> None:
        life.upgrade(user_id)
        first.append(life.archive(job))  # archiver-0
        assert life.job(job).storage is StorageState.HOT
        if then_downgrade:
            life.restore(life.change_tier(user_id, Tier.FREE))

    slow: Any = Intercept(life.aws.s3, "copy_object", before=upgrade_and_duplicate_abandons)
    outcome = life.archive(job, archiver=replace(life.archiver, s3=slow))  # archiver-1

    assert first == ["abandoned"]
    assert len(slow.calls) == 2, "archiver-1's copies landed after archiver-0's abandon"
    assert outcome == "abandoned"
    life.assert_hot_and_intact(job)


def test_a_copy_failing_after_the_duplicate_abandoned_leaves_no_copy_behind(
    life: Lifecycle, user_id: str
) -> None:
    """Given archiver-1's first copy lands after archiver-0 abandoned, when its next copy
    fails (a transient S3 error: the message will be retried), then the copy that did land is
    removed before the error propagates, since the job is hot and nothing will use it."""
    job = life.completed_job(user_id)

    def upgrade_and_duplicate_abandons(*_args: object, **_kwargs: object) -> None:
        life.upgrade(user_id)
        assert life.archive(job) == "abandoned"  # archiver-0

    def s3_fails(*_args: object, **_kwargs: object) -> None:
        raise client_error("InternalError", 500)

    racing: Any = Intercept(life.aws.s3, "copy_object", before=upgrade_and_duplicate_abandons)
    # The second copy fails (its call is recorded before `match` is asked).
    failing: Any = Intercept(racing, "copy_object", before=s3_fails,
                             match=lambda *_a, **_k: len(failing.calls) == 2)

    with pytest.raises(Exception, match="InternalError"):
        life.archive(job, archiver=replace(life.archiver, s3=failing))

    assert len(racing.calls) == 1
    life.assert_hot_and_intact(job)


def test_an_archived_job_keeps_its_copies_when_a_duplicates_abandon_conflicts(
    life: Lifecycle, user_id: str
) -> None:
    """Given archiver-1 has copied and is about to abandon (it read the user as premium), when
    archiver-0 recorded `archived` before the upgrade, then archiver-1's abandon conflicts and
    leaves the recorded copies alone: they are the job's only copies once hot ones go."""
    job = life.completed_job(user_id)
    first: list[str] = []

    def duplicate_archives_then_upgrade(*_args: object, **_kwargs: object) -> None:
        first.append(life.archive(job))  # archiver-0, all the way to archived
        life.change_tier(user_id, Tier.PREMIUM)  # the restorer's event is still in flight

    # archiver-1's second profile read (after copying) is where it decides to abandon.
    reads: Any = Intercept(life.repository, "get_profile", before=duplicate_archives_then_upgrade,
                      match=lambda *_a, **_k: len(reads.calls) == 3)
    outcome = life.archive(job, archiver=replace(life.archiver, repository=reads))

    assert first == ["archived"]
    assert outcome == "skipped"
    life.assert_archived(job)
    recorded = life.job(job).archived_objects
    assert {obj.key for obj in recorded.values()} <= set(life.keys(life.archive_bucket, job))


def test_a_stale_archivers_cleanup_never_deletes_a_newer_archive_runs_copies(
    life: Lifecycle, user_id: str
) -> None:
    """Given an abandon crashed before removing its archive copies (job hot, user premium),
    when the redelivered message's archiver looks at those leftovers and, before its delete
    lands, the user downgrades and a new archive run archives the job, then that delete
    removes only the leftovers: the new run's copies stay, and the job is archived intact."""
    job = life.completed_job(user_id)
    # Archiving while the user upgrades: the abandon writes hot, then dies before its deletes.
    upgrading: Any = Intercept(life.aws.s3, "copy_object",
                               before=lambda *_a, **_k: life.upgrade(user_id))
    dying: Any = Intercept(upgrading, "delete_object", before=crash)
    with pytest.raises(Crash):
        life.archive(job, archiver=replace(life.archiver, s3=dying))
    assert life.job(job).storage is StorageState.HOT
    assert life.archive_kinds(life.job(job)), "the crashed abandon left its copies"

    def downgrade_and_a_new_run_archives(*_args: object, **_kwargs: object) -> None:
        life.restore(life.change_tier(user_id, Tier.FREE))
        assert life.archive(job) == "archived"  # the new run, on the downgrade's message

    stale: Any = Intercept(life.aws.s3, "delete_object", before=downgrade_and_a_new_run_archives)
    life.archive(job, archiver=replace(life.archiver, s3=stale))  # the redelivery

    assert len(stale.calls) >= 1, "the stale archiver deleted something"
    life.assert_archived(job)
    current = life.job(job)
    for obj in current.archived_objects.values():
        stored = head_object(life.aws.s3, life.archive_bucket, obj.key)
        assert matches(stored, size=obj.size, sha256=obj.sha256,
                       composite_sha256=obj.composite_sha256), obj.key
        # The leftovers are gone too, not kept as non-current versions (billed, never read).
        listed = life.aws.s3.list_object_versions(Bucket=life.archive_bucket, Prefix=obj.key)
        assert [v["Key"] for v in listed.get("Versions", [])] == [obj.key]

    # Restored and thawed: no version of any archive copy is left behind.
    life.upgrade(user_id)
    assert life.thaw(job) == {job.job_id: "thawed"}
    life.assert_hot_and_intact(job)
    for obj in current.archived_objects.values():
        listed = life.aws.s3.list_object_versions(Bucket=life.archive_bucket, Prefix=obj.key)
        assert listed.get("Versions", []) == [], obj.key


def test_two_archivers_copying_at_once_leave_one_version_of_each_copy(
    life: Lifecycle, user_id: str
) -> None:
    """Given archiver-1 has looked for an archive copy and is about to make it, when archiver-0
    (handling the duplicate event) archives the whole job first, then archiver-1's extra
    version is deleted when its `archived` write conflicts: one copy per key, the recorded
    one (a key recorded by the job is no reason to keep every version at it)."""
    job = life.completed_job(user_id)
    first: list[str] = []

    def duplicate_archives_first(*_args: object, **_kwargs: object) -> None:
        # archiver-0 records `archived`, then dies before deleting the hot copies (which
        # archiver-1 is still copying from).
        dying: Any = Intercept(life.aws.s3, "delete_object", before=crash)
        with pytest.raises(Crash):
            life.archive(job, archiver=replace(life.archiver, s3=dying))
        first.append(life.job(job).storage.value)

    racing: Any = Intercept(life.aws.s3, "copy_object", before=duplicate_archives_first)
    life.archive(job, archiver=replace(life.archiver, s3=racing))  # archiver-1

    assert first == [StorageState.ARCHIVED.value]
    assert len(racing.calls) >= 1, "archiver-1 made a copy of its own"
    life.archive(job)  # the redelivery finishes archiver-0's work
    life.assert_archived(job)
    for obj in life.job(job).archived_objects.values():
        listed = life.aws.s3.list_object_versions(Bucket=life.archive_bucket, Prefix=obj.key)
        versions = [v for v in listed.get("Versions", []) if v["Key"] == obj.key]
        assert len(versions) == 1, obj.key
        stored = head_object(life.aws.s3, life.archive_bucket, obj.key)
        assert matches(stored, size=obj.size, sha256=obj.sha256,
                       composite_sha256=obj.composite_sha256), obj.key
