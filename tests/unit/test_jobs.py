"""The job table: keys, state machine, optimistic concurrency, leases, pagination."""

from __future__ import annotations

import pytest

from gas_core.aws import AwsClients
from gas_core.jobs import (
    STATUS_TRANSITIONS,
    STORAGE_TRANSITIONS,
    ConflictError,
    IllegalTransition,
    InvalidCursor,
    Job,
    JobNotFound,
    JobRepository,
    JobStatus,
    StorageState,
    new_job_id,
)
from gas_core.settings import GasSettings, Tier
from tests.support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repo(settings: GasSettings, aws: AwsClients, clock: FakeClock) -> JobRepository:
    return JobRepository(aws.dynamodb, settings.names.table, clock=clock)


@pytest.fixture
def alice(user_id: str) -> str:
    """Tests share one table; a fresh user id per test keeps their partitions apart."""
    return user_id


def make_job(repo: JobRepository, user_id: str, **fields: object) -> Job:
    job_id = new_job_id()
    return repo.create_job(
        Job(
            user_id=user_id,
            job_id=job_id,
            input_file_name="sample.vcf.gz",
            input_key=f"inputs/{user_id}/{job_id}/sample.vcf.gz",
            **fields,  # type: ignore[arg-type]
        )
    )


def test_created_job_reads_back_under_its_owner(alice: str, repo: JobRepository) -> None:
    job = make_job(repo, alice, summary=None)
    read = repo.get_job(alice, job.job_id)
    assert read.status is JobStatus.PENDING
    assert read.storage is StorageState.HOT
    assert read.version == 1
    assert read.input_file_name == "sample.vcf.gz"


def test_creating_the_same_job_twice_keeps_the_first(alice: str, repo: JobRepository) -> None:
    job = make_job(repo, alice)
    again = repo.create_job(job.model_copy(update={"input_file_name": "other.vcf"}))
    assert again.input_file_name == "sample.vcf.gz"


def test_another_users_job_id_is_not_found(alice: str, repo: JobRepository) -> None:
    job = make_job(repo, alice)
    with pytest.raises(JobNotFound):
        repo.get_job("mallory", job.job_id)


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (start, target)
        for start in JobStatus
        for target in JobStatus
        if target not in STATUS_TRANSITIONS[start]
    ],
)
def test_every_illegal_status_transition_is_refused(
    alice: str, repo: JobRepository, start: JobStatus, target: JobStatus
) -> None:
    job = make_job(repo, alice).model_copy(update={"status": start})
    with pytest.raises(IllegalTransition):
        repo.transition_status(job, target)


@pytest.mark.parametrize(
    ("start", "target"),
    [
        (start, target)
        for start in StorageState
        for target in StorageState
        if target not in STORAGE_TRANSITIONS[start]
    ],
)
def test_every_illegal_storage_transition_is_refused(
    alice: str, repo: JobRepository, start: StorageState, target: StorageState
) -> None:
    job = make_job(repo, alice).model_copy(update={"storage": start})
    with pytest.raises(IllegalTransition):
        repo.transition_storage(job, target)


def test_storage_moves_through_archive_and_restore(alice: str, repo: JobRepository) -> None:
    job = make_job(repo, alice)
    for state in (
        StorageState.ARCHIVING,
        StorageState.ARCHIVED,
        StorageState.RESTORING,
        StorageState.HOT,
    ):
        job = repo.transition_storage(job, state)
        assert repo.get_job(alice, job.job_id).storage is state


def test_a_transition_from_a_stale_read_is_refused(alice: str, repo: JobRepository) -> None:
    job = make_job(repo, alice)
    repo.transition_storage(job, StorageState.ARCHIVING)
    with pytest.raises(ConflictError) as refused:
        repo.transition_storage(job, StorageState.ARCHIVING)
    assert refused.value.current is not None
    assert refused.value.current.storage is StorageState.ARCHIVING


def test_two_concurrent_transitions_from_the_same_state_only_one_wins(
    alice: str, repo: JobRepository
) -> None:
    # Given two services that read the same job (same state, same version)
    job = make_job(repo, alice)
    reader_a, reader_b = repo.get_job(alice, job.job_id), repo.get_job(alice, job.job_id)
    # When both write a transition from what they read
    # (one after the other: moto, unlike DynamoDB, does not make a conditional write atomic
    # against a truly simultaneous one, so threads here would test the emulator, not us)
    repo.transition_status(reader_a, JobStatus.FAILED, error="cancelled by a")
    # Then the second is refused and told the current state
    with pytest.raises(ConflictError) as refused:
        repo.transition_status(reader_b, JobStatus.RUNNING)
    assert refused.value.current is not None
    assert refused.value.current.status is JobStatus.FAILED
    final = repo.get_job(alice, job.job_id)
    assert (final.status, final.error, final.version) == (JobStatus.FAILED, "cancelled by a", 2)


def test_a_second_worker_cannot_take_a_live_lease(
    alice: str, repo: JobRepository, clock: FakeClock
) -> None:
    job = make_job(repo, alice)
    claimed = repo.claim_lease(job, owner="worker-a", ttl_seconds=60)
    assert claimed.status is JobStatus.RUNNING
    assert claimed.lease_owner == "worker-a"
    clock.now += 59
    with pytest.raises(ConflictError):
        repo.claim_lease(repo.get_job(alice, job.job_id), owner="worker-b", ttl_seconds=60)


