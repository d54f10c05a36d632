"""A PENDING job's JSON says where it is in the queue and when it should start and finish;
any other job says null. Only a count of other users' jobs is ever shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from gas_cli.infra import Infrastructure
from gas_core.jobs import Job, JobRepository, new_job_id
from gas_web.settings import WebSettings
from tests.services.web.conftest import FREE_MAX, PREMIUM_MAX, bearer
from tests.services.web.test_isolation import dev_login
from tests.support import emulator_settings


@pytest.fixture(scope="module")
def web_settings(moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> WebSettings:
    """A table of this module's own: the queue is every user's, so the shared table's other
    PENDING jobs would count. Two annotators at once."""
    settings: WebSettings = emulator_settings(
        moto_endpoint, cls=WebSettings, auth_mode="dev", free_max_upload_bytes=FREE_MAX,
        premium_max_upload_bytes=PREMIUM_MAX, web_cache_dir=tmp_path_factory.mktemp("cache"),
        annotator_slots=2,
    )
    Infrastructure(settings).apply()
    return settings


def queued(repository: JobRepository, user_id: str, at: datetime, size: int = 1_000) -> Job:
    job_id = new_job_id()
    return repository.create_job(Job(
        user_id=user_id, job_id=job_id, input_file_name="in.vcf", input_bytes=size,
        input_key=f"inputs/{user_id}/{job_id}/in.vcf", submitted_at=at,
    ))


def read(client: TestClient, user_id: str, job: Job) -> dict[str, object]:
    response = client.get(f"/api/v1/jobs/{job.job_id}", headers=bearer(user_id))
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def test_a_pending_job_shows_its_queue_position_and_eta_from_recent_throughput(
    client: TestClient, repository: JobRepository, user_id: str, other_user: str
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    theirs = [queued(repository, other_user, start + timedelta(seconds=i)) for i in range(3)]
    mine = queued(repository, user_id, start + timedelta(seconds=10), size=4_000)

    body = read(client, user_id, mine)
    assert body["status"] == "PENDING"
    assert body["queue_position"] == 3
    # No job has completed yet: nothing to estimate from.
    assert body["eta"] is None
    # Only a number: nothing of the other user's jobs.
    text = str(body)
    assert other_user not in text and not any(job.job_id in text for job in theirs)

    # Recent jobs took 60 s for 2,000 bytes: 3 jobs ahead on 2 annotators, then 4,000 bytes.
    assert repository.record_completed_job(seconds=60.0, input_bytes=2_000, variants=100)
    before = datetime.now(UTC)
    body = read(client, user_id, mine)
    eta = body["eta"]
    assert isinstance(eta, dict)
    began = datetime.fromisoformat(eta["start"])
    finish = datetime.fromisoformat(eta["finish"])
    assert began - before >= timedelta(seconds=90 - 1)
    assert began - before <= timedelta(seconds=90 + 30)
    assert finish - began == timedelta(seconds=120)

    # One of the jobs ahead starts and another fails: they leave the queue.
    repository.claim_lease(theirs[0], owner="worker-1", ttl_seconds=60)
    repository.fail_job(other_user, theirs[1].job_id, reason="not a VCF")
    assert read(client, user_id, mine)["queue_position"] == 1


def test_a_job_that_is_not_pending_has_no_queue_position_or_eta(
    client: TestClient, repository: JobRepository, user_id: str
) -> None:
    job = queued(repository, user_id, datetime.now(UTC))
    running = repository.claim_lease(job, owner="worker-1", ttl_seconds=60)
    body = read(client, user_id, running)
    assert body["status"] == "RUNNING"
    assert body["queue_position"] is None and body["eta"] is None


def test_another_users_pending_job_is_not_found(
    client: TestClient, repository: JobRepository, user_id: str, other_user: str
) -> None:
    job = queued(repository, other_user, datetime.now(UTC))
    response = client.get(f"/api/v1/jobs/{job.job_id}", headers=bearer(user_id))
    assert response.status_code == 404


def test_the_job_page_has_a_place_for_the_queue_position_while_pending(
    client: TestClient, repository: JobRepository, user_id: str
) -> None:
    job = queued(repository, user_id, datetime.now(UTC))
    dev_login(client, user_id)
    page = client.get(f"/jobs/{job.job_id}")
    client.cookies.clear()
    assert page.status_code == 200
    assert 'id="queue-info"' in page.text
    script = client.get("/static/job.js").text
    assert "queue_position" in script and "estimated start" in script
