"""Globus Auth offline, with globus_sdk.testing's canned responses (the `responses` library):
the authorization-code login (success, invalid grant, tampered state), API token
introspection (active, inactive, other audience, cached) and logout (revocation)."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from fastapi.testclient import TestClient
from globus_sdk.testing import RegisteredResponse, get_last_request, load_response
from globus_sdk.transport import RetryConfig
from prometheus_client import CollectorRegistry

from gas_core.aws import AwsClients
from gas_core.jobs import JobRepository
from gas_web.app.core.auth import GlobusAuth
from gas_web.app.main import create_app
from gas_web.settings import WebSettings
from tests.support import emulator_settings

SECRET = "globus-client-secret-for-tests"


@pytest.fixture
def mocked() -> Iterator[None]:
    responses.start()
    try:
        yield
    finally:
        responses.stop()
        responses.reset()


@pytest.fixture
def client_id(mocked: None) -> str:
    # The canned introspection names the client it was issued to; be that client.
    return str(load_response("auth.oauth2_token_introspect").metadata["client_id"])


@pytest.fixture
def globus_client(
    web_settings: WebSettings, moto_endpoint: str, client_id: str
) -> Iterator[tuple[TestClient, GlobusAuth]]:
    settings: WebSettings = emulator_settings(
        moto_endpoint, cls=WebSettings, name_prefix=web_settings.name_prefix,
        auth_mode="globus", globus_client_id=client_id, globus_client_secret=SECRET,
        globus_native_client_id="native-client", web_base_url="https://gas.example.org",
        web_cache_dir=web_settings.web_cache_dir,
    )
    globus = GlobusAuth(client_id=client_id, client_secret=SECRET,
                        redirect_uri="https://gas.example.org/auth/callback",
                        retry_config=RetryConfig(max_retries=0))
    app = create_app(settings, aws=AwsClients(settings), registry=CollectorRegistry(),
                     globus=globus)
    with TestClient(app, follow_redirects=False, base_url="https://testserver") as client:
        yield client, globus


def _userinfo(sub: str, *, name: str = "Ada Lovelace", email: str = "ada@example.org") -> None:
    RegisteredResponse(
        service="auth", path="/v2/oauth2/userinfo", method="GET",
        json={"sub": sub, "name": name, "email": email, "preferred_username": "ada@example.org"},
    ).add()


def _start_login(client: TestClient, next_path: str = "/jobs") -> str:
    response = client.get("/login", params={"next": next_path})
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert location.netloc == "auth.globus.org"
    query = parse_qs(location.query)
    assert query["redirect_uri"] == ["https://gas.example.org/auth/callback"]
    assert set(query["scope"][0].split()) == {"openid", "profile", "email"}
    assert query["response_type"] == ["code"]
    return query["state"][0]


def _requests_to(path: str) -> list[object]:
    return [call for call in responses.calls if urlsplit(call.request.url).path == path]


def _form(call: object) -> dict[str, list[str]]:
    request = getattr(call, "request", call)
    body = request.body or ""  # type: ignore[attr-defined]
    return parse_qs(body if isinstance(body, str) else body.decode())


def _live_introspection() -> RegisteredResponse:
    """Serve the canned introspection answer (active, for this client) with a live expiry: the
    canned `exp` is long past. Returns the canned response (its metadata names the identity)."""
    canned = load_response("auth.oauth2_token_introspect")
    body = dict(canned.json) | {"exp": int(time.time()) + 600}  # type: ignore[arg-type]
    responses.replace(responses.POST, "https://auth.globus.org/v2/oauth2/token/introspect",
                      json=body)
    return canned


def test_login_with_globus_creates_the_profile_and_a_session(
    globus_client: tuple[TestClient, GlobusAuth], repository: JobRepository, user_id: str
) -> None:
    client, _ = globus_client
    state = _start_login(client)
    load_response("auth.oauth2_exchange_code_for_tokens", case="openid")
    _userinfo(user_id)
    response = client.get("/auth/callback", params={"code": "the-code", "state": state})
    assert response.status_code == 303 and response.headers["location"] == "/jobs"
    [exchange] = _requests_to("/v2/oauth2/token")
    sent = _form(exchange)
    assert sent["code"] == ["the-code"] and sent["grant_type"] == ["authorization_code"]
    profile = repository.get_profile(user_id)
    assert profile is not None and profile.tier == "free"
    assert (profile.name, profile.email) == ("Ada Lovelace", "ada@example.org")
    cookie = response.headers["set-cookie"]
    assert "httponly" in cookie.lower() and "samesite=lax" in cookie.lower()
    assert "auth_access_token" not in cookie  # tokens are sealed, not readable in the cookie
    assert "Ada Lovelace" in client.get("/jobs").text


def test_an_invalid_grant_is_a_friendly_login_failure(
    globus_client: tuple[TestClient, GlobusAuth]
) -> None:
    client, _ = globus_client
    state = _start_login(client)
    load_response("auth.oauth2_exchange_code_for_tokens", case="invalid_grant")
    response = client.get("/auth/callback", params={"code": "stale", "state": state},
                          headers={"Accept": "text/html"})
    assert response.status_code == 400
    assert "Login failed" in response.text and "sign in again" in response.text.lower()
    assert client.get("/jobs").status_code == 303  # not signed in


@pytest.mark.parametrize("tamper", ["other", "", None])
def test_a_tampered_state_is_refused_before_any_token_exchange(
    globus_client: tuple[TestClient, GlobusAuth], tamper: str | None
) -> None:
    client, _ = globus_client
    state = _start_login(client)
    load_response("auth.oauth2_exchange_code_for_tokens", case="openid")
    params = {"code": "the-code"}
    if tamper is not None:
        params["state"] = state + tamper if tamper else ""
    response = client.get("/auth/callback", params=params, headers={"Accept": "text/html"})
    assert response.status_code == 400 and "not valid for this browser" in response.text
    assert _requests_to("/v2/oauth2/token") == []
    # The state is single-use: even the right one fails now.
    again = client.get("/auth/callback", params={"code": "c", "state": state})
    assert again.status_code == 400


def test_a_state_from_another_browser_is_refused(
    globus_client: tuple[TestClient, GlobusAuth]
) -> None:
    client, _ = globus_client
    state = _start_login(client)
    client.cookies.clear()  # the victim's browser never started this login
    response = client.get("/auth/callback", params={"code": "c", "state": state})
    assert response.status_code == 400


def test_api_tokens_are_introspected_and_cached(
    globus_client: tuple[TestClient, GlobusAuth], repository: JobRepository
) -> None:
    client, _ = globus_client
    canned = _live_introspection()
    identity = canned.metadata["id"]
    first = client.get("/api/v1/me", headers={"Authorization": "Bearer real-token"})
    assert first.status_code == 200
    assert first.json()["user_id"] == identity and first.json()["email"] == canned.metadata["email"]
    sent = _form(get_last_request())
    assert sent["token"] == ["real-token"] and sent["include"] == ["identity_set"]
    client.get("/api/v1/me", headers={"Authorization": "Bearer real-token"})
    assert len(_requests_to("/v2/oauth2/token/introspect")) == 1  # the second came from cache
    assert repository.get_profile(identity) is not None


def test_an_inactive_token_is_401(globus_client: tuple[TestClient, GlobusAuth]) -> None:
    client, _ = globus_client
    responses.replace(responses.POST, "https://auth.globus.org/v2/oauth2/token/introspect",
                      json={"active": False})
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer expired"})
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"
    assert "gas login" in response.json()["detail"]


def test_a_token_for_another_service_is_401(
    globus_client: tuple[TestClient, GlobusAuth]
) -> None:
    client, _ = globus_client
    canned = load_response("auth.oauth2_token_introspect")
    body = dict(canned.json) | {"aud": ["transfer.api.globus.org"]}  # type: ignore[arg-type]
    responses.replace(responses.POST, "https://auth.globus.org/v2/oauth2/token/introspect",
                      json=body)
    assert client.get("/api/v1/me",
                      headers={"Authorization": "Bearer transfer-token"}).status_code == 401


def test_dev_tokens_are_refused_outside_development_login(
    globus_client: tuple[TestClient, GlobusAuth], user_id: str
) -> None:
    client, _ = globus_client
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer dev:{user_id}"})
    assert response.status_code == 401
    assert client.get("/login").status_code == 303  # no name form: straight to Globus


def test_logout_revokes_the_tokens_and_ends_the_globus_session(
    globus_client: tuple[TestClient, GlobusAuth], user_id: str
) -> None:
    client, _ = globus_client
    state = _start_login(client)
    load_response("auth.oauth2_exchange_code_for_tokens", case="openid")
    _userinfo(user_id)
    client.get("/auth/callback", params={"code": "c", "state": state})
    page = client.get("/jobs").text
    csrf = page.split('name="csrf-token" content="', 1)[1].split('"', 1)[0]
    load_response("auth.oauth2_revoke_token")
    response = client.post("/logout", data={"csrf_token": csrf})
    assert response.status_code == 303
    location = urlsplit(response.headers["location"])
    assert (location.netloc, location.path) == ("auth.globus.org", "/v2/web/logout")
    assert parse_qs(location.query)["redirect_uri"] == ["https://gas.example.org/"]
    revoked = [_form(call)["token"][0] for call in _requests_to("/v2/oauth2/token/revoke")]
    assert revoked == ["auth_access_token"]
    assert client.get("/jobs").status_code == 303
    csp = response.headers["content-security-policy"]
    assert "form-action 'self' https://auth.globus.org" in csp


def test_clients_discover_the_globus_native_app_and_scope(
    globus_client: tuple[TestClient, GlobusAuth], client_id: str
) -> None:
    client, _ = globus_client
    assert client.get("/api/v1/auth").json() == {
        "mode": "globus", "globus_native_client_id": "native-client",
        "scopes": [f"https://auth.globus.org/scopes/{client_id}/all"]}


def test_production_refuses_dev_login_and_missing_globus_credentials() -> None:
    with pytest.raises(ValueError, match="GAS_AUTH_MODE=dev is refused"):
        WebSettings(env="production", auth_mode="dev", session_secret="x" * 32,
                    globus_client_id="c", globus_client_secret="s")
    with pytest.raises(ValueError, match="GLOBUS_CLIENT_ID"):
        WebSettings(auth_mode="globus")
    with pytest.raises(ValueError, match="GAS_SESSION_SECRET is a development default"):
        WebSettings(env="production", auth_mode="globus", globus_client_id="c",
                    globus_client_secret="s")


def test_production_cookies_are_secure_and_hsts_is_sent(
    mocked: None, moto_endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Production takes AWS credentials from the pod's role (here: the default chain's env).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    settings = WebSettings(
        env="production", auth_mode="globus", globus_client_id="client",
        globus_client_secret="a-real-secret", session_secret=secrets.token_urlsafe(32),
        aws_endpoint_url=moto_endpoint,
    )
    globus = GlobusAuth(client_id="client", client_secret="a-real-secret",
                        redirect_uri="https://gas.example.org/auth/callback",
                        retry_config=RetryConfig(max_retries=0))
    app = create_app(settings, aws=AwsClients(settings), registry=CollectorRegistry(),
                     globus=globus)
    with TestClient(app, follow_redirects=False, base_url="https://testserver") as client:
        response = client.get("/login")
    assert response.status_code == 303
    assert "secure" in response.headers["set-cookie"].lower()
    assert response.headers["strict-transport-security"].startswith("max-age=")


# -- the CLI's native-app login (`gas login` against a Globus-mode server) ------------------------


@pytest.fixture
def cli_to_app(
    globus_client: tuple[TestClient, GlobusAuth], monkeypatch: pytest.MonkeyPatch
) -> str:
    """Route the CLI's HTTP client into the in-process app; Globus stays on `responses`."""
    import httpx

    from gas_cli import client as cli_client

    client, _ = globus_client
    transport = client._transport  # the TestClient's in-process ASGI transport
    real_client = httpx.Client
    monkeypatch.setattr(cli_client.httpx, "Client",
                        lambda **kwargs: real_client(transport=transport, **kwargs))
    return "https://testserver"


