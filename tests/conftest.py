"""Fixtures shared by every test: an AWS emulator (moto server) and per-test settings.

The emulator runs once per session on a free loopback port; each test gets its own resource
name prefix, so tests never see each other's tables, queues or buckets.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from gas_core.aws import AwsClients
from gas_core.settings import GasSettings
from moto.server import ThreadedMotoServer

REPO_ROOT = Path(__file__).resolve().parents[1]
IN_CI = os.environ.get("CI", "").lower() == "true"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def require_or_skip(condition: bool, message: str) -> None:
    """Skip a test whose outside requirement is missing; under CI that is a failure."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"{message} (CI=true: every test must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    # The emulator's web server logs every request at INFO; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def emulator_settings(endpoint: str, cls: type[GasSettings] = GasSettings, **overrides: object):  # type: ignore[no-untyped-def]
    values: dict[str, object] = {
        "aws_endpoint_url": endpoint,
        "aws_region": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        "name_prefix": "t" + uuid.uuid4().hex[:10],
        "log_format": "console",
    }
    values.update(overrides)
    return cls(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def provisioned(moto_endpoint: str) -> GasSettings:
    """Every resource of the design, created once per session under one prefix.

    Tests that share it isolate themselves by user id (`user_id`) or by their own queues;
    tests of provisioning itself use `fresh_settings` with a prefix of their own.
    """
    from gas_cli.infra import Infrastructure

    settings: GasSettings = emulator_settings(moto_endpoint)
    Infrastructure(settings).apply()
    return settings


@pytest.fixture
def settings(provisioned: GasSettings) -> GasSettings:
    return provisioned


@pytest.fixture
def fresh_settings(moto_endpoint: str) -> GasSettings:
    """Settings with a prefix nothing has been created under yet."""
    return emulator_settings(moto_endpoint)  # type: ignore[no-any-return]


@pytest.fixture
def aws(settings: GasSettings) -> AwsClients:
    return AwsClients(settings)


@pytest.fixture
def user_id() -> str:
    return "user-" + uuid.uuid4().hex[:12]
