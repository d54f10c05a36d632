"""A thaw that waits for another worker, through the real queue loop with production receive
limits: waiting never pushes the job's restore events into the dead-letter queue."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from urllib.parse import quote_plus

import pytest
from prometheus_client import CollectorRegistry

from gas_core.events import S3RestoreNotification
from gas_core.jobs import Job, StorageState
from gas_core.metrics import WorkerMetrics
from gas_core.objects import head_object
from gas_core.settings import Tier
from gas_core.worker import QueueWorker, WorkerConfig
from gas_restorer.handler import RestoreFailed
from tests.services.archiver.lifecycle_support import Crash, Intercept, Lifecycle, crash

MAX_RECEIVE_COUNT = 5  # the deployed queues' redrive policy


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def thawer_queue(life: Lifecycle) -> Iterator[tuple[str, str]]:
    """A queue and its DLQ, redriven after 5 receives as deployed."""
    sqs = life.aws.sqs
    name = f"{life.settings.name_prefix}-thaw{uuid.uuid4().hex[:8]}"
    dlq = sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=name, Attributes={"RedrivePolicy": json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVE_COUNT})})["QueueUrl"]
    life.queues += [url, dlq]
    yield url, dlq


def test_a_thaw_waiting_for_a_crashed_archiver_ends_hot_once_the_archivers_message_returns(
    life: Lifecycle, user_id: str, thawer_queue: tuple[str, str]
) -> None:
    queue_url, dlq_url = thawer_queue
    job = life.completed_job(user_id)
    # The archiver dies right after writing `archived`, before it records hot_copies_deleted.
    dying = Intercept(life.repository, "transition_storage_if_profile_unchanged", after=crash)
    with pytest.raises(Crash):
        life.archive(job, archiver=replace(life.archiver, repository=dying))
    life.upgrade(user_id)
    restoring = life.job(job)
    assert restoring.storage is StorageState.RESTORING and not restoring.hot_copies_deleted

    # S3 finishes the restores and notifies the thawer queue, once per archived object.
    for obj in restoring.archived_objects.values():
        head_object(life.aws.s3, life.archive_bucket, obj.key)
        life.aws.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3",
            "eventName": "ObjectRestore:Completed", "eventTime": "2026-01-01T00:00:00.000Z",
            "s3": {"bucket": {"name": life.archive_bucket},
                   "object": {"key": quote_plus(obj.key), "size": obj.size}}}]}))
    events = len(restoring.archived_objects)

    # The thawer's worker, its back-off far shorter than the archiver's absence (in production
    # 5·2ⁿ s against a 300 s visibility timeout: the same race, compressed).
    registry = CollectorRegistry()
    worker = QueueWorker(
        sqs=life.aws.sqs,
        config=WorkerConfig(service="thawer", queue_name="thawer", queue_url=queue_url,
                            dlq_url=dlq_url, concurrency=2, wait_seconds=1,
                            visibility_seconds=30, retry_base_seconds=0, retry_max_seconds=0),
        parse=S3RestoreNotification.parse,
        handle=replace(life.thawer, hot_copies_wait_seconds=0.5),
        metrics=WorkerMetrics(registry),
    )
    running = threading.Thread(target=worker.run, daemon=True)
    running.start()

    def handled(outcome: str) -> float:
        return registry.get_sample_value(
            "gas_messages_total", {"service": "thawer", "queue": "thawer", "outcome": outcome}
        ) or 0.0

    def dead_letters() -> int:
        attributes = life.aws.sqs.get_queue_attributes(
            QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    try:
        # The events keep arriving for longer than their receives would allow (or, as the
        # old back-off did, they give up into the DLQ).
        waited = MAX_RECEIVE_COUNT * events + 1
        assert wait_for(lambda: handled("deferred") + handled("retry") >= waited
                        or dead_letters() > 0)
        # Only now does the archiver's message come back (its visibility timeout ended).
        life.archive(job)
        assert life.job(job).hot_copies_deleted or life.job(job).storage is StorageState.HOT
        became_hot = wait_for(lambda: life.job(job).storage is StorageState.HOT)
    finally:
        worker.request_stop()
        running.join(30)

    assert became_hot, f"job left {life.job(job).storage} with {dead_letters()} events in the DLQ"
    assert dead_letters() == 0
    life.assert_hot_and_intact(job)


def _notify_thawer(life: Lifecycle, queue_url: str, job: Job) -> int:
    """S3 finishes the job's restores and notifies the queue once per object; how many."""
    for obj in job.archived_objects.values():
        head_object(life.aws.s3, life.archive_bucket, obj.key)
        life.aws.sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"Records": [{
            "eventVersion": "2.1", "eventSource": "aws:s3",
            "eventName": "ObjectRestore:Completed", "eventTime": "2026-01-01T00:00:00.000Z",
            "s3": {"bucket": {"name": life.archive_bucket},
                   "object": {"key": quote_plus(obj.key), "size": obj.size}}}]}))
    return len(job.archived_objects)


def test_a_thaw_waiting_for_a_crashed_restorer_ends_hot_once_the_restorers_message_returns(
    life: Lifecycle, user_id: str, thawer_queue: tuple[str, str]
) -> None:
    queue_url, dlq_url = thawer_queue
    job = life.completed_job(user_id)
    life.archive(job)
    # The restorer requests the restores, then dies before it records `restoring`.
    upgrade = life.change_tier(user_id, Tier.PREMIUM)
    dying = Intercept(life.repository, "transition_storage", before=crash)
    with pytest.raises(RestoreFailed):
        life.restore(upgrade, restorer=replace(life.restorer, repository=dying))
    archived = life.job(job)
    assert archived.storage is StorageState.ARCHIVED
    events = _notify_thawer(life, queue_url, archived)

    registry = CollectorRegistry()
    worker = QueueWorker(
        sqs=life.aws.sqs,
        config=WorkerConfig(service="thawer", queue_name="thawer", queue_url=queue_url,
                            dlq_url=dlq_url, concurrency=2, wait_seconds=1,
                            visibility_seconds=30, retry_base_seconds=0, retry_max_seconds=0),
        parse=S3RestoreNotification.parse,
        handle=replace(life.thawer, restore_not_recorded_wait_seconds=0.5),
        metrics=WorkerMetrics(registry),
    )
    running = threading.Thread(target=worker.run, daemon=True)
    running.start()

    def handled(outcome: str) -> float:
        return registry.get_sample_value(
            "gas_messages_total", {"service": "thawer", "queue": "thawer", "outcome": outcome}
        ) or 0.0

    def dead_letters() -> int:
        attributes = life.aws.sqs.get_queue_attributes(
            QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"])

    try:
        # The events come round more often than their receives would allow (or, as the old
        # retry did, they give up into the DLQ).
        waited = MAX_RECEIVE_COUNT * events + 1
        assert wait_for(lambda: handled("deferred") + handled("retry") >= waited
                        or dead_letters() > 0)
        # Only now does the restorer's message come back (its visibility timeout ended).
        life.restore(upgrade)
        became_hot = wait_for(lambda: life.job(job).storage is StorageState.HOT)
    finally:
        worker.request_stop()
        running.join(30)

    assert became_hot, f"job left {life.job(job).storage} with {dead_letters()} events in the DLQ"
    assert dead_letters() == 0
    life.assert_hot_and_intact(job)
