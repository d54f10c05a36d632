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
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from gas_core.aws import AwsClients
from gas_core.metrics import WorkerMetrics
from gas_core.resources import POISON_REASON_ATTRIBUTE
from gas_core.worker import (
    MAX_DELAY_SECONDS,
    MessageContext,
    PermanentError,
    QueueWorker,
    RetryLater,
    WorkerConfig,
    defer_seconds,
    jittered,
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


# -- waiting without spending receives (RetryLater) -----------------------------------------------


def test_a_handler_that_asks_to_retry_later_never_pushes_the_message_into_the_dlq(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    waits = 7  # more than the queue's 5 receives before redrive

    def wait_for_another_worker(message: Ping, context: MessageContext) -> None:
        if len(handler.calls) <= waits:
            raise RetryLater(0.2, "the lease is held by another worker")

    handler = Recorder(behaviour=wait_for_another_worker)
    running = start_worker(handler)
    queues.sqs.send_message(
        QueueUrl=queues.url, MessageBody=Ping(job_id="w1").model_dump_json(),
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": "ping"}},
    )
    wait_for(lambda: running.outcome_count("ok") == 1, timeout=30)
    running.stop()
    # Each deferral came back as a fresh message: never a second receive, never the DLQ.
    assert handler.calls == [("w1", 1)] * (waits + 1)
    assert running.outcome_count("deferred") == waits
    assert running.outcome_count("retry") == 0
    assert queues.receive(queues.dlq_url) == []
    assert queues.counts() == (0, 0)


def test_a_deferred_message_keeps_its_attributes_and_comes_back_after_the_delay(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    deferred = threading.Event()

    def defer_once(message: Ping, context: MessageContext) -> None:
        if not deferred.is_set():
            deferred.set()
            raise RetryLater(3, "not yet")
        raise PermanentError("stop here so the test can inspect the copy")

    handler = Recorder(behaviour=defer_once)
    running = start_worker(handler, concurrency=1)
    queues.sqs.send_message(
        QueueUrl=queues.url, MessageBody=Ping(job_id="w2").model_dump_json(),
        MessageAttributes={"event_type": {"DataType": "String", "StringValue": "ping"}},
    )
    wait_for(lambda: running.outcome_count("deferred") == 1)
    running.stop()
    # The original is deleted; the copy (delayed) is the same message, on its first receive.
    copies = queues.receive(wait=5)
    assert [Ping.model_validate_json(m["Body"]).job_id for m in copies] == ["w2"]
    assert copies[0]["MessageAttributes"]["event_type"]["StringValue"] == "ping"
    assert copies[0]["Attributes"]["ApproximateReceiveCount"] == "1"


def test_a_deferral_longer_than_sqs_allows_is_capped_at_fifteen_minutes() -> None:
    assert defer_seconds(3600) == MAX_DELAY_SECONDS == 900
    assert defer_seconds(0.2) == 1
    assert defer_seconds(-5) == 0


# -- the receive loop survives failures ------------------------------------------------------------


class RefusingDlq:
    """The real SQS client, except that every send to the DLQ is refused (AccessDenied)."""

    def __init__(self, real: Any, dlq_url: str) -> None:
        self._real = real
        self._dlq_url = dlq_url
        self.refused = 0

    def send_message(self, **kwargs: Any) -> Any:
        if kwargs["QueueUrl"] == self._dlq_url:
            self.refused += 1
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "no"}},
                              "SendMessage")
        return self._real.send_message(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_dlq_that_refuses_sends_does_not_stop_the_worker_receiving(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    refusing = RefusingDlq(queues.sqs, queues.dlq_url)
    handler = Recorder()
    running = start_worker(handler, receive_visibility_seconds=2)
    running.worker._sqs = refusing  # type: ignore[assignment]
    queues.send("not json at all")  # poison: its DLQ send is refused
    wait_for(lambda: refusing.refused >= 1)
    polled_after_failure = time.time()
    queues.send(Ping(job_id="after").model_dump_json())
    wait_for(lambda: running.outcome_count("ok") == 1, timeout=20)
    # Liveness (/healthz) is the age of the last receive: it keeps advancing.
    wait_for(lambda: running.worker.last_poll > polled_after_failure)
    running.stop()
    assert ("after", 1) in handler.calls


def test_back_offs_are_jittered_and_bounded() -> None:
    delays = {jittered(8.0) for _ in range(50)}
    assert all(4.0 <= delay <= 8.0 for delay in delays)
    assert len(delays) > 1


# -- a dead worker's message comes back soon ------------------------------------------------------


def test_a_message_received_by_a_worker_that_died_before_starting_it_returns_quickly(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    received = threading.Event()
    never = threading.Event()

    def die_after_receiving(body: str) -> Ping:
        # The process is gone from here on: no handler starts, no heartbeat, no release.
        received.set()
        never.wait(60)
        return Ping.model_validate_json(body)

    worker = QueueWorker(
        sqs=queues.sqs,
        config=WorkerConfig(service="test", queue_name=queues.name, queue_url=queues.url,
                            dlq_url=queues.dlq_url, wait_seconds=1, visibility_seconds=300,
                            receive_visibility_seconds=2),
        parse=die_after_receiving, handle=Recorder(), metrics=WorkerMetrics(CollectorRegistry()),
    )
    threading.Thread(target=worker._receive_loop, daemon=True).start()
    queues.send(Ping(job_id="orphan").model_dump_json())
    assert received.wait(15)
    again: list[dict[str, Any]] = []
    deadline = time.monotonic() + 15  # far below the 300 s working visibility
    while not again and time.monotonic() < deadline:
        again = queues.receive(wait=1)
    worker.request_stop()
    never.set()
    assert [Ping.model_validate_json(m["Body"]).job_id for m in again] == ["orphan"]
    assert again[0]["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_handler_outliving_the_short_receive_visibility_is_not_delivered_twice(
    queues: Queues, start_worker: Callable[..., Running]
) -> None:
    release = threading.Event()

    def work_until_released(message: Ping, context: MessageContext) -> None:
        release.wait(30)

    handler = Recorder(behaviour=work_until_released)
    running = start_worker(handler, concurrency=1, visibility_seconds=60,
                           receive_visibility_seconds=2)
    queues.send(Ping(job_id="long").model_dump_json())
    wait_for(lambda: len(handler.calls) == 1)
    # A competing consumer polls for twice the receive-time visibility: work started, so the
    # message was extended to the working visibility and must stay hidden.
    stolen: list[dict[str, Any]] = []
    deadline = time.monotonic() + 4
    while time.monotonic() < deadline:
        stolen += queues.receive(wait=1)
    release.set()
    wait_for(lambda: running.outcome_count("ok") == 1)
    running.stop()
    assert stolen == []
    assert handler.calls == [("long", 1)]
