"""Submit accepts only job ids issued to the caller, records exactly the object it checked, and
refuses assemblies GAS has no reference for; the variant cache is per user and job."""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

from gas_core.aws import AwsClients
from gas_core.jobs import Job, JobRepository, new_job_id
from gas_web.settings import WebSettings
from tests.services.web.conftest import SubmitJob, bearer
from tests.services.web.web_helpers import upload

VCF = (b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
       b"1\t5010\t.\tA\tG\t.\t.\t.\n")


def _create(client: TestClient, user_id: str, **body: str) -> dict[str, object]:
    response = client.post("/api/v1/jobs", json={"file_name": "sample.vcf", **body},
                           headers=bearer(user_id))
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_job_id_issued_to_another_user_cannot_be_submitted(
    client: TestClient, web_aws: AwsClients, web_settings: WebSettings, submit_job: SubmitJob,
    user_id: str, other_user: str
) -> None:
    victims = submit_job(user_id)
    # The emulator holds no POST to its policy: the other user writes under his own prefix
    # with the victim's job id, as a forged upload could.
    web_aws.s3.put_object(Bucket=web_settings.names.inputs_bucket,
                          Key=f"inputs/{other_user}/{victims.job_id}/sample.vcf", Body=VCF)
    response = client.post(f"/api/v1/jobs/{victims.job_id}/submit", headers=bearer(other_user))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    # Indistinguishable from an id nobody was issued.
    unknown = client.post(f"/api/v1/jobs/{new_job_id()}/submit", headers=bearer(other_user))
    assert unknown.status_code == 404 and unknown.json()["detail"] == response.json()["detail"]


def test_a_submitted_job_consumes_its_reservation(
    submit_job: SubmitJob, web_aws: AwsClients, web_settings: WebSettings, user_id: str
) -> None:
    from gas_web.app.uploads import UploadReservations

    job = submit_job(user_id)
    reservations = UploadReservations(web_aws.dynamodb, web_settings.names.table)
    assert reservations.find(user_id, job.job_id) is None


def test_an_expired_reservation_is_refused(
    web_aws: AwsClients, web_settings: WebSettings, user_id: str
) -> None:
    from gas_web.app.uploads import UploadReservations

    now = [time.time()]
    reservations = UploadReservations(web_aws.dynamodb, web_settings.names.table,
                                      clock=lambda: now[0])
    job_id = new_job_id()
    reservations.reserve(user_id=user_id, job_id=job_id, input_key="k", assembly="GRCh38",
                         lifetime_seconds=60)
    assert reservations.find(user_id, job_id) is not None
    now[0] += 61  # DynamoDB's TTL deletes late (the emulator never): expiry is read too
    assert reservations.find(user_id, job_id) is None


def test_submit_records_the_checked_object(
    client: TestClient, web_aws: AwsClients, web_settings: WebSettings,
    repository: JobRepository, user_id: str
) -> None:
    created = _create(client, user_id)
    assert upload(created["upload"], VCF).status_code in (200, 201, 204)  # type: ignore[arg-type]
    job_id = str(created["job_id"])
    head = web_aws.s3.head_object(Bucket=web_settings.names.inputs_bucket,
                                  Key=f"inputs/{user_id}/{job_id}/sample.vcf")
    assert client.post(f"/api/v1/jobs/{job_id}/submit",
                       headers=bearer(user_id)).status_code == 202
    job = repository.get_job(user_id, job_id)
    assert (job.input_etag, job.input_bytes) == (head["ETag"], len(VCF))
    assert job.input_version_id == head.get("VersionId")
    # The upload URL still works: a different file posted to the same key afterwards is not
    # the one the job names (the annotator reads only the recorded object).
    swapped = VCF.replace(b"A\tG", b"A\tT")
    assert upload(created["upload"], swapped).status_code in (200, 201, 204)  # type: ignore[arg-type]
    assert client.post(f"/api/v1/jobs/{job_id}/submit",
                       headers=bearer(user_id)).status_code == 202
    assert repository.get_job(user_id, job_id).input_etag == head["ETag"]
    now = web_aws.s3.head_object(Bucket=web_settings.names.inputs_bucket,
                                 Key=f"inputs/{user_id}/{job_id}/sample.vcf")
    assert now["ETag"] != head["ETag"]


def test_upload_urls_expire_within_fifteen_minutes_by_default(
    client: TestClient, user_id: str
) -> None:
    assert WebSettings.model_fields["upload_url_seconds"].default == 15 * 60
    policy = _create(client, user_id)["upload"]["fields"]["policy"]  # type: ignore[index]
    expiration = datetime.fromisoformat(json.loads(base64.b64decode(policy))["expiration"])
    assert (expiration - datetime.now(UTC)).total_seconds() <= 15 * 60


