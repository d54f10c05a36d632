"""A PENDING job's page in real headless Chromium against the real local stack says where the
job is in the queue and when it should start and finish (job.js, from the job JSON's
queue_position and eta), and says nothing of the kind once the job has left the queue.

Screenshots go to test-artifacts/browser-queue/ (gitignored).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from gas_core.jobs import Job, JobRepository, new_job_id
from tests.browser.local_stack import LocalStack
from tests.browser.test_web_flow import Visit
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser-queue"
# Queued long ago, so no job another test submits now counts before these.
QUEUED_AT = datetime(2001, 1, 1, tzinfo=UTC) + timedelta(minutes=uuid.uuid4().int % 100_000)



def queued(repository: JobRepository, user_id: str, seconds: int) -> Job:
    """A PENDING job with no job.requested sent: no annotator takes it while the test runs."""
    job_id = new_job_id()
    return repository.create_job(Job(
        user_id=user_id, job_id=job_id, input_file_name="waiting.vcf", input_bytes=10_000,
        input_key=f"inputs/{user_id}/{job_id}/waiting.vcf",
        submitted_at=QUEUED_AT + timedelta(seconds=seconds),
    ))


def test_a_pending_jobs_page_shows_its_queue_position_and_estimated_times(
    stack: LocalStack, browser: Any, artifacts: Path
) -> None:
    repository = stack.repository
    user = "queue-" + uuid.uuid4().hex[:6]
    others = [queued(repository, f"someone-{uuid.uuid4().hex[:6]}", i) for i in range(2)]
    mine = queued(repository, user, 10)
    # At least one completed job to estimate from, whatever else this stack has run.
    assert repository.record_completed_job(seconds=90.0, input_bytes=10_000, variants=500)
    visit = Visit(browser, stack, artifacts, "queue", locale="en-GB", timezone_id="UTC")
    page = visit.page
    try:
        visit.sign_in(user)
        page.goto(f"/jobs/{mine.job_id}")
        info = page.wait_for_selector("#queue-info:not([hidden])")
        assert info is not None
        assert re.fullmatch(r"Position 3 in the queue, estimated start ~\d\d:\d\d, "
                            r"finish ~\d\d:\d\d", info.inner_text()), info.inner_text()
        for other in others:
            assert other.user_id not in page.content()
        visit.shot("pending")

        # The jobs ahead leave the queue: the page follows on its next poll.
        for other in others:
            repository.fail_job(other.user_id, other.job_id, reason="test")
        page.locator("#queue-info", has_text=re.compile(r"^Position 1 in the queue")).wait_for()
        visit.shot("next")
        assert not visit.problems, visit.problems
    finally:
        for job in [*others, mine]:
            if not repository.get_job(job.user_id, job.job_id).is_finished:
                repository.fail_job(job.user_id, job.job_id, reason="test over")
        visit.context.close()
