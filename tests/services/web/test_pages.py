"""Pages as a browser sees them (server-rendered HTML), in development login mode."""

from __future__ import annotations

from datetime import timedelta

import pytest
import structlog
import structlog.testing
from fastapi.testclient import TestClient

from gas_core.jobs import Job, JobRepository, JobStatus, StorageState, utc_now
from tests.services.web.conftest import SubmitJob
from tests.services.web.test_isolation import dev_login


def csrf_of(page: str) -> str:
    return page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]


@pytest.fixture
def signed_in(client: TestClient, user_id: str) -> TestClient:
    dev_login(client, user_id)
    yield client  # type: ignore[misc]
    client.cookies.clear()


def test_home_invites_to_sign_in(client: TestClient) -> None:
    client.cookies.clear()
    page = client.get("/")
    assert page.status_code == 200
    assert 'href="/login"' in page.text and "/static/bootstrap/css/bootstrap.min.css" in page.text
    assert "<script>" not in page.text  # the CSP forbids inline script: there is none


def test_pages_need_a_session_and_come_back_after_login(client: TestClient) -> None:
    client.cookies.clear()
    response = client.get("/jobs?cursor=x")
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=/jobs%3Fcursor%3Dx"
    form = client.get(response.headers["location"])
    assert 'name="next" value="/jobs?cursor=x"' in form.text
    done = client.post("/login", data={"username": "Ada Lovelace", "next": "/jobs?cursor=x",
                                       "csrf_token": csrf_of(form.text)})
    assert done.status_code == 303 and done.headers["location"] == "/jobs?cursor=x"
    assert "Ada Lovelace" in client.get("/jobs").text
    client.cookies.clear()


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil.example",
                                    "javascript:alert(1)", "/%0d%0aLocation:x"])
def test_login_never_redirects_off_site(client: TestClient, target: str) -> None:
    client.cookies.clear()
    form = client.get("/login", params={"next": target})
    response = client.post("/login", data={"username": "mallory", "next": target,
                                           "csrf_token": csrf_of(form.text)})
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    client.cookies.clear()


def test_login_form_without_the_csrf_token_is_refused(client: TestClient) -> None:
    client.cookies.clear()
    client.get("/login")
    response = client.post("/login", data={"username": "mallory", "next": "/"})
    assert response.status_code == 403