def _native_tokens(
    client_id: str, *, access: str, refresh: str, expires_in: int
) -> dict[str, object]:
    """Globus's token answer for a native app: one token for GAS's own scope."""
    return {"access_token": access, "refresh_token": refresh, "expires_in": expires_in,
            "scope": f"https://auth.globus.org/scopes/{client_id}/all", "token_type": "Bearer",
            "resource_server": client_id, "other_tokens": []}


def test_cli_globus_login_exchanges_the_code_with_pkce_and_keeps_tokens_private(
    cli_to_app: str, client_id: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from gas_cli.main import cli

    token = RegisteredResponse(
        service="auth", path="/v2/oauth2/token", method="POST",
        json=_native_tokens(client_id, access="cli-access", refresh="cli-refresh",
                            expires_in=3600))
    token.add()
    _live_introspection()
    config = tmp_path / "gas-config"
    result = CliRunner().invoke(
        cli, ["login", "--api-url", cli_to_app, "--config-dir", str(config), "--no-browser"],
        input="the-code\n")
    assert result.exit_code == 0, result.output
    authorize = result.output.split("Sign in with Globus at:", 1)[1].split()[0]
    query = parse_qs(urlsplit(authorize).query)
    assert query["client_id"] == ["native-client"]
    assert query["scope"] == [f"https://auth.globus.org/scopes/{client_id}/all"]
    assert query["code_challenge_method"] == ["S256"]
    assert query["access_type"] == ["offline"]  # a refresh token is asked for
    assert "Signed in to https://testserver as" in result.output
    sent = _form(_requests_to("/v2/oauth2/token")[-1])
    assert sent["grant_type"] == ["authorization_code"] and sent["code"] == ["the-code"]
    assert sent["client_id"] == ["native-client"] and sent["code_verifier"][0]
    saved = config / "credentials.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    credentials = json.loads(saved.read_text())
    assert credentials["kind"] == "globus" and credentials["access_token"] == "cli-access"
    assert credentials["refresh_token"] == "cli-refresh"
    assert credentials["native_client_id"] == "native-client"
    # The token reached the API, which introspected it.
    assert _form(_requests_to("/v2/oauth2/token/introspect")[-1])["token"] == ["cli-access"]


def test_cli_refreshes_an_expiring_globus_token_before_calling_the_api(
    cli_to_app: str, client_id: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from gas_cli.main import cli

    config = tmp_path / "gas-config"
    config.mkdir()
    (config / "credentials.json").write_text(json.dumps({
        "api_url": cli_to_app, "kind": "globus", "access_token": "old-access",
        "refresh_token": "cli-refresh", "expires_at": time.time() + 5,
        "native_client_id": "native-client"}))
    RegisteredResponse(
        service="auth", path="/v2/oauth2/token", method="POST",
        json=_native_tokens(client_id, access="new-access", refresh="new-refresh",
                            expires_in=3600)).add()
    _live_introspection()
    result = CliRunner().invoke(cli, ["jobs", "--config-dir", str(config)])
    assert result.exit_code == 0, result.output
    sent = _form(_requests_to("/v2/oauth2/token")[-1])
    assert sent["grant_type"] == ["refresh_token"] and sent["refresh_token"] == ["cli-refresh"]
    assert _form(_requests_to("/v2/oauth2/token/introspect")[-1])["token"] == ["new-access"]
    credentials = json.loads((config / "credentials.json").read_text())
    assert (credentials["access_token"], credentials["refresh_token"]) == ("new-access",
                                                                          "new-refresh")
    assert credentials["expires_at"] > time.time() + 3000


def test_cli_globus_login_with_a_refused_code_fails_without_saving(
    cli_to_app: str, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from gas_cli.main import cli

    load_response("auth.oauth2_exchange_code_for_tokens", case="invalid_grant")
    config = tmp_path / "gas-config"
    result = CliRunner().invoke(
        cli, ["login", "--api-url", cli_to_app, "--config-dir", str(config), "--no-browser"],
        input="wrong-code\n")
    assert result.exit_code != 0
    assert "Globus did not accept that code" in result.output
    assert not (config / "credentials.json").exists()
