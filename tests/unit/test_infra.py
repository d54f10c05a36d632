"""`gas infra apply | plan` against an empty emulator account."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from gas_cli.infra import Infrastructure
from gas_core.aws import AwsClients
from gas_core.events import (
    ArchiveRequested,
    Event,
    JobCompleted,
    JobFailed,
    JobRequested,
    JobRestored,
    UserTierChanged,
    publish,
)
from gas_core.resources import MAX_RECEIVE_COUNT, QUEUES, TTL_ATTRIBUTE, Bucket, Queue, Topic
from gas_core.settings import GasSettings, Tier


@pytest.fixture
def applied(fresh_settings: GasSettings) -> tuple[GasSettings, AwsClients, list[Any]]:
    aws = AwsClients(fresh_settings)
    changes = Infrastructure(fresh_settings, aws).apply()
    return fresh_settings, aws, changes


def test_plan_on_an_empty_account_lists_everything_and_creates_nothing(
    fresh_settings: GasSettings,
) -> None:
    aws = AwsClients(fresh_settings)
    plan = Infrastructure(fresh_settings, aws).plan()
    created = {(c.kind, c.name) for c in plan if c.action == "create"}
    names = fresh_settings.names
    assert ("table", names.table) in created
    assert {("queue", names.queue(q)) for q in Queue} <= created
    assert {("queue", names.dlq(q)) for q in Queue} <= created
    assert {("topic", names.topic(t)) for t in Topic} <= created
    assert {("bucket", names.bucket(b)) for b in Bucket} <= created
    with pytest.raises(aws.sqs.exceptions.QueueDoesNotExist):
        aws.sqs.get_queue_url(QueueName=names.queue(Queue.ANNOTATOR))


def test_apply_on_an_empty_account_creates_everything(
    applied: tuple[GasSettings, AwsClients, list[Any]],
) -> None:
    settings, aws, changes = applied
    names = settings.names
    assert changes
    table = aws.dynamodb.describe_table(TableName=names.table)["Table"]
    assert [k["AttributeName"] for k in table["KeySchema"]] == ["pk", "sk"]
    for bucket in Bucket:
        name = names.bucket(bucket)
        block = aws.s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        rules = aws.s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]
        assert rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
        [lifecycle] = aws.s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
        assert lifecycle["Status"] == "Enabled"
        assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    cors = aws.s3.get_bucket_cors(Bucket=names.inputs_bucket)["CORSRules"]
    assert "POST" in cors[0]["AllowedMethods"]
    notification = aws.s3.get_bucket_notification_configuration(Bucket=names.archive_bucket)
    assert notification["TopicConfigurations"][0]["Events"] == ["s3:ObjectRestore:Completed"]
    assert settings.email_sender in aws.ses.list_identities()["Identities"]


def test_apply_makes_the_archive_bucket_versioned(
    applied: tuple[GasSettings, AwsClients, list[Any]],
) -> None:
    """The archiver deletes archive copies by version (docs/lifecycle.md): only on a
    versioned bucket can a stale archiver not remove a newer run's copy."""
    settings, aws, _ = applied
    versioning = aws.s3.get_bucket_versioning(Bucket=settings.names.archive_bucket)
    assert versioning.get("Status") == "Enabled"
    assert Infrastructure(settings, aws).plan() == []


def test_every_queue_has_its_dlq(applied: tuple[GasSettings, AwsClients, list[Any]]) -> None:
    settings, aws, _ = applied
    for spec in QUEUES:
        url = aws.sqs.get_queue_url(QueueName=settings.names.queue(spec.queue))["QueueUrl"]
        attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"]
        redrive = json.loads(attributes["RedrivePolicy"])
        assert redrive["deadLetterTargetArn"].endswith(":" + settings.names.dlq(spec.queue))
        assert int(redrive["maxReceiveCount"]) == MAX_RECEIVE_COUNT
        assert attributes["VisibilityTimeout"] == str(spec.visibility_timeout)
        policy = json.loads(attributes["Policy"])
        assert policy["Statement"][0]["Principal"] == {"Service": "sns.amazonaws.com"}


def test_a_second_apply_reports_no_change(
    applied: tuple[GasSettings, AwsClients, list[Any]],
) -> None:
    settings, aws, _ = applied
    infra = Infrastructure(settings, aws)
    assert infra.apply() == []
    assert infra.plan() == []


def test_apply_enables_ttl_on_expires_at_so_markers_expire(
    applied: tuple[GasSettings, AwsClients, list[Any]],
) -> None:
    settings, aws, _ = applied
    ttl = aws.dynamodb.describe_time_to_live(TableName=settings.names.table)
    assert ttl["TimeToLiveDescription"]["TimeToLiveStatus"] == "ENABLED"
    assert ttl["TimeToLiveDescription"]["AttributeName"] == TTL_ATTRIBUTE == "expires_at"


def test_plan_shows_ttl_drift_and_apply_repairs_it(
    applied: tuple[GasSettings, AwsClients, list[Any]],
) -> None:
    settings, aws, _ = applied
    table = settings.names.table
    aws.dynamodb.update_time_to_live(
        TableName=table,
        TimeToLiveSpecification={"Enabled": False, "AttributeName": TTL_ATTRIBUTE},
    )
    infra = Infrastructure(settings, aws)
    [drift] = infra.plan()
    assert str(drift) == f"~ update table {table}: TTL on expires_at"
    assert infra.apply() == [drift]
    assert infra.plan() == []
    status = aws.dynamodb.describe_time_to_live(TableName=table)["TimeToLiveDescription"]
    assert status["TimeToLiveStatus"] == "ENABLED"


