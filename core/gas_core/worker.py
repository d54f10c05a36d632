"""The SQS consumer loop, written once for every worker service.

* Long-poll receives, never more messages than there are free handler slots, so a message is
  only taken when it can start at once (and one fetched during shutdown is released at once).
* Bodies are parsed with the queue's pydantic parser; a body that does not parse is a poison
  message: it goes to the dead-letter queue on its first receive and is deleted.
* A handler returns normally (done: delete), raises `PermanentError` (it has recorded the
  failure; retrying cannot help: delete), raises `RetryLater` (it waits for another worker:
  the message is re-sent with a delay and the original deleted, so waiting spends none of its
  receives), or raises anything else (transient: keep the message and make it visible again
  after a jittered exponential back-off; SQS moves it to the DLQ after `MAX_RECEIVE_COUNT`
  receives).
* Messages are received with a short visibility (`receive_visibility_seconds`): a worker
  killed between a receive and the start of the work (e.g. inside a long poll) holds them only
  that long. Once its handler starts, a message is extended to `visibility_seconds`, and a
  heartbeat keeps extending every in-flight message, so a handler that runs longer than the
  visibility timeout is not delivered to a second consumer.
* Nothing that fails while receiving or dispatching (SQS unreachable, a DLQ that refuses
  sends) stops the receive loop: it logs, backs off with jitter and receives again, so the
  liveness probe (age of the last receive) keeps telling the truth.
* SIGTERM stops receiving and lets in-flight handlers finish within the grace period; whatever
  is still running then is released (visibility 0) for another pod. A second signal releases
  everything and returns at once.
* One canonical log line and metrics per message.
* Optionally the worker ends by itself: after `max_messages` messages, or when a receive finds
  the queue empty while nothing is in flight (`exit_when_idle`). A KEDA ScaledJob pod runs with
  both (one message, then exit), so a very long job owns its pod and scale-in never touches it.

SQS limits used here: https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-messages.html
"""

from __future__ import annotations

import math
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from gas_core.logging import bind_context, get_logger
from gas_core.metrics import WorkerMetrics
from gas_core.resources import MAX_MESSAGES_PER_RECEIVE, POISON_REASON_ATTRIBUTE

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

MAX_WAIT_SECONDS = 20  # SQS long-poll maximum
MAX_VISIBILITY_SECONDS = 12 * 3600  # SQS visibility timeout maximum
MAX_DELAY_SECONDS = 900  # SQS DelaySeconds maximum
# At shutdown, how long to wait for handlers that are already deleting their message.
FINISHING_WAIT_SECONDS = 5.0
# Back-off of the receive loop after a failure: doubles per consecutive failure, capped.
LOOP_BACKOFF_BASE_SECONDS = 1.0
LOOP_BACKOFF_MAX_SECONDS = 30.0

M = TypeVar("M")
log = get_logger("gas.worker")


class PermanentError(Exception):
    """The message can never succeed; the handler has recorded why (e.g. job FAILED)."""


