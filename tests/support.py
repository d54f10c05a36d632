"""Helpers shared by tests (fixtures live in conftest.py)."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from gas_core.settings import GasSettings

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




class FakeClock:
    """A clock tests move by hand (`clock.now += 61`), for leases and timestamps."""

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
