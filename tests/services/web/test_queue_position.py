"""A PENDING job's JSON says where it is in the queue and when it should start and finish;
any other job says null. Only a count of other users' jobs is ever shown."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gas_cli.infra import Infrastructure
from gas_core.aws import AwsClients
from gas_core.jobs import Job, JobRepository, new_job_id
from gas_core.resources import QUEUE_INDEX
from gas_web.settings import WebSettings
from tests.services.web.conftest import FREE_MAX, PREMIUM_MAX, bearer
from tests.services.web.test_isolation import dev_login
from tests.services.web.web_helpers import upload
from tests.support import emulator_settings

VCF = (b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       b"1\t5010\t.\tA\tG\t.\t.\t.\n")


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


@contextmanager
def queue_queries(aws: AwsClients) -> Iterator[list[dict[str, Any]]]:
    """Every Query of the queue index made through this client inside the block."""
    seen: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        if params.get("IndexName") == QUEUE_INDEX.name:
            seen.append(params)

    event = "provide-client-params.dynamodb.Query"
    aws.dynamodb.meta.events.register(event, record)
    try:
        yield seen
    finally:
        aws.dynamodb.meta.events.unregister(event, record)


def test_the_job_list_gives_each_pending_job_its_queue_position_and_eta_in_one_query(
    client: TestClient, repository: JobRepository, web_aws: AwsClients, user_id: str,
    other_user: str,
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    queued(repository, other_user, start)
    mine = [queued(repository, user_id, start + timedelta(seconds=i + 1)) for i in range(3)]
    queued(repository, other_user, start + timedelta(seconds=2, milliseconds=500))
    running = repository.claim_lease(queued(repository, user_id, start), owner="w",
                                     ttl_seconds=60)
    assert repository.record_completed_job(seconds=30.0, input_bytes=1_000, variants=10)
    # What each job's own GET says (other tests' PENDING jobs of this table count too).
    single = {job.job_id: read(client, user_id, job) for job in [*mine, running]}

    with queue_queries(web_aws) as queries:
        response = client.get("/api/v1/jobs", params={"limit": 100}, headers=bearer(user_id))
    assert response.status_code == 200, response.text
    listed = {item["job_id"]: item for item in response.json()["items"]}
    assert len(queries) == 1
    positions = [listed[job.job_id]["queue_position"] for job in mine]
    assert positions == [single[job.job_id]["queue_position"] for job in mine]
    # The other user's job between mine counts; mine count each other.
    assert positions[1] == positions[0] + 1 and positions[2] == positions[1] + 2
    for job in mine:
        eta, alone = listed[job.job_id]["eta"], single[job.job_id]["eta"]
        assert isinstance(eta, dict) and isinstance(alone, dict)
        assert abs(datetime.fromisoformat(eta["start"])
                   - datetime.fromisoformat(alone["start"])) < timedelta(seconds=30)
    assert listed[running.job_id]["queue_position"] is None
    assert listed[running.job_id]["eta"] is None
    assert other_user not in response.text


def test_the_jobs_page_shows_a_pending_jobs_place_in_the_queue(
    client: TestClient, repository: JobRepository, user_id: str
) -> None:
    job = queued(repository, user_id, datetime.now(UTC))
    position = read(client, user_id, job)["queue_position"]
    assert isinstance(position, int)
    dev_login(client, user_id)
    page = client.get("/jobs")
    client.cookies.clear()
    assert page.status_code == 200
    row = page.text.split(f'data-job-id="{job.job_id}"')[1].split("</tr>")[0]
    assert f"position {position + 1}" in row


def test_the_submit_response_gives_the_new_jobs_queue_position(
    client: TestClient, user_id: str
) -> None:
    created = client.post("/api/v1/jobs", json={"file_name": "a.vcf"},
                          headers=bearer(user_id)).json()
    assert upload(created["upload"], VCF).status_code == 204
    response = client.post(f"/api/v1/jobs/{created['job_id']}/submit", headers=bearer(user_id))
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["status"] == "PENDING"
    assert isinstance(body["queue_position"], int)
    assert body["queue_position"] == read_id(client, user_id, created["job_id"])["queue_position"]


def read_id(client: TestClient, user_id: str, job_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/jobs/{job_id}", headers=bearer(user_id))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_a_listed_job_deeper_than_the_count_limit_shows_the_limit_as_a_single_read_does(
    client: TestClient, repository: JobRepository, user_id: str, other_user: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("gas_core.jobs.queue.QUEUE_COUNT_LIMIT", 2)
    start = datetime.now(UTC) - timedelta(minutes=1)
    for i in range(3):
        queued(repository, other_user, start + timedelta(seconds=i))
    mine = queued(repository, user_id, start + timedelta(seconds=5))
    response = client.get("/api/v1/jobs", params={"limit": 100}, headers=bearer(user_id))
    [listed] = [item for item in response.json()["items"] if item["job_id"] == mine.job_id]
    assert listed["queue_position"] == read(client, user_id, mine)["queue_position"] == 2
