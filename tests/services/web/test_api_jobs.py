"""The jobs API: uploads bound to user and job, checked submits, listing, reading."""

from __future__ import annotations

import json

import httpx
import pytest
from fastapi.testclient import TestClient

from gas_core.aws import AwsClients
from gas_core.jobs import JobRepository
from gas_core.resources import Queue
from gas_web.settings import WebSettings
from tests.services.web.conftest import FREE_MAX, PREMIUM_MAX, SubmitJob, bearer
from tests.services.web.web_helpers import upload

VCF = (b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       b"1\t5010\t.\tA\tG\t.\t.\t.\n")


def _drain_requests(aws: AwsClients, user_id: str) -> list[dict[str, object]]:
    """JobRequested messages for this user on the annotator queue (others' are put back)."""
    found = []
    others = []
    url = aws.queue_url(Queue.ANNOTATOR)
    # Others' messages stay invisible until the whole queue has been seen (released at once
    # at the end), so a queue holding many of them is still read through.
    for _ in range(100):
        messages = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           VisibilityTimeout=60,
                                           WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            break
        for message in messages:
            body = json.loads(message["Body"])
            if body.get("user_id") == user_id:
                found.append(body)
                aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                others.append(message["ReceiptHandle"])
    for handle in others:
        aws.sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handle,
                                          VisibilityTimeout=0)
    return found


def test_given_a_new_job_when_created_then_the_presigned_post_is_bound_to_user_and_job(
    client: TestClient, user_id: str
) -> None:
    response = client.post("/api/v1/jobs", json={"file_name": "../../My Sample (1).vcf.gz"},
                           headers=bearer(user_id))
    assert response.status_code == 201
    body = response.json()
    assert body["max_bytes"] == FREE_MAX
    assert body["file_name"] == "My_Sample_1_.vcf.gz"
    key = body["upload"]["fields"]["key"]
    assert key == f"inputs/{user_id}/{body['job_id']}/My_Sample_1_.vcf.gz"
    assert set(body["upload"]["fields"]) >= {"key", "policy", "x-amz-signature"}


@pytest.mark.parametrize("name", ["notes.txt", ".vcf", "archive.zip", "x.vcf.exe"])
def test_a_file_that_is_not_a_vcf_is_refused_at_creation(
    client: TestClient, user_id: str, name: str
) -> None:
    response = client.post("/api/v1/jobs", json={"file_name": name}, headers=bearer(user_id))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert "VCF" in response.json()["detail"]


def test_given_an_upload_when_submitted_then_the_job_is_pending_and_announced(
    client: TestClient, web_aws: AwsClients, repository: JobRepository, user_id: str
) -> None:
    created = client.post("/api/v1/jobs", json={"file_name": "a.vcf", "assembly": "GRCh38"},
                          headers=bearer(user_id)).json()
    assert upload(created["upload"], VCF).status_code == 204
    response = client.post(f"/api/v1/jobs/{created['job_id']}/submit", headers=bearer(user_id))
    assert response.status_code == 202
    job = response.json()
    assert job["status"] == "PENDING" and job["storage"] == "hot"
    assert job["input_file_name"] == "a.vcf" and job["assembly"] == "GRCh38"
    stored = repository.get_job(user_id, created["job_id"])
    assert stored.input_bytes == len(VCF) and stored.user_tier == "free"
    [event] = _drain_requests(web_aws, user_id)
    assert event["type"] == "job.requested" and event["job_id"] == created["job_id"]
    assert event["input_key"] == created["upload"]["fields"]["key"]


def test_submitting_twice_returns_the_same_job(
    client: TestClient, submit_job: SubmitJob, user_id: str
) -> None:
    job = submit_job(user_id, content=VCF, file_name="a.vcf")
    again = client.post(f"/api/v1/jobs/{job.job_id}/submit", headers=bearer(user_id))
    assert again.status_code == 202 and again.json()["job_id"] == job.job_id


def test_given_an_oversize_upload_when_submitted_then_it_is_refused_and_deleted(
    client: TestClient, web_aws: AwsClients, web_settings: WebSettings,
    repository: JobRepository, user_id: str,
) -> None:
    created = client.post("/api/v1/jobs", json={"file_name": "big.vcf"},
                          headers=bearer(user_id)).json()
    # The emulator ignores the POST policy's content-length-range, like a policy bug would.
    assert upload(created["upload"], VCF + b"#" * FREE_MAX).status_code == 204
    response = client.post(f"/api/v1/jobs/{created['job_id']}/submit", headers=bearer(user_id))
    assert response.status_code == 413
    problem = response.json()
    assert problem["max_bytes"] == FREE_MAX and "free account accepts" in problem["detail"]
    listing = web_aws.s3.list_objects_v2(Bucket=web_settings.names.inputs_bucket,
                                         Prefix=f"inputs/{user_id}/")
    assert listing.get("KeyCount", 0) == 0
    assert repository.list_jobs(user_id).items == []


