"""`gas dev` (what `make run` starts) as a user runs it: a subprocess on a free port."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest

from gas_cli.client import GasClient
from tests.support import REPO_ROOT, free_port

pytestmark = pytest.mark.e2e

STARTUP_LIMIT_SECONDS = 60  # the bound for `make run` on this machine
# Well short of the 60 s dev default retention: archiving by then proves the setting applied.
ARCHIVE_LIMIT_SECONDS = 40


@dataclass
class DevProcess:
    process: subprocess.Popen[str]
    port: int
    lines: list[str] = field(default_factory=list)
    up: threading.Event = field(default_factory=threading.Event)

    def pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if "GAS is up" in line:
                self.up.set()

    def get(self, path: str) -> tuple[int, bytes]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def start_dev(*args: str, env: dict[str, str] | None = None) -> DevProcess:
    """`gas dev --port PORT ARGS` as a user starts it, with extra variables in its environment."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gas_cli.main", "dev", "--port", str(port), *args],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, **(env or {})},
    )
    dev = DevProcess(process, port)
    threading.Thread(target=dev.pump, daemon=True).start()
    return dev


def stop_dev(dev: DevProcess) -> None:
    if dev.process.poll() is None:
        dev.process.send_signal(signal.SIGINT)
        try:
            dev.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            dev.process.kill()
            dev.process.wait()


@pytest.fixture
def dev_stack() -> Iterator[DevProcess]:
    dev = start_dev()
    yield dev
    if dev.process.poll() is None:
        dev.process.kill()
        dev.process.wait()


def test_gas_dev_comes_up_is_ready_and_stops_cleanly(dev_stack: DevProcess) -> None:
    started = time.monotonic()
    assert dev_stack.up.wait(STARTUP_LIMIT_SECONDS), "\n".join(dev_stack.lines[-30:])
    startup_seconds = time.monotonic() - started
    assert startup_seconds < STARTUP_LIMIT_SECONDS

    status, body = dev_stack.get("/readyz")
    assert status == 200
    assert json.loads(body) == {"ready": True, "checks": {"table": "ok", "queue": "ok"}}
    assert dev_stack.get("/healthz")[0] == 200
    # Metrics are on the web's own metrics port, never on its public one.
    assert dev_stack.get("/metrics")[0] == 404
    ports = dict(re.findall(r"started (\w+) \(pid \d+, metrics on :(\d+)\)",
                            "\n".join(dev_stack.lines)))
    with urllib.request.urlopen(f"http://127.0.0.1:{ports['web']}/metrics", timeout=5) as r:
        assert b"gas_http_requests_total" in r.read()

    # Ctrl-C in a terminal signals make, uv and gas at once, and uv forwards it too: the
    # same keypress can arrive twice, and must still mean a graceful stop.
    dev_stack.process.send_signal(signal.SIGINT)
    dev_stack.process.send_signal(signal.SIGINT)
    assert dev_stack.process.wait(timeout=40) == 0
    time.sleep(0.2)
    output = "\n".join(dev_stack.lines)
    assert re.search(r"^gas +\| stopped$", output, re.MULTILINE), output[-2000:]
    assert "exited with" not in output, output[-2000:]  # every service stopped cleanly
    # Every line in the merged stream names the service it came from.
    assert all("|" in line for line in dev_stack.lines if line.strip()), output
    assert any(line.startswith("web") for line in dev_stack.lines)
    # The web port is free again: nothing was left running.
    with pytest.raises(OSError):
        urllib.request.urlopen(f"http://127.0.0.1:{dev_stack.port}/healthz", timeout=2)


def test_callers_retention_setting_makes_gas_dev_archive_after_five_seconds(
    stack_reference: tuple[Path, Path], tmp_path: Path,
) -> None:
    """`GAS_FREE_RETENTION_SECONDS=5 make run`: a free user's results go to the archive ~5 s
    after the job completes, not after the 60 s dev default."""
    bundle, sample = stack_reference
    dev = start_dev("--reference", str(bundle), env={"GAS_FREE_RETENTION_SECONDS": "5"})
    try:
        assert dev.up.wait(STARTUP_LIMIT_SECONDS), "\n".join(dev.lines[-30:])
        assert any("setting from your environment: GAS_FREE_RETENTION_SECONDS=5" in line
                   for line in dev.lines), "\n".join(dev.lines[-30:])
        config = tmp_path / "config"
        api = f"http://127.0.0.1:{dev.port}"
        for command in (["login", "--dev-user", "ada", "--api-url", api],
                        ["submit", str(sample), "--wait"]):
            result = subprocess.run(
                [sys.executable, "-m", "gas_cli.main", *command, "--config-dir", str(config)],
                cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False)
            assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
        match = re.search(r"Submitted job (\w+)", result.stdout)
        assert match, result.stdout
        client = GasClient(api, "dev:ada")
        deadline = time.monotonic() + ARCHIVE_LIMIT_SECONDS
        job = client.json("GET", f"/api/v1/jobs/{match.group(1)}")
        while job["storage"] != "archived" and time.monotonic() < deadline:
            time.sleep(0.5)
            job = client.json("GET", f"/api/v1/jobs/{match.group(1)}")
        assert job["storage"] == "archived", "\n".join(dev.lines[-40:])
        # Seen archived this long after completion (same clock): the archiver may act up to
        # its 1 s slack early; the 60 s default would have timed out above.
        waited = time.time() - datetime.fromisoformat(job["completed_at"]).timestamp()
        assert 4 <= waited < ARCHIVE_LIMIT_SECONDS, waited
    finally:
        stop_dev(dev)
