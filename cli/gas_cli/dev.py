"""`gas dev`: the whole system on one machine, offline.

An embedded AWS emulator (moto server) on 127.0.0.1, `infra apply` against it, then each
service as its own process, exactly as in a pod: same module, same settings, only the
endpoint and names differ. Their output is merged into one stream with the service name on
every line. Ctrl-C (or SIGTERM) stops the services first, gracefully, then the emulator.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from moto.server import ThreadedMotoServer

from gas_cli.emulator import start_emulator
from gas_cli.infra import Infrastructure
from gas_core.settings import GasSettings


@dataclass(frozen=True)
class DevService:
    name: str
    module: str


# Each service runs as `python -m <module>`, like its container's entry point.
SERVICES: tuple[DevService, ...] = (
    DevService("web", "gas_web"),
    DevService("annotator", "gas_annotator"),
    DevService("archiver", "gas_archiver"),
    DevService("restorer", "gas_restorer"),
    DevService("thawer", "gas_thawer"),
    DevService("notifier", "gas_notifier"),
)

# Free users' results go to Glacier after this many seconds locally, so the whole lifecycle
# can be watched in a minute.
DEV_RETENTION_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30
# Signals closer together than this count as one Ctrl-C (see run_dev).
SAME_CTRL_C_SECONDS = 1.5
# Variables the test suite reads (GAS_TEST_REFERENCE): not settings, never passed on.
TEST_ONLY_PREFIX = "GAS_TEST_"
# Settings whose values are never printed.
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSWORD|KEY", re.IGNORECASE)
_COLOURS = ("36", "33", "35", "32", "34", "31", "96")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _is_synthetic(reference: Path) -> bool:
    """The bundle's manifest says it is the synthetic demo (read, not verified: cheap)."""
    from gas_annotator.reference import BundleError, load_bundle

    try:
        return load_bundle(reference, verify=False).manifest.synthetic
    except BundleError:
        return False