class RetryLater(Exception):
    """Not now, but not a failure: the work waits for something else (another worker's lease,
    another worker's flag). The worker hands the message back after `delay_seconds` without
    spending one of its receives toward the DLQ (re-sent with a delay), so waiting can never
    push a healthy message into the dead-letter queue."""

    def __init__(self, delay_seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.delay_seconds = delay_seconds
        self.reason = reason


@dataclass(frozen=True)
class MessageContext:
    message_id: str
    receive_count: int
    attributes: dict[str, str]
    # Set when the process is shutting down: a long handler may stop early and raise a
    # transient error so another pod takes the message over.
    stopping: threading.Event


@dataclass
class _InFlight:
    message_id: str
    receipt_handle: str
    started: float
    extended_at: float
    # released: shutdown gave the message back; finishing: the handler is deleting it or
    # scheduling its retry. Exactly one of the two can happen, decided under the lock.
    released: bool = False
    finishing: bool = False


@dataclass
class WorkerConfig:
    service: str
    queue_name: str
    queue_url: str
    dlq_url: str
    concurrency: int = 4
    wait_seconds: int = MAX_WAIT_SECONDS
    # Visibility while a handler works (the heartbeat renews it) ...
    visibility_seconds: int = 60
    # ... and from the receive until the handler starts: short, so a worker that dies in
    # between (a kill during the long poll) holds its messages only this long.
    receive_visibility_seconds: int = 30
    retry_base_seconds: int = 5
    retry_max_seconds: int = 900
    shutdown_grace_seconds: float = 25.0
    # How often the heartbeat extends visibility; a third of the timeout leaves two misses of slack.
    heartbeat_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Take at most this many messages, finish them, then return from run() (0: no limit).
    max_messages: int = 0
    # Return from run() once a receive comes back empty while no message is in flight.
    exit_when_idle: bool = False

    @property
    def heartbeat_interval(self) -> float:
        return self.heartbeat_seconds or max(self.visibility_seconds / 3, 0.5)

    @property
    def receive_visibility(self) -> int:
        return max(1, min(self.receive_visibility_seconds, self.visibility_seconds))


class QueueWorker(Generic[M]):
    """Consumes one queue with a parser and a handler until stopped."""

    def __init__(
        self,
        *,
        sqs: SQSClient,
        config: WorkerConfig,
        parse: Callable[[str], M],
        handle: Callable[[M, MessageContext], None],
        metrics: WorkerMetrics,
        on_busy_change: Callable[[bool], None] | None = None,
    ) -> None:
        self._sqs = sqs
        self.config = config
        self._parse = parse
        self._handle = handle
        self._metrics = metrics
        # Told True when the worker goes from idle to handling a message and False when it is
        # idle again (e.g. to mark the pod costly to delete while it works: gas_core.k8s).
        self._on_busy_change = on_busy_change
        self.stopping = threading.Event()
        self._abort = threading.Event()
        self._lock = threading.Condition()
        self._in_flight: dict[str, _InFlight] = {}
        self._receiver_done = threading.Event()
        # Set when the receiver stopped because the work ran out (max_messages, exit_when_idle):
        # run() then returns once in-flight handlers are done, without any shutdown release.
        self._exhausted = threading.Event()
        self._handler_threads: list[threading.Thread] = []
        self.last_poll = time.time()
        self._labels = {"service": config.service, "queue": config.queue_name}

    # -- control -----------------------------------------------------------------------------

    def request_stop(self) -> None:
        """First call: drain gracefully. Second call: release everything and return now."""
        if self.stopping.is_set():
            self._abort.set()
        self.stopping.set()
        with self._lock:
            self._lock.notify_all()

    def install_signal_handlers(self) -> None:
        def on_signal(signum: int, _frame: FrameType | None) -> None:
            log.info("shutdown_signal", signal=signal.Signals(signum).name,
                     again=self.stopping.is_set())
            self.request_stop()

        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    def run(self) -> None:
        """Block until stopped; returns once in-flight work is finished or released."""
        receiver = threading.Thread(target=self._receive_loop, name="sqs-receiver", daemon=True)
        heartbeat = threading.Thread(target=self._heartbeat_loop, name="sqs-heartbeat",
                                     daemon=True)
        log.info("worker_started", queue=self.config.queue_name,
                 concurrency=self.config.concurrency)
        receiver.start()
        heartbeat.start()
        # Wait in short slices so signal handlers run promptly on the main thread.
        while not self.stopping.wait(0.5):
            if self._work_finished():
                break
        self._drain()
        if self._exhausted.is_set() and not self.stopping.is_set():
            # Let handlers write their log line and metrics before the process exits.
            for thread in self._handler_threads:
                thread.join(timeout=FINISHING_WAIT_SECONDS)
        log.info("worker_stopped", queue=self.config.queue_name)

    def _work_finished(self) -> bool:
        return (
            self._exhausted.is_set()
            and self._receiver_done.is_set()
            and self.in_flight_count == 0
        )

    @property
    def in_flight_count(self) -> int:
        with self._lock:
            return len(self._in_flight)

    # -- receiving ---------------------------------------------------------------------------

    def _receive_loop(self) -> None:
        limit = self.config.max_messages
        taken = 0
        failures = 0  # consecutive receive failures, for the back-off
        try:
            while not self.stopping.is_set():
                with self._lock:
                    free = self.config.concurrency - len(self._in_flight)
                    if free <= 0:
                        self._lock.wait(timeout=1.0)
                        continue
                if limit:
                    free = min(free, limit - taken)
                try:
                    messages = self._receive(min(free, MAX_MESSAGES_PER_RECEIVE))
                except Exception as error:  # network or throttling: keep the loop alive
                    failures += 1
                    log.warning("receive_failed", error=_short(error), failures=failures)
                    self.stopping.wait(self._loop_backoff(failures))
                    continue
                failures = 0
                self.last_poll = time.time()
                self._metrics.last_poll.labels(**self._labels).set(self.last_poll)
                taken += len(messages)
                dispatch_failed = False
                for message in messages:
                    try:
                        self._dispatch(message)
                    except Exception:
                        # E.g. the DLQ refused a poison message (AccessDenied, deleted DLQ, an
                        # outage). The message was not deleted: it returns after its receive
                        # visibility and SQS's own redrive still applies. Never let one message
                        # kill the receiver; the service would sit silent.
                        dispatch_failed = True
                        log.exception("dispatch_failed", message_id=message.get("MessageId"))
                if dispatch_failed:
                    self.stopping.wait(self._loop_backoff(1))
                if limit and taken >= limit:
                    log.info("worker_message_limit_reached", messages=taken)
                    self._exhausted.set()
                    break
                if self.config.exit_when_idle and not messages and self.in_flight_count == 0:
                    log.info("worker_idle_exit", messages=taken)
                    self._exhausted.set()
                    break
        finally:
            self._receiver_done.set()

    def _receive(self, max_messages: int) -> list[MessageTypeDef]:
        response = self._sqs.receive_message(
            QueueUrl=self.config.queue_url,
            MaxNumberOfMessages=max_messages,
            WaitTimeSeconds=self.config.wait_seconds,
            VisibilityTimeout=self.config.receive_visibility,
            MessageSystemAttributeNames=["ApproximateReceiveCount"],
            MessageAttributeNames=["All"],
        )
        return response.get("Messages", [])

    def _dispatch(self, message: MessageTypeDef) -> None:
        message_id = message["MessageId"]
        receipt = message["ReceiptHandle"]
        if self.stopping.is_set():
            # Fetched by a receive that was already waiting when shutdown began: never started,
            # so give it straight back.
            self._release(receipt)
            self._finish_metrics("released", 0.0)
            log.info("message", queue=self.config.queue_name, message_id=message_id,
                     outcome="released", duration_s=0.0)
            return
        try:
            parsed = self._parse(message.get("Body", ""))
        except Exception as error:
            self._to_dead_letter(message, reason=_short(error))
            return
        now = time.monotonic()
        with self._lock:
            became_busy = not self._in_flight
            self._in_flight[message_id] = _InFlight(message_id, receipt, now, now)
        if became_busy:
            self._busy_changed(True)
        self._metrics.in_flight.labels(**self._labels).inc()
        thread = threading.Thread(
            target=self._run_handler, args=(message, parsed), name=f"handler-{message_id[:8]}",
            daemon=True,
        )
        self._handler_threads = [t for t in self._handler_threads if t.is_alive()]
        self._handler_threads.append(thread)
        thread.start()

    # -- handling ----------------------------------------------------------------------------

    def _run_handler(self, message: MessageTypeDef, parsed: M) -> None:
        message_id = message["MessageId"]
        receive_count = int(message.get("Attributes", {}).get("ApproximateReceiveCount", "1"))
        job_id = getattr(parsed, "job_id", None)
        context = MessageContext(
            message_id=message_id,
            receive_count=receive_count,
            attributes={
                name: value.get("StringValue", "")
                for name, value in message.get("MessageAttributes", {}).items()
            },
            stopping=self.stopping,
        )
        started = time.monotonic()
        outcome = "ok"
        error_text: str | None = None
        deferral: RetryLater | None = None
        with bind_context(queue=self.config.queue_name, message_id=message_id,
                          **({"job_id": job_id} if job_id else {})):
            try:
                self._start_working(message_id)
                self._handle(parsed, context)
            except PermanentError as error:
                outcome, error_text = "failed", _short(error)
            except RetryLater as error:
                outcome, error_text, deferral = "deferred", _short(error), error
            except Exception as error:
                outcome, error_text = "retry", _short(error)
                log.exception("handler_error", receive_count=receive_count)
            with self._lock:
                entry = self._in_flight.get(message_id)
                released = entry is None or entry.released
                if entry is not None and not released:
                    entry.finishing = True
            if released:
                # Shutdown released it while we ran; another consumer owns it now.
                outcome = "released"
            elif outcome in ("ok", "failed"):
                self._delete(entry.receipt_handle)  # type: ignore[union-attr]
            elif deferral is not None:
                self._defer(message, entry.receipt_handle,  # type: ignore[union-attr]
                            deferral.delay_seconds)
            else:
                delay = self._retry_delay(receive_count)
                self._set_visibility(entry.receipt_handle, delay)  # type: ignore[union-attr]
            # Only now, with the message durably deleted or rescheduled, may shutdown proceed.
            with self._lock:
                self._in_flight.pop(message_id, None)
                became_idle = not self._in_flight
                self._lock.notify_all()
            if became_idle:
                self._busy_changed(False)
            duration = time.monotonic() - started
            self._metrics.in_flight.labels(**self._labels).dec()
            self._finish_metrics(outcome, duration)
            log.log(
                40 if outcome == "failed" else 30 if outcome == "retry" else 20,
                "message",
                outcome=outcome,
                duration_s=round(duration, 3),
                receive_count=receive_count,
                **({"error": error_text} if error_text else {}),
                **({"deferred_s": defer_seconds(deferral.delay_seconds)} if deferral else {}),
            )

    def _start_working(self, message_id: str) -> None:
        """The work starts: hold the message for the working visibility, not the short
        receive-time one (the heartbeat renews it from here on)."""
        if self.config.visibility_seconds <= self.config.receive_visibility:
            return
        with self._lock:
            entry = self._in_flight.get(message_id)
        if entry is not None and self._set_visibility(entry.receipt_handle,
                                                      self.config.visibility_seconds):
            entry.extended_at = time.monotonic()

    def _defer(self, message: MessageTypeDef, receipt_handle: str, delay: float) -> None:
        """RetryLater: send a delayed copy, then delete the original. Send first: a crash in
        between leaves a duplicate (handlers are idempotent), never a lost message. The copy
        starts again at one receive, so waiting never walks a message into the DLQ."""
        try:
            self._sqs.send_message(
                QueueUrl=self.config.queue_url,
                MessageBody=message.get("Body", ""),
                MessageAttributes=_resendable_attributes(message),
                DelaySeconds=defer_seconds(delay),
            )
        except (ClientError, BotoCoreError) as error:
            # Could not re-send: keep the original and let it come back (spending a receive,
            # which is still better than losing it).
            log.warning("defer_failed", error=_short(error))
            self._set_visibility(receipt_handle, defer_seconds(delay))
            return
        self._delete(receipt_handle)

    def _busy_changed(self, busy: bool) -> None:
        if self._on_busy_change is None:
            return
        try:
            self._on_busy_change(busy)
        except Exception as error:  # a hint to the scheduler; never worth failing a message
            log.warning("busy_hook_failed", busy=busy, error=_short(error))

    def _retry_delay(self, receive_count: int) -> int:
        delay = self.config.retry_base_seconds * 2 ** max(receive_count - 1, 0)
        capped = min(delay, self.config.retry_max_seconds, MAX_VISIBILITY_SECONDS)
        # Jitter: messages that failed together (an outage) do not all come back together.
        return math.ceil(jittered(capped))

    @staticmethod
    def _loop_backoff(failures: int) -> float:
        return jittered(min(LOOP_BACKOFF_BASE_SECONDS * 2 ** (failures - 1),
                            LOOP_BACKOFF_MAX_SECONDS))

    def _to_dead_letter(self, message: MessageTypeDef, *, reason: str) -> None:
        """Poison: straight to the DLQ with the reason attached, then delete the original."""
        attributes = _resendable_attributes(message)
        attributes[POISON_REASON_ATTRIBUTE] = {"DataType": "String", "StringValue": reason[:250]}
        self._sqs.send_message(
            QueueUrl=self.config.dlq_url,
            MessageBody=message.get("Body", "") or "(empty)",
            MessageAttributes=attributes,
        )
        self._delete(message["ReceiptHandle"])
        self._finish_metrics("poison", 0.0)
        log.error("message", queue=self.config.queue_name, message_id=message["MessageId"],
                  outcome="poison", duration_s=0.0, error=reason)

    def _finish_metrics(self, outcome: str, duration: float) -> None:
        self._metrics.messages.labels(outcome=outcome, **self._labels).inc()
        if outcome not in ("poison", "released"):
            self._metrics.message_seconds.labels(**self._labels).observe(duration)

    # -- visibility --------------------------------------------------------------------------

    def _heartbeat_loop(self) -> None:
        interval = self.config.heartbeat_interval
        while not self._abort.is_set():
            now = time.monotonic()
            with self._lock:
                due = [e for e in self._in_flight.values()
                       if not e.released and now - e.extended_at >= interval]
            for entry in due:
                if self._set_visibility(entry.receipt_handle, self.config.visibility_seconds):
                    entry.extended_at = now
            self._abort.wait(min(interval / 2, 1.0))

    def _drain(self) -> None:
        grace_deadline = time.monotonic() + self.config.shutdown_grace_seconds
        # The receiver may be inside a long poll; whatever it returns is released by _dispatch.
        self._receiver_done.wait(timeout=self.config.wait_seconds + 5)
        with self._lock:
            while self._in_flight and not self._abort.is_set():
                remaining = grace_deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(timeout=min(remaining, 0.5))
            leftovers = [e for e in self._in_flight.values()
                         if not e.released and not e.finishing]
            for entry in leftovers:
                entry.released = True
        for entry in leftovers:
            self._release(entry.receipt_handle)
            log.warning("message_released_at_shutdown", message_id=entry.message_id,
                        ran_s=round(time.monotonic() - entry.started, 1))
        # Handlers that were already finishing get a moment to delete or reschedule.
        finish_deadline = time.monotonic() + FINISHING_WAIT_SECONDS
        with self._lock:
            while any(e.finishing for e in self._in_flight.values()):
                remaining = finish_deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(timeout=min(remaining, 0.5))
        self._abort.set()  # stops the heartbeat

    def _release(self, receipt_handle: str) -> None:
        self._set_visibility(receipt_handle, 0)

    def _set_visibility(self, receipt_handle: str, seconds: int) -> bool:
        try:
            self._sqs.change_message_visibility(
                QueueUrl=self.config.queue_url,
                ReceiptHandle=receipt_handle,
                VisibilityTimeout=seconds,
            )
        except (ClientError, BotoCoreError) as error:
            # The receipt expired (visibility already lapsed), the message is gone, or SQS is
            # unreachable: the message then simply becomes visible again when its timeout ends.
            log.warning("visibility_change_failed", error=_short(error))
            return False
        return True

    def _delete(self, receipt_handle: str) -> None:
        try:
            self._sqs.delete_message(QueueUrl=self.config.queue_url, ReceiptHandle=receipt_handle)
        except (ClientError, BotoCoreError) as error:
            # The work is done; the message will be redelivered and the idempotent handler
            # will find nothing left to do.
            log.warning("delete_failed", error=_short(error))


def defer_seconds(delay: float) -> int:
    """A RetryLater delay as SQS DelaySeconds: whole seconds, at most 15 minutes (a longer
    wait is re-sent at the maximum; the handler simply asks again)."""
    return max(0, min(math.ceil(delay), MAX_DELAY_SECONDS))


def jittered(delay: float) -> float:
    """"Equal jitter": between half the delay and the whole of it."""
    return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - timing, not security


def _resendable_attributes(message: MessageTypeDef) -> dict[str, Any]:
    """The message's own attributes in the shape SendMessage takes."""
    return {
        name: {k: v for k, v in value.items() if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in message.get("MessageAttributes", {}).items()
    }


def _short(error: BaseException) -> str:
    text = str(error) or type(error).__name__
    return text if len(text) <= 500 else text[:497] + "..."