def test_a_premium_user_may_submit_what_a_free_user_may_not(
    client: TestClient, repository: JobRepository, user_id: str
) -> None:
    client.post("/api/v1/me/tier", json={"tier": "premium"}, headers=bearer(user_id))
    created = client.post("/api/v1/jobs", json={"file_name": "big.vcf"},
                          headers=bearer(user_id)).json()
    assert created["max_bytes"] == PREMIUM_MAX
    upload(created["upload"], VCF + b"#" * FREE_MAX)
    response = client.post(f"/api/v1/jobs/{created['job_id']}/submit", headers=bearer(user_id))
    assert response.status_code == 202
    assert repository.get_job(user_id, created["job_id"]).user_tier == "premium"


def test_submit_without_an_upload_is_not_found(client: TestClient, user_id: str) -> None:
    created = client.post("/api/v1/jobs", json={"file_name": "a.vcf"},
                          headers=bearer(user_id)).json()
    response = client.post(f"/api/v1/jobs/{created['job_id']}/submit", headers=bearer(user_id))
    assert response.status_code == 404
    assert "upload" in response.json()["detail"]


@pytest.mark.parametrize(("name", "content"), [
    ("a.vcf", b"this is not a vcf\n"),
    ("a.vcf.gz", VCF),  # claims gzip, is plain text
])
def test_submit_refuses_content_that_is_not_vcf(
    client: TestClient, user_id: str, name: str, content: bytes
) -> None:
    created = client.post("/api/v1/jobs", json={"file_name": name},
                          headers=bearer(user_id)).json()
    upload(created["upload"], content)
    response = client.post(f"/api/v1/jobs/{created['job_id']}/submit", headers=bearer(user_id))
    assert response.status_code == 422
    assert "does not look like a VCF" in response.json()["detail"]


def test_a_presigned_post_of_one_user_cannot_be_submitted_by_another(
    client: TestClient, user_id: str, other_user: str
) -> None:
    created = client.post("/api/v1/jobs", json={"file_name": "a.vcf"},
                          headers=bearer(user_id)).json()
    upload(created["upload"], VCF)
    response = client.post(f"/api/v1/jobs/{created['job_id']}/submit", headers=bearer(other_user))
    # The other user's prefix has no such upload: nothing to submit, nothing disclosed.
    assert response.status_code == 404
    assert client.get(f"/api/v1/jobs/{created['job_id']}",
                      headers=bearer(other_user)).status_code == 404


def test_jobs_are_listed_newest_first_with_cursor_pagination(
    client: TestClient, submit_job: SubmitJob, user_id: str
) -> None:
    ids = [submit_job(user_id, content=VCF, file_name=f"f{i}.vcf").job_id for i in range(5)]
    seen: list[str] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/jobs", params=params, headers=bearer(user_id)).json()
        seen += [item["job_id"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    assert pages in (3, 4)  # DynamoDB may return an empty last page


def test_a_bad_cursor_is_a_problem_not_a_crash(client: TestClient, user_id: str) -> None:
    response = client.get("/api/v1/jobs", params={"cursor": "bm9wZQ"}, headers=bearer(user_id))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


def test_a_job_reads_as_the_contract_says(
    client: TestClient, submit_job: SubmitJob, user_id: str
) -> None:
    job = submit_job(user_id, content=VCF, file_name="a.vcf")
    body = client.get(f"/api/v1/jobs/{job.job_id}", headers=bearer(user_id)).json()
    assert set(body) >= {"job_id", "status", "storage", "input_file_name", "assembly",
                         "submitted_at", "started_at", "completed_at", "progress", "error",
                         "summary"}
    assert body["submitted_at"].endswith("Z") and body["started_at"] is None
    assert body["error"] is None and body["summary"] is None


def test_an_unknown_or_malformed_job_id_is_404(client: TestClient, user_id: str) -> None:
    for job_id in ("01JAAAAAAAAAAAAAAAAAAAAAAA", "not-a-job", "..%2F..%2Fetc"):
        response = client.get(f"/api/v1/jobs/{job_id}", headers=bearer(user_id))
        assert response.status_code == 404, job_id


def test_the_upload_really_reaches_the_inputs_bucket(
    client: TestClient, web_aws: AwsClients, web_settings: WebSettings, user_id: str
) -> None:
    created = client.post("/api/v1/jobs", json={"file_name": "a.vcf"},
                          headers=bearer(user_id)).json()
    upload(created["upload"], VCF)
    obj = web_aws.s3.get_object(Bucket=web_settings.names.inputs_bucket,
                                Key=created["upload"]["fields"]["key"])
    assert obj["Body"].read() == VCF
    assert obj["Metadata"] == {"assembly": "GRCh38"}


def test_the_inputs_bucket_answers_browser_uploads_from_the_web_origin_only(
    web_settings: WebSettings,
) -> None:
    """CORS on the inputs bucket (made by `gas infra apply`): what lets the browser upload."""
    url = f"{web_settings.aws_endpoint_url}/{web_settings.names.inputs_bucket}"
    ok = httpx.options(url, headers={"Origin": web_settings.web_base_url,
                                     "Access-Control-Request-Method": "POST"})
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == web_settings.web_base_url
    refused = httpx.options(url, headers={"Origin": "http://evil.example",
                                          "Access-Control-Request-Method": "POST"})
    assert refused.status_code == 403

