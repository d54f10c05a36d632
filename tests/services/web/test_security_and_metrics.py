"""Headers every response carries, the session cookie, request ids, access log and metrics."""

from __future__ import annotations

import structlog.testing
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry, generate_latest

from gas_core.jobs import Job
from gas_web.app.core.middleware import security_headers_for
from gas_web.app.core.security import TokenSealer, dev_user_id, safe_next
from gas_web.app.submissions import sanitize_file_name
from tests.services.web.conftest import bearer
from tests.services.web.test_isolation import dev_login


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for path in ("/", "/api/v1/me", "/static/app.css", "/nothing"):
        headers = client.get(path).headers
        csp = headers["content-security-policy"]
        script_src = csp.split("script-src", 1)[1].split(";", 1)[0]
        assert script_src.strip() == "'self'"
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        assert headers["x-frame-options"] == "DENY"
        assert "strict-transport-security" not in headers  # development
    # Browsers upload straight to the storage endpoint: only that origin is allowed beyond self.
    csp = client.get("/annotate").headers["content-security-policy"]
    connect = csp.split("connect-src ", 1)[1].split(";", 1)[0].split()
    assert connect[0] == "'self'" and len(connect) == 2 and connect[1].startswith("http://127.0.0.1:")


def test_production_adds_hsts() -> None:
    headers = security_headers_for(production=True, connect_origins=list, form_origins=[])("/")
    assert headers["Strict-Transport-Security"].startswith("max-age=31536000")


def test_user_pages_are_never_cached(client: TestClient) -> None:
    assert client.get("/api/v1/auth").headers["cache-control"] == "no-store"
    assert "no-store" not in client.get("/static/app.css").headers.get("cache-control", "")


def test_the_session_cookie_is_signed_httponly_and_samesite(
    client: TestClient, user_id: str
) -> None:
    client.cookies.clear()
    client.get("/login")
    form = client.get("/login").text
    token = form.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/login", data={"username": user_id, "csrf_token": token},
                           follow_redirects=False)
    cookie = response.headers["set-cookie"]
    assert cookie.startswith("gas_session=") and "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower() and "secure" not in cookie.lower()  # dev: http
    # A tampered cookie is no session at all.
    value = client.cookies["gas_session"]
    client.cookies.set("gas_session", value[:-4] + "AAAA")
    assert client.get("/jobs").status_code == 303
    client.cookies.clear()


def test_secrets_never_reach_pages(client: TestClient, web_settings: object, user_id: str) -> None:
    dev_login(client, user_id)
    secret = web_settings.session_secret.get_secret_value()  # type: ignore[attr-defined]
    for path in ("/", "/annotate", "/jobs", "/profile"):
        assert secret not in client.get(path).text
    client.cookies.clear()


def test_request_ids_are_returned_and_echoed_when_sane(client: TestClient) -> None:
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    assert client.get("/healthz", headers={"X-Request-ID": "abc-12345678"}).headers[
        "x-request-id"] == "abc-12345678"
    assert client.get("/healthz", headers={"X-Request-ID": "bad id\n"}).headers[
        "x-request-id"] != "bad id\n"


def test_one_access_log_line_per_request_with_the_route_template(
    client: TestClient, shared_completed_job: Job
) -> None:
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as logs:
        response = client.get(f"/api/v1/jobs/{shared_completed_job.job_id}",
                              headers=bearer(shared_completed_job.user_id))
    lines = [entry for entry in logs if entry["event"] == "request"]
    assert len(lines) == 1
    line = lines[0]
    assert line["route"] == "/api/v1/jobs/{job_id}" and line["status"] == 200
    assert line["request_id"] == response.headers["x-request-id"]
    assert line["user_id"] == shared_completed_job.user_id and line["duration_ms"] >= 0


def test_metrics_count_requests_by_route_template_and_status(
    client: TestClient, registry: CollectorRegistry, shared_completed_job: Job, other_user: str
) -> None:
    def count(route: str, status: str) -> float:
        value = registry.get_sample_value(
            "gas_http_requests_total", {"method": "GET", "route": route, "status": status})
        return value or 0.0

    route = "/api/v1/jobs/{job_id}"
    before_ok, before_404 = count(route, "200"), count(route, "404")
    client.get(f"/api/v1/jobs/{shared_completed_job.job_id}",
               headers=bearer(shared_completed_job.user_id))
    client.get(f"/api/v1/jobs/{shared_completed_job.job_id}", headers=bearer(other_user))
    assert count(route, "200") == before_ok + 1 and count(route, "404") == before_404 + 1
    assert (registry.get_sample_value("gas_http_request_seconds_count",
                                      {"method": "GET", "route": route}) or 0) >= 2
    assert client.get("/metrics").status_code == 404  # never on the public port
    text = generate_latest(registry).decode()
    series = 'gas_http_requests_total{method="GET",route="/api/v1/jobs/{job_id}",status="200"}'
    assert series in text
    assert shared_completed_job.job_id not in text  # ids never become label values


def test_file_names_are_sanitized() -> None:
    assert sanitize_file_name("C:\\Users\\me\\x.vcf") == "x.vcf"
    assert sanitize_file_name("../../etc/passwd.vcf") == "passwd.vcf"
    assert sanitize_file_name("..hidden.VCF.GZ") == "hidden.VCF.GZ"
    assert sanitize_file_name("ünïcode name.bcf") == "n_code_name.bcf"
    assert len(sanitize_file_name("a" * 500 + ".vcf.gz")) == 120


def test_redirect_targets_and_user_ids() -> None:
    assert safe_next("/jobs/1?x=2") == "/jobs/1?x=2"
    for bad in ("//x.org", "/\\x.org", "http://x.org", "jobs", "", None, "/a\nb"):
        assert safe_next(bad) == "/"
    assert dev_user_id("Ada Lovelace") == "ada-lovelace"
    assert dev_user_id("../#") is None


def test_sealed_tokens_cannot_be_read_or_forged() -> None:
    sealer = TokenSealer("one-secret")
    sealed = sealer.seal({"t": ["access-token"]})
    assert "access-token" not in sealed
    assert sealer.open(sealed) == {"t": ["access-token"]}
    assert TokenSealer("another-secret").open(sealed) == {}
    assert sealer.open(sealed[:-2] + "xx") == {}
