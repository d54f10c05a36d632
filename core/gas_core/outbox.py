"""Events follow state: publishing the events a state write recorded in its item's outbox.

A service never writes state and then publishes as two independent steps (a crash between
them would lose the event). The state write itself records the event as pending in the
item's `outbox` (`events=` on the repository's writes); then `Outbox.deliver` publishes it
and marks it sent. Whatever a crashed or failing writer left pending is published by the
reconciler (`OutboxReconciler`, a thread every worker service runs, see
gas_core.service) once it is OUTBOX_GRACE_SECONDS old. Consumers are idempotent, so the rare
duplicate (published, then the writer died before marking it sent) is harmless.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, NamedTuple

from botocore.exceptions import BotoCoreError, ClientError

from gas_core.events import Event, parse_event
from gas_core.jobs import ItemKey, JobRepository
from gas_core.logging import get_logger
from gas_core.resources import Topic

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

log = get_logger("gas.outbox")

# How often the reconciler looks for overdue events.
RECONCILE_INTERVAL_SECONDS = 30.0


class Flushed(NamedTuple):
    found: int  # events that were pending
    sent: int  # of which published (the others stay pending for the reconciler)


class Outbox:
    """Publishes pending events of items and marks them sent."""

    def __init__(
        self,
        repository: JobRepository,
        sns: SNSClient,
        topic_arn: Callable[[Topic], str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._repository = repository
        self._sns = sns
        self._topic_arn = topic_arn
        self._clock = clock

    def deliver(self, key: ItemKey, events: Iterable[Event]) -> bool:
        """Publish events the write of `key` just recorded, marking each sent.

        A failed publish leaves its event pending (the reconciler publishes it later) and is
        not an error for the caller: the event is as durable as the state it follows.
        True when every event went out.
        """
        return all([self._send(key, event.model_dump_json(), event) for event in events])

    def flush(self, key: ItemKey) -> Flushed:
        """Publish whatever is still pending on `key` (a retry finding its work already
        done ends here, so its event is never lost)."""
        pending = self._repository.pending_events(key)
        sent = sum(self._send(key, body, parse_event(body)) for body in pending)
        return Flushed(found=len(pending), sent=sent)

    def reconcile(self) -> int:
        """Publish every event pending past its due time; the number published."""
        sent = 0
        for key in self._repository.due_outbox_items(self._clock()):
            sent += self.flush(key).sent
        if sent:
            log.warning("outbox_events_republished", events=sent)
        return sent

    def _send(self, key: ItemKey, body: str, event: Event) -> bool:
        try:
            # The stored body, byte for byte: the event id stays the one recorded.
            self._sns.publish(
                TopicArn=self._topic_arn(event.TOPIC),
                Message=body,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value}
                    for name, value in event.attributes().items()
                },
            )
        except (BotoCoreError, ClientError, LookupError) as error:  # pending: reconciler's
            log.warning("outbox_publish_failed", event_type=getattr(event, "type", None),
                        event_id=event.event_id, error=str(error))
            return False
        self._repository.mark_event_sent(key, body)
        return True


class OutboxReconciler:
    """A daemon thread running `Outbox.reconcile` every `interval` seconds until stopped."""

    def __init__(self, outbox: Outbox, *, interval: float = RECONCILE_INTERVAL_SECONDS) -> None:
        self._outbox = outbox
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="outbox-reconciler", daemon=True)

    def start(self) -> OutboxReconciler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._outbox.reconcile()
            except Exception as error:  # a blip; the next round tries again
                log.warning("outbox_reconcile_failed", error=str(error))


__all__ = ["Flushed", "Outbox", "OutboxReconciler"]
