"""`gas dlq inspect|redrive QUEUE`: look at a dead-letter queue and move its messages back.

Redrive is receive → send to the source queue → delete from the DLQ, one message at a time,
rather than SQS's StartMessageMoveTask: it works the same against the local emulator (which
lacks that API), needs only the consumer's ordinary permissions, and reports exactly what moved.
It is safe to re-run: a message is deleted from the DLQ only after its copy was accepted by the
source queue, so an interrupted run leaves at worst one message in both places, and every
handler is idempotent on job state (docs/architecture.md), so that duplicate does no harm.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from gas_core.resources import MAX_MESSAGES_PER_RECEIVE, POISON_REASON_ATTRIBUTE, Queue

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import MessageTypeDef

    from gas_core.aws import AwsClients

# Long enough to copy a batch before the messages would reappear; short enough that an
# interrupted run's messages are soon visible again.
HOLD_SECONDS = 60
# A receive that stays empty this long means the queue is drained (long poll, not a short one,
# which may miss messages on a lightly loaded queue).
EMPTY_WAIT_SECONDS = 2
BODY_PREVIEW_CHARS = 300


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receive_count: int
    sent_at: str
    reason: str | None
    body: str


@dataclass
class Inspection:
    queue: str
    dlq: str
    approximate_count: int
    messages: list[DeadLetter] = field(default_factory=list)


@dataclass
class RedriveResult:
    moved: int = 0
    failed: list[str] = field(default_factory=list)
    dry_run: bool = False


def _receive(sqs: SQSClient, url: str, *, max_messages: int, hold: int,
             wait: int) -> list[MessageTypeDef]:
    response = sqs.receive_message(
        QueueUrl=url,
        MaxNumberOfMessages=max(1, min(max_messages, MAX_MESSAGES_PER_RECEIVE)),
        WaitTimeSeconds=wait,
        VisibilityTimeout=hold,
        MessageSystemAttributeNames=["ApproximateReceiveCount", "SentTimestamp"],
        MessageAttributeNames=["All"],
    )
    return response.get("Messages", [])


def _batches(sqs: SQSClient, url: str, *, limit: int | None, hold: int,
             wait: int) -> Iterator[list[MessageTypeDef]]:
    """Receive until the queue is drained or `limit` messages were seen (each at most once:
    received messages stay hidden for `hold` seconds)."""
    seen: set[str] = set()
    while limit is None or len(seen) < limit:
        wanted = MAX_MESSAGES_PER_RECEIVE if limit is None else limit - len(seen)
        messages = [m for m in _receive(sqs, url, max_messages=wanted, hold=hold, wait=wait)
                    if m["MessageId"] not in seen]
        if not messages:
            return
        seen.update(m["MessageId"] for m in messages)
        yield messages


def _release(sqs: SQSClient, url: str, messages: list[MessageTypeDef]) -> None:
    for message in messages:
        sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)


def _approximate_count(sqs: SQSClient, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", "0"))


def inspect_dlq(*, sqs: SQSClient, queue: str, dlq_url: str, dlq: str, limit: int,
                wait_seconds: int = EMPTY_WAIT_SECONDS) -> Inspection:
    """The DLQ's count and a preview of up to `limit` messages (made visible again after)."""
    inspection = Inspection(queue=queue, dlq=dlq, approximate_count=_approximate_count(
        sqs, dlq_url))
    peeked: list[MessageTypeDef] = []
    try:
        for batch in _batches(sqs, dlq_url, limit=limit, hold=HOLD_SECONDS,
                              wait=wait_seconds):
            peeked += batch
    finally:
        _release(sqs, dlq_url, peeked)
    for message in peeked:
        attributes = message.get("Attributes", {})
        reason: dict[str, Any] = dict(
            message.get("MessageAttributes", {}).get(POISON_REASON_ATTRIBUTE, {}))
        sent_ms = int(attributes.get("SentTimestamp", "0"))
        inspection.messages.append(DeadLetter(
            message_id=message["MessageId"],
            receive_count=int(attributes.get("ApproximateReceiveCount", "0")),
            sent_at=_iso(sent_ms),
            reason=reason.get("StringValue"),
            body=message.get("Body", ""),
        ))
    return inspection


def _iso(epoch_ms: int) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).isoformat(timespec="seconds")


def _forwarded_attributes(message: MessageTypeDef) -> dict[str, Any]:
    """Message attributes to resend: all but the poison reason the worker attached."""
    return {
        name: {k: v for k, v in value.items()
               if k in ("DataType", "StringValue", "BinaryValue")}
        for name, value in message.get("MessageAttributes", {}).items()
        if name != POISON_REASON_ATTRIBUTE
    }


