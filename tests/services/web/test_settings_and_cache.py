"""Production refuses weak signing secrets (naming the setting, never the value); the variant
cache is private to its OS user and deployment; variant cursors are validated strictly."""

from __future__ import annotations

import base64
import json
import os
import secrets
import stat
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from gas_core.jobs import Job
from gas_web.app.variants import VariantStore, query_from_params
from gas_web.settings import WebSettings
from tests.services.web.conftest import MakeJob, bearer

PRODUCTION = {"env": "production", "auth_mode": "globus", "globus_client_id": "client",
              "globus_client_secret": "a-globus-issued-secret"}


@pytest.mark.parametrize("weak", ["x", "x" * 64, "ab" * 32, secrets.token_hex(16),
                                  "correcthorse" * 3],
                         ids=["short", "repeated", "pattern", "16-bytes-hex", "words"])
def test_production_refuses_a_weak_session_secret_without_showing_it(weak: str) -> None:
    with pytest.raises(ValidationError) as refused:
        WebSettings(**PRODUCTION, session_secret=weak)
    message = str(refused.value)
    assert "GAS_SESSION_SECRET" in message and "token_urlsafe" in message
    assert weak not in message


@pytest.mark.parametrize("strong", [secrets.token_urlsafe(32), secrets.token_hex(32),
                                    base64.b64encode(os.urandom(32)).decode()],
                         ids=["token_urlsafe", "hex", "base64"])
def test_production_accepts_a_random_32_byte_session_secret(strong: str) -> None:
    assert WebSettings(**PRODUCTION, session_secret=strong).is_production


def test_each_deployment_has_its_own_default_cache_directory() -> None:
    one = WebSettings(name_prefix="stack-one", auth_mode="dev")
    two = WebSettings(name_prefix="stack-two", auth_mode="dev")
    assert one.cache_dir != two.cache_dir
    assert "stack-one" in one.cache_dir.name and str(os.getuid()) in one.cache_dir.name


def test_cached_results_are_readable_by_this_user_only(
    client: TestClient, shared_completed_job: Job, web_settings: WebSettings
) -> None:
    response = client.get(f"/api/v1/jobs/{shared_completed_job.job_id}/variants",
                          headers=bearer(shared_completed_job.user_id))
    assert response.status_code == 200
    cached: Path = client.app.state.variants.cache_path(shared_completed_job)  # type: ignore[attr-defined]
    assert stat.S_IMODE(cached.stat().st_mode) == 0o600
    assert stat.S_IMODE(cached.parent.stat().st_mode) == 0o700


def test_a_cache_directory_that_is_not_this_users_own_is_refused(
    client: TestClient, shared_completed_job: Job, web_settings: WebSettings, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "planted"
    elsewhere.mkdir()
    link = tmp_path / "cache"
    link.symlink_to(elsewhere)  # someone else's directory, planted at the expected name
    store = VariantStore(s3=client.app.state.aws.s3,  # type: ignore[attr-defined]
                         bucket=web_settings.names.results_bucket, cache_dir=link,
                         max_bytes=10**9)
    with pytest.raises(RuntimeError, match="not owned by this user"):
        store.local_file(shared_completed_job)
    assert list(elsewhere.iterdir()) == []


def _store_with_room(client: TestClient, settings: WebSettings, tmp_path: Path, job: Job,
                     results: float) -> VariantStore:
    """A store whose cache holds `results` times the size of this job's result."""
    def store(name: str, max_bytes: int) -> VariantStore:
        return VariantStore(s3=client.app.state.aws.s3,  # type: ignore[attr-defined]
                            bucket=settings.names.results_bucket, cache_dir=tmp_path / name,
                            max_bytes=max_bytes)

    size = store("probe", 10**9).local_file(job).stat().st_size
    return store("lru", int(size * results))


def test_the_cache_evicts_the_least_recently_used_result_not_the_oldest_download(
    client: TestClient, make_job: MakeJob, web_settings: WebSettings, tmp_path: Path
) -> None:
    jobs = [make_job(f"lru-{name}")[0] for name in "abc"]
    store = _store_with_room(client, web_settings, tmp_path, jobs[0], 2.5)  # two results
    first, second, third = jobs
    store.info(first)
    store.info(second)
    store.info(first)  # used again: now the second is the least recently used
    store.info(third)
    assert [store.cache_path(job).exists() for job in jobs] == [True, False, True]
    assert store.info(first).row_count == store.info(third).row_count > 0


def test_a_sorted_row_order_is_private_and_evicted_with_its_result(
    client: TestClient, make_job: MakeJob, web_settings: WebSettings, tmp_path: Path
) -> None:
    jobs = [make_job(f"order-{name}")[0] for name in "ab"]
    store = _store_with_room(client, web_settings, tmp_path, jobs[0], 1.5)  # one, and its orders
    first, second = jobs
    store.page(first, query_from_params({"sort": "gene", "order": "desc"}))
    orders = sorted(store.cache_path(first).parent.glob("*.order-*"))
    assert len(orders) == 1 and orders[0].name.startswith(store.cache_path(first).stem)
    assert stat.S_IMODE(orders[0].stat().st_mode) == 0o600
    rows = store.info(first).row_count
    assert sorted(np.fromfile(orders[0], np.int32).tolist()) == list(range(rows))
    store.info(second)  # the first result is evicted, and its order with it
    assert not store.cache_path(first).exists() and not orders[0].exists()


def _cursor(value: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("cursor", [
    _cursor({"o": 2**63}), _cursor({"o": True}), _cursor({"o": -1}), _cursor({"o": 1.5}),
    _cursor({"o": "10"}), _cursor({"o": 10, "x": 1}), _cursor([10]), _cursor(None),
    "!!!not-base64!!!", base64.urlsafe_b64encode(b"\xff\xfe").decode(),
])
def test_a_malformed_or_out_of_range_variant_cursor_is_a_400_problem(
    client: TestClient, shared_completed_job: Job, cursor: str
) -> None:
    response = client.get(f"/api/v1/jobs/{shared_completed_job.job_id}/variants",
                          params={"cursor": cursor}, headers=bearer(shared_completed_job.user_id))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "cursor" in response.json()["detail"]


def test_a_cursor_from_the_previous_page_still_works(
    client: TestClient, shared_completed_job: Job
) -> None:
    url = f"/api/v1/jobs/{shared_completed_job.job_id}/variants"
    first = client.get(url, params={"limit": 2}, headers=bearer(shared_completed_job.user_id))
    cursor = first.json()["next_cursor"]
    second = client.get(url, params={"limit": 2, "cursor": cursor},
                        headers=bearer(shared_completed_job.user_id))
    assert second.status_code == 200 and second.json()["items"] != first.json()["items"]
