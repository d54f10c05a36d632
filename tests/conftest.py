"""Fixtures shared by every test: an AWS emulator (moto server) and per-test settings.

The emulator runs once per session on a free loopback port; each test gets its own resource
name prefix, so tests never see each other's tables, queues or buckets.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gas_cli.emulator import start_emulator
from gas_core.aws import AwsClients
from gas_core.settings import GasSettings
from tests.support import emulator_settings, free_port, require_or_skip


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    # The emulator's web server logs every request at INFO; keep test output readable.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = start_emulator(port)
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


@pytest.fixture(scope="session")
def stack_reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A reference bundle and a sample VCF for end-to-end tests (chr21 when available)."""
    from tests.services.web.web_helpers import prepare_reference

    return prepare_reference(tmp_path_factory.mktemp("reference"))


@pytest.fixture(scope="session")
def local_stack(
    stack_reference: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """One real local stack (`gas dev`'s DevStack) shared by the browser and CLI tests:
    starting one costs 20-30 s on this machine."""
    from tests.browser.local_stack import has_service, running_stack

    require_or_skip(has_service("annotator"),
                    "the annotator is not part of the local stack (gas_cli.dev.SERVICES)")
    with running_stack(tmp_path_factory.mktemp("stack"), stack_reference[0]) as local:
        yield local