def test_logout_ends_the_session(signed_in: TestClient) -> None:
    page = signed_in.get("/jobs")
    assert signed_in.post("/logout", data={}).status_code == 403  # CSRF token required
    response = signed_in.post("/logout", data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert signed_in.get("/jobs").status_code == 303


def test_the_annotate_page_shows_the_tiers_size_cap(signed_in: TestClient) -> None:
    page = signed_in.get("/annotate")
    assert page.status_code == 200
    assert 'data-max-bytes="65536"' in page.text and "64.0 KB" in page.text
    assert '<script src="/static/annotate.js" defer></script>' in page.text


def test_jobs_page_lists_jobs_newest_first_with_badges_and_refresh(
    signed_in: TestClient, submit_job: SubmitJob, user_id: str
) -> None:
    first = submit_job(user_id)
    second = submit_job(user_id)
    page = signed_in.get("/jobs").text
    assert page.index(second.job_id) < page.index(first.job_id)
    assert "text-bg-secondary status-badge" in page  # PENDING badge
    assert 'data-active="true"' in page  # the page refreshes itself while jobs run


def test_jobs_page_paginates(
    signed_in: TestClient, submit_job: SubmitJob, user_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gas_web.app.web.routes import pages

    monkeypatch.setattr(pages, "JOBS_PER_PAGE", 2)
    ids = [submit_job(user_id).job_id for _ in range(3)]
    first = signed_in.get("/jobs").text
    assert ids[2] in first and ids[1] in first and ids[0] not in first
    older = first.split('id="older" href="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    second = signed_in.get(older).text
    assert ids[0] in second and ids[2] not in second


def test_a_running_job_shows_its_progress(
    signed_in: TestClient, submit_job: SubmitJob, repository: JobRepository, user_id: str
) -> None:
    job = submit_job(user_id)
    leased = repository.claim_lease(job, owner="w", ttl_seconds=60)
    repository.update_progress(user_id, job.job_id, owner="w", progress=0.42, ttl_seconds=60)
    page = signed_in.get(f"/jobs/{leased.job_id}").text
    assert 'id="job-progress-bar" data-progress="0.42"' in page and ">RUNNING<" in page


def test_a_completed_job_offers_its_results_and_charts(
    signed_in: TestClient, completed_job: Job
) -> None:
    page = signed_in.get(f"/jobs/{completed_job.job_id}").text
    for kind in ("vcf", "tsv", "summary", "log"):
        assert f'href="/jobs/{completed_job.job_id}/download/{kind}"' in page
    assert page.count('<svg class="chart"') == 3
    assert "missense_variant" in page and f'/jobs/{completed_job.job_id}/input' in page


def test_a_failed_job_says_why_in_plain_words(
    signed_in: TestClient, submit_job: SubmitJob, repository: JobRepository, user_id: str
) -> None:
    job = submit_job(user_id)
    repository.fail_job(user_id, job.job_id,
                        reason="Line 3: REF allele does not match GRCh38 at 1:5010.")
    page = signed_in.get(f"/jobs/{job.job_id}").text
    assert "The annotation failed" in page
    assert "REF allele does not match GRCh38 at 1:5010." in page


def test_archived_and_restoring_results_say_what_to_do(
    signed_in: TestClient, completed_job: Job, repository: JobRepository
) -> None:
    job = repository.transition_storage(completed_job, StorageState.ARCHIVING)
    job = repository.transition_storage(job, StorageState.ARCHIVED, archive_key="k")
    page = signed_in.get(f"/jobs/{job.job_id}").text
    assert "upgrade to premium to restore" in page and "/download/tsv" not in page
    blocked = signed_in.get(f"/jobs/{job.job_id}/download/tsv", headers={"Accept": "text/html"})
    assert blocked.status_code == 409 and "upgrade to premium" in blocked.text
    repository.transition_storage(job, StorageState.RESTORING, restore_tier="Expedited",
                                  restore_requested_at=utc_now() - timedelta(seconds=30))
    page = signed_in.get(f"/jobs/{job.job_id}").text
    assert "Restoring" in page and "expected in" in page and "minutes" in page


def test_the_results_browser_filters_sorts_and_pages(
    signed_in: TestClient, completed_job: Job
) -> None:
    url = f"/jobs/{completed_job.job_id}/results"
    page = signed_in.get(url)
    assert page.status_code == 200
    assert signed_in.get(f"{url}/summary").text.count('<svg class="chart"') == 3
    assert '<option value="missense_variant"' in page.text
    filtered = signed_in.get(url, params={"gene": "DEMOMINUS"}).text
    genes = {cell.split("<", 1)[0] for cell in filtered.split('<td class="gene">')[1:]}
    assert genes == {"DEMOMINUS"}
    nothing = signed_in.get(url, params={"gene": "NOSUCHGENE"}).text
    assert "No variants match these filters." in nothing
    sorted_page = signed_in.get(url, params={"sort": "impact", "order": "asc"}).text
    assert "Impact ▲" in sorted_page
    bad = signed_in.get(url, params={"max_af": "lots"}, headers={"Accept": "text/html"})
    assert bad.status_code == 400 and "between 0 and 1" in bad.text


def test_the_log_page_shows_the_engines_log(signed_in: TestClient, completed_job: Job) -> None:
    page = signed_in.get(f"/jobs/{completed_job.job_id}/log")
    assert page.status_code == 200 and 'id="log-text"' in page.text
    assert len(page.text.split('id="log-text">', 1)[1]) > 50


def test_profile_updates_and_tier_changes_are_csrf_protected_forms(
    signed_in: TestClient, repository: JobRepository, user_id: str
) -> None:
    page = signed_in.get("/profile").text
    token = csrf_of(page)
    assert 'id="upgrade"' in page
    assert signed_in.post("/profile/tier", data={"tier": "premium"}).status_code == 403
    done = signed_in.post("/profile/tier", data={"tier": "premium", "csrf_token": token})
    assert done.status_code == 303
    page = signed_in.get("/profile").text
    assert "Welcome to premium" in page and 'id="downgrade"' in page
    assert repository.get_profile(user_id).tier == "premium"  # type: ignore[union-attr]
    saved = signed_in.post("/profile", data={"name": "Rosalind", "email": "r@example.org",
                                             "csrf_token": token})
    assert saved.status_code == 303
    profile = repository.get_profile(user_id)
    assert profile is not None and profile.name == "Rosalind" and profile.notify_email is False
    signed_in.post("/profile", data={"name": "Rosalind", "email": "r@example.org",
                                     "notify_email": "true", "csrf_token": token})
    assert repository.get_profile(user_id).notify_email is True  # type: ignore[union-attr]


def test_friendly_error_pages(signed_in: TestClient) -> None:
    page = signed_in.get("/no/such/page", headers={"Accept": "text/html"})
    assert page.status_code == 404 and "There is nothing at this address." in page.text
    assert "<html" in page.text
    api = signed_in.get("/api/v1/nothing")
    assert api.status_code == 404 and api.headers["content-type"] == "application/problem+json"


def test_an_unexpected_error_is_a_friendly_500_without_details(
    web_settings: object, web_aws: object, monkeypatch: pytest.MonkeyPatch, user_id: str
) -> None:
    from prometheus_client import CollectorRegistry

    from gas_web.app.main import create_app

    app = create_app(web_settings, aws=web_aws, registry=CollectorRegistry())  # type: ignore[arg-type]

    def explode(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(app.state.jobs, "list_jobs", explode)
    # capture_logs: the error is logged (checked below), and the default console renderer's
    # rich traceback with locals (slow) is not used.
    with structlog.testing.capture_logs() as logs, \
            TestClient(app, raise_server_exceptions=False) as broken:
        dev_login(broken, user_id)
        page = broken.get("/jobs", headers={"Accept": "text/html"})
        assert page.status_code == 500
        assert "Something went wrong" in page.text and "secret internal detail" not in page.text
        # The navigation still shows who is signed in.
        assert f'id="signed-in-as">{user_id}' in page.text
        api = broken.get("/api/v1/jobs", headers={"Authorization": f"Bearer dev:{user_id}"})
        assert api.status_code == 500 and api.json()["title"] == "Internal Server Error"
        assert "secret" not in api.text
    errors = [entry for entry in logs if entry["event"] == "unhandled error"]
    assert len(errors) == 2 and errors[0]["log_level"] == "error"


def test_api_docs_work_offline_under_the_csp(client: TestClient) -> None:
    docs = client.get("/api/docs")
    assert docs.status_code == 200
    assert '/static/swagger/swagger-ui-bundle.js' in docs.text and "<script>" not in docs.text
    assert client.get("/static/swagger/swagger-ui-bundle.js").status_code == 200
    spec = client.get("/api/openapi.json").json()
    assert {"/api/v1/me", "/api/v1/me/tier", "/api/v1/jobs", "/api/v1/jobs/{job_id}",
            "/api/v1/jobs/{job_id}/submit", "/api/v1/jobs/{job_id}/results/{kind}",
            "/api/v1/jobs/{job_id}/variants"} <= set(spec["paths"])
    assert not any(p.startswith(("/jobs", "/login")) for p in spec["paths"])


def test_job_status_values_render_as_badges(signed_in: TestClient) -> None:
    from gas_web.app.web.templating import STATUS_BADGES

    assert set(STATUS_BADGES) == {s.value for s in JobStatus}


def test_the_jobs_table_lets_secondary_columns_give_way_on_a_phone(
    signed_in: TestClient, submit_job: SubmitJob, user_id: str
) -> None:
    # The real width check is in Chromium (tests/browser/test_results_browser.py).
    submit_job(user_id)
    page = signed_in.get("/jobs").text
    assert '<th class="w-25 d-none d-md-table-cell">Progress</th>' in page
    assert '<th class="d-none d-md-table-cell">Completed</th>' in page
    assert '<td class="job-file">' in page  # long file names wrap (app.css)
