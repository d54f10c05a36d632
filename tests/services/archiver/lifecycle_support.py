"""Shared by the archiver, restorer, thawer and notifier tests: the four handlers wired to the
session's moto server, a controllable clock, completed jobs with real S3 objects, and
in-process fakes for faults (crash at a chosen call, refuse a call, record publishes).

Each service's conftest imports the fixtures from here.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import structlog
from botocore.exceptions import ClientError
from prometheus_client import CollectorRegistry

from gas_archiver.handler import Archiver, handle_archive_message
from gas_archiver.metrics import ArchiverMetrics
from gas_archiver.settings import ArchiverSettings
from gas_core.aws import AwsClients
from gas_core.events import (
    ArchiveRequested,
    JobCompleted,
    JobFailed,
    JobRestored,
    S3RestoreNotification,
    UserTierChanged,
)
from gas_core.jobs import Job, JobRepository, UserProfile, new_job_id, results_prefix
from gas_core.objects import head_object
from gas_core.settings import GasSettings, Tier
from gas_core.tiers import change_tier
from gas_notifier.handler import Notifier, email_templates, handle_notification
from gas_notifier.metrics import NotifierMetrics
from gas_notifier.settings import NotifierSettings
from gas_restorer.handler import Restorer, handle_tier_changed
from gas_restorer.metrics import RestorerMetrics
from gas_restorer.settings import RestorerSettings
from gas_thawer.handler import Thawer, handle_restore_notification
from gas_thawer.metrics import ThawerMetrics
from gas_thawer.settings import ThawerSettings
from tests.support import emulator_settings

# A subset of what the annotator writes (kind → file name): two big files that are archived,
# and the summary and log, which stay hot. (The end-to-end test uses the full set.)
RESULT_FILES = {
    "vcf": "sample.annot.vcf.gz",
    "tsv": "sample.annot.tsv",
    "summary": "sample.summary.json",
    "log": "sample.log",
}
ARCHIVED_KINDS = frozenset({"vcf", "tsv"})
HOT_KINDS = frozenset({"summary", "log"})
EMAIL = "ada@example.org"


class Crash(Exception):
    """An injected crash (the process died at this point)."""


class Clock:
    """Real time plus an offset tests can advance (shared by handlers and the repository)."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class Intercept:
    """Delegates to `target`; calls of `method` (matching `match`) run `before`/`after` hooks
    around the real call, the first `times` times. A hook that raises is a crash there."""

    def __init__(
        self,
        target: Any,
        method: str,
        *,
        before: Callable[..., Any] | None = None,
        after: Callable[..., Any] | None = None,
        times: int = 1,
        match: Callable[..., bool] | None = None,
    ) -> None:
        self._target = target
        self._method = method
        self._before = before
        self._after = after
        self._match = match
        self.remaining = times
        self.calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        real = getattr(self._target, name)
        if name != self._method:
            return real

        def intercepted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((args, kwargs))
            armed = self.remaining > 0 and (self._match is None or self._match(*args, **kwargs))
            if armed:
                self.remaining -= 1
                if self._before:
                    self._before(*args, **kwargs)
            result = real(*args, **kwargs)
            if armed and self._after:
                self._after(*args, **kwargs)
            return result

        return intercepted


def crash(*_args: Any, **_kwargs: Any) -> None:
    raise Crash("injected crash")


class RecordingSns:
    """Records published events instead of sending them (the handlers' output under test)."""

    def __init__(self) -> None:
        self.published: list[dict[str, Any]] = []

    def publish(self, **kwargs: Any) -> dict[str, str]:
        self.published.append(json.loads(kwargs["Message"]))
        return {"MessageId": uuid.uuid4().hex}

    def events(self, type_: str) -> list[dict[str, Any]]:
        return [e for e in self.published if e["type"] == type_]


class RecordingSes:
    """The real SES client, remembering every email it accepted."""

    def __init__(self, real: Any) -> None:
        self._real = real
        self.sent: list[dict[str, Any]] = []

    def send_email(self, **kwargs: Any) -> Any:
        response = self._real.send_email(**kwargs)
        self.sent.append(kwargs)
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


