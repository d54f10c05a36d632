"""`gas dev`'s per-service settings: the caller's `GAS_*` variables configure the local stack."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from gas_cli.dev import DEV_RETENTION_SECONDS, DevStack

EMULATOR = "http://127.0.0.1:5999"


def stack(out: io.StringIO | None = None) -> DevStack:
    return DevStack(port=8123, reference=Path("/ref"), name_prefix="devtest",
                    out=out or io.StringIO())


def test_the_callers_gas_settings_override_the_dev_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GAS_FREE_RETENTION_SECONDS", "5")
    monkeypatch.setenv("GAS_FREE_MAX_UPLOAD_BYTES", "1234")
    monkeypatch.setenv("GAS_WORKER_WAIT_SECONDS", "1")
    env = stack().environment(EMULATOR)
    assert env["GAS_FREE_RETENTION_SECONDS"] == "5"
    assert env["GAS_FREE_MAX_UPLOAD_BYTES"] == "1234"
    assert env["GAS_WORKER_WAIT_SECONDS"] == "1"


def test_without_caller_settings_the_dev_defaults_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GAS_FREE_RETENTION_SECONDS", raising=False)
    env = stack().environment(EMULATOR)
    assert env["GAS_FREE_RETENTION_SECONDS"] == str(DEV_RETENTION_SECONDS)
    assert env["GAS_AUTH_MODE"] == "dev"


def test_the_stack_keeps_its_emulator_names_and_ports_whatever_the_caller_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {
        "GAS_AWS_ENDPOINT_URL": "https://dynamodb.eu-west-1.amazonaws.com",
        "GAS_AWS_ACCESS_KEY_ID": "AKIAREAL",
        "GAS_AWS_SECRET_ACCESS_KEY": "real-secret",
        "GAS_NAME_PREFIX": "prod",
        "GAS_WEB_PORT": "9999",
        "GAS_METRICS_PORT": "9100",
        "AWS_PROFILE": "production",
    }.items():
        monkeypatch.setenv(key, value)
    env = stack().environment(EMULATOR)
    assert env["GAS_AWS_ENDPOINT_URL"] == EMULATOR
    assert env["GAS_AWS_ACCESS_KEY_ID"] == env["GAS_AWS_SECRET_ACCESS_KEY"] == "local-emulator"
    assert env["GAS_NAME_PREFIX"] == "devtest"
    assert env["GAS_WEB_PORT"] == "8123"
    assert env["GAS_WEB_BASE_URL"] == "http://127.0.0.1:8123"
    assert "GAS_METRICS_PORT" not in env  # each service gets its own
    assert "AWS_PROFILE" not in env


def test_the_environment_function_takes_an_explicit_caller_environment() -> None:
    env = stack().environment(EMULATOR, {"GAS_LOG_LEVEL": "DEBUG", "PATH": "/bin",
                                         "GAS_TEST_REFERENCE": "../x"})
    assert env["GAS_LOG_LEVEL"] == "DEBUG"
    assert env["PATH"] == "/bin"
    assert "GAS_TEST_REFERENCE" not in env  # the test suite's variable, not a setting


def test_gas_dev_prints_the_settings_it_took_from_the_caller_but_never_secrets() -> None:
    out = io.StringIO()
    stack(out).report_settings(EMULATOR, {
        "GAS_FREE_RETENTION_SECONDS": "5",
        "GAS_WORKER_WAIT_SECONDS": "5",  # the dev default already: nothing to say
        "GAS_GLOBUS_CLIENT_SECRET": "s3cr3t-value",
        "GAS_NAME_PREFIX": "prod",
    })
    printed = out.getvalue()
    assert "GAS_FREE_RETENTION_SECONDS=5" in printed
    assert "GAS_WORKER_WAIT_SECONDS" not in printed
    assert "GAS_GLOBUS_CLIENT_SECRET=(hidden)" in printed
    assert "s3cr3t-value" not in printed
    assert "ignored (the local stack sets these itself): GAS_NAME_PREFIX" in printed
