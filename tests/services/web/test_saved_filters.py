"""Saved filters: the /api/v1/me/filters API (owner only, one name per user, a cap, known
parameters only, problem+json errors) and the results page's save and delete forms (CSRF
checked, another user's filter a 404)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from fastapi.testclient import TestClient

from gas_core.jobs import MAX_SAVED_FILTERS, Job
from tests.services.web.conftest import bearer
from tests.services.web.test_isolation import dev_login

FILTERS = "/api/v1/me/filters"


def save(client: TestClient, user: str, name: str, **params: object) -> dict[str, object]:
    response = client.post(FILTERS, json={"name": name, "params": params}, headers=bearer(user))
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def names(client: TestClient, user: str) -> list[str]:
    listed = client.get(FILTERS, headers=bearer(user))
    assert listed.status_code == 200
    return [item["name"] for item in listed.json()["items"]]


def test_a_saved_filter_is_listed_read_and_deleted_by_its_owner(
    client: TestClient, user_id: str
) -> None:
    response = client.post(FILTERS, headers=bearer(user_id), json={
        "name": "Rare coding in APP", "params": {"gene": "APP", "preset": "rare-coding",
                                                 "keep_no_af": False, "max_af": 0.01}})
    assert response.status_code == 201, response.text
    saved = response.json()
    assert saved["params"] == {"preset": "rare-coding", "gene": "APP", "max_af": "0.01",
                               "keep_no_af": "false"}
    assert response.headers["location"] == f"{FILTERS}/{saved['id']}"
    listed = client.get(FILTERS, headers=bearer(user_id)).json()
    assert listed == {"items": [saved], "limit": MAX_SAVED_FILTERS}
    assert client.get(f"{FILTERS}/{saved['id']}", headers=bearer(user_id)).json() == saved

    deleted = client.delete(f"{FILTERS}/{saved['id']}", headers=bearer(user_id))
    assert deleted.status_code == 204 and deleted.content == b""
    assert client.get(f"{FILTERS}/{saved['id']}", headers=bearer(user_id)).status_code == 404
    assert names(client, user_id) == []


def test_another_users_filter_is_not_found(
    client: TestClient, user_id: str, other_user: str
) -> None:
    saved = save(client, user_id, "mine", impact="HIGH")
    unknown = "01JAAAAAAAAAAAAAAAAAAAAAAA"
    for method in ("GET", "DELETE"):
        theirs = client.request(method, f"{FILTERS}/{saved['id']}", headers=bearer(other_user))
        assert theirs.status_code == 404
        assert theirs.headers["content-type"] == "application/problem+json"
        nothing = client.request(method, f"{FILTERS}/{unknown}", headers=bearer(other_user))
        assert theirs.json()["detail"] == nothing.json()["detail"] == "No such saved filter."
        malformed = client.request(method, f"{FILTERS}/not-an-id", headers=bearer(other_user))
        assert malformed.status_code == 404
    assert names(client, other_user) == []
    assert names(client, user_id) == ["mine"]  # still there


def test_a_duplicate_name_is_refused_with_a_409_problem(
    client: TestClient, user_id: str, other_user: str
) -> None:
    save(client, user_id, "High impact", impact="HIGH")
    again = client.post(FILTERS, json={"name": " high  IMPACT ", "params": {"gene": "APP"}},
                        headers=bearer(user_id))
    assert again.status_code == 409
    assert again.headers["content-type"] == "application/problem+json"
    assert again.json()["detail"] == "You already have a saved filter named 'high IMPACT'."
    save(client, other_user, "High impact", impact="HIGH")  # names are per user
    assert names(client, user_id) == ["High impact"]


def test_the_filter_past_the_cap_is_refused_until_one_is_deleted(
    client: TestClient, user_id: str
) -> None:
    ids = [save(client, user_id, f"filter {i:02d}", gene=f"G{i}")["id"]
           for i in range(MAX_SAVED_FILTERS)]
    over = client.post(FILTERS, json={"name": "one more", "params": {"gene": "APP"}},
                       headers=bearer(user_id))
    assert over.status_code == 409
    assert over.json()["detail"] == (f"You have {MAX_SAVED_FILTERS} saved filters, the most "
                                     "you can keep; delete one first.")
    assert client.delete(f"{FILTERS}/{ids[0]}", headers=bearer(user_id)).status_code == 204
    save(client, user_id, "one more", gene="APP")
    assert len(names(client, user_id)) == MAX_SAVED_FILTERS


@pytest.mark.parametrize(("params", "field", "detail"), [
    ({"impact": "HIGH", "colour": "red"}, "params", "Unknown filter parameter 'colour'"),
    ({"gene": "A" * 513}, "params", "more than 512 characters"),
    ({"view": "rows"}, "params", "'view' must be one of variant, transcript"),
    ({}, "params", "at least one parameter"),
])
def test_parameters_the_api_does_not_take_are_a_422_problem(
    client: TestClient, user_id: str, params: dict[str, object], field: str, detail: str
) -> None:
    response = client.post(FILTERS, json={"name": "bad", "params": params},
                           headers=bearer(user_id))
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert detail in problem["detail"]
    assert problem["errors"][0]["field"] == field
    assert names(client, user_id) == []


def test_a_name_too_long_or_empty_is_a_422_problem(client: TestClient, user_id: str) -> None:
    for name in ("", "   ", "x" * 81):
        response = client.post(FILTERS, json={"name": name, "params": {"gene": "APP"}},
                               headers=bearer(user_id))
        assert response.status_code == 422, name
        assert response.json()["errors"][0]["field"] == "name"


# -- the results page's forms --------------------------------------------------------------------


def csrf(client: TestClient) -> str:
    page = client.get("/profile")
    return str(page.text.split('name="csrf-token" content="', 1)[1].split('"', 1)[0])


@pytest.fixture
def signed_in(client: TestClient, completed_job: Job) -> Iterator[Job]:
    dev_login(client, completed_job.user_id)
    yield completed_job
    client.cookies.clear()


def test_the_results_page_saves_the_current_view_under_a_name(
    client: TestClient, signed_in: Job
) -> None:
    job = signed_in
    response = client.post(f"/jobs/{job.job_id}/results/saved-filters", data={
        "csrf_token": csrf(client), "name": "High in APP",
        "params": "gene=APP&impact=HIGH&page=3&sort=position&order=desc&junk=1"})
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.path == f"/jobs/{job.job_id}/results"
    assert dict(parse_qsl(location.query)) == {"gene": "APP", "impact": "HIGH",
                                               "sort": "position", "order": "desc"}
    [saved] = client.get(FILTERS).json()["items"]
    assert saved["name"] == "High in APP"
    assert saved["params"] == {"gene": "APP", "impact": "HIGH", "sort": "position",
                               "order": "desc"}


def test_a_refused_save_from_the_page_comes_back_as_a_note_on_the_same_view(
    client: TestClient, signed_in: Job
) -> None:
    job = signed_in
    token = csrf(client)
    data = {"csrf_token": token, "name": "twice", "params": "gene=APP"}
    assert client.post(f"/jobs/{job.job_id}/results/saved-filters", data=data).status_code == 303
    again = client.post(f"/jobs/{job.job_id}/results/saved-filters",
                        data={**data, "params": "gene=SOD1"})
    assert again.status_code == 303
    assert urlsplit(again.headers["location"]).query == "gene=SOD1"
    assert [f["params"] for f in client.get(FILTERS).json()["items"]] == [{"gene": "APP"}]


def test_saving_from_the_page_needs_the_forms_csrf_token(
    client: TestClient, signed_in: Job
) -> None:
    url = f"/jobs/{signed_in.job_id}/results/saved-filters"
    for data in ({"name": "x", "params": "gene=APP"},
                 {"name": "x", "params": "gene=APP", "csrf_token": "forged"}):
        refused = client.post(url, data=data)
        assert refused.status_code == 403
    assert client.get(FILTERS).json()["items"] == []


def test_the_page_deletes_only_the_users_own_filter(
    client: TestClient, signed_in: Job, other_user: str
) -> None:
    job = signed_in
    theirs = save(client, other_user, "theirs", gene="APP")
    mine = save(client, job.user_id, "mine", gene="SOD1")
    token = csrf(client)
    refused = client.post(f"/jobs/{job.job_id}/results/saved-filters/{theirs['id']}/delete",
                          data={"csrf_token": token, "back": "gene=APP"})
    assert refused.status_code == 404
    assert names(client, other_user) == ["theirs"]

    deleted = client.post(f"/jobs/{job.job_id}/results/saved-filters/{mine['id']}/delete",
                          data={"csrf_token": token, "back": "gene=SOD1&page=2"})
    assert deleted.status_code == 303
    assert deleted.headers["location"] == f"/jobs/{job.job_id}/results?gene=SOD1"
    assert names(client, job.user_id) == []


def test_the_forms_of_another_users_job_are_not_found(
    client: TestClient, shared_completed_job: Job, user_id: str
) -> None:
    dev_login(client, user_id)
    try:
        response = client.post(f"/jobs/{shared_completed_job.job_id}/results/saved-filters",
                               data={"csrf_token": csrf(client), "name": "x",
                                     "params": "gene=APP"})
        assert response.status_code == 404
        assert names(client, user_id) == []
    finally:
        client.cookies.clear()


def test_the_partial_links_each_saved_filter_and_offers_to_save_the_view(
    client: TestClient, shared_completed_job: Job
) -> None:
    """The partial as the results page includes it (rendered with the app's templates)."""
    from gas_core.jobs import SavedFilter

    templates = client.app.state.templates  # type: ignore[attr-defined]
    saved = SavedFilter(user_id=shared_completed_job.user_id, filter_id=str(uuid.uuid4()),
                        name="Rare <LoF>", params={"preset": "lof", "max_af": "0.01"},
                        created_at="2026-01-01T00:00:00Z")
    html = templates.get_template("_saved_filters.html").render(
        job=shared_completed_job, csrf_field="csrf_token", csrf_token="TOKEN",
        saved_filters=[saved], saved_filter_limit=MAX_SAVED_FILTERS,
        saved_filter_current={"gene": "APP", "impact": "HIGH"}, saved_filter_note=None)
    results = f"/jobs/{shared_completed_job.job_id}/results"
    assert f'href="{results}?preset=lof&amp;max_af=0.01"' in html
    assert "Rare &lt;LoF&gt;" in html  # escaped
    assert f'action="{results}/saved-filters"' in html
    assert 'name="params" value="gene=APP&amp;impact=HIGH"' in html
    assert f'action="{results}/saved-filters/{saved.filter_id}/delete"' in html
    assert html.count('value="TOKEN"') == 2  # both forms carry the CSRF token
    assert "<script" not in html and not re.search(r"\son[a-z]+=", html)  # CSP: no inline JS


def test_the_results_page_shows_saved_filters_and_the_note_of_the_last_save(
    client: TestClient, signed_in: Job
) -> None:
    job = signed_in
    results = f"/jobs/{job.job_id}/results"
    page = client.get(f"{results}?impact=HIGH&known=known&page=1")
    assert page.status_code == 200, page.text
    assert 'id="saved-filters"' in page.text
    assert "None yet." in page.text
    # The view's own parameters, as the API spells them, go with the save form.
    assert 'name="params" value="impact=HIGH&amp;known=true"' in page.text

    saved = client.post(f"{results}/saved-filters", data={
        "csrf_token": csrf(client), "name": "High known", "params": "impact=HIGH&known=true"})
    assert saved.status_code == 303
    after = client.get(saved.headers["location"])
    assert "Saved this filter as “High known”." in after.text
    assert f'href="{results}?impact=HIGH&amp;known=true"' in after.text
    assert 'aria-current="true">High known</a>' in after.text  # the view shown is that filter
    again = client.get(f"{results}?gene=APP")
    assert "Saved this filter as" not in again.text  # a note is shown once
    assert ">High known</a>" in again.text


def test_saved_filters_the_cli_and_the_variants_api_take_the_same_parameters(
    client: TestClient,
) -> None:
    from gas_cli.filter_params import FILTER_KEYS
    from gas_core.jobs import FILTER_PARAMETERS

    spec = client.get("/api/openapi.json").json()
    for path in ("/api/v1/jobs/{job_id}/variants", "/api/v1/jobs/{job_id}/variants/export"):
        names = {p["name"] for p in spec["paths"][path]["get"]["parameters"]
                 if p["in"] == "query"} - {"limit", "cursor", "format"}
        assert names == set(FILTER_PARAMETERS), path
    assert FILTER_KEYS == FILTER_PARAMETERS
