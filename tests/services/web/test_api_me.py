"""/api/v1/me and tier changes; authentication in development mode; the auth discovery."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient

from gas_core.aws import AwsClients
from gas_core.resources import Queue
from tests.services.web.conftest import bearer


def test_me_creates_the_free_profile_on_first_use(client: TestClient, user_id: str) -> None:
    response = client.get("/api/v1/me", headers=bearer(user_id))
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == user_id and body["tier"] == "free"
    assert body["email"] == f"{user_id}@example.org"
    assert set(body) >= {"user_id", "name", "email", "tier"}


def test_no_token_is_401_with_a_bearer_challenge(client: TestClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == 401


def test_malformed_tokens_are_refused(client: TestClient) -> None:
    for header in ("Basic abc", "Bearer", "Bearer dev:", "Bearer dev:a/b", "Bearer dev:USER#x",
                   "Bearer some-globus-token"):
        assert client.get("/api/v1/me", headers={"Authorization": header}).status_code == 401


def test_upgrade_is_immediate_and_announced_to_the_restorer(
    client: TestClient, web_aws: AwsClients, user_id: str
) -> None:
    response = client.post("/api/v1/me/tier", json={"tier": "premium"}, headers=bearer(user_id))
    assert response.status_code == 200
    assert response.json()["tier"] == "premium"
    assert client.get("/api/v1/me", headers=bearer(user_id)).json()["tier"] == "premium"
    url = web_aws.queue_url(Queue.RESTORER)
    events = []
    for _ in range(5):
        for message in web_aws.sqs.receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
            body = json.loads(message["Body"])
            if body.get("user_id") == user_id:
                events.append(body)
                web_aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if events:
            break
    assert [(e["type"], e["old_tier"], e["new_tier"]) for e in events] == [
        ("user.tier_changed", "free", "premium")]
    down = client.post("/api/v1/me/tier", json={"tier": "free"}, headers=bearer(user_id))
    assert down.json()["tier"] == "free"


def test_an_unknown_tier_is_a_validation_problem(client: TestClient, user_id: str) -> None:
    response = client.post("/api/v1/me/tier", json={"tier": "gold"}, headers=bearer(user_id))
    assert response.status_code == 422
    problem = response.json()
    assert problem["title"] == "Invalid request" and problem["errors"][0]["field"] == "tier"


def test_cookie_sessions_need_the_csrf_header_to_change_anything(
    client: TestClient, user_id: str
) -> None:
    from tests.services.web.test_isolation import dev_login

    dev_login(client, user_id)
    assert client.get("/api/v1/me").json()["user_id"] == user_id
    refused = client.post("/api/v1/me/tier", json={"tier": "premium"})
    assert refused.status_code == 403
    token = client.get("/profile").text.split('name="csrf-token" content="', 1)[1].split('"')[0]
    allowed = client.post("/api/v1/me/tier", json={"tier": "premium"},
                          headers={"X-CSRF-Token": token})
    assert allowed.status_code == 200
    client.cookies.clear()


def test_clients_discover_how_to_log_in(client: TestClient) -> None:
    assert client.get("/api/v1/auth").json() == {"mode": "dev", "globus_native_client_id": None,
                                                 "scopes": []}
