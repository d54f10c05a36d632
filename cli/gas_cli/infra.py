"""`gas infra apply | plan`: create or update every AWS resource GAS uses, idempotently.

One pass reads each resource, compares it with what `gas_core.resources` defines, and either
reports the difference (plan) or makes it so (apply). A second apply finds nothing to change.
The same code runs against the local emulator and a real account.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from botocore.exceptions import ClientError

from gas_core.aws import AwsClients
from gas_core.resources import (
    DLQ_RETENTION_SECONDS,
    MAX_RECEIVE_COUNT,
    QUEUES,
    SUBSCRIPTIONS,
    TABLE_INDEXES,
    TTL_ATTRIBUTE,
    Bucket,
    Queue,
    QueueSpec,
    Subscription,
    TableIndex,
    Topic,
)
from gas_core.settings import GasSettings

# Days after which S3 removes the parts of a multipart upload nobody completed or aborted.
INCOMPLETE_UPLOAD_DAYS = 2
ABORT_UPLOADS_RULE = "gas-abort-incomplete-multipart-uploads"


@dataclass(frozen=True)
class Change:
    action: Literal["create", "update"]
    kind: str
    name: str
    detail: str = ""

    def __str__(self) -> str:
        sign = "+" if self.action == "create" else "~"
        return f"{sign} {self.action} {self.kind} {self.name}" + (
            f": {self.detail}" if self.detail else ""
        )


class Infrastructure:
    """Desired state of one deployment (from settings) and the code to reach it."""

    def __init__(self, settings: GasSettings, aws: AwsClients | None = None) -> None:
        self.settings = settings
        self.aws = aws or AwsClients(settings)
        self.names = settings.names
        self.region = settings.aws_region
        self._account: str | None = None
        self._changes: list[Change] = []
        self._dry_run = True

    @property
    def account(self) -> str:
        if self._account is None:
            self._account = self.aws.account_id()
        return self._account

    # -- ARNs --------------------------------------------------------------------------------

    def topic_arn(self, topic: Topic) -> str:
        return f"arn:aws:sns:{self.region}:{self.account}:{self.names.topic(topic)}"

    def queue_arn(self, name: str) -> str:
        return f"arn:aws:sqs:{self.region}:{self.account}:{name}"

    def bucket_arn(self, bucket: Bucket) -> str:
        return f"arn:aws:s3:::{self.names.bucket(bucket)}"

    def table_arn(self) -> str:
        return f"arn:aws:dynamodb:{self.region}:{self.account}:table/{self.names.table}"

    # -- entry points ------------------------------------------------------------------------

    def plan(self) -> list[Change]:
        return self._run(dry_run=True)

    def apply(self) -> list[Change]:
        return self._run(dry_run=False)

    def _run(self, *, dry_run: bool) -> list[Change]:
        self._changes = []
        self._dry_run = dry_run
        self._ensure_table()
        for topic in Topic:
            self._ensure_topic(topic)
        for spec in QUEUES:
            self._ensure_queue(spec)
        for subscription in SUBSCRIPTIONS:
            self._ensure_subscription(subscription)
        for bucket in Bucket:
            self._ensure_bucket(bucket)
        self._ensure_email_identity()
        return self._changes

    def _change(
        self, action: Literal["create", "update"], kind: str, name: str, detail: str,
        make: Callable[[], Any],
    ) -> None:
        self._changes.append(Change(action, kind, name, detail))
        if not self._dry_run:
            make()

    # -- DynamoDB ----------------------------------------------------------------------------

    def _ensure_table(self) -> None:
        db = self.aws.dynamodb
        name = self.names.table
        try:
            db.describe_table(TableName=name)
        except db.exceptions.ResourceNotFoundException:
            def create() -> None:
                db.create_table(
                    TableName=name,
                    AttributeDefinitions=[
                        {"AttributeName": "pk", "AttributeType": "S"},
                        {"AttributeName": "sk", "AttributeType": "S"},
                        *_index_attributes(),
                    ],
                    KeySchema=[
                        {"AttributeName": "pk", "KeyType": "HASH"},
                        {"AttributeName": "sk", "KeyType": "RANGE"},
                    ],
                    GlobalSecondaryIndexes=[_index_spec(index) for index in TABLE_INDEXES],
                    BillingMode="PAY_PER_REQUEST",
                    SSESpecification={"Enabled": True},
                )
                db.get_waiter("table_exists").wait(
                    TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
                )

            self._change("create", "table", name, "pk/sk, on-demand, encrypted", create)
            if self._dry_run:
                return
        self._ensure_table_indexes()
        backups = db.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        pitr = backups.get("PointInTimeRecoveryDescription", {})
        if pitr.get("PointInTimeRecoveryStatus") != "ENABLED":
            self._change(
                "update", "table", name, "point-in-time recovery on",
                lambda: db.update_continuous_backups(
                    TableName=name,
                    PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
                ),
            )
        ttl = db.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if (ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING")
                or ttl.get("AttributeName") != TTL_ATTRIBUTE):
            self._change(
                "update", "table", name, f"TTL on {TTL_ATTRIBUTE}",
                lambda: db.update_time_to_live(
                    TableName=name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
                ),
            )

    def _ensure_table_indexes(self) -> None:
        """Secondary indexes a table created before they existed is missing (one per update:
        DynamoDB adds one index at a time and refuses an update while the table is UPDATING,
        so each waits for the table to be ACTIVE again before the next)."""
        db = self.aws.dynamodb
        name = self.names.table
        table = db.describe_table(TableName=name)["Table"]
        existing = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}

        def add(index: TableIndex) -> None:
            db.update_table(
                TableName=name,
                AttributeDefinitions=_index_attributes(),
                GlobalSecondaryIndexUpdates=[{"Create": _index_spec(index)}],
            )
            db.get_waiter("table_exists").wait(
                TableName=name, WaiterConfig={"Delay": 5, "MaxAttempts": 120}
            )

        for index in TABLE_INDEXES:
            if index.name in existing:
                continue
            self._change("update", "table", name, f"add index {index.name}",
                         lambda index=index: add(index))  # type: ignore[misc]

    # -- SNS ---------------------------------------------------------------------------------

    def _existing_topics(self) -> set[str]:
        arns: set[str] = set()
        for page in self.aws.sns.get_paginator("list_topics").paginate():
            arns.update(t["TopicArn"] for t in page.get("Topics", []))
        return arns

    def _topic_policy(self, topic: Topic) -> dict[str, Any] | None:
        if topic is not Topic.RESTORE_EVENTS:
            return None
        # Only the archive bucket of this account may publish restore notifications.
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ArchiveBucketRestoreEvents",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "SNS:Publish",
                    "Resource": self.topic_arn(topic),
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": self.bucket_arn(Bucket.ARCHIVE)},
                        "StringEquals": {"aws:SourceAccount": self.account},
                    },
                }
            ],
        }

    def _ensure_topic(self, topic: Topic) -> None:
        sns = self.aws.sns
        name, arn = self.names.topic(topic), self.topic_arn(topic)
        policy = self._topic_policy(topic)
        if arn not in self._existing_topics():
            def create() -> None:
                sns.create_topic(Name=name)
                if policy:
                    sns.set_topic_attributes(
                        TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(policy)
                    )

            self._change("create", "topic", name, "", create)
            return
        if policy:
            current = sns.get_topic_attributes(TopicArn=arn)["Attributes"].get("Policy")
            if not current or json.loads(current) != policy:
                self._change(
                    "update", "topic", name, "policy (S3 may publish restore events)",
                    lambda: sns.set_topic_attributes(
                        TopicArn=arn, AttributeName="Policy", AttributeValue=json.dumps(policy)
                    ),
                )

    # -- SQS ---------------------------------------------------------------------------------

    def _queue_policy(self, queue: Queue, queue_name: str) -> dict[str, Any]:
        topics = sorted({self.topic_arn(s.topic) for s in SUBSCRIPTIONS if s.queue is queue})
        return {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "OnlyItsTopicsMaySend",
                    "Effect": "Allow",
                    "Principal": {"Service": "sns.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": self.queue_arn(queue_name),
                    "Condition": {"ArnEquals": {"aws:SourceArn": topics}},
                }
            ],
        }

    def _desired_queue_attributes(self, spec: QueueSpec) -> tuple[dict[str, str], dict[str, str]]:
        dlq_name = self.names.dlq(spec.queue)
        queue_name = self.names.queue(spec.queue)
        dlq = {
            "MessageRetentionPeriod": str(DLQ_RETENTION_SECONDS),
            "SqsManagedSseEnabled": "true",
        }
        main = {
            "VisibilityTimeout": str(spec.visibility_timeout),
            "MessageRetentionPeriod": str(spec.message_retention),
            "ReceiveMessageWaitTimeSeconds": "20",
            "SqsManagedSseEnabled": "true",
            "RedrivePolicy": json.dumps(
                {"deadLetterTargetArn": self.queue_arn(dlq_name),
                 "maxReceiveCount": MAX_RECEIVE_COUNT}
            ),
            "Policy": json.dumps(self._queue_policy(spec.queue, queue_name)),
        }
        return dlq, main

    def _ensure_queue(self, spec: QueueSpec) -> None:
        dlq_attributes, main_attributes = self._desired_queue_attributes(spec)
        self._ensure_one_queue(self.names.dlq(spec.queue), dlq_attributes)
        self._ensure_one_queue(self.names.queue(spec.queue), main_attributes)

    def _ensure_one_queue(self, name: str, desired: dict[str, str]) -> None:
        sqs: Any = self.aws.sqs  # attribute names are plain strings here, not the stub literals
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            self._change("create", "queue", name, "",
                         lambda: sqs.create_queue(QueueName=name, Attributes=desired))
            return
        current = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        differing = {
            key: value for key, value in desired.items()
            if not _same_attribute(current.get(key), value)
        }
        if differing:
            # Send the whole desired set: idempotent in SQS, and the emulator drops attributes
            # (the Policy) that a partial update leaves out.
            self._change(
                "update", "queue", name, ", ".join(sorted(differing)),
                lambda: sqs.set_queue_attributes(QueueUrl=url, Attributes=desired),
            )

    # -- subscriptions -----------------------------------------------------------------------

    def _desired_subscription_attributes(self, subscription: Subscription) -> dict[str, str]:
        attributes = {"RawMessageDelivery": "true"}
        if subscription.filter_policy:
            attributes["FilterPolicy"] = json.dumps(subscription.filter_policy, sort_keys=True)
            attributes["FilterPolicyScope"] = "MessageAttributes"
        return attributes

    def _ensure_subscription(self, subscription: Subscription) -> None:
        sns = self.aws.sns
        topic_arn = self.topic_arn(subscription.topic)
        queue_name = self.names.queue(subscription.queue)
        queue_arn = self.queue_arn(queue_name)
        label = f"{self.names.topic(subscription.topic)} → {queue_name}"
        desired = self._desired_subscription_attributes(subscription)
        existing = None
        if topic_arn in self._existing_topics():
            for page in sns.get_paginator("list_subscriptions_by_topic").paginate(
                TopicArn=topic_arn
            ):
                for sub in page.get("Subscriptions", []):
                    if sub.get("Endpoint") == queue_arn and sub.get("Protocol") == "sqs":
                        existing = sub["SubscriptionArn"]
        if existing is None:
            self._change(
                "create", "subscription", label,
                "raw delivery" + (", filtered" if subscription.filter_policy else ""),
                lambda: sns.subscribe(
                    TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn,
                    Attributes=desired, ReturnSubscriptionArn=True,
                ),
            )
            return
        current = sns.get_subscription_attributes(SubscriptionArn=existing)["Attributes"]
        for key, value in desired.items():
            if not _same_attribute(current.get(key), value):
                self._change(
                    "update", "subscription", label, key,
                    lambda key=key, value=value: sns.set_subscription_attributes(  # type: ignore[misc]
                        SubscriptionArn=existing, AttributeName=key, AttributeValue=value
                    ),
                )

    # -- S3 ----------------------------------------------------------------------------------

    def _ensure_bucket(self, bucket: Bucket) -> None:
        s3 = self.aws.s3
        name = self.names.bucket(bucket)
        exists = True
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as error:
            if _error_code(error) not in ("404", "NoSuchBucket", "NotFound"):
                raise
            exists = False

        def create() -> None:
            options: dict[str, Any] = {}
            if self.region != "us-east-1":
                options["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            s3.create_bucket(Bucket=name, **options)

        if not exists:
            self._change("create", "bucket", name, "", create)
        self._ensure_bucket_setting(
            name, exists, "public access block",
            read=lambda: s3.get_public_access_block(Bucket=name)[
                "PublicAccessBlockConfiguration"],
            missing_codes=("NoSuchPublicAccessBlockConfiguration",),
            desired={"BlockPublicAcls": True, "IgnorePublicAcls": True,
                     "BlockPublicPolicy": True, "RestrictPublicBuckets": True},
            write=lambda d: s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=d),
        )
        self._ensure_bucket_setting(
            name, exists, "default encryption",
            read=lambda: _encryption_algorithms(s3.get_bucket_encryption(Bucket=name)),
            missing_codes=("ServerSideEncryptionConfigurationNotFoundError",),
            desired=["AES256"],
            write=lambda _d: s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"},
                               "BucketKeyEnabled": True}]
                },
            ),
        )
        # A multipart upload that never completes (a pod killed mid-upload or mid-copy, where the
        # abort in gas_core.objects cannot run) is invisible but billed: S3 removes its parts.
        # Only this rule is ours: rules an operator adds (docs/operations.md) are kept.
        ours = {
            "ID": ABORT_UPLOADS_RULE,
            "Status": "Enabled",
            "Filter": {"Prefix": ""},
            "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": INCOMPLETE_UPLOAD_DAYS},
        }

        def lifecycle_rules() -> list[Any]:
            try:
                return list(s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"])
            except ClientError as error:
                if _error_code(error) != "NoSuchLifecycleConfiguration":
                    raise
                return []

        def others_and_ours() -> list[Any]:
            return [*(r for r in lifecycle_rules() if r.get("ID") != ABORT_UPLOADS_RULE), ours]

        self._ensure_bucket_setting(
            name, exists, "abort incomplete multipart uploads",
            read=lambda: _our_rule(lifecycle_rules()),
            missing_codes=(),
            desired=_our_rule([ours]),
            write=lambda _d: s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": others_and_ours()}),
        )
        if bucket is Bucket.INPUTS:
            # Browsers upload straight to S3 with a presigned POST from the web origin.
            cors = [{
                "AllowedMethods": ["POST", "PUT"],
                "AllowedOrigins": [self.settings.web_base_url.rstrip("/")],
                "AllowedHeaders": ["*"],
                "ExposeHeaders": ["ETag", "Location"],
                "MaxAgeSeconds": 3000,
            }]
            self._ensure_bucket_setting(
                name, exists, "CORS for browser uploads",
                read=lambda: _normalise_cors(s3.get_bucket_cors(Bucket=name)["CORSRules"]),
                missing_codes=("NoSuchCORSConfiguration",),
                desired=_normalise_cors(cors),
                write=lambda _d: s3.put_bucket_cors(
                    Bucket=name, CORSConfiguration={"CORSRules": cors}),  # type: ignore[typeddict-item]
            )
        if bucket is Bucket.ARCHIVE:
            # Versioned: the archiver deletes only the version it wrote (or one it saw while the
            # job was hot), so a stale archiver's delete can never remove a newer run's copy;
            # a delete by key is also recoverable (docs/lifecycle.md).
            self._ensure_bucket_setting(
                name, exists, "versioning",
                read=lambda: s3.get_bucket_versioning(Bucket=name).get("Status"),
                missing_codes=(),
                desired="Enabled",
                write=lambda _d: s3.put_bucket_versioning(
                    Bucket=name, VersioningConfiguration={"Status": "Enabled"}),
            )
            topic_arn = self.topic_arn(Topic.RESTORE_EVENTS)
            self._ensure_bucket_setting(
                name, exists, "ObjectRestore:Completed → " + self.names.topic(Topic.RESTORE_EVENTS),
                read=lambda: _topic_notifications(
                    s3.get_bucket_notification_configuration(Bucket=name)),
                missing_codes=(),
                desired=[(topic_arn, ("s3:ObjectRestore:Completed",))],
                write=lambda _d: s3.put_bucket_notification_configuration(
                    Bucket=name,
                    NotificationConfiguration={"TopicConfigurations": [{
                        "Id": "gas-restore-completed",
                        "TopicArn": topic_arn,
                        "Events": ["s3:ObjectRestore:Completed"],
                    }]},
                ),
            )

    def _ensure_bucket_setting(
        self,
        bucket: str,
        exists: bool,
        what: str,
        *,
        read: Callable[[], Any],
        missing_codes: tuple[str, ...],
        desired: Any,
        write: Callable[[Any], Any],
    ) -> None:
        current = None
        if exists:
            try:
                current = read()
            except ClientError as error:
                if _error_code(error) not in missing_codes:
                    raise
        if current != desired:
            self._change("update" if exists else "create", "bucket", bucket, what,
                         lambda: write(desired))

    # -- SES ---------------------------------------------------------------------------------

    def _ensure_email_identity(self) -> None:
        ses = self.aws.ses
        sender = self.settings.email_sender
        identities = ses.list_identities(IdentityType="EmailAddress")["Identities"]
        if sender not in identities:
            self._change("create", "email identity", sender, "verification requested",
                         lambda: ses.verify_email_identity(EmailAddress=sender))


def _index_attributes() -> list[Any]:
    return [
        attribute
        for index in TABLE_INDEXES
        for attribute in (
            {"AttributeName": index.hash_key, "AttributeType": "S"},
            {"AttributeName": index.range_key, "AttributeType": "N"},
        )
    ]


def _index_spec(index: TableIndex) -> Any:
    # Keys only: the reader re-reads the item itself (consistently) before acting on it.
    return {
        "IndexName": index.name,
        "KeySchema": [
            {"AttributeName": index.hash_key, "KeyType": "HASH"},
            {"AttributeName": index.range_key, "KeyType": "RANGE"},
        ],
        "Projection": {"ProjectionType": "KEYS_ONLY"},
    }


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _same_attribute(current: str | None, desired: str) -> bool:
    if current is None:
        return False
    if desired.startswith("{"):
        try:
            return bool(json.loads(current) == json.loads(desired))
        except ValueError:
            return False
    return current.lower() == desired.lower()


def _encryption_algorithms(response: Any) -> list[str]:
    rules = response["ServerSideEncryptionConfiguration"]["Rules"]
    return sorted(r["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] for r in rules)


def _our_rule(rules: list[Any]) -> tuple[str, int | None] | None:
    """GAS's lifecycle rule among `rules`, as (status, days before incomplete uploads are
    aborted); None when absent."""
    for rule in rules:
        if rule.get("ID") == ABORT_UPLOADS_RULE:
            days = rule.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation")
            return str(rule.get("Status", "")), days
    return None


def _normalise_cors(rules: Any) -> list[dict[str, Any]]:
    keys = ("AllowedMethods", "AllowedOrigins", "AllowedHeaders", "ExposeHeaders")
    return [{k: sorted(r.get(k, [])) for k in keys} | {"MaxAgeSeconds": r.get("MaxAgeSeconds")}
            for r in rules]


def _topic_notifications(response: Any) -> list[tuple[str, tuple[str, ...]]]:
    return sorted(
        (c["TopicArn"], tuple(sorted(c["Events"])))
        for c in response.get("TopicConfigurations", [])
    )
