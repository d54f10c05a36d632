"""Events follow state: an event recorded with its state write is published even when the
writer crashes between the write and the publish (the reconciler or the retry sends it)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from gas_core.aws import AwsClients
from gas_core.events import JobFailed, JobRequested, UserTierChanged
from gas_core.jobs import ConflictError, ItemKey, Job, JobRepository, new_job_id
from gas_core.outbox import Outbox, OutboxReconciler
from gas_core.resources import Topic
from gas_core.settings import GasSettings, Tier
from gas_core.tiers import change_tier
from tests.support import FakeClock

# A time after every due time (the index's range key is an epoch second).
FAR_FUTURE = 4_000_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo(settings: GasSettings, aws: AwsClients, clock: FakeClock) -> JobRepository:
    return JobRepository(aws.dynamodb, settings.names.table, clock=clock)


@pytest.fixture
def outbox(repo: JobRepository, aws: AwsClients, clock: FakeClock) -> Outbox:
    return Outbox(repo, aws.sns, aws.topic_arn, clock=clock)


@pytest.fixture
def published(aws: AwsClients) -> Iterator[Any]:
    """Every message published to the user-events and job-requests topics from now on (a
    queue of this test's own, subscribed with raw delivery); call it with a user id."""
    url = aws.sqs.create_queue(QueueName=f"outbox-test-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    subscriptions = [
        aws.sns.subscribe(TopicArn=aws.topic_arn(topic), Protocol="sqs", Endpoint=arn,
                          Attributes={"RawMessageDelivery": "true"},
                          ReturnSubscriptionArn=True)["SubscriptionArn"]
        for topic in (Topic.USER_EVENTS, Topic.JOB_REQUESTS)
    ]

    def received(user_id: str) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        while True:
            messages = aws.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0
            ).get("Messages", [])
            if not messages:
                return [body for body in bodies if body.get("user_id") == user_id]
            for message in messages:
                bodies.append(json.loads(message["Body"]))
                aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    yield received
    for subscription in subscriptions:
        aws.sns.unsubscribe(SubscriptionArn=subscription)
    aws.sqs.delete_queue(QueueUrl=url)


def _crash_on_publish(monkeypatch: pytest.MonkeyPatch, aws: AwsClients) -> None:
    def crash(**_: Any) -> Any:
        # SNS unreachable: as if the process died before its publish got out.
        raise EndpointConnectionError(endpoint_url="https://sns.example")

    monkeypatch.setattr(aws.sns, "publish", crash)


