"""Tier changes interleaved with archiving, forced deterministically: every ordering ends with
a premium user's results hot (and a free user's archived when due)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import datetime

import pytest

from gas_archiver.handler import handle_archive_message
from gas_core.events import ArchiveRequested, UserTierChanged
from gas_core.jobs import StorageState
from gas_core.settings import Tier
from gas_thawer.handler import HotCopiesPending
from tests.services.archiver.lifecycle_support import Intercept, Lifecycle


@pytest.mark.parametrize(
    ("target", "method", "when"),
    [
        # The archiver is copying (it read the tier as free before it started).
        ("s3", "copy_object", "after"),
        # It has re-read the profile (free) and is about to write `archived`.
        ("repository", "transition_storage_if_profile_unchanged", "before"),
    ],
    ids=["while-copying", "between-tier-read-and-archived-write"],
)
def test_an_upgrade_while_archiving_ends_hot_never_stranded_in_the_archive(
    life: Lifecycle, user_id: str, target: str, method: str, when: str
) -> None:
    job = life.completed_job(user_id)
    upgrades: list[UserTierChanged] = []

    def upgrade(*_args: object, **_kwargs: object) -> None:
        # The web's write, and the restorer handling its event at once.
        upgrades.append(life.change_tier(user_id, Tier.PREMIUM))
        life.restore(upgrades[0])
        assert life.job(job).storage is StorageState.ARCHIVING  # the restorer left it alone

    hooked = Intercept(getattr(life.archiver, target), method, **{when: upgrade})
    outcome = life.archive(job, archiver=replace(life.archiver, **{target: hooked}))

    assert upgrades and outcome == "abandoned"
    life.assert_hot_and_intact(job)
    # Late duplicates of both messages change nothing.
    life.restore(upgrades[0])
    assert life.archive(job) == "skipped"
    life.assert_hot_and_intact(job)


def test_an_upgrade_just_after_the_archived_write_restores_and_keeps_the_hot_copies(
    life: Lifecycle, user_id: str
) -> None:
    """Given the archiver has recorded `archived` but not yet deleted the hot copies, when the
    upgrade's restore starts then, the archiver keeps the hot copies (the thaw owns them)."""
    job = life.completed_job(user_id)
    hooked = Intercept(life.repository, "transition_storage_if_profile_unchanged",
                       after=lambda *a, **k: life.upgrade(user_id))

    assert life.archive(job, archiver=replace(life.archiver, repository=hooked)) == "archived"

    assert life.job(job).storage is StorageState.RESTORING
    assert life.hot_kinds(life.job(job)) == set(job.result_keys)
    assert life.thaw(job) == {job.job_id: "thawed"}
    life.assert_hot_and_intact(job)


@pytest.mark.parametrize("storage_class", ["GLACIER", "GLACIER_IR"])
def test_a_thaw_racing_the_archivers_hot_copy_delete_waits_and_loses_nothing(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str, storage_class: str
) -> None:
    """Given the archiver has recorded `archived` but not yet dealt with the hot copies, when
    the upgrade's restore and thaw run right then, the thaw waits for the archiver; once it has
    finished, the thaw completes and every result is hot and intact."""
    life = lifecycle_factory(storage_class=storage_class)
    job = life.completed_job(user_id)
    early_thaws: list[BaseException] = []

    def upgrade_and_try_to_thaw(*_args: object, **_kwargs: object) -> None:
        life.upgrade(user_id)
        try:
            life.thaw(job)
        except HotCopiesPending as pending:
            early_thaws.append(pending)

    hooked = Intercept(life.repository, "transition_storage_if_profile_unchanged",
                       after=upgrade_and_try_to_thaw)
    assert life.archive(job, archiver=replace(life.archiver, repository=hooked)) == "archived"

    assert len(early_thaws) == 1, "the thaw must wait while the archiver finishes"
    assert life.job(job).hot_copies_deleted
    assert life.thaw(job) == {job.job_id: "thawed"}
    life.assert_hot_and_intact(job)
    assert not life.job(job).hot_copies_deleted  # reset for the next archive cycle


def test_an_upgrade_before_the_window_ends_keeps_the_results_hot(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str
) -> None:
    life = lifecycle_factory(retention=60)
    job = life.completed_job(user_id)
    life.upgrade(user_id)
    life.clock.advance(61)

    assert life.archive(job) == "skipped"
    life.assert_hot_and_intact(job)


def test_upgrades_and_downgrades_in_any_order_stay_consistent(
    lifecycle_factory: Callable[..., Lifecycle], user_id: str
) -> None:
    life = lifecycle_factory(retention=60)
    job = life.completed_job(user_id)
    life.clock.advance(60)
    assert life.archive(job) == "archived"

    # Upgrade, its event delivered twice: one restore, then hot.
    upgrade = life.change_tier(user_id, Tier.PREMIUM)
    life.restore(upgrade)
    life.restore(upgrade)
    assert life.thaw(job) == {job.job_id: "thawed"}
    life.restore(upgrade)
    life.assert_hot_and_intact(job)

    # Downgrade then upgrade before the new window ends: the archive request finds a
    # premium user and does nothing.
    life.restore(life.change_tier(user_id, Tier.FREE))
    [scheduled] = life.sns.events("job.archive_requested")
    request = ArchiveRequested.model_validate(scheduled)
    life.restore(life.change_tier(user_id, Tier.PREMIUM))
    life.clock.advance(61)
    assert handle_archive_message(request, archiver=life.archiver) == "skipped"
    life.assert_hot_and_intact(job)

    # Downgrade for good: archived one window after the downgrade, not before.
    life.restore(life.change_tier(user_id, Tier.FREE))
    request = ArchiveRequested.model_validate(life.sns.events("job.archive_requested")[-1])
    assert request.due_at > datetime.fromtimestamp(life.clock() + 59, request.due_at.tzinfo)
    assert handle_archive_message(request, archiver=life.archiver) == "delayed"
    life.clock.advance(60)
    assert handle_archive_message(request, archiver=life.archiver) == "archived"
    life.assert_archived(job)

    # And a final upgrade brings it back.
    life.upgrade(user_id)
    assert life.thaw(job) == {job.job_id: "thawed"}
    life.assert_hot_and_intact(job)