def redrive(*, sqs: SQSClient, dlq_url: str, queue_url: str, dry_run: bool = False,
            limit: int | None = None, wait_seconds: int = EMPTY_WAIT_SECONDS) -> RedriveResult:
    """Move messages from the DLQ back to the source queue; with `dry_run`, only count them."""
    result = RedriveResult(dry_run=dry_run)
    held: list[MessageTypeDef] = []
    try:
        for batch in _batches(sqs, dlq_url, limit=limit, hold=HOLD_SECONDS,
                              wait=wait_seconds):
            if dry_run:
                held += batch
                result.moved += len(batch)
                continue
            for message in batch:
                try:
                    sqs.send_message(
                        QueueUrl=queue_url,
                        MessageBody=message.get("Body", ""),
                        MessageAttributes=_forwarded_attributes(message),
                    )
                except Exception as error:
                    # Not sent: leave it in the DLQ (visible again after HOLD_SECONDS).
                    result.failed.append(f"{message['MessageId']}: {error}")
                    continue
                sqs.delete_message(QueueUrl=dlq_url, ReceiptHandle=message["ReceiptHandle"])
                result.moved += 1
    finally:
        # A dry run changes nothing: what it looked at is visible again at once.
        _release(sqs, dlq_url, held)
    return result


_QUEUES = click.Choice([q.value for q in Queue])
_wait_option = click.option(
    "--wait-seconds", default=EMPTY_WAIT_SECONDS, show_default=True, type=click.IntRange(0, 20),
    help="Long-poll wait that decides the queue is drained.")


def _clients() -> AwsClients:
    # boto3 and the settings load here, not when `gas` starts (every command pays for imports).
    from gas_core.aws import AwsClients
    from gas_core.settings import GasSettings

    return AwsClients(GasSettings())


@click.group()
def dlq() -> None:
    """Inspect and redrive dead-letter queues (QUEUE is the consuming service's queue)."""


@dlq.command("inspect")
@click.argument("queue", type=_QUEUES)
@_wait_option
@click.option("--limit", default=10, show_default=True, type=click.IntRange(0, 1000),
              help="Messages to show (they stay in the DLQ).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def inspect_command(queue: str, wait_seconds: int, limit: int, as_json: bool) -> None:
    """Show how many messages QUEUE's dead-letter queue holds, and a preview of them."""
    aws = _clients()
    names = aws.settings.names
    inspection = inspect_dlq(sqs=aws.sqs, queue=names.queue(Queue(queue)),
                             dlq_url=aws.dlq_url(Queue(queue)), dlq=names.dlq(Queue(queue)),
                             limit=limit, wait_seconds=wait_seconds)
    if as_json:
        click.echo(json.dumps({
            "queue": inspection.queue, "dlq": inspection.dlq,
            "approximate_count": inspection.approximate_count,
            "messages": [vars(m) for m in inspection.messages],
        }, indent=2))
        return
    click.echo(f"{inspection.dlq}: about {inspection.approximate_count} messages "
               f"(source queue {inspection.queue})")
    for message in inspection.messages:
        body = message.body if len(message.body) <= BODY_PREVIEW_CHARS else (
            message.body[:BODY_PREVIEW_CHARS] + "...")
        click.echo(f"- {message.message_id} sent {message.sent_at}, "
                   f"received {message.receive_count}x"
                   + (f", poison: {message.reason}" if message.reason else ""))
        click.echo(f"  {body}")


@dlq.command("redrive")
@click.argument("queue", type=_QUEUES)
@_wait_option
@click.option("--dry-run", is_flag=True, help="Count what would move; change nothing.")
@click.option("--limit", type=click.IntRange(1), help="Move at most this many messages.")
def redrive_command(queue: str, wait_seconds: int, dry_run: bool, limit: int | None) -> None:
    """Move QUEUE's dead-letter messages back to QUEUE (receive, send, delete)."""
    aws = _clients()
    names = aws.settings.names
    result = redrive(sqs=aws.sqs, dlq_url=aws.dlq_url(Queue(queue)),
                     queue_url=aws.queue_url(Queue(queue)), dry_run=dry_run, limit=limit,
                     wait_seconds=wait_seconds)
    source, target = names.dlq(Queue(queue)), names.queue(Queue(queue))
    if dry_run:
        click.echo(f"Dry run: {result.moved} messages would move from {source} to {target}.")
    else:
        click.echo(f"Moved {result.moved} messages from {source} to {target}.")
    for failure in result.failed:
        click.echo(f"not moved: {failure}", err=True)
    if result.failed:
        raise SystemExit(1)
