"""The SQS consumer loop, against the emulator with real timeouts kept short."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from gas_core.aws import AwsClients
from gas_core.metrics import WorkerMetrics
from gas_core.resources import POISON_REASON_ATTRIBUTE
from gas_core.worker import (
    MessageContext,
    PermanentError,
    QueueWorker,
    WorkerConfig,
)


class Ping(BaseModel):
    job_id: str
    action: str = "ok"


@dataclass
class Queues:
    sqs: Any
    url: str
    dlq_url: str
    name: str

    def send(self, body: str) -> str:
        return str(self.sqs.send_message(QueueUrl=self.url, MessageBody=body)["MessageId"])

    def receive(self, url: str | None = None, wait: int = 0) -> list[dict[str, Any]]:
        response = self.sqs.receive_message(
            QueueUrl=url or self.url, MaxNumberOfMessages=10, WaitTimeSeconds=wait,
            MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def counts(self) -> tuple[int, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]), int(
            attrs["ApproximateNumberOfMessagesNotVisible"])


@pytest.fixture
def queues(aws: AwsClients) -> Queues:
    name = "wq-" + uuid.uuid4().hex[:10]
    dlq_url = aws.sqs.create_queue(QueueName=name + "-dlq")["QueueUrl"]
    dlq_arn = aws.sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    url = aws.sqs.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 5})},
    )["QueueUrl"]
    return Queues(aws.sqs, url, dlq_url, name)


@dataclass
class Recorder:
    """A handler whose behaviour each test scripts, recording every call."""

    calls: list[tuple[str, int]] = field(default_factory=list)
    behaviour: Callable[[Ping, MessageContext], None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, message: Ping, context: MessageContext) -> None:
        with self.lock:
            self.calls.append((message.job_id, context.receive_count))
        if self.behaviour:
            self.behaviour(message, context)


@dataclass
class Running:
    worker: QueueWorker[Ping]
    thread: threading.Thread
    registry: CollectorRegistry

    def stop(self, timeout: float = 30) -> None:
        self.worker.request_stop()
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "worker did not stop"

    def outcome_count(self, outcome: str) -> float:
        value = self.registry.get_sample_value(
            "gas_messages_total",
            {"service": "test", "queue": self.worker.config.queue_name, "outcome": outcome},
        )
        return value or 0.0


@pytest.fixture
def start_worker(queues: Queues) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def start(handler: Recorder, busy_hook: Any = None, **overrides: Any) -> Running:
        options: dict[str, Any] = {
            "service": "test", "queue_name": queues.name, "queue_url": queues.url,
            "dlq_url": queues.dlq_url, "concurrency": 2, "wait_seconds": 1,
            "visibility_seconds": 30, "retry_base_seconds": 1, "retry_max_seconds": 2,
            "shutdown_grace_seconds": 10,
        }
        options.update(overrides)
        registry = CollectorRegistry()
        worker = QueueWorker(
            sqs=queues.sqs, config=WorkerConfig(**options),
            parse=Ping.model_validate_json, handle=handler, metrics=WorkerMetrics(registry),
            on_busy_change=busy_hook,
        )
        thread = threading.Thread(target=worker.run, daemon=True)
        thread.start()
        running = Running(worker, thread, registry)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()


def wait_for(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached in time")


def test_a_handled_message_is_deleted(queues: Queues, start_worker: Callable[..., Running]) -> None:
    handler = Recorder()
    running = start_worker(handler)
    queues.send(Ping(job_id="j1").model_dump_json())
    wait_for(lambda: running.outcome_count("ok") == 1)
    running.stop()
    assert handler.calls == [("j1", 1)]
    assert queues.counts() == (0, 0)


def test_a_body_that_does_not_parse_lands_in_the_dlq_on_its_first_receive(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    handler = Recorder()
    running = start_worker(handler)
    queues.send('{"not": "a ping"}')
    wait_for(lambda: running.outcome_count("poison") == 1)
    running.stop()
    assert handler.calls == []
    dead = queues.receive(queues.dlq_url, wait=1)
    assert [m["Body"] for m in dead] == ['{"not": "a ping"}']
    assert dead[0]["Attributes"]["ApproximateReceiveCount"] == "1"
    assert "job_id" in dead[0]["MessageAttributes"][POISON_REASON_ATTRIBUTE]["StringValue"]
    assert queues.counts() == (0, 0)


def test_a_transient_error_is_retried_and_succeeds_on_the_next_delivery(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    def fail_first(message: Ping, context: MessageContext) -> None:
        if context.receive_count == 1:
            raise ConnectionError("S3 is having a moment")

    handler = Recorder(behaviour=fail_first)
    running = start_worker(handler)
    queues.send(Ping(job_id="j2").model_dump_json())
    wait_for(lambda: running.outcome_count("ok") == 1)
    running.stop()
    assert handler.calls == [("j2", 1), ("j2", 2)]
    assert running.outcome_count("retry") == 1
    assert queues.counts() == (0, 0)


def test_a_permanent_error_deletes_the_message_without_retry(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    def refuse(message: Ping, context: MessageContext) -> None:
        raise PermanentError("input is not a VCF")

    handler = Recorder(behaviour=refuse)
    running = start_worker(handler)
    queues.send(Ping(job_id="j3").model_dump_json())
    wait_for(lambda: running.outcome_count("failed") == 1)
    time.sleep(1.5)  # longer than the retry back-off: a retry would have happened by now
    running.stop()
    assert handler.calls == [("j3", 1)]
    assert queues.counts() == (0, 0)
    assert queues.receive(queues.dlq_url) == []


def test_a_handler_running_longer_than_the_visibility_timeout_is_not_delivered_twice(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    handler = Recorder(behaviour=lambda m, c: time.sleep(7))
    running = start_worker(handler, visibility_seconds=2, concurrency=1)
    queues.send(Ping(job_id="slow").model_dump_json())
    wait_for(lambda: len(handler.calls) == 1)
    # A competing consumer polls all through the handler's run (3.5 visibility timeouts).
    stolen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        stolen += queues.receive(wait=1)
    wait_for(lambda: running.outcome_count("ok") == 1)
    running.stop()
    assert stolen == []
    assert handler.calls == [("slow", 1)]
    assert queues.counts() == (0, 0)


def test_sigterm_during_a_handler_lets_it_finish_and_exits(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    finished = threading.Event()

    def slow(message: Ping, context: MessageContext) -> None:
        time.sleep(2)
        finished.set()

    handler = Recorder(behaviour=slow)
    running = start_worker(handler)
    queues.send(Ping(job_id="j4").model_dump_json())
    wait_for(lambda: len(handler.calls) == 1)
    started = time.monotonic()
    running.stop()  # the first stop request is what SIGTERM does
    assert finished.is_set()
    assert time.monotonic() - started < 8
    assert running.outcome_count("ok") == 1
    assert queues.counts() == (0, 0)


def test_a_handler_still_running_after_the_grace_period_is_released_for_another_pod(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    handler = Recorder(behaviour=lambda m, c: time.sleep(6))
    running = start_worker(handler, shutdown_grace_seconds=1)
    queues.send(Ping(job_id="j5").model_dump_json())
    wait_for(lambda: len(handler.calls) == 1)
    running.stop()
    # Released with visibility 0: another consumer gets it at once.
    again = queues.receive(wait=1)
    assert [Ping.model_validate_json(m["Body"]).job_id for m in again] == ["j5"]


def test_a_second_stop_request_returns_at_once(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    handler = Recorder(behaviour=lambda m, c: time.sleep(20))
    running = start_worker(handler, shutdown_grace_seconds=60)
    queues.send(Ping(job_id="j6").model_dump_json())
    wait_for(lambda: len(handler.calls) == 1)
    running.worker.request_stop()
    time.sleep(1.5)  # the receiver's long poll ends; the worker now waits for the handler
    assert running.thread.is_alive()
    started = time.monotonic()
    running.stop(timeout=5)  # second request
    assert time.monotonic() - started < 3
    assert [m["MessageId"] for m in queues.receive(wait=1)] != []


def test_messages_fetched_but_not_started_are_released_at_once(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    handler = Recorder()
    running = start_worker(handler, wait_seconds=3)
    time.sleep(0.5)  # the receiver is now inside a long poll
    running.worker.request_stop()
    queues.send(Ping(job_id="late").model_dump_json())  # arrives during that long poll
    running.thread.join(15)
    assert handler.calls == []
    again = queues.receive(wait=1)
    assert [Ping.model_validate_json(m["Body"]).job_id for m in again] == ["late"]
    assert running.outcome_count("released") == 1


def test_concurrency_is_bounded(queues: Queues, start_worker: Callable[..., Running]) -> None:
    active = 0
    peak = 0
    lock = threading.Lock()

    def track(message: Ping, context: MessageContext) -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.5)
        with lock:
            active -= 1

    handler = Recorder(behaviour=track)
    running = start_worker(handler, concurrency=3)
    for index in range(8):
        queues.send(Ping(job_id=f"c{index}").model_dump_json())
    wait_for(lambda: running.outcome_count("ok") == 8, timeout=30)
    running.stop()
    assert peak == 3


def test_a_real_sigterm_during_a_handler_lets_it_finish_and_the_process_exits(
    queues: Queues, moto_endpoint: str, tmp_path: Any
) -> None:
    import signal
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).with_name("sigterm_worker.py")
    process = subprocess.Popen(
        [sys.executable, str(script), queues.url, queues.dlq_url, moto_endpoint, str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        queues.send('{"job_id": "term"}')
        wait_for((tmp_path / "term.started").exists, timeout=30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert (tmp_path / "term.finished").exists()
    assert queues.counts() == (0, 0)


def test_the_worker_reports_busy_while_handling_and_idle_after(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    changes: list[bool] = []
    handler = Recorder(behaviour=lambda m, c: time.sleep(0.3))
    running = start_worker(handler, busy_hook=changes.append, concurrency=2)
    queues.send(Ping(job_id="b1").model_dump_json())
    wait_for(lambda: running.outcome_count("ok") == 1)
    wait_for(lambda: changes == [True, False])
    running.stop()