def test_a_second_worker_takes_over_an_expired_lease(
    alice: str, repo: JobRepository, clock: FakeClock
) -> None:
    job = make_job(repo, alice)
    repo.claim_lease(job, owner="worker-a", ttl_seconds=60)
    clock.now += 61
    taken = repo.claim_lease(repo.get_job(alice, job.job_id), owner="worker-b", ttl_seconds=60)
    assert taken.lease_owner == "worker-b"
    assert taken.attempts == 2
    # The worker that lost its lease can no longer write progress or results.
    with pytest.raises(ConflictError):
        repo.update_progress(alice, job.job_id, owner="worker-a", progress=0.5, ttl_seconds=60)
    with pytest.raises(ConflictError):
        repo.complete_job(alice, job.job_id, owner="worker-a", summary={}, result_keys={})


def test_a_finished_job_cannot_be_leased_again(alice: str, repo: JobRepository) -> None:
    job = make_job(repo, alice)
    repo.claim_lease(job, owner="worker-a", ttl_seconds=60)
    repo.complete_job(
        alice,
        job.job_id,
        owner="worker-a",
        summary={"variants": 3, "ti_tv": 2.1},
        result_keys={"vcf": "k"},
    )
    done = repo.get_job(alice, job.job_id)
    assert done.status is JobStatus.COMPLETED
    assert done.summary == {"variants": 3, "ti_tv": 2.1}
    assert done.lease_owner is None
    with pytest.raises(ConflictError):
        repo.claim_lease(done, owner="worker-b", ttl_seconds=60)


def test_progress_is_recorded_and_renews_the_lease(
    alice: str, repo: JobRepository, clock: FakeClock
) -> None:
    job = repo.claim_lease(make_job(repo, alice), owner="w", ttl_seconds=60)
    clock.now += 50
    updated = repo.update_progress(alice, job.job_id, owner="w", progress=0.42, ttl_seconds=60)
    assert updated.progress == pytest.approx(0.42)
    assert updated.lease_expires_at == pytest.approx(clock.now + 60)


def test_failing_a_pending_job_records_the_reason(alice: str, repo: JobRepository) -> None:
    job = make_job(repo, alice)
    failed = repo.fail_job(alice, job.job_id, reason="input file is empty")
    assert failed.status is JobStatus.FAILED
    assert failed.to_api()["error"] == "input file is empty"


def test_pagination_returns_every_job_exactly_once_newest_first(
    alice: str, repo: JobRepository
) -> None:
    created = [make_job(repo, alice).job_id for _ in range(23)]
    make_job(repo, "bob-" + alice)
    seen: list[str] = []
    cursor = None
    while True:
        page = repo.list_jobs(alice, limit=5, cursor=cursor)
        seen.extend(job.job_id for job in page.items)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == sorted(created, reverse=True)


def test_a_tampered_cursor_is_rejected(alice: str, repo: JobRepository) -> None:
    with pytest.raises(InvalidCursor):
        repo.list_jobs(alice, cursor="not-a-cursor")


def test_jobs_in_storage_states_are_found_by_query(alice: str, repo: JobRepository) -> None:
    hot = make_job(repo, alice)
    archived = repo.transition_storage(make_job(repo, alice), StorageState.ARCHIVING)
    archived = repo.transition_storage(archived, StorageState.ARCHIVED)
    found = list(repo.iter_jobs(alice, storage=[StorageState.ARCHIVED, StorageState.ARCHIVING]))
    assert [job.job_id for job in found] == [archived.job_id]
    assert hot.job_id not in [job.job_id for job in found]


def test_profile_is_created_once_and_tier_changes_are_versioned(
    alice: str, repo: JobRepository
) -> None:
    first = repo.ensure_profile(alice, name="Carol", email="carol@example.org")
    second = repo.ensure_profile(alice, name="Other")
    assert second.name == "Carol"
    upgraded = repo.update_profile(first, tier=Tier.PREMIUM)
    assert upgraded.tier is Tier.PREMIUM
    assert upgraded.tier_changed_at is not None
    with pytest.raises(ConflictError):
        repo.update_profile(first, tier=Tier.FREE)


def test_api_view_hides_internals(alice: str, repo: JobRepository) -> None:
    job = repo.claim_lease(make_job(repo, alice), owner="w", ttl_seconds=60)
    view = job.to_api()
    assert "lease_owner" not in view and "input_key" not in view and "version" not in view
    assert view["status"] == "RUNNING"
    assert view["submitted_at"].endswith("Z")


def test_a_released_lease_can_be_taken_over_at_once(alice: str, repo: JobRepository) -> None:
    job = repo.claim_lease(make_job(repo, alice), owner="worker-a", ttl_seconds=600)
    repo.release_lease(alice, job.job_id, owner="worker-a")
    taken = repo.claim_lease(repo.get_job(alice, job.job_id), owner="worker-b", ttl_seconds=60)
    assert (taken.status, taken.lease_owner, taken.attempts) == (JobStatus.RUNNING, "worker-b", 2)