def test_a_tier_change_whose_publish_crashed_is_published_by_the_reconciler(
    repo: JobRepository, outbox: Outbox, aws: AwsClients, clock: FakeClock, user_id: str,
    published: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = repo.ensure_profile(user_id, name="A", email="a@example.org")
    with monkeypatch.context() as patch:
        _crash_on_publish(patch, aws)
        updated = change_tier(repository=repo, sns=aws.sns,
                              user_events_topic_arn=aws.topic_arn(Topic.USER_EVENTS),
                              profile=profile, new_tier=Tier.PREMIUM)
    assert updated.tier is Tier.PREMIUM
    assert published(user_id) == []

    # Not yet due: the writer normally publishes within moments.
    assert outbox.reconcile() == 0
    clock.now += 61
    assert outbox.reconcile() >= 1
    events = published(user_id)
    assert [(e["type"], e["new_tier"]) for e in events] == [("user.tier_changed", "premium")]
    # Sent events are gone: the next round publishes nothing more.
    assert repo.pending_events(ItemKey.of_profile(user_id)) == []
    clock.now += 61
    outbox.reconcile()
    assert published(user_id) == []


def test_a_retried_tier_change_publishes_the_event_the_crashed_attempt_recorded(
    repo: JobRepository, aws: AwsClients, user_id: str, published: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = repo.ensure_profile(user_id, name="A", email="a@example.org")
    arn = aws.topic_arn(Topic.USER_EVENTS)
    with monkeypatch.context() as patch:
        _crash_on_publish(patch, aws)
        change_tier(repository=repo, sns=aws.sns, user_events_topic_arn=arn, profile=profile,
                    new_tier=Tier.PREMIUM)
    # The client retries: the profile is already premium, and the event still goes out.
    current = repo.get_profile(user_id)
    assert current is not None and current.tier is Tier.PREMIUM
    change_tier(repository=repo, sns=aws.sns, user_events_topic_arn=arn, profile=current,
                new_tier=Tier.PREMIUM)
    assert [e["type"] for e in published(user_id)] == ["user.tier_changed"]
    assert repo.pending_events(ItemKey.of_profile(user_id)) == []


def test_a_tier_change_that_published_leaves_nothing_pending(
    repo: JobRepository, aws: AwsClients, user_id: str, published: Any
) -> None:
    profile = repo.ensure_profile(user_id, name="A", email="a@example.org")
    change_tier(repository=repo, sns=aws.sns,
                user_events_topic_arn=aws.topic_arn(Topic.USER_EVENTS), profile=profile,
                new_tier=Tier.PREMIUM)
    assert [e["type"] for e in published(user_id)] == ["user.tier_changed"]
    assert repo.pending_events(ItemKey.of_profile(user_id)) == []
    assert ItemKey.of_profile(user_id) not in set(repo.due_outbox_items(FAR_FUTURE))


def test_events_of_one_item_are_marked_sent_one_by_one(
    repo: JobRepository, settings: GasSettings, user_id: str
) -> None:
    job_id = new_job_id()
    requested = JobRequested(user_id=user_id, job_id=job_id, user_tier=Tier.FREE,
                             input_bucket=settings.names.inputs_bucket, input_key="k")
    repo.create_job(Job(user_id=user_id, job_id=job_id, input_file_name="a.vcf",
                        input_key="k"), events=[requested])
    failed = JobFailed(user_id=user_id, job_id=job_id, user_tier=Tier.FREE, error="bad")
    repo.fail_job(user_id, job_id, reason="bad", events=[failed])
    key = ItemKey.of_job(user_id, job_id)
    assert repo.pending_events(key) == [requested.model_dump_json(), failed.model_dump_json()]
    version = repo.get_job(user_id, job_id).version

    repo.mark_event_sent(key, requested.model_dump_json())
    assert repo.pending_events(key) == [failed.model_dump_json()]
    assert key in set(repo.due_outbox_items(FAR_FUTURE))
    repo.mark_event_sent(key, failed.model_dump_json())
    repo.mark_event_sent(key, failed.model_dump_json())  # a duplicate is a no-op
    assert repo.pending_events(key) == []
    assert key not in set(repo.due_outbox_items(FAR_FUTURE))
    # Bookkeeping is no state change: version-guarded writers never conflict with it.
    assert repo.get_job(user_id, job_id).version == version


def test_an_event_is_recorded_only_if_its_state_write_succeeds(
    repo: JobRepository, aws: AwsClients, user_id: str
) -> None:
    profile = repo.ensure_profile(user_id, name="A", email="a@example.org")
    repo.update_profile(profile, name="B")  # someone else changed the profile meanwhile

    event = UserTierChanged(user_id=user_id, old_tier=Tier.FREE, new_tier=Tier.PREMIUM,
                            user_tier=Tier.PREMIUM)
    with pytest.raises(ConflictError):
        repo.update_profile(profile, tier=Tier.PREMIUM, events=[event])
    assert repo.pending_events(ItemKey.of_profile(user_id)) == []


def test_the_reconciler_thread_keeps_republishing_until_stopped(
    repo: JobRepository, aws: AwsClients, clock: FakeClock, user_id: str, published: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    profile = repo.ensure_profile(user_id, name="A", email="a@example.org")
    with monkeypatch.context() as patch:
        _crash_on_publish(patch, aws)
        change_tier(repository=repo, sns=aws.sns,
                    user_events_topic_arn=aws.topic_arn(Topic.USER_EVENTS),
                    profile=profile, new_tier=Tier.PREMIUM)
    clock.now += 61
    rounds = threading.Semaphore(0)

    class CountingOutbox(Outbox):
        def reconcile(self) -> int:
            try:
                return super().reconcile()
            finally:
                rounds.release()

    reconciler = OutboxReconciler(
        CountingOutbox(repo, aws.sns, aws.topic_arn, clock=clock), interval=0.01
    ).start()
    try:
        assert rounds.acquire(timeout=30) and rounds.acquire(timeout=30)  # two full rounds
    finally:
        reconciler.stop()
    assert [e["type"] for e in published(user_id)] == ["user.tier_changed"]
