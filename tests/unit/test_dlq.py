"""`gas dlq inspect|redrive` against the emulator (moto has no StartMessageMoveTask, which is
one reason redrive is receive → send → delete)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from click.testing import CliRunner

from gas_cli.dlq import inspect_dlq, redrive
from gas_cli.main import cli
from gas_core.aws import AwsClients
from gas_core.resources import POISON_REASON_ATTRIBUTE, Queue
from gas_core.settings import GasSettings


@pytest.fixture
def queues(fresh_settings: GasSettings) -> AwsClients:
    """Only the notifier queue and its DLQ, under a prefix of this test's own."""
    aws = AwsClients(fresh_settings)
    aws.sqs.create_queue(QueueName=fresh_settings.names.dlq(Queue.NOTIFIER))
    aws.sqs.create_queue(QueueName=fresh_settings.names.queue(Queue.NOTIFIER))
    return aws


def dead_letter(aws: AwsClients, body: str, reason: str | None = None) -> None:
    attributes: dict[str, Any] = {"event_type": {"DataType": "String",
                                                 "StringValue": "job.completed"}}
    if reason:
        attributes[POISON_REASON_ATTRIBUTE] = {"DataType": "String", "StringValue": reason}
    aws.sqs.send_message(QueueUrl=aws.dlq_url(Queue.NOTIFIER), MessageBody=body,
                         MessageAttributes=attributes)


def drain(aws: AwsClients, url: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    while True:
        messages = aws.sqs.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=60,
            MessageAttributeNames=["All"]).get("Messages", [])
        if not messages:
            return found
        found += messages


def cli_env(settings: GasSettings) -> dict[str, str]:
    return {
        "GAS_AWS_ENDPOINT_URL": str(settings.aws_endpoint_url),
        "GAS_AWS_REGION": settings.aws_region,
        "GAS_AWS_ACCESS_KEY_ID": "testing",
        "GAS_AWS_SECRET_ACCESS_KEY": "testing",
        "GAS_NAME_PREFIX": settings.name_prefix,
    }


def test_redrive_moves_every_dead_letter_back_with_its_attributes_but_not_the_poison_reason(
    queues: AwsClients,
) -> None:
    # Given three dead letters, one of them poison
    bodies = [json.dumps({"job_id": uuid.uuid4().hex}) for _ in range(3)]
    for i, body in enumerate(bodies):
        dead_letter(queues, body, reason="bad json" if i == 0 else None)
    # When they are redriven
    result = redrive(sqs=queues.sqs, wait_seconds=0, dlq_url=queues.dlq_url(Queue.NOTIFIER),
                     queue_url=queues.queue_url(Queue.NOTIFIER))
    # Then all three are on the source queue, once each, and the DLQ is empty
    assert result.moved == 3 and not result.failed
    moved = drain(queues, queues.queue_url(Queue.NOTIFIER))
    assert sorted(m["Body"] for m in moved) == sorted(bodies)
    for message in moved:
        assert message["MessageAttributes"]["event_type"]["StringValue"] == "job.completed"
        assert POISON_REASON_ATTRIBUTE not in message["MessageAttributes"]
    assert drain(queues, queues.dlq_url(Queue.NOTIFIER)) == []


def test_redrive_is_idempotent_a_second_run_moves_nothing(queues: AwsClients) -> None:
    dead_letter(queues, '{"job_id": "j1"}')
    urls: dict[str, Any] = {"dlq_url": queues.dlq_url(Queue.NOTIFIER),
            "queue_url": queues.queue_url(Queue.NOTIFIER)}
    assert redrive(sqs=queues.sqs, wait_seconds=0, **urls).moved == 1
    assert redrive(sqs=queues.sqs, wait_seconds=0, **urls).moved == 0
    assert len(drain(queues, urls["queue_url"])) == 1


def test_a_dry_run_counts_and_changes_nothing(queues: AwsClients) -> None:
    for i in range(12):  # more than one receive batch
        dead_letter(queues, f'{{"job_id": "j{i}"}}')
    urls: dict[str, Any] = {"dlq_url": queues.dlq_url(Queue.NOTIFIER),
            "queue_url": queues.queue_url(Queue.NOTIFIER)}
    result = redrive(sqs=queues.sqs, wait_seconds=0, dry_run=True, **urls)
    assert result.moved == 12 and result.dry_run
    # Nothing moved, and the dead letters are visible again at once
    assert drain(queues, urls["queue_url"]) == []
    assert len(drain(queues, urls["dlq_url"])) == 12


def test_a_limit_moves_only_that_many(queues: AwsClients) -> None:
    for i in range(5):
        dead_letter(queues, f'{{"job_id": "j{i}"}}')
    result = redrive(sqs=queues.sqs, wait_seconds=0, dlq_url=queues.dlq_url(Queue.NOTIFIER),
                     queue_url=queues.queue_url(Queue.NOTIFIER), limit=2)
    assert result.moved == 2
    assert len(drain(queues, queues.queue_url(Queue.NOTIFIER))) == 2


def test_inspect_shows_count_and_reasons_and_leaves_messages_in_place(
    queues: AwsClients, fresh_settings: GasSettings,
) -> None:
    dead_letter(queues, '{"not": "an event"}', reason="validation error: type missing")
    dead_letter(queues, '{"job_id": "j2"}')
    inspection = inspect_dlq(sqs=queues.sqs, wait_seconds=0, queue="q", dlq="q-dlq",
                             dlq_url=queues.dlq_url(Queue.NOTIFIER), limit=10)
    assert inspection.approximate_count == 2
    assert {m.reason for m in inspection.messages} == {"validation error: type missing", None}
    assert len(drain(queues, queues.dlq_url(Queue.NOTIFIER))) == 2


def test_the_gas_dlq_command_inspects_and_redrives(
    queues: AwsClients, fresh_settings: GasSettings,
) -> None:
    dead_letter(queues, '{"job_id": "j1"}', reason="boom")
    runner = CliRunner()
    env = cli_env(fresh_settings)
    fast = ["--wait-seconds", "0"]
    shown = runner.invoke(cli, ["dlq", "inspect", "notifier", "--json", *fast], env=env)
    assert shown.exit_code == 0, shown.output
    report = json.loads(shown.output)
    assert report["dlq"] == f"{fresh_settings.name_prefix}-notifier-dlq"
    assert report["messages"][0]["reason"] == "boom"
    dry = runner.invoke(cli, ["dlq", "redrive", "notifier", "--dry-run", *fast], env=env)
    assert dry.exit_code == 0 and "Dry run: 1 messages would move" in dry.output
    moved = runner.invoke(cli, ["dlq", "redrive", "notifier", *fast], env=env)
    assert moved.exit_code == 0 and "Moved 1 messages" in moved.output
    assert len(drain(queues, queues.queue_url(Queue.NOTIFIER))) == 1
    bad = runner.invoke(cli, ["dlq", "redrive", "no-such-queue"], env=env)
    assert bad.exit_code != 0