@dataclass
class Lifecycle:
    """The four handlers against moto, with isolated metrics and a shared fake clock."""

    settings: GasSettings
    aws: AwsClients
    clock: Clock
    repository: JobRepository
    sns: RecordingSns
    ses: RecordingSes
    archiver: Archiver
    restorer: Restorer
    thawer: Thawer
    notifier: Notifier
    queues: list[str] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)
    registries: dict[str, CollectorRegistry] = field(default_factory=dict)

    def metric(self, service: str, name: str, **labels: str) -> float:
        """A sample of one service's metrics (each has an isolated registry)."""
        return self.registries[service].get_sample_value(name, labels) or 0.0

    # -- set-up -------------------------------------------------------------------------------

    def private_queue(self) -> str:
        """A queue of this test's own (for messages a handler sends to a queue)."""
        name = f"{self.settings.name_prefix}-t{uuid.uuid4().hex[:10]}"
        url = self.aws.sqs.create_queue(QueueName=name)["QueueUrl"]
        self.queues.append(url)
        return url

    def completed_job(
        self,
        user_id: str,
        *,
        tier: Tier = Tier.FREE,
        email: str = EMAIL,
        input_file_name: str = "sample.vcf.gz",
        with_sha256: bool = True,
    ) -> Job:
        """A COMPLETED job with every result file in the results bucket (with S3 SHA-256
        checksums unless `with_sha256=False`, as `upload_file` of large files leaves them)."""
        repo = self.repository
        profile = repo.ensure_profile(user_id, name="Ada", email=email)
        if profile.tier is not tier:
            repo.update_profile(profile, tier=tier)
        job_id = new_job_id()
        job = repo.create_job(Job(
            user_id=user_id, job_id=job_id, input_file_name=input_file_name,
            input_key=f"inputs/{user_id}/{job_id}/{input_file_name}", user_tier=tier,
        ))
        keys = {}
        for kind, name in RESULT_FILES.items():
            key = results_prefix(user_id, job_id) + name
            body = os.urandom(2048) + f"{kind} of {job_id}".encode()
            checksum: dict[str, Any] = {"ChecksumAlgorithm": "SHA256"} if with_sha256 else {}
            self.aws.s3.put_object(Bucket=self.results_bucket, Key=key, Body=body, **checksum)
            self.contents[key] = body
            keys[kind] = key
        job = repo.claim_lease(job, owner="test-annotator", ttl_seconds=60)
        return repo.complete_job(
            user_id, job_id, owner="test-annotator",
            summary={"variants": 3, "genes_hit": 2, "by_consequence": {"missense_variant": 2}},
            result_keys=keys,
        )

    # -- events -------------------------------------------------------------------------------

    def completed_event(self, job: Job) -> JobCompleted:
        assert job.completed_at is not None
        return JobCompleted(user_id=job.user_id, job_id=job.job_id, user_tier=job.user_tier,
                            completed_at=job.completed_at)

    def archive(self, job: Job, archiver: Archiver | None = None) -> str:
        return handle_archive_message(self.completed_event(job), archiver=archiver or self.archiver)

    def change_tier(self, user_id: str, tier: Tier) -> UserTierChanged:
        """Change the tier as the web does; returns the event the restorer will get."""
        profile = self.repository.get_profile(user_id)
        assert profile is not None
        recorder = RecordingSns()
        change_tier(repository=self.repository, sns=recorder,  # type: ignore[arg-type]
                    user_events_topic_arn="arn:aws:sns:us-east-1:123456789012:unused",
                    profile=profile, new_tier=tier)
        return UserTierChanged.model_validate(recorder.published[-1])

    def restore(self, event: UserTierChanged, restorer: Restorer | None = None) -> None:
        handle_tier_changed(event, restorer=restorer or self.restorer)

    def upgrade(self, user_id: str) -> None:
        self.restore(self.change_tier(user_id, Tier.PREMIUM))

    def restore_event(self, job: Job) -> S3RestoreNotification:
        """S3's `ObjectRestore:Completed` notification for one archived object of the job."""
        key = next(iter(sorted(job.result_keys.items())))[1]
        if job.archived_objects:
            key = sorted(job.archived_objects.values(), key=lambda o: o.key)[0].key
        return s3_restore_notification(self.archive_bucket, key)

    def thaw(self, job: Job, thawer: Thawer | None = None) -> dict[str, str]:
        """What S3 does when a restore completes: the next read completes it, then notifies."""
        job = self.repository.get_job(job.user_id, job.job_id)
        for obj in job.archived_objects.values():
            head_object(self.aws.s3, self.archive_bucket, obj.key)
        return handle_restore_notification(self.restore_event(job), thawer=thawer or self.thawer)

    def notify(self, event: JobCompleted | JobFailed | JobRestored,
               notifier: Notifier | None = None) -> str:
        return handle_notification(event, notifier=notifier or self.notifier)

    # -- observations -------------------------------------------------------------------------

    @property
    def results_bucket(self) -> str:
        return self.settings.names.results_bucket

    @property
    def archive_bucket(self) -> str:
        return self.settings.names.archive_bucket

    def job(self, job: Job) -> Job:
        return self.repository.get_job(job.user_id, job.job_id)

    def keys(self, bucket: str, job: Job) -> dict[str, str]:
        """Object key → storage class under the job's prefix."""
        listing = self.aws.s3.list_objects_v2(
            Bucket=bucket, Prefix=results_prefix(job.user_id, job.job_id)
        )
        return {o["Key"]: o.get("StorageClass", "STANDARD") for o in listing.get("Contents", [])}

    def hot_kinds(self, job: Job) -> set[str]:
        present = self.keys(self.results_bucket, job)
        return {kind for kind, key in job.result_keys.items() if key in present}

    def archive_kinds(self, job: Job) -> dict[str, str]:
        present = self.keys(self.archive_bucket, job)
        return {kind: present[key] for kind, key in job.result_keys.items() if key in present}

    def read_hot(self, key: str) -> bytes:
        return self.aws.s3.get_object(Bucket=self.results_bucket, Key=key)["Body"].read()

    def assert_hot_and_intact(self, job: Job) -> None:
        """Hot, every result file readable and byte-identical, nothing left in the archive."""
        current = self.job(job)
        assert current.storage.value == "hot", current.storage
        assert current.archived_objects == {}
        for key in current.result_keys.values():
            assert self.read_hot(key) == self.contents[key], key
        assert self.archive_kinds(current) == {}

    def assert_archived(self, job: Job, storage_class: str = "GLACIER") -> None:
        """Archived: exactly one copy of each big file (in the archive), summary/log hot."""
        current = self.job(job)
        assert current.storage.value == "archived", current.storage
        assert set(current.archived_objects) == ARCHIVED_KINDS
        assert self.archive_kinds(current) == dict.fromkeys(ARCHIVED_KINDS, storage_class)
        assert self.hot_kinds(current) == set(HOT_KINDS)


