"""A restore's `job.restored` event delivered late, after the job's next restore was requested.

Found by the chaos test: the notifier died while handling restore #1's event and the message
came back after restore #2 had been requested. The email marker must name the restore the
event is about (carried in the event), not the job's latest one, or restore #2's email is lost.
"""

from __future__ import annotations

from gas_archiver.handler import handle_archive_message
from gas_core.events import ArchiveRequested, JobRestored
from gas_core.jobs import Job
from gas_core.settings import Tier
from tests.services.archiver.lifecycle_support import Lifecycle


def _archive_again(life: Lifecycle, job: Job) -> None:
    """Downgrade: archived at once (retention 0)."""
    life.restore(life.change_tier(job.user_id, Tier.FREE))
    request = ArchiveRequested.model_validate(life.sns.events("job.archive_requested")[-1])
    assert handle_archive_message(request, archiver=life.archiver) == "archived"


def _request_restore(life: Lifecycle, job: Job) -> None:
    """Upgrade an hour later: a new restore, requested at its own time."""
    life.clock.advance(3600)
    life.upgrade(job.user_id)


def _thaw(life: Lifecycle, job: Job) -> JobRestored:
    """Complete the restore; returns the `job.restored` event the thawer published."""
    assert life.thaw(job) == {job.job_id: "thawed"}
    return JobRestored.model_validate(life.sns.events("job.restored")[-1])


def test_a_restore_event_delivered_after_the_next_restore_was_requested_still_sends_both_emails(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)  # a free user's
    assert life.archive(job) == "archived"
    _request_restore(life, job)
    first = _thaw(life, job)
    # The notifier is killed handling `first`: nothing sent; the message comes back later...
    _archive_again(life, job)
    _request_restore(life, job)  # ...after restore #2 was requested.

    assert life.notify(first) == "sent"  # restore #1's email
    second = _thaw(life, job)
    assert life.notify(second) == "sent"  # restore #2's own email, not a "duplicate"
    assert life.notify(first) == "duplicate"
    assert life.notify(second) == "duplicate"

    subjects = [e["Message"]["Subject"]["Data"] for e in life.ses.sent]
    assert subjects == ["Your GAS results for sample.vcf.gz are available again"] * 2
