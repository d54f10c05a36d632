"""Names and shape of every AWS resource GAS uses, defined once.

Services read names from here (through `GasSettings.names`); `gas infra apply` creates exactly
these resources and `gas infra policy` derives each service's IAM policy from them. Nothing
else spells a bucket, queue or topic name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

# SQS ReceiveMessage returns at most this many messages per call.
MAX_MESSAGES_PER_RECEIVE = 10
# The message attribute the worker loop sets when it moves a poison message to its DLQ; `gas dlq`
# shows it and strips it on redrive.
POISON_REASON_ATTRIBUTE = "gas_poison_reason"


class Topic(StrEnum):
    JOB_REQUESTS = "job-requests"
    JOB_RESULTS = "job-results"
    USER_EVENTS = "user-events"
    RESTORE_EVENTS = "restore-events"


class Queue(StrEnum):
    """One queue per consuming service (the queue is named after its consumer)."""

    ANNOTATOR = "annotator"
    ARCHIVER = "archiver"
    NOTIFIER = "notifier"
    RESTORER = "restorer"
    THAWER = "thawer"


class Bucket(StrEnum):
    INPUTS = "inputs"
    RESULTS = "results"
    ARCHIVE = "archive"


# SNS message attribute names used by filter policies (see gas_core.events).
ATTR_EVENT_TYPE = "event_type"
ATTR_USER_TIER = "user_tier"

# The table's TTL attribute (epoch seconds): DynamoDB deletes an item some time after it passes
# (the notifier's sent-markers use it; docs/lifecycle.md).
TTL_ATTRIBUTE = "expires_at"

# A message that fails this many receives moves to the queue's dead-letter queue.
MAX_RECEIVE_COUNT = 5
# Longest retention SQS allows (14 days), so nothing in a DLQ expires before someone looks.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600


@dataclass(frozen=True)
class TableIndex:
    """A global secondary index of the table: string hash key, number range key."""

    name: str
    hash_key: str
    range_key: str


# The table's sparse index of items with events still to publish (gas_core.outbox): only
# items whose outbox is not empty carry its keys, so the reconciler finds them with a Query
# (never a Scan) however large the table. The hash key is the constant OUTBOX_PENDING; the
# range key is the epoch second from which the reconciler publishes the item's events.
OUTBOX_INDEX = TableIndex("outbox", hash_key="outbox_pending", range_key="outbox_due")
OUTBOX_PENDING = "pending"
# The table's sparse index of PENDING jobs (gas_core.jobs.queue): a job carries its keys from
# submit until the write that moves it out of PENDING removes them, so a COUNT Query of it
# tells a job how many jobs submitted before it still wait. The hash key is the constant
# QUEUE_PENDING; the range key is the job's submit time (epoch seconds).
QUEUE_INDEX = TableIndex("queue", hash_key="queue_pending", range_key="queue_at")
QUEUE_PENDING = "pending"
TABLE_INDEXES: tuple[TableIndex, ...] = (OUTBOX_INDEX, QUEUE_INDEX)


@dataclass(frozen=True)
class Subscription:
    topic: Topic
    queue: Queue
    # SNS filter policy on message attributes; None delivers every message.
    filter_policy: dict[str, list[str]] | None = None


@dataclass(frozen=True)
class QueueSpec:
    queue: Queue
    # Longest a single handler may hold a message without a heartbeat; the worker renews it.
    visibility_timeout: int = 60
    message_retention: int = 4 * 24 * 3600


QUEUES: tuple[QueueSpec, ...] = (
    QueueSpec(Queue.ANNOTATOR, visibility_timeout=300),
    QueueSpec(Queue.ARCHIVER, visibility_timeout=300, message_retention=DLQ_RETENTION_SECONDS),
    QueueSpec(Queue.NOTIFIER),
    QueueSpec(Queue.RESTORER, visibility_timeout=120),
    QueueSpec(Queue.THAWER, visibility_timeout=300),
)

SUBSCRIPTIONS: tuple[Subscription, ...] = (
    Subscription(Topic.JOB_REQUESTS, Queue.ANNOTATOR, {ATTR_EVENT_TYPE: ["job.requested"]}),
    # Only free users' results are ever archived; a downgrade re-requests archiving.
    Subscription(
        Topic.JOB_RESULTS,
        Queue.ARCHIVER,
        {
            ATTR_EVENT_TYPE: ["job.completed", "job.archive_requested"],
            ATTR_USER_TIER: ["free"],
        },
    ),
    Subscription(
        Topic.JOB_RESULTS,
        Queue.NOTIFIER,
        {ATTR_EVENT_TYPE: ["job.completed", "job.failed", "job.restored"]},
    ),
    Subscription(Topic.USER_EVENTS, Queue.RESTORER, {ATTR_EVENT_TYPE: ["user.tier_changed"]}),
    # S3 event notifications carry no message attributes, so no filter here; the bucket
    # notification itself only sends ObjectRestore:Completed.
    Subscription(Topic.RESTORE_EVENTS, Queue.THAWER),
)


@dataclass(frozen=True)
class ResourceNames:
    """Concrete names for one deployment, from its prefix (default `gas`)."""

    prefix: str = "gas"
    table: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "table", self.prefix)

    def bucket(self, bucket: Bucket) -> str:
        return f"{self.prefix}-{bucket.value}"

    def topic(self, topic: Topic) -> str:
        return f"{self.prefix}-{topic.value}"

    def queue(self, queue: Queue) -> str:
        return f"{self.prefix}-{queue.value}"

    def dlq(self, queue: Queue) -> str:
        return f"{self.prefix}-{queue.value}-dlq"

    @property
    def inputs_bucket(self) -> str:
        return self.bucket(Bucket.INPUTS)

    @property
    def results_bucket(self) -> str:
        return self.bucket(Bucket.RESULTS)

    @property
    def archive_bucket(self) -> str:
        return self.bucket(Bucket.ARCHIVE)


def subscriptions_of(topic: Topic) -> list[Subscription]:
    return [s for s in SUBSCRIPTIONS if s.topic is topic]


def queue_spec(queue: Queue) -> QueueSpec:
    return next(spec for spec in QUEUES if spec.queue is queue)
