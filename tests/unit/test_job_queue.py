"""The annotation queue in the table: PENDING jobs' positions (sparse `queue` index), the
annotators' recent pace (a version-guarded record) and the estimate built from both."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gas_cli.infra import Infrastructure
from gas_core.aws import AwsClients
from gas_core.jobs import Job, JobRepository, JobStatus, Throughput, new_job_id
from gas_core.jobs.queue import estimate
from gas_core.resources import QUEUE_INDEX
from gas_core.settings import GasSettings
from tests.support import emulator_settings

# Each test queues its jobs earlier than the tests before it (the count is of every job
# submitted before one), so tests sharing the module's table never count each other's jobs.
_EPOCHS = itertools.count()


@pytest.fixture(scope="module")
def table_settings(moto_endpoint: str) -> GasSettings:
    """A table of this module's own: the queue is global, not per user."""
    settings: GasSettings = emulator_settings(moto_endpoint)
    Infrastructure(settings).apply()
    return settings


@pytest.fixture
def repo(table_settings: GasSettings) -> JobRepository:
    return JobRepository(AwsClients(table_settings).dynamodb, table_settings.names.table)


@pytest.fixture
def base() -> datetime:
    return datetime(2020, 1, 1, tzinfo=UTC) - timedelta(days=30 * next(_EPOCHS))


def submit(repo: JobRepository, user_id: str, at: datetime, **fields: Any) -> Job:
    job_id = new_job_id()
    return repo.create_job(Job(
        user_id=user_id, job_id=job_id, input_file_name="in.vcf",
        input_key=f"inputs/{user_id}/{job_id}/in.vcf", submitted_at=at, **fields,
    ))


def raw_item(repo: JobRepository, settings: GasSettings, job: Job) -> dict[str, Any]:
    response = AwsClients(settings).dynamodb.get_item(
        TableName=settings.names.table,
        Key={"pk": {"S": f"USER#{job.user_id}"}, "sk": {"S": f"JOB#{job.job_id}"}},
        ConsistentRead=True,
    )
    return response["Item"]


def test_position_counts_pending_jobs_of_every_user_submitted_before(
    repo: JobRepository, base: datetime
) -> None:
    jobs = [submit(repo, f"user-{i}", base + timedelta(seconds=i)) for i in range(4)]
    assert [repo.queue_position(job) for job in jobs] == [0, 1, 2, 3]


def test_a_job_leaves_the_queue_when_it_starts_or_fails(
    repo: JobRepository, table_settings: GasSettings, base: datetime
) -> None:
    first, second, third = (submit(repo, f"user-{i}", base + timedelta(seconds=i))
                            for i in range(3))
    running = repo.claim_lease(first, owner="worker-1", ttl_seconds=60)
    assert running.status is JobStatus.RUNNING
    # The write that moved it out of PENDING removed its queue keys.
    assert QUEUE_INDEX.hash_key not in raw_item(repo, table_settings, first)
    assert QUEUE_INDEX.range_key not in raw_item(repo, table_settings, first)
    assert [repo.queue_position(second), repo.queue_position(third)] == [0, 1]
    repo.fail_job(second.user_id, second.job_id, reason="not a VCF")
    assert repo.queue_position(third) == 0


def test_queue_status_is_empty_unless_pending(repo: JobRepository, base: datetime) -> None:
    job = submit(repo, "user-a", base)
    now = datetime.now(UTC)
    assert repo.queue_status(job, slots=1, now=now).position == 0
    running = repo.claim_lease(job, owner="worker-1", ttl_seconds=60)
    assert repo.queue_status(running, slots=1, now=now).to_api() == {
        "queue_position": None, "eta": None,
    }


def test_completed_jobs_fold_into_moving_averages(repo: JobRepository) -> None:
    # This module's table starts without a throughput record.
    assert repo.throughput() is None
    assert repo.record_completed_job(seconds=10.0, input_bytes=1_000, variants=100)
    assert repo.record_completed_job(seconds=20.0, input_bytes=3_000, variants=300)
    pace = repo.throughput()
    assert pace is not None
    assert pace.jobs == 2
    assert pace.job_seconds == pytest.approx(12.0)  # 0.8 * 10 + 0.2 * 20
    assert pace.input_bytes == pytest.approx(1_400.0)
    assert pace.variants == pytest.approx(140.0)


def test_a_concurrent_pace_update_is_not_overwritten(
    repo: JobRepository, table_settings: GasSettings
) -> None:
    """Two annotators finish at once: the second write finds the record changed since its
    read, reads again and folds its job into the other's result."""
    other = JobRepository(AwsClients(table_settings).dynamodb, table_settings.names.table)
    before = repo.throughput()
    jobs_before = before.jobs if before else 0
    real_update = repo._db.update_item
    raced = False

    def update_after_another(**kwargs: Any) -> Any:
        nonlocal raced
        if not raced:  # between our read and our write, the other annotator writes
            raced = True
            other.record_completed_job(seconds=30.0, input_bytes=1, variants=1)
        return real_update(**kwargs)

    repo._db = _Proxy(repo._db, update_item=update_after_another)  # type: ignore[assignment]
    assert repo.record_completed_job(seconds=40.0, input_bytes=1, variants=1)
    after = repo.throughput()
    assert after is not None
    assert after.jobs == jobs_before + 2


def test_estimate_drains_the_jobs_ahead_then_runs_this_one_at_the_recent_pace() -> None:
    now = datetime(2026, 1, 1, 14, 0, tzinfo=UTC)
    pace = Throughput(job_seconds=60.0, input_bytes=1_000_000.0, variants=10_000.0, jobs=5)
    window = estimate(ahead=4, throughput=pace, slots=2, input_bytes=2_000_000, now=now)
    assert window == (now + timedelta(seconds=120), now + timedelta(seconds=240))
    # Next in line: it starts as soon as an annotator takes it.
    start, _ = estimate(ahead=0, throughput=pace, slots=2, input_bytes=None, now=now) or (None, 0)
    assert start == now
    # Before any job completed there is nothing to base an estimate on.
    assert estimate(ahead=4, throughput=None, slots=2, input_bytes=1, now=now) is None


class _Proxy:
    """A client whose named methods are replaced (to force an interleaving)."""

    def __init__(self, wrapped: Any, **methods: Any) -> None:
        self._wrapped = wrapped
        self._methods = methods

    def __getattr__(self, name: str) -> Any:
        return self._methods.get(name) or getattr(self._wrapped, name)
