"""Browser sessions end server-side: at logout for every copy of the cookie, and at their
maximum lifetime however active they are."""

from __future__ import annotations

import time
import uuid

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from gas_core.aws import AwsClients
from gas_web.app.main import create_app
from gas_web.settings import WebSettings
from tests.services.web.test_isolation import dev_login


def _csrf(client: TestClient) -> str:
    page = client.get("/jobs")
    return page.text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]


def test_a_session_cookie_copied_before_logout_no_longer_signs_in(client: TestClient) -> None:
    dev_login(client, "leaver-" + uuid.uuid4().hex[:8])
    copied = client.cookies["gas_session"]
    assert client.get("/api/v1/me").status_code == 200
    assert client.post("/logout", data={"csrf_token": _csrf(client)}).status_code == 303
    client.cookies.clear()
    client.cookies.set("gas_session", copied)
    assert client.get("/api/v1/me").status_code == 401
    profile = client.get("/profile")
    assert profile.status_code == 303 and profile.headers["location"].startswith("/login")
    client.cookies.clear()


def test_a_session_ends_at_its_maximum_lifetime_however_active(
    web_settings: WebSettings, web_aws: AwsClients
) -> None:
    from gas_web.app.sessions import SessionStore

    settings = web_settings.model_copy(update={"session_max_age_seconds": 600})
    app = create_app(settings, aws=web_aws, registry=CollectorRegistry())
    now = [time.time()]
    app.state.sessions = SessionStore(web_aws.dynamodb, settings.names.table,
                                      lifetime_seconds=600, clock=lambda: now[0])
    with TestClient(app, follow_redirects=False) as client:
        dev_login(client, "active-" + uuid.uuid4().hex[:8])
        # Busy all along: each response re-signs the cookie, which alone would never expire.
        for _ in range(3):
            now[0] += 200 - 1
            assert client.get("/api/v1/me").status_code == 200
        now[0] += 10
        assert client.get("/api/v1/me").status_code == 401