def test_an_unknown_assembly_is_refused_at_submit(
    client: TestClient, repository: JobRepository, user_id: str
) -> None:
    created = _create(client, user_id)
    post = dict(created["upload"])  # type: ignore[call-overload]
    post["fields"] = {**post["fields"], "x-amz-meta-assembly": "hg19"}
    assert upload(post, VCF).status_code in (200, 201, 204)
    response = client.post(f"/api/v1/jobs/{created['job_id']}/submit", headers=bearer(user_id))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    detail = response.json()["detail"]
    assert "hg19" in detail and "GRCh38" in detail and "\n" not in detail
    assert list(repository.iter_jobs(user_id)) == []


def test_an_unknown_assembly_is_refused_when_the_upload_is_created(
    client: TestClient, user_id: str
) -> None:
    response = client.post("/api/v1/jobs", json={"file_name": "a.vcf", "assembly": "hg19"},
                           headers=bearer(user_id))
    assert response.status_code == 422 and "hg19" in response.json()["detail"]


def _parquet(path: Path, gene: str) -> Path:
    duckdb.sql(f"COPY (SELECT '1' AS chrom, 100 AS pos, 'A' AS ref, 'G' AS alt, "
               f"'{gene}' AS gene, 'T1' AS transcript, NULL AS protein_change, "
               "NULL AS known_id, "
               f"'{gene.lower()}_term' AS consequence, 'LOW' AS impact, "
               f"'{gene.lower()}_clinvar' AS clinvar) "
               f"TO '{path}' (FORMAT PARQUET)")
    return path


def test_another_users_cached_rows_are_never_shown_for_the_same_job_id(
    client: TestClient, web_aws: AwsClients, web_settings: WebSettings,
    repository: JobRepository, shared_completed_job: Job, other_user: str, tmp_path: Path
) -> None:
    victim = shared_completed_job
    store = client.app.state.variants  # type: ignore[attr-defined]
    mine = client.get(f"/api/v1/jobs/{victim.job_id}/variants", headers=bearer(victim.user_id))
    assert mine.status_code == 200 and mine.json()["total"] > 1  # now in the web's cache
    victims_options = store.filter_options(victim)
    victims_summary = client.get(f"/api/v1/jobs/{victim.job_id}/variants/summary",
                                 headers=bearer(victim.user_id)).json()
    # Another user's job with the same id (ids are unique per user only), and its own rows.
    key = f"results/{other_user}/{victim.job_id}/out.parquet"
    web_aws.s3.upload_file(str(_parquet(tmp_path / "theirs.parquet", "THEIRS")),
                           web_settings.names.results_bucket, key)
    theirs = repository.create_job(Job(user_id=other_user, job_id=victim.job_id,
                                       input_file_name="x.vcf",
                                       input_key=f"inputs/{other_user}/{victim.job_id}/x.vcf"))
    leased = repository.claim_lease(theirs, owner="test", ttl_seconds=60)
    theirs = repository.complete_job(leased.user_id, leased.job_id, owner="test", summary={},
                                     result_keys={"parquet": key})
    response = client.get(f"/api/v1/jobs/{victim.job_id}/variants", headers=bearer(other_user))
    assert response.status_code == 200
    assert [row["gene"] for row in response.json()["items"]] == ["THEIRS"]
    assert store.filter_options(theirs)["consequence"] == ["theirs_term"]
    assert store.filter_options(victim) == victims_options
    summary = client.get(f"/api/v1/jobs/{victim.job_id}/variants/summary",
                         headers=bearer(other_user)).json()
    assert [g["gene"] for g in summary["genes"]] == ["THEIRS"]
    assert summary != victims_summary
    again = client.get(f"/api/v1/jobs/{victim.job_id}/variants", headers=bearer(victim.user_id))
    assert again.json()["total"] == mine.json()["total"]


def test_a_file_replaced_while_it_is_checked_is_refused(
    client: TestClient, web_aws: AwsClients, repository: JobRepository, user_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    created = _create(client, user_id)
    assert upload(created["upload"], VCF).status_code in (200, 201, 204)  # type: ignore[arg-type]
    measured = web_aws.s3.head_object

    def head_then_replaced(**kwargs: Any) -> Any:
        # The object measured is not the one read next: re-posted in between.
        answer = measured(**kwargs)
        upload(created["upload"], VCF + b"1\t5020\t.\tC\tT\t.\t.\t.\n")  # type: ignore[arg-type]
        return answer

    monkeypatch.setattr(web_aws.s3, "head_object", head_then_replaced)
    response = client.post(f"/api/v1/jobs/{created['job_id']}/submit", headers=bearer(user_id))
    assert response.status_code == 409
    assert list(repository.iter_jobs(user_id)) == []
