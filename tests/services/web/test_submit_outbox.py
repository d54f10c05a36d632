"""A submit records `job.requested` with the PENDING job: a crash between the write and the
publish loses nothing (the reconciler, or the client's retry, publishes it)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from fastapi.testclient import TestClient

from gas_core.aws import AwsClients
from gas_core.jobs import ItemKey, JobRepository
from gas_core.outbox import Outbox
from tests.services.web.conftest import bearer
from tests.services.web.test_api_jobs import VCF, _drain_requests
from tests.services.web.web_helpers import upload


def _uploaded_job(client: TestClient, user_id: str) -> str:
    created = client.post("/api/v1/jobs", json={"file_name": "a.vcf"},
                          headers=bearer(user_id)).json()
    assert upload(created["upload"], VCF).status_code == 204
    return str(created["job_id"])


def _submit_while_publish_crashes(
    client: TestClient, web_aws: AwsClients, user_id: str, job_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def crash(**_: Any) -> Any:
        # SNS unreachable: as if the process died before its publish got out.
        raise EndpointConnectionError(endpoint_url="https://sns.example")

    with monkeypatch.context() as patch:
        patch.setattr(web_aws.sns, "publish", crash)
        response = client.post(f"/api/v1/jobs/{job_id}/submit", headers=bearer(user_id))
    # The job and its request are durable: the submit succeeded.
    assert response.status_code == 202, response.text


def test_a_submit_whose_publish_crashed_is_announced_by_the_reconciler(
    client: TestClient, web_aws: AwsClients, repository: JobRepository, user_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = _uploaded_job(client, user_id)
    _submit_while_publish_crashes(client, web_aws, user_id, job_id, monkeypatch)
    assert _drain_requests(web_aws, user_id) == []
    assert len(repository.pending_events(ItemKey.of_job(user_id, job_id))) == 1

    later = time.time() + 61  # past the grace the submitting process had to publish
    Outbox(repository, web_aws.sns, web_aws.topic_arn, clock=lambda: later).reconcile()
    [event] = _drain_requests(web_aws, user_id)
    assert event["type"] == "job.requested" and event["job_id"] == job_id
    assert repository.pending_events(ItemKey.of_job(user_id, job_id)) == []


def test_a_retried_submit_announces_the_request_the_crashed_attempt_recorded(
    client: TestClient, web_aws: AwsClients, repository: JobRepository, user_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job_id = _uploaded_job(client, user_id)
    _submit_while_publish_crashes(client, web_aws, user_id, job_id, monkeypatch)
    again = client.post(f"/api/v1/jobs/{job_id}/submit", headers=bearer(user_id))
    assert again.status_code == 202
    assert [e["job_id"] for e in _drain_requests(web_aws, user_id)] == [job_id]
    assert repository.pending_events(ItemKey.of_job(user_id, job_id)) == []
