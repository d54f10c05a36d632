"""The chaos stack: `gas dev`'s local system with replicas, a supervisor and a chaos monkey.

Every service runs as its own process (`python -m gas_<name>`, with the environment
`gas_cli.dev.DevStack` gives it), the annotator and the archiver as two replicas each. A
supervisor thread restarts any replica that exits, as Kubernetes restarts a pod; the chaos
thread SIGKILLs random replicas (the web too) at moments drawn from a seeded RNG. Every kill
and restart is recorded and printed.
"""

from __future__ import annotations

import io
import json
import logging
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from moto.server import ThreadedMotoServer

from gas_cli.dev import SERVICES, DevService, DevStack
from gas_cli.emulator import start_emulator
from gas_cli.infra import Infrastructure
from gas_core.aws import AwsClients
from gas_core.settings import GasSettings
from tests.support import REPO_ROOT, free_port

# Two of each worker that does long or stateful work; one of the others (as in the chart's
# minimum). The web is one replica so its port stays fixed across restarts.
REPLICAS = {"annotator": 2, "archiver": 2}
READY_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 30


def chaos_environment(
    *, emulator_url: str, web_port: int, prefix: str, reference: Path, retention_seconds: int,
    scratch_dir: Path,
) -> dict[str, str]:
    """`gas dev`'s settings for every service, tightened so faults heal within a test.

    Kills are far denser than in production, so the timings that decide how soon a killed
    replica's work is taken over are short: visibility 30 s (the archiver's and thawer's
    minimum), an annotator lease of 10 s, email claims of 10 s, quick retries.
    """
    env = DevStack(port=web_port, reference=reference, retention_seconds=retention_seconds,
                   name_prefix=prefix, out=io.StringIO()).environment(emulator_url)
    env.update({
        "GAS_LOG_FORMAT": "json",
        "GAS_WORKER_WAIT_SECONDS": "2",
        "GAS_WORKER_VISIBILITY_SECONDS": "30",
        "GAS_WORKER_RETRY_BASE_SECONDS": "1",
        "GAS_WORKER_RETRY_MAX_SECONDS": "10",
        "GAS_WORKER_SHUTDOWN_GRACE_SECONDS": "5",
        "GAS_ANNOTATOR_LEASE_SECONDS": "10",
        # A kill is not the job's fault; only internal failures count against it, but with a
        # kill every few seconds a valid job may meet several. Ten leaves room without hiding
        # a job that fails for real (that shows as FAILED with the internal-failure reason).
        "GAS_ANNOTATOR_MAX_ATTEMPTS": "10",
        "GAS_ANNOTATOR_SCRATCH_DIR": str(scratch_dir),
        "GAS_NOTIFIER_CLAIM_SECONDS": "10",
    })
    return env


@dataclass
class Replica:
    service: DevService
    index: int
    process: subprocess.Popen[str] | None = None
    metrics_port: int = 0

    @property
    def label(self) -> str:
        """`annotator-0`, `annotator-1`, ... for replicated services; the name for the others."""
        name = self.service.name
        return f"{name}-{self.index}" if name in REPLICAS else name


@dataclass(frozen=True)
class Kill:
    at: float  # seconds since the stack started
    label: str
    pid: int