class DevStack:
    def __init__(
        self,
        *,
        port: int = 8000,
        reference: Path | None = None,
        state_dir: Path = Path(".gas"),
        retention_seconds: int = DEV_RETENTION_SECONDS,
        out: IO[str] = sys.stdout,
        name_prefix: str = "gas",
    ) -> None:
        self.port = port
        self.reference = reference
        self.state_dir = state_dir
        self.retention_seconds = retention_seconds
        # Tests that run several stacks in one process need distinct names: moto's state is
        # per process, shared by every emulator server in it.
        self.name_prefix = name_prefix
        self.out = out
        self._out_lock = threading.Lock()
        self._processes: dict[str, subprocess.Popen[bytes]] = {}
        self._emulator: ThreadedMotoServer | None = None
        self._stopping = threading.Event()
        self._colour = out.isatty()
        self.emulator_url: str | None = None

    # -- output --------------------------------------------------------------------------------

    def say(self, service: str, line: str) -> None:
        width = max(len(s.name) for s in SERVICES) + 1
        label = f"{service:<{width}}|"
        if self._colour:
            names = ["gas", *[s.name for s in SERVICES]]
            colour = _COLOURS[names.index(service) % len(_COLOURS)] if service in names else "0"
            label = f"\033[{colour}m{label}\033[0m"
        with self._out_lock:
            self.out.write(f"{label} {line}\n")
            self.out.flush()

    def _pump(self, service: str, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            self.say(service, raw.decode(errors="replace").rstrip("\n"))

    # -- lifecycle -----------------------------------------------------------------------------

    def defaults(self, emulator_url: str) -> dict[str, str]:
        """The local stack's settings before the caller's environment is applied."""
        env = {
            "GAS_ENV": "development",
            "GAS_AWS_REGION": "us-east-1",
            "GAS_AUTH_MODE": "dev",
            "GAS_WEB_HOST": "127.0.0.1",
            "GAS_FREE_RETENTION_SECONDS": str(self.retention_seconds),
            "GAS_LOG_FORMAT": "console" if self._colour else "json",
            # Local queues are quiet; shorter polls make Ctrl-C snappier.
            "GAS_WORKER_WAIT_SECONDS": "5",
            "GAS_WORKER_SHUTDOWN_GRACE_SECONDS": "10",
        }
        return env | self._stack_owned(emulator_url)

    def _stack_owned(self, emulator_url: str) -> dict[str, str]:
        """Settings only the stack can know (where its emulator, names and ports are): the
        caller's values for these are ignored."""
        env = {
            "GAS_AWS_ENDPOINT_URL": emulator_url,
            "GAS_AWS_ACCESS_KEY_ID": "local-emulator",
            "GAS_AWS_SECRET_ACCESS_KEY": "local-emulator",
            "GAS_NAME_PREFIX": self.name_prefix,
            "GAS_WEB_PORT": str(self.port),
            "GAS_WEB_BASE_URL": f"http://127.0.0.1:{self.port}",
        }
        if self.reference is not None:
            env["GAS_REFERENCE_DIR"] = str(self.reference.resolve())
            # What the bundle is, not what the caller says: the web labels pages SYNTHETIC.
            env["GAS_REFERENCE_SYNTHETIC"] = "true" if _is_synthetic(self.reference) else "false"
        return env

    def environment(
        self, emulator_url: str, caller: Mapping[str, str] | None = None
    ) -> dict[str, str]:
        """Settings every local service gets (the same names a Helm ConfigMap sets): the dev
        defaults, overridden by the caller's own `GAS_*` variables (`caller`, by default this
        process's environment), except the stack-owned ones. Each service also gets its own
        GAS_METRICS_PORT (see start)."""
        caller = os.environ if caller is None else caller
        env = {k: v for k, v in caller.items() if not k.startswith(("GAS_", "AWS_"))}
        env.update(self.defaults(emulator_url))
        env.update(self.caller_settings(emulator_url, caller)[0])
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def caller_settings(
        self, emulator_url: str, caller: Mapping[str, str]
    ) -> tuple[dict[str, str], list[str]]:
        """The caller's `GAS_*` values that change a dev default, and the names of those
        ignored because the stack owns them."""
        defaults = self.defaults(emulator_url)
        owned = set(self._stack_owned(emulator_url)) | {"GAS_METRICS_PORT"}
        applied: dict[str, str] = {}
        ignored: list[str] = []
        for key, value in sorted(caller.items()):
            # The caller's GAS_REFERENCE_DIR is used when no --reference is given (see
            # ensure_reference), so it is already in the defaults.
            if (not key.startswith("GAS_") or key.startswith(TEST_ONLY_PREFIX)
                    or key == "GAS_REFERENCE_DIR"):
                continue
            if key in owned:
                if value != defaults.get(key):
                    ignored.append(key)
            elif value != defaults.get(key):
                applied[key] = value
        return applied, ignored

    def report_settings(self, emulator_url: str, caller: Mapping[str, str]) -> None:
        applied, ignored = self.caller_settings(emulator_url, caller)
        for key, value in applied.items():
            shown = "(hidden)" if _SECRET_NAME.search(key) else value
            self.say("gas", f"setting from your environment: {key}={shown}")
        if ignored:
            self.say("gas", "ignored (the local stack sets these itself): " + ", ".join(ignored))

    def ensure_reference(self) -> Path:
        """The bundle the annotator uses: the one given, or the synthetic demo (built once)."""
        from gas_annotator.reference import BundleError, build_demo_bundle, load_bundle

        if self.reference is None and os.environ.get("GAS_REFERENCE_DIR"):
            self.reference = Path(os.environ["GAS_REFERENCE_DIR"])
        if self.reference is not None:
            return self.reference
        demo = self.state_dir / "reference-demo"
        try:
            load_bundle(demo)
        except BundleError:
            self.say("gas", f"building the synthetic demo reference bundle in {demo} "
                            "(SYNTHETIC: use --reference DIR for real annotations)")
            build_demo_bundle(demo)
        return demo

    def start(self) -> None:
        self.reference = self.ensure_reference()
        # The emulator's web server logs every request; the services' own logs say more.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        emulator_port = free_port()
        self._emulator = start_emulator(emulator_port)
        emulator_url = f"http://127.0.0.1:{emulator_port}"
        self.emulator_url = emulator_url
        self.say("gas", f"AWS emulator (moto) on {emulator_url}")
        self.report_settings(emulator_url, os.environ)
        env = self.environment(emulator_url)
        # infra apply sees the same settings as the services (region, email sender, ...).
        settings = GasSettings(**{  # type: ignore[arg-type]
            key.removeprefix("GAS_").lower(): value for key, value in env.items()
            if key.startswith("GAS_")
        })
        changes = Infrastructure(settings).apply()
        self.say("gas", f"infra apply: {len(changes)} changes (table, buckets, topics, queues)")
        for service in SERVICES:
            service_env = dict(env, GAS_METRICS_PORT=str(free_port()))
            process = subprocess.Popen(
                [sys.executable, "-m", service.module],
                env=service_env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                # Own process group: the terminal's Ctrl-C reaches only us, and we stop the
                # services in order.
                start_new_session=True,
            )
            self._processes[service.name] = process
            assert process.stdout is not None
            threading.Thread(target=self._pump, args=(service.name, process.stdout),
                             daemon=True).start()
            self.say("gas", f"started {service.name} (pid {process.pid}, metrics on "
                            f":{service_env['GAS_METRICS_PORT']})")

    def wait_until_ready(self, timeout: float = 60) -> bool:
        url = f"http://127.0.0.1:{self.port}/readyz"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self._stopping.is_set():
            if self.failed_service():
                return False
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.25)
        return False

    def failed_service(self) -> str | None:
        for name, process in self._processes.items():
            if process.poll() is not None:
                return name
        return None

    def kill_services(self) -> None:
        for process in self._processes.values():
            if process.poll() is None:
                process.kill()

    def stop(self) -> int:
        """Stop services (SIGTERM, then SIGKILL after the timeout), then the emulator."""
        self._stopping.set()
        for process in self._processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        worst = 0
        for name, process in self._processes.items():
            try:
                code = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.say("gas", f"{name} did not stop in {STOP_TIMEOUT_SECONDS}s: killing it")
                process.kill()
                code = process.wait()
            # -SIGTERM is a clean exit for a service that had no handler installed yet.
            if code not in (0, -signal.SIGTERM):
                worst = worst or 1
                self.say("gas", f"{name} exited with {code}")
        if self._emulator is not None:
            self._emulator.stop()
        self.say("gas", "stopped")
        return worst