def s3_restore_notification(bucket: str, key: str) -> S3RestoreNotification:
    from urllib.parse import quote_plus

    body = {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": "ObjectRestore:Completed",
        "eventTime": "2026-01-01T00:00:00.000Z",
        "s3": {"bucket": {"name": bucket}, "object": {"key": quote_plus(key), "size": 1}},
    }]}
    return S3RestoreNotification.parse(json.dumps(body))


def client_error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "Operation")


def profile_of(life: Lifecycle, user_id: str) -> UserProfile:
    profile = life.repository.get_profile(user_id)
    assert profile is not None
    return profile


def archive_requested(life: Lifecycle, job: Job, due_at: Any) -> ArchiveRequested:
    return ArchiveRequested(user_id=job.user_id, job_id=job.job_id, user_tier=Tier.FREE,
                            due_at=due_at)


_CLIENTS: dict[str, AwsClients] = {}


def build_lifecycle(
    settings: GasSettings, *, retention: int = 0, storage_class: str = "GLACIER"
) -> Lifecycle:
    endpoint = settings.aws_endpoint_url
    assert endpoint is not None
    common: dict[str, Any] = {
        "name_prefix": settings.name_prefix,
        "free_retention_seconds": retention,
        "archive_storage_class": storage_class,
    }
    # boto3 clients take a while to build: one set per session's settings.
    if settings.name_prefix not in _CLIENTS:
        _CLIENTS[settings.name_prefix] = AwsClients(settings)
    aws = _CLIENTS[settings.name_prefix]
    clock = Clock()
    repository = JobRepository(aws.dynamodb, settings.names.table, clock=clock)
    sns = RecordingSns()
    ses = RecordingSes(aws.ses)
    life = Lifecycle(
        settings=settings, aws=aws, clock=clock, repository=repository, sns=sns, ses=ses,
        archiver=None, restorer=None, thawer=None, notifier=None,  # type: ignore[arg-type]
        registries={name: CollectorRegistry()
                    for name in ("archiver", "restorer", "thawer", "notifier")},
    )
    life.archiver = Archiver(
        settings=emulator_settings(endpoint, cls=ArchiverSettings, **common),
        repository=repository, s3=aws.s3, sqs=aws.sqs, queue_url=life.private_queue(),
        metrics=ArchiverMetrics(life.registries["archiver"]), clock=clock,
    )
    life.restorer = Restorer(
        settings=emulator_settings(endpoint, cls=RestorerSettings, **common),
        repository=repository, s3=aws.s3, sns=sns, sqs=aws.sqs,  # type: ignore[arg-type]
        results_topic_arn="arn:aws:sns:us-east-1:123456789012:results",
        thawer_queue_url=life.private_queue(), metrics=RestorerMetrics(life.registries["restorer"]),
        clock=clock,
    )
    life.thawer = Thawer(
        settings=emulator_settings(endpoint, cls=ThawerSettings, **common),
        repository=repository, s3=aws.s3, sns=sns,  # type: ignore[arg-type]
        results_topic_arn="arn:aws:sns:us-east-1:123456789012:results",
        metrics=ThawerMetrics(life.registries["thawer"]), clock=clock,
    )
    life.notifier = Notifier(
        settings=emulator_settings(endpoint, cls=NotifierSettings, **common),
        repository=repository, ses=ses, metrics=NotifierMetrics(life.registries["notifier"]),  # type: ignore[arg-type]
        templates=email_templates(),
    )
    return life


@pytest.fixture
def lifecycle_factory(settings: GasSettings) -> Iterator[Callable[..., Lifecycle]]:
    made: list[Lifecycle] = []

    def make(**options: Any) -> Lifecycle:
        life = build_lifecycle(settings, **options)
        made.append(life)
        return life

    yield make
    for life in made:
        for url in life.queues:
            life.aws.sqs.delete_queue(QueueUrl=url)


@pytest.fixture(autouse=True)
def fresh_log_context() -> Iterator[None]:
    """Handlers bind fields for the worker's canonical line; tests run them in one thread."""
    yield
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def life(lifecycle_factory: Callable[..., Lifecycle]) -> Lifecycle:
    """Retention 0 (due at once), GLACIER."""
    return lifecycle_factory()