def test_apply_repairs_drift(applied: tuple[GasSettings, AwsClients, list[Any]]) -> None:
    settings, aws, _ = applied
    url = aws.sqs.get_queue_url(QueueName=settings.names.queue(Queue.NOTIFIER))["QueueUrl"]
    aws.sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "5"})
    infra = Infrastructure(settings, aws)
    changes = infra.apply()
    assert len(changes) == 1
    assert str(changes[0]).startswith(f"~ update queue {settings.names.queue(Queue.NOTIFIER)}: ")
    assert "VisibilityTimeout" in changes[0].detail
    assert infra.plan() == []
    attributes = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == "60"


def test_apply_restores_its_lifecycle_rule_and_keeps_the_operators(
    applied: tuple[GasSettings, AwsClients, list[Any]],
) -> None:
    settings, aws, _ = applied
    archive = settings.names.archive_bucket
    operators_rule = {"ID": "expire-noncurrent", "Status": "Enabled", "Filter": {"Prefix": ""},
                      "NoncurrentVersionExpiration": {"NoncurrentDays": 30}}
    # An operator replaces the rules with their own (docs/operations.md suggests one).
    aws.s3.put_bucket_lifecycle_configuration(
        Bucket=archive, LifecycleConfiguration={"Rules": [operators_rule]})  # type: ignore[typeddict-item]
    infra = Infrastructure(settings, aws)
    [change] = infra.apply()
    assert str(change) == f"~ update bucket {archive}: abort incomplete multipart uploads"
    assert infra.plan() == []
    rules = aws.s3.get_bucket_lifecycle_configuration(Bucket=archive)["Rules"]
    assert sorted(r["ID"] for r in rules) == ["expire-noncurrent",
                                              "gas-abort-incomplete-multipart-uploads"]


def _drain_all(aws: AwsClients, settings: GasSettings) -> dict[Queue, list[str]]:
    received: dict[Queue, list[str]] = {}
    for queue in Queue:
        url = aws.sqs.get_queue_url(QueueName=settings.names.queue(queue))["QueueUrl"]
        types: list[str] = []
        for _ in range(3):
            messages = aws.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            for message in messages:
                types.append(json.loads(message["Body"]).get("type", "s3-event"))
                aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        received[queue] = sorted(types)
    return received


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


EVENTS: list[tuple[Event, set[Queue]]] = [
    (JobRequested(user_id="u", job_id="j", user_tier=Tier.FREE, input_bucket="b",
                  input_key="k"), {Queue.ANNOTATOR}),
    (JobCompleted(user_id="u", job_id="j", user_tier=Tier.FREE, completed_at=_now()),
     {Queue.ARCHIVER, Queue.NOTIFIER}),
    (JobCompleted(user_id="u", job_id="j", user_tier=Tier.PREMIUM, completed_at=_now()),
     {Queue.NOTIFIER}),
    (JobFailed(user_id="u", job_id="j", user_tier=Tier.FREE, error="bad"), {Queue.NOTIFIER}),
    (ArchiveRequested(user_id="u", job_id="j", user_tier=Tier.FREE, due_at=_now()),
     {Queue.ARCHIVER}),
    (JobRestored(user_id="u", job_id="j", user_tier=Tier.PREMIUM), {Queue.NOTIFIER}),
    (UserTierChanged(user_id="u", old_tier=Tier.FREE, new_tier=Tier.PREMIUM,
                     user_tier=Tier.PREMIUM), {Queue.RESTORER}),
]


@pytest.mark.parametrize(("event", "expected"), EVENTS, ids=lambda v: getattr(v, "type", ""))
def test_a_message_published_to_each_topic_reaches_exactly_the_designed_queues(
    applied: tuple[GasSettings, AwsClients, list[Any]], event: Event, expected: set[Queue]
) -> None:
    settings, aws, _ = applied
    _drain_all(aws, settings)  # S3 announces a new notification configuration with a test event
    publish(aws.sns, aws.topic_arn(event.TOPIC), event)
    received = _drain_all(aws, settings)
    event_type = event.attributes()["event_type"]
    assert {q for q, types in received.items() if types} == expected
    for queue in expected:
        assert received[queue] == [event_type]


def test_a_completed_restore_in_the_archive_bucket_reaches_only_the_thawer(
    applied: tuple[GasSettings, AwsClients, list[Any]],
) -> None:
    settings, aws, _ = applied
    aws.s3.put_object(Bucket=settings.names.archive_bucket, Key="results/u/j/x.vcf.gz",
                      Body=b"data", StorageClass="GLACIER")
    _drain_all(aws, settings)  # S3 may announce the configuration with a test event
    aws.s3.restore_object(Bucket=settings.names.archive_bucket, Key="results/u/j/x.vcf.gz",
                          RestoreRequest={"Days": 1})
    # moto completes a restore (and sends the event) when the object's state is next read.
    aws.s3.head_object(Bucket=settings.names.archive_bucket, Key="results/u/j/x.vcf.gz")
    deadline = time.monotonic() + 5
    received: dict[Queue, list[str]] = {}
    while time.monotonic() < deadline and not any(received.values()):
        received = _drain_all(aws, settings)
    assert {q for q, types in received.items() if types} == {Queue.THAWER}
