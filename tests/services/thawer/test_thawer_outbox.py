"""The thaw's events are recorded with its state write: a crash right after that write loses
neither `job.restored` nor the re-requested archiving of a user who downgraded meanwhile."""

from __future__ import annotations

from dataclasses import replace

import pytest

from gas_core.jobs import ItemKey, StorageState
from gas_core.outbox import Outbox
from gas_core.settings import Tier
from tests.services.archiver.lifecycle_support import Crash, Intercept, Lifecycle, crash


def test_a_thaw_that_crashed_after_its_hot_write_is_announced_by_the_reconciler(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    life.archive(job)
    life.upgrade(user_id)
    life.change_tier(user_id, Tier.FREE)  # downgraded while the restore ran
    hooked = Intercept(life.repository, "transition_storage", after=crash)

    with pytest.raises(Crash):
        life.thaw(job, thawer=replace(life.thawer, repository=hooked))  # type: ignore[arg-type]
    assert life.job(job).storage is StorageState.HOT
    assert life.sns.events("job.restored") == []

    life.clock.advance(61)
    Outbox(life.repository, life.sns, lambda _topic: "arn:results",  # type: ignore[arg-type]
           clock=life.clock).reconcile()
    assert [e["job_id"] for e in life.sns.events("job.restored")] == [job.job_id]
    assert [e["job_id"] for e in life.sns.events("job.archive_requested")] == [job.job_id]
    assert life.repository.pending_events(ItemKey.of_job(user_id, job.job_id)) == []


def test_the_thaw_events_are_published_once_when_nothing_crashes(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    life.archive(job)
    life.upgrade(user_id)
    life.thaw(job)
    assert len(life.sns.events("job.restored")) == 1
    assert life.repository.pending_events(ItemKey.of_job(user_id, job.job_id)) == []