def run_dev(*, port: int, reference: Path | None) -> int:
    stack = DevStack(port=port, reference=reference)
    stop_requested = threading.Event()
    first_signal_at: list[float] = []

    def on_signal(signum: int, _frame: object) -> None:
        now = time.monotonic()
        if not first_signal_at:
            first_signal_at.append(now)
        elif now - first_signal_at[0] > SAME_CTRL_C_SECONDS:
            # A second Ctrl-C: stop waiting for graceful shutdown.
            stack.kill_services()
        # Signals within a moment of the first are the same Ctrl-C arriving twice (the
        # terminal signals make, uv and us; uv also forwards it): not a request to hurry.
        stop_requested.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    started = time.monotonic()
    try:
        stack.start()
        if stack.wait_until_ready():
            stack.say("gas", f"GAS is up in {time.monotonic() - started:.1f}s: "
                             f"http://127.0.0.1:{port}  (Ctrl-C stops everything)")
        elif not stop_requested.is_set():
            stack.say("gas", f"not ready: {stack.failed_service() or 'web'} did not come up")
            stop_requested.set()
            stack.stop()
            return 1
        while not stop_requested.wait(0.5):
            failed = stack.failed_service()
            if failed:
                stack.say("gas", f"{failed} exited unexpectedly; stopping everything")
                stack.stop()
                return 1
    except Exception as error:
        stack.say("gas", f"failed to start: {error}")
        stack.stop()
        return 1
    stack.say("gas", "stopping")
    return stack.stop()
