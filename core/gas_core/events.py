"""Message schemas for every topic, with type and version.

Each event is a pydantic model with a literal `type` (the discriminator) and `version`.
Publishing sets the SNS message attributes that subscriptions filter on (`event_type`, and
`user_tier` where the tier matters); consumers parse bodies with `parse_event`, so a message
of a type a queue does not expect is a poison message rather than a surprise in a handler.

The S3 restore notification is AWS's own format, so it has its own parser.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, TypeVar, Union
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from ulid import ULID

from gas_core.resources import ATTR_EVENT_TYPE, ATTR_USER_TIER, Topic
from gas_core.settings import Tier

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient


def _now() -> datetime:
    return datetime.now(UTC)


def _event_id() -> str:
    return str(ULID())


class Event(BaseModel):
    """Fields every GAS event carries."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    version: int = 1
    # Unique per publish; consumers log it, and idempotency keys on job/user state, not on it.
    event_id: str = Field(default_factory=_event_id)
    occurred_at: datetime = Field(default_factory=_now)

    # The topic this event is published to (set per subclass).
    TOPIC: ClassVar[Topic]

    def attributes(self) -> dict[str, str]:
        attrs = {ATTR_EVENT_TYPE: str(getattr(self, "type"))}  # noqa: B009 - set by subclasses
        tier = getattr(self, "user_tier", None)
        if tier is not None:
            attrs[ATTR_USER_TIER] = str(tier)
        return attrs


class JobRequested(Event):
    """web → annotator: a PENDING job whose input is uploaded and checked."""

    TOPIC: ClassVar[Topic] = Topic.JOB_REQUESTS
    type: Literal["job.requested"] = "job.requested"
    user_id: str
    job_id: str
    user_tier: Tier
    input_bucket: str
    input_key: str
    assembly: str = "GRCh38"


class JobCompleted(Event):
    """annotator → archiver, notifier."""

    TOPIC: ClassVar[Topic] = Topic.JOB_RESULTS
    type: Literal["job.completed"] = "job.completed"
    user_id: str
    job_id: str
    # The tier when the job ended: a snapshot for routing only; the archiver re-reads it.
    user_tier: Tier
    completed_at: datetime


class JobFailed(Event):
    """annotator → notifier."""

    TOPIC: ClassVar[Topic] = Topic.JOB_RESULTS
    type: Literal["job.failed"] = "job.failed"
    user_id: str
    job_id: str
    user_tier: Tier
    error: str


class ArchiveRequested(Event):
    """A hot result of a free user becomes due for archiving at `due_at` (e.g. after a
    downgrade, whose retention window starts at the downgrade)."""

    TOPIC: ClassVar[Topic] = Topic.JOB_RESULTS
    type: Literal["job.archive_requested"] = "job.archive_requested"
    user_id: str
    job_id: str
    user_tier: Tier
    due_at: datetime


class JobRestored(Event):
    """thawer → notifier: an archived result is hot again."""

    TOPIC: ClassVar[Topic] = Topic.JOB_RESULTS
    type: Literal["job.restored"] = "job.restored"
    user_id: str
    job_id: str
    user_tier: Tier
    # Which restore completed (the job's `restore_requested_at` when it was thawed): a job can
    # be restored many times, and this event may be delivered after the next restore began.
    # Optional: events published before the field existed may still be in flight.
    restore_requested_at: datetime | None = None


class UserTierChanged(Event):
    """web → restorer."""

    TOPIC: ClassVar[Topic] = Topic.USER_EVENTS
    type: Literal["user.tier_changed"] = "user.tier_changed"
    user_id: str
    old_tier: Tier
    new_tier: Tier
    user_tier: Tier  # equals new_tier; present so every user-scoped event filters alike


GasEvent = Annotated[
    JobRequested | JobCompleted | JobFailed | ArchiveRequested | JobRestored | UserTierChanged,
    Field(discriminator="type"),
]
_GAS_EVENT: TypeAdapter[GasEvent] = TypeAdapter(GasEvent)

E = TypeVar("E", bound=BaseModel)


def parse_event(body: str) -> GasEvent:
    """Parse any GAS event body; raises pydantic.ValidationError for anything else."""
    return _GAS_EVENT.validate_json(body)


def event_parser(*types: type[E]) -> TypeAdapter[Any]:
    """A parser that accepts only the given event types (what one queue expects)."""
    if len(types) == 1:
        return TypeAdapter(types[0])
    # Union over a runtime tuple of classes; `X | Y` syntax cannot be built from a tuple.
    return TypeAdapter(Annotated[Union[types], Field(discriminator="type")])  # type: ignore[arg-type]  # noqa: UP007


def publish(sns: SNSClient, topic_arn: str, event: Event) -> str:
    """Publish an event with its filter attributes; returns the SNS message id."""
    response = sns.publish(
        TopicArn=topic_arn,
        Message=event.model_dump_json(),
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value}
            for name, value in event.attributes().items()
        },
    )
    return response["MessageId"]


class S3ObjectRestored(BaseModel):
    """One `ObjectRestore:Completed` record of an S3 event notification."""

    model_config = ConfigDict(frozen=True)

    bucket: str
    key: str
    event_name: str
    event_time: datetime | None = None


class S3RestoreNotification(BaseModel):
    """The body S3 sends (through SNS, raw delivery) when a restore completes.

    S3 also sends a one-off `s3:TestEvent` when a notification is configured; it parses
    to an empty record list and handlers treat that as nothing to do.
    """

    model_config = ConfigDict(frozen=True)

    records: list[S3ObjectRestored]

    @classmethod
    def parse(cls, body: str) -> S3RestoreNotification:
        raw = _S3_BODY.validate_json(body)
        if raw.get("Event") == "s3:TestEvent":
            return cls(records=[])
        records = raw.get("Records")
        if not isinstance(records, list) or not records:
            raise ValueError("not an S3 event notification: no Records")
        parsed = []
        for record in records:
            s3 = record["s3"]
            parsed.append(
                S3ObjectRestored(
                    bucket=s3["bucket"]["name"],
                    # S3 URL-encodes keys in notifications (spaces become '+').
                    key=unquote_plus(s3["object"]["key"]),
                    event_name=record["eventName"],
                    event_time=record.get("eventTime"),
                )
            )
        return cls(records=parsed)


_S3_BODY: TypeAdapter[dict[str, Any]] = TypeAdapter(dict[str, Any])
