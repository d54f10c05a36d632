"""Every endpoint and page scopes by the signed-in user: another user's job id is a 404,
answered exactly like a job id that does not exist."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from gas_core.jobs import Job
from tests.services.web.conftest import bearer

API_PATHS = [
    ("GET", "/api/v1/jobs/{job_id}"),
    ("POST", "/api/v1/jobs/{job_id}/submit"),
    ("GET", "/api/v1/jobs/{job_id}/results/vcf"),
    ("GET", "/api/v1/jobs/{job_id}/results/tsv"),
    ("GET", "/api/v1/jobs/{job_id}/results/summary"),
    ("GET", "/api/v1/jobs/{job_id}/results/log"),
    ("GET", "/api/v1/jobs/{job_id}/variants"),
]
PAGE_PATHS = [
    "/jobs/{job_id}",
    "/jobs/{job_id}/results",
    "/jobs/{job_id}/results/summary",
    "/jobs/{job_id}/log",
    "/jobs/{job_id}/input",
    "/jobs/{job_id}/download/tsv",
    "/jobs/{job_id}/download/vcf",
]


def dev_login(client: TestClient, name: str) -> None:
    client.cookies.clear()
    form = client.get("/login")
    token = form.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"username": name, "csrf_token": token, "next": "/"},
                           follow_redirects=False)
    assert response.status_code == 303, response.text


@pytest.mark.parametrize(("method", "path"), API_PATHS)
def test_another_users_job_is_not_found_in_the_api(
    client: TestClient, shared_completed_job: Job, other_user: str, method: str, path: str
) -> None:
    url = path.format(job_id=shared_completed_job.job_id)
    theirs = client.request(method, url, headers=bearer(other_user))
    assert theirs.status_code == 404
    assert theirs.headers["content-type"] == "application/problem+json"
    unknown = client.request(method, path.format(job_id="01JAAAAAAAAAAAAAAAAAAAAAAA"),
                             headers=bearer(other_user))
    # Indistinguishable from a job that does not exist.
    assert unknown.status_code == 404
    assert theirs.json()["detail"] == unknown.json()["detail"]
    mine = client.request(method, url, headers=bearer(shared_completed_job.user_id))
    assert mine.status_code in (200, 202, 302)


@pytest.mark.parametrize("path", PAGE_PATHS)
def test_another_users_job_is_not_found_on_every_page(
    client: TestClient, shared_completed_job: Job, other_user: str, path: str
) -> None:
    url = path.format(job_id=shared_completed_job.job_id)
    dev_login(client, shared_completed_job.user_id)
    assert client.get(url).status_code in (200, 302)
    dev_login(client, other_user)
    response = client.get(url, headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert "text/html" in response.headers["content-type"]
    assert shared_completed_job.input_file_name not in response.text
    client.cookies.clear()


def test_a_job_list_shows_only_the_callers_jobs(
    client: TestClient, shared_completed_job: Job, other_user: str
) -> None:
    assert client.get("/api/v1/jobs", headers=bearer(other_user)).json()["items"] == []
    dev_login(client, other_user)
    assert shared_completed_job.job_id not in client.get("/jobs").text
    client.cookies.clear()


def test_a_cursor_cannot_reach_into_another_users_jobs(
    client: TestClient, shared_completed_job: Job, other_user: str
) -> None:
    page = client.get("/api/v1/jobs", params={"limit": 1},
                      headers=bearer(shared_completed_job.user_id)).json()
    assert page["items"]
    # Cursors are positions, not grants: under another user they page that user's own jobs.
    import base64
    import json

    forged = base64.urlsafe_b64encode(
        json.dumps({"j": "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"}).encode()).decode().rstrip("=")
    theirs = client.get("/api/v1/jobs", params={"cursor": forged}, headers=bearer(other_user))
    assert theirs.status_code == 200 and theirs.json()["items"] == []