@dataclass
class ChaosStack:
    workdir: Path
    reference: Path
    retention_seconds: int
    out: IO[str] = sys.stdout
    prefix: str = field(default_factory=lambda: "chaos" + uuid.uuid4().hex[:8])
    web_port: int = field(default_factory=free_port)
    replicas: list[Replica] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)
    restarts: Counter[str] = field(default_factory=Counter)
    lines: list[tuple[str, str]] = field(default_factory=list)
    started_at: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)
    _emulator: ThreadedMotoServer | None = None
    env: dict[str, str] = field(default_factory=dict)
    settings: GasSettings | None = None

    # -- start and stop ------------------------------------------------------------------------

    def start(self) -> None:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        port = free_port()
        self._emulator = start_emulator(port)
        emulator_url = f"http://127.0.0.1:{port}"
        self.scratch_dir = self.workdir / "scratch"
        self.env = chaos_environment(
            emulator_url=emulator_url, web_port=self.web_port, prefix=self.prefix,
            reference=self.reference, retention_seconds=self.retention_seconds,
            scratch_dir=self.scratch_dir)
        self.settings = GasSettings(
            aws_endpoint_url=emulator_url, aws_access_key_id=self.env["GAS_AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["GAS_AWS_SECRET_ACCESS_KEY"], name_prefix=self.prefix,
            web_base_url=self.env["GAS_WEB_BASE_URL"],
            free_retention_seconds=self.retention_seconds,
        )
        Infrastructure(self.settings).apply()
        self.aws = AwsClients(self.settings)
        self.emulator_url = emulator_url
        for service in SERVICES:
            for index in range(REPLICAS.get(service.name, 1)):
                replica = Replica(service, index)
                self.replicas.append(replica)
                self._spawn(replica)
        threading.Thread(target=self._supervise, name="supervisor", daemon=True).start()
        if not self._wait_ready():
            raise RuntimeError("the chaos stack did not become ready:\n" + self.tail())

    def stop(self) -> None:
        self._stopping.set()
        for replica in self.replicas:
            if replica.process and replica.process.poll() is None:
                replica.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for replica in self.replicas:
            if replica.process is None:
                continue
            try:
                replica.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                replica.process.kill()
                replica.process.wait()
        if self._emulator is not None:
            self._emulator.stop()

    def _spawn(self, replica: Replica) -> None:
        replica.metrics_port = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", replica.service.module],
            env={**self.env, "GAS_METRICS_PORT": str(replica.metrics_port)},
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True,
        )
        replica.process = process
        assert process.stdout is not None
        threading.Thread(target=self._pump, args=(replica.label, process.stdout),
                         daemon=True).start()

    def _pump(self, label: str, stream: IO[str]) -> None:
        for line in stream:
            with self._lock:
                self.lines.append((label, line.rstrip("\n")))

    def _wait_ready(self) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._ready(f"{self.web_url}/readyz") and all(
                self._ready(f"http://127.0.0.1:{r.metrics_port}/readyz")
                for r in self.replicas if r.service.name != "web"
            ):
                return True
            time.sleep(0.5)
        return False

    @staticmethod
    def _ready(url: str) -> bool:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def now(self) -> float:
        return time.monotonic() - self.started_at

    def say(self, text: str) -> None:
        self.out.write(f"[chaos {self.now():6.1f}s] {text}\n")
        self.out.flush()

    # -- the supervisor: a replica that exits is started again, like a pod --------------------

    def _supervise(self) -> None:
        while not self._stopping.wait(0.2):
            for replica in self.replicas:
                process = replica.process
                if process is None or process.poll() is None or self._stopping.is_set():
                    continue
                self.restarts[replica.label] += 1
                self.say(f"restart {replica.label} (pid {process.pid} exited "
                         f"{process.returncode})")
                self._spawn(replica)

    # -- the chaos monkey ---------------------------------------------------------------------

    def kill(self, replica: Replica, why: str = "") -> Kill | None:
        process = replica.process
        if process is None or process.poll() is not None:
            return None
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            return None
        # Reaped here, so the next choice never picks the same dead process again.
        process.wait(timeout=10)
        kill = Kill(at=self.now(), label=replica.label, pid=process.pid)
        self.kills.append(kill)
        self.say(f"SIGKILL {replica.label} (pid {process.pid}){why}")
        return kill

    def kill_random(self, rng: random.Random, service: str | None = None) -> Kill | None:
        """SIGKILL one live replica (of `service`, or of any) chosen by `rng`."""
        live = [r for r in self.replicas if r.process and r.process.poll() is None
                and service in (None, r.service.name)]
        return self.kill(rng.choice(live)) if live else None

    def kill_lease_holder(self, rng: random.Random, wait: float = 3.0) -> Kill | None:
        """SIGKILL an annotator in the middle of a job: the one holding a RUNNING job's lease
        (its owner id ends with the pid). Jobs on the demo bundle take about a second, so a
        kill at a random moment would rarely find one running."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            running = self._running_leases()
            by_pid = {r.process.pid: r for r in self.replicas
                      if r.service.name == "annotator" and r.process
                      and r.process.poll() is None}
            holders = [(job_id, by_pid[pid]) for job_id, pid in running if pid in by_pid]
            if holders:
                job_id, replica = rng.choice(holders)
                return self.kill(replica, f" holding the lease of job {job_id}")
            time.sleep(0.1)
        return None

    def _running_leases(self) -> list[tuple[str, int]]:
        assert self.settings is not None
        found = []
        pages = self.aws.dynamodb.get_paginator("scan").paginate(
            TableName=self.settings.names.table, FilterExpression="#s = :running",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":running": {"S": "RUNNING"}})
        for page in pages:
            for item in page["Items"]:
                owner = item.get("lease_owner", {}).get("S", "")
                pid = owner.rpartition(":")[2]
                if pid.isdigit():
                    found.append((item["sk"]["S"].removeprefix("JOB#"), int(pid)))
        return found

    def run_chaos(self, rng: random.Random, *, kills: int, seconds: float,
                  stop: threading.Event) -> None:
        """`kills` SIGKILLs at random moments spread over `seconds` (or until `stop`): every
        fifth the web, every third an annotator mid-job when one is running, the rest any
        replica."""
        moments = sorted(rng.uniform(0, seconds) for _ in range(kills))
        begun = time.monotonic()
        for number, moment in enumerate(moments):
            if stop.wait(max(begun + moment - time.monotonic(), 0)):
                return
            if number % 5 == 4:
                self.kill_random(rng, "web")
            elif number % 3 == 1:
                self.kill_lease_holder(rng) or self.kill_random(rng)
            else:
                self.kill_random(rng)

    # -- what the services said ---------------------------------------------------------------

    def records(self, service: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        with self._lock:
            lines = list(self.lines)
        for label, text in lines:
            if service and not label.startswith(service):
                continue
            if text.startswith("{"):
                try:
                    yield label, json.loads(text)
                except ValueError:
                    continue

    def tail(self, count: int = 80) -> str:
        with self._lock:
            return "\n".join(f"{label} | {text}" for label, text in self.lines[-count:])

    def save_logs(self, path: Path) -> Path:
        """Every line every replica printed, labelled, for the post-mortem of a failed run."""
        with self._lock:
            path.write_text("".join(f"{label} | {text}\n" for label, text in self.lines))
        return path

    def scratch_leftovers(self) -> list[str]:
        if not self.scratch_dir.is_dir():
            return []
        return sorted(entry.name for entry in self.scratch_dir.iterdir())

    def cleanup(self) -> None:
        shutil.rmtree(self.scratch_dir, ignore_errors=True)
