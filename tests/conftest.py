"""Fixtures shared by every test: an AWS emulator (moto server) and per-test settings.

The emulator runs once per session on a free loopback port; each test gets its own resource
name prefix, so tests never see each other's tables, queues or buckets.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from moto.server import ThreadedMotoServer

from gas_core.aws import AwsClients
from gas_core.settings import GasSettings
from tests.support import emulator_settings, free_port


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    # The emulator's web server logs every request at INFO; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


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
