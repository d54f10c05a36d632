"""The worker's run-to-completion mode, used by the annotator as a KEDA ScaledJob pod.

GAS_WORKER_MAX_MESSAGES=1 and GAS_WORKER_EXIT_WHEN_IDLE=true: the pod handles one message and
exits; a pod that finds the queue empty exits too, so its Job completes.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from gas_core.aws import AwsClients
from gas_core.metrics import WorkerMetrics
from gas_core.resources import Queue
from gas_core.service import build_worker
from gas_core.settings import GasSettings, WorkerSettings
from gas_core.worker import MessageContext, QueueWorker, WorkerConfig
from tests.support import emulator_settings


class Ping(BaseModel):
    job_id: str


def make_queue(aws: AwsClients) -> tuple[str, str, str]:
    name = "jm-" + uuid.uuid4().hex[:10]
    dlq = aws.sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    url = aws.sqs.create_queue(QueueName=name)["QueueUrl"]
    return name, url, dlq


def run_in_thread(worker: QueueWorker[Any]) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def visible(aws: AwsClients, url: str) -> int:
    attrs = aws.sqs.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(
        attrs["ApproximateNumberOfMessagesNotVisible"])


def test_a_job_pod_handles_one_message_and_then_returns_leaving_the_rest_queued(
    aws: AwsClients,
) -> None:
    # Given two messages and a worker limited to one (concurrency would allow two)
    name, url, dlq = make_queue(aws)
    for _ in range(2):
        aws.sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": uuid.uuid4().hex}))
    handled: list[str] = []
    busy: list[bool] = []

    def handle(message: Ping, context: MessageContext) -> None:
        time.sleep(0.3)
        assert not context.stopping.is_set(), "the job must not look like a shutdown"
        handled.append(message.job_id)

    registry = CollectorRegistry()
    worker = QueueWorker(
        sqs=aws.sqs,
        config=WorkerConfig(service="annotator", queue_name=name, queue_url=url, dlq_url=dlq,
                            concurrency=2, wait_seconds=1, max_messages=1, exit_when_idle=True),
        parse=Ping.model_validate_json, handle=handle, metrics=WorkerMetrics(registry),
        on_busy_change=busy.append,
    )
    # When it runs
    thread = run_in_thread(worker)
    thread.join(20)
    # Then it returned by itself after exactly one message, which it deleted
    assert not thread.is_alive()
    assert len(handled) == 1
    assert busy == [True, False]
    assert registry.get_sample_value(
        "gas_messages_total", {"service": "annotator", "queue": name, "outcome": "ok"}) == 1
    # and the other message is still there for the next Job
    assert visible(aws, url) == 1


def test_a_job_pod_that_finds_the_queue_empty_exits_after_one_receive(aws: AwsClients) -> None:
    name, url, dlq = make_queue(aws)
    worker: QueueWorker[Ping] = QueueWorker(
        sqs=aws.sqs,
        config=WorkerConfig(service="annotator", queue_name=name, queue_url=url, dlq_url=dlq,
                            wait_seconds=1, max_messages=1, exit_when_idle=True),
        parse=Ping.model_validate_json, handle=lambda m, c: None,
        metrics=WorkerMetrics(CollectorRegistry()),
    )
    started = time.monotonic()
    thread = run_in_thread(worker)
    thread.join(15)
    assert not thread.is_alive()
    assert time.monotonic() - started < 10


def test_sigterm_during_a_job_still_releases_the_message(aws: AwsClients) -> None:
    # Given a job pod whose handler outlives the grace period
    name, url, dlq = make_queue(aws)
    aws.sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"job_id": "j1"}))
    started = threading.Event()

    def handle(message: Ping, context: MessageContext) -> None:
        started.set()
        context.stopping.wait(10)
        time.sleep(5)

    worker = QueueWorker(
        sqs=aws.sqs,
        config=WorkerConfig(service="annotator", queue_name=name, queue_url=url, dlq_url=dlq,
                            wait_seconds=1, visibility_seconds=60, shutdown_grace_seconds=0.5,
                            max_messages=1, exit_when_idle=True),
        parse=Ping.model_validate_json, handle=handle, metrics=WorkerMetrics(CollectorRegistry()),
    )
    thread = run_in_thread(worker)
    assert started.wait(15)
    # When the pod is told to stop
    worker.request_stop()
    thread.join(20)
    # Then the message was given back at once for another pod
    assert not thread.is_alive()
    messages = aws.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert len(messages) == 1


def test_build_worker_takes_the_mode_from_settings(settings: GasSettings) -> None:
    worker_settings = emulator_settings(
        settings.aws_endpoint_url, cls=WorkerSettings, name_prefix=settings.name_prefix,
        worker_max_messages=1, worker_exit_when_idle=True,
    )
    worker = build_worker(
        service="annotator", settings=worker_settings, aws=AwsClients(worker_settings),
        queue=Queue.ANNOTATOR, parse=Ping.model_validate_json, handle=lambda m, c: None,
        registry=CollectorRegistry(),
    )
    assert worker.config.max_messages == 1
    assert worker.config.exit_when_idle is True
    # Outside a pod no busy marker is installed
    assert worker._on_busy_change is None
