"""`gas dev` (what `make run` starts) as a user runs it: a subprocess on a free port."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.support import REPO_ROOT, free_port

pytestmark = pytest.mark.e2e

STARTUP_LIMIT_SECONDS = 60  # the bound for `make run` on this machine


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


@pytest.fixture
def dev_stack() -> Iterator[DevProcess]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gas_cli.main", "dev", "--port", str(port)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    dev = DevProcess(process, port)
    threading.Thread(target=dev.pump, daemon=True).start()
    yield dev
    if process.poll() is None:
        process.kill()
        process.wait()


def test_gas_dev_comes_up_is_ready_and_stops_cleanly(dev_stack: DevProcess) -> None:
    started = time.monotonic()
    assert dev_stack.up.wait(STARTUP_LIMIT_SECONDS), "\n".join(dev_stack.lines[-30:])
    startup_seconds = time.monotonic() - started
    assert startup_seconds < STARTUP_LIMIT_SECONDS

    status, body = dev_stack.get("/readyz")
    assert status == 200
    assert json.loads(body) == {"ready": True, "checks": {"table": "ok", "queue": "ok"}}
    assert dev_stack.get("/healthz")[0] == 200
    status, metrics = dev_stack.get("/metrics")
    assert status == 200 and b"# TYPE" in metrics

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
