"""A submit records `job.requested` with the PENDING job: a crash between the write and the
publish loses nothing (the reconciler, or the client's retry, publishes it)."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from fastapi.testclient import TestClient

from gas_core.aws import AwsClients
from gas_core.jobs import ItemKey, JobRepository
from gas_core.outbox import Outbox
from gas_core.resources import Topic
from tests.services.web.conftest import bearer
from tests.services.web.test_api_jobs import VCF
from tests.services.web.web_helpers import upload


@pytest.fixture
def requests_for(web_aws: AwsClients) -> Iterator[Callable[[str], list[dict[str, Any]]]]:
    """`job.requested` bodies published from now on for one user (a queue of this test's own:
    the annotator's queue holds every other test's requests too)."""
    sqs, sns = web_aws.sqs, web_aws.sns
    url = sqs.create_queue(QueueName=f"submit-outbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    subscription = sns.subscribe(TopicArn=web_aws.topic_arn(Topic.JOB_REQUESTS), Protocol="sqs",
                                 Endpoint=arn, Attributes={"RawMessageDelivery": "true"},
                                 ReturnSubscriptionArn=True)["SubscriptionArn"]

    def received(user_id: str) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=0).get("Messages", []):
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        return [body for body in bodies if body.get("user_id") == user_id]

    yield received
    sns.unsubscribe(SubscriptionArn=subscription)
    sqs.delete_queue(QueueUrl=url)


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
    monkeypatch: pytest.MonkeyPatch, requests_for: Callable[[str], list[dict[str, Any]]],
) -> None:
    job_id = _uploaded_job(client, user_id)
    _submit_while_publish_crashes(client, web_aws, user_id, job_id, monkeypatch)
    assert requests_for(user_id) == []
    assert len(repository.pending_events(ItemKey.of_job(user_id, job_id))) == 1

    later = time.time() + 61  # past the grace the submitting process had to publish
    Outbox(repository, web_aws.sns, web_aws.topic_arn, clock=lambda: later).reconcile()
    [event] = requests_for(user_id)
    assert event["type"] == "job.requested" and event["job_id"] == job_id
    assert repository.pending_events(ItemKey.of_job(user_id, job_id)) == []


def test_a_retried_submit_announces_the_request_the_crashed_attempt_recorded(
    client: TestClient, web_aws: AwsClients, repository: JobRepository, user_id: str,
    monkeypatch: pytest.MonkeyPatch, requests_for: Callable[[str], list[dict[str, Any]]],
) -> None:
    job_id = _uploaded_job(client, user_id)
    _submit_while_publish_crashes(client, web_aws, user_id, job_id, monkeypatch)
    again = client.post(f"/api/v1/jobs/{job_id}/submit", headers=bearer(user_id))
    assert again.status_code == 202
    assert [e["job_id"] for e in requests_for(user_id)] == [job_id]
    assert repository.pending_events(ItemKey.of_job(user_id, job_id)) == []
