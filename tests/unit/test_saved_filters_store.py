"""Saved filters in the table: owner-only reads and deletes, one name per user, a per-user cap
that concurrent saves cannot exceed, and only known, bounded parameters stored."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from gas_core.aws import AwsClients
from gas_core.jobs import (
    FilterLimitReached,
    FilterNameTaken,
    FilterNotFound,
    InvalidFilter,
    Job,
    JobRepository,
    SavedFilter,
    SavedFilterStore,
    new_job_id,
)
from gas_core.settings import GasSettings
from tests.support import FakeClock


@pytest.fixture
def store(settings: GasSettings, aws: AwsClients) -> SavedFilterStore:
    return SavedFilterStore(aws.dynamodb, settings.names.table, clock=FakeClock(),
                            max_filters=3)


@pytest.fixture
def other_user() -> str:
    return "other-" + uuid.uuid4().hex[:10]


def test_a_saved_filter_reads_back_under_its_owner_only(
    store: SavedFilterStore, user_id: str, other_user: str
) -> None:
    saved = store.save_filter(user_id, "  Rare   LoF ", {"preset": "lof", "max_af": 0.01})
    assert saved.name == "Rare LoF"
    assert saved.params == {"max_af": "0.01", "preset": "lof"}
    assert store.get_filter(user_id, saved.filter_id) == saved
    assert store.list_filters(user_id) == [saved]

    with pytest.raises(FilterNotFound):
        store.get_filter(other_user, saved.filter_id)
    with pytest.raises(FilterNotFound):
        store.delete_filter(other_user, saved.filter_id)
    assert store.list_filters(other_user) == []
    assert store.get_filter(user_id, saved.filter_id) == saved  # untouched by the other user


def test_a_name_is_taken_once_per_user_whatever_its_case_and_spacing(
    store: SavedFilterStore, user_id: str, other_user: str
) -> None:
    store.save_filter(user_id, "High impact", {"impact": "HIGH"})
    with pytest.raises(FilterNameTaken):
        store.save_filter(user_id, "high   IMPACT", {"impact": "MODERATE"})
    # Names are per user.
    store.save_filter(other_user, "High impact", {"impact": "HIGH"})
    assert [f.params for f in store.list_filters(user_id)] == [{"impact": "HIGH"}]


def test_deleting_a_filter_frees_its_name_and_its_place(
    store: SavedFilterStore, user_id: str
) -> None:
    first = store.save_filter(user_id, "one", {"gene": "APP"})
    store.save_filter(user_id, "two", {"gene": "SOD1"})
    store.save_filter(user_id, "three", {"gene": "CBS"})
    with pytest.raises(FilterLimitReached):
        store.save_filter(user_id, "four", {"gene": "DYRK1A"})

    assert store.delete_filter(user_id, first.filter_id) == first
    with pytest.raises(FilterNotFound):
        store.delete_filter(user_id, first.filter_id)  # deleted once, counted once
    again = store.save_filter(user_id, "One", {"gene": "APP", "view": "transcript"})
    assert [f.name for f in store.list_filters(user_id)] == ["One", "three", "two"]
    with pytest.raises(FilterLimitReached):
        store.save_filter(user_id, "four", {"gene": "DYRK1A"})
    assert again.filter_id != first.filter_id


def test_concurrent_saves_never_exceed_the_cap(store: SavedFilterStore, user_id: str) -> None:
    def save(index: int) -> SavedFilter | None:
        try:
            return store.save_filter(user_id, f"filter {index}", {"gene": f"G{index}"})
        except FilterLimitReached:
            return None

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(save, range(8)))
    assert sum(result is not None for result in results) == 3
    assert len(store.list_filters(user_id)) == 3


def test_concurrent_saves_of_one_name_keep_exactly_one(
    store: SavedFilterStore, user_id: str
) -> None:
    def save(index: int) -> SavedFilter | None:
        try:
            return store.save_filter(user_id, "Mine", {"gene": f"G{index}"})
        except FilterNameTaken:
            return None

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(save, range(6)))
    winners = [result for result in results if result is not None]
    assert len(winners) == 1
    assert store.list_filters(user_id) == winners
    # The losers took no place: two more fit under the cap of three.
    store.save_filter(user_id, "b", {"gene": "B"})
    store.save_filter(user_id, "c", {"gene": "C"})


@pytest.mark.parametrize(("params", "message"), [
    ({"impact": "HIGH", "page": "2"}, "Unknown filter parameter 'page'"),
    ({"gene": "A" * 513}, "more than 512 characters"),
    ({"gene": ["APP", "SOD1"]}, "must be a single value"),
    ({"gene": "APP\nx"}, "control characters"),
    ({"gene": "  ", "impact": ""}, "at least one parameter"),
    ({"view": "row"}, "'view' must be one of variant, transcript"),
    ({"known": "novel"}, "'known' must be one of true, false"),
    ({"max_af": "nan"}, "'max_af' must be a number between 0 and 1"),
    ({"max_af": 2}, "'max_af' must be a number between 0 and 1"),
])
def test_unknown_or_unbounded_parameters_are_refused(
    store: SavedFilterStore, user_id: str, params: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidFilter, match=message):
        store.save_filter(user_id, "bad", params)
    assert store.list_filters(user_id) == []


@pytest.mark.parametrize("name", ["", " \t ", "x" * 81, "bell\x07"])
def test_names_must_be_short_printable_and_not_empty(
    store: SavedFilterStore, user_id: str, name: str
) -> None:
    with pytest.raises(InvalidFilter):
        store.save_filter(user_id, name, {"gene": "APP"})


def test_a_users_filters_are_listed_apart_from_their_jobs(
    store: SavedFilterStore, settings: GasSettings, aws: AwsClients, user_id: str
) -> None:
    jobs = JobRepository(aws.dynamodb, settings.names.table)
    job_id = new_job_id()
    jobs.create_job(Job(user_id=user_id, job_id=job_id, input_file_name="a.vcf",
                        input_key=f"inputs/{user_id}/{job_id}/a.vcf"))
    saved = store.save_filter(user_id, "only", {"known": True})
    assert saved.params == {"known": "true"}
    assert store.list_filters(user_id) == [saved]
    assert [job.job_id for job in jobs.list_jobs(user_id).items] == [job_id]
