"""Settings validation, secret handling in logs, and event schemas."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
import structlog
from pydantic import SecretStr, ValidationError

from gas_core.events import (
    JobCompleted,
    JobRequested,
    S3RestoreNotification,
    UserTierChanged,
    event_parser,
    parse_event,
)
from gas_core.logging import REDACTED, bind_context, configure_logging, get_logger
from gas_core.settings import DEVELOPMENT_SECRET_PREFIX, GasSettings, Tier
from gas_web.settings import WebSettings


class SettingsWithSecret(GasSettings):
    api_secret: SecretStr = SecretStr(DEVELOPMENT_SECRET_PREFIX + "x")


def test_settings_come_from_gas_prefixed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAS_NAME_PREFIX", "gas-staging")
    monkeypatch.setenv("GAS_FREE_RETENTION_SECONDS", "30")
    monkeypatch.setenv("NAME_PREFIX", "ignored")
    settings = GasSettings()
    assert settings.name_prefix == "gas-staging"
    assert settings.free_retention_seconds == 30
    assert settings.names.inputs_bucket == "gas-staging-inputs"


def test_an_invalid_name_prefix_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="lowercase"):
        GasSettings(name_prefix="GAS_Prod")


def test_production_refuses_default_or_missing_secrets() -> None:
    with pytest.raises(ValidationError, match="API_SECRET is a development default"):
        SettingsWithSecret(env="production")
    with pytest.raises(ValidationError, match="API_SECRET is missing"):
        SettingsWithSecret(env="production", api_secret="")
    assert SettingsWithSecret(env="production", api_secret="s3cr3t-from-a-vault").is_production


def test_production_refuses_emulator_credentials_and_dev_login() -> None:
    with pytest.raises(ValidationError, match="pod's IAM role"):
        GasSettings(env="production", aws_access_key_id="x", aws_secret_access_key="y")
    with pytest.raises(ValidationError, match="GAS_AUTH_MODE=dev is refused"):
        WebSettings(env="production", auth_mode="dev", session_secret="a-real-secret-value",
                    globus_client_id="client", globus_client_secret="a-real-globus-secret")


def test_upload_caps_follow_the_tier() -> None:
    settings = GasSettings(free_max_upload_bytes=10, premium_max_upload_bytes=20)
    assert settings.max_upload_bytes(Tier.FREE) == 10
    assert settings.max_upload_bytes(Tier.PREMIUM) == 20


def _capture_json_logs() -> io.StringIO:
    configure_logging(service="test", log_format="json", level="INFO")
    buffer = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    return buffer


def test_secrets_never_reach_the_logs() -> None:
    buffer = _capture_json_logs()
    log = get_logger("t")
    url = ("https://gas-results.s3.amazonaws.com/k?X-Amz-Credential=AKIAEXAMPLE%2F2026"
           "&X-Amz-Signature=deadbeef&X-Amz-Expires=60")
    with bind_context(job_id="j1", request_id="r1"):
        log.info("download", url=url, session_secret="hunter2", authorization="Bearer abc")
    logging.getLogger("botocore.x").warning("stdlib line with token=%s", "abc")
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    first = lines[0]
    assert first["service"] == "test" and first["job_id"] == "j1" and first["request_id"] == "r1"
    assert first["session_secret"] == REDACTED and first["authorization"] == REDACTED
    assert "deadbeef" not in first["url"] and "AKIAEXAMPLE" not in first["url"]
    assert "X-Amz-Expires=60" in first["url"]
    assert lines[1]["logger"] == "botocore.x"  # stdlib goes through the same processors
    structlog.reset_defaults()


def _logged(emit: Any, log_format: str = "json") -> str:
    """Everything one configured process writes while `emit(log)` runs."""
    configure_logging(service="test", log_format=log_format, level="INFO")  # type: ignore[arg-type]
    buffer = io.StringIO()
    handler = logging.getLogger().handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        emit(get_logger("t"))
    finally:
        structlog.reset_defaults()
    return buffer.getvalue()


def test_a_secret_nested_in_a_dict_is_redacted() -> None:
    out = _logged(lambda log: log.info(
        "s3_call", request={"headers": {"Authorization": "Bearer nested-zq81", "Host": "s3"}}))
    assert "nested-zq81" not in out
    assert json.loads(out)["request"]["headers"] == {"Authorization": REDACTED, "Host": "s3"}


def test_a_secret_inside_a_list_is_redacted() -> None:
    out = _logged(lambda log: log.info(
        "attempts", tries=[{"token": "listed-tk42"}, "password=listed-pw77", ("cookie", 1)]))
    assert "listed-tk42" not in out and "listed-pw77" not in out
    assert json.loads(out)["tries"][0] == {"token": REDACTED}


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_secret_in_a_traceback_is_redacted(log_format: str) -> None:
    def emit(log: Any) -> None:
        try:
            raise RuntimeError("GET https://b.s3.amazonaws.com/k?X-Amz-Signature=tb-sig-5150"
                               " failed; token=tb-tok-9911")
        except RuntimeError:
            log.exception("download_failed")

    out = _logged(emit, log_format)
    assert "RuntimeError" in out  # the traceback is there ...
    assert "tb-sig-5150" not in out and "tb-tok-9911" not in out  # ... without its secrets


def test_a_stdlib_line_with_a_token_is_redacted() -> None:
    out = _logged(lambda _log: logging.getLogger("botocore.x").warning(
        "refreshing with token=%s", "stdlib-abc-321"))
    assert "stdlib-abc-321" not in out
    assert json.loads(out)["event"] == f"refreshing with token={REDACTED}"


class PresignedUrl:
    """A URL object (as httpx and yarl have): it only becomes text when rendered."""

    def __init__(self, url: str) -> None:
        self.url = url

    def __repr__(self) -> str:
        return f"URL({self.url!r})"


def test_a_presigned_url_query_in_a_message_is_redacted() -> None:
    url = ("https://gas-results.s3.amazonaws.com/k?X-Amz-Credential=AKIAMSGEXAMPLE%2F2026"
           "&X-Amz-Signature=msg-sig-7777&X-Amz-Expires=60")

    def emit(log: Any) -> None:
        log.info(f"redirecting to {url}")
        log.info("redirect", location=PresignedUrl(url))

    out = _logged(emit)
    assert "msg-sig-7777" not in out and "AKIAMSGEXAMPLE" not in out
    assert out.count("X-Amz-Expires=60") == 2
    assert all(json.loads(line) for line in out.splitlines())  # still valid JSON lines


def test_a_settings_error_at_start_up_never_prints_the_secret(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    secret = DEVELOPMENT_SECRET_PREFIX + "Zq8Wv3Xk9Jp2"  # refused in production
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAS_")}
    env.update(GAS_ENV="production", GAS_AUTH_MODE="globus", GAS_GLOBUS_CLIENT_ID="client",
               GAS_GLOBUS_CLIENT_SECRET=secret, GAS_SESSION_SECRET=secret + "-session")
    result = subprocess.run([sys.executable, "-m", "gas_web"], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=60, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    # A model-level error: pydantic's input_value would be every setting, secrets included.
    assert "GAS_GLOBUS_CLIENT_SECRET is a development default" in output
    assert "Zq8Wv3Xk9Jp2" not in output
    assert "Traceback" not in output  # one line per problem, not a stack


EVENTS: list[Any] = [
    JobRequested(user_id="u", job_id="j", user_tier=Tier.FREE, input_bucket="b", input_key="k"),
    JobCompleted(user_id="u", job_id="j", user_tier=Tier.PREMIUM,
                 completed_at="2026-01-01T00:00:00Z"),  # type: ignore[arg-type]
    UserTierChanged(user_id="u", old_tier=Tier.FREE, new_tier=Tier.PREMIUM,
                    user_tier=Tier.PREMIUM),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.type)
def test_every_event_round_trips_with_type_version_and_filter_attributes(event: Any) -> None:
    parsed = parse_event(event.model_dump_json())
    assert parsed == event
    assert parsed.version == 1
    assert event.attributes()["event_type"] == event.type
    assert event.attributes()["user_tier"] == str(event.user_tier)


def test_a_queue_parser_refuses_events_meant_for_another_queue() -> None:
    parser = event_parser(JobRequested)
    with pytest.raises(ValidationError):
        parser.validate_json(EVENTS[1].model_dump_json())


def test_s3_restore_notifications_parse_keys_and_ignore_test_events() -> None:
    body = json.dumps({"Records": [{
        "eventName": "ObjectRestore:Completed", "eventTime": "2026-11-28T00:00:00.000Z",
        "s3": {"bucket": {"name": "gas-archive"},
               "object": {"key": "results/u/j/my+file.vcf.gz"}},
    }]})
    parsed = S3RestoreNotification.parse(body)
    assert parsed.records[0].key == "results/u/j/my file.vcf.gz"
    assert parsed.records[0].bucket == "gas-archive"
    assert S3RestoreNotification.parse(json.dumps({"Event": "s3:TestEvent"})).records == []
    with pytest.raises(ValueError, match="Records"):
        S3RestoreNotification.parse(json.dumps({"hello": 1}))
