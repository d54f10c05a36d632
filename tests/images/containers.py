"""Running the service images with buildah (no Docker engine here): a working container per
image, commands run in it with chroot isolation and the host's network (so it reaches the
emulator on 127.0.0.1), and long-running services that can be stopped with SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from images.build import BUILDAH


def buildah(*args: str) -> str:
    result = subprocess.run([*BUILDAH, *args], check=True, capture_output=True, text=True,
                            timeout=300)
    return result.stdout.strip()


@contextmanager
def working_container(image: str) -> Iterator[str]:
    name = buildah("from", image)
    try:
        yield name
    finally:
        buildah("rm", name)


def entrypoint(image: str) -> list[str]:
    config = json.loads(buildah("inspect", "--type", "image", image))["OCIv1"]["config"]
    return list(config["Entrypoint"])


def run_command(container: str, *command: str, env: dict[str, str] | None = None,
                volumes: tuple[str, ...] = ()) -> list[str]:
    """`buildah run` argv; the image's own user, working directory and PATH apply."""
    options = ["--isolation", "chroot"]
    for key, value in (env or {}).items():
        options += ["--env", f"{key}={value}"]
    for volume in volumes:
        options += ["--volume", volume]
    return [*BUILDAH, "run", *options, container, "--", *command]


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        children = (task / "children").read_text().split() if (task / "children").exists() else []
        found += [int(child) for child in children]
    return found


@dataclass
class Service:
    """One service running from its image; its output lines kept with its name."""

    name: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def pump(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))

    def service_pid(self) -> int | None:
        """The service's own process: the first under buildah's helpers (buildah does not
        forward signals; a SIGTERM to it kills the container's process instead)."""
        pending = _children(self.process.pid)
        while pending:
            pid = pending.pop(0)
            try:
                argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
            except OSError:
                continue
            if not Path(argv0.decode()).name.startswith("buildah"):
                return pid
            pending += _children(pid)
        return None

    def terminate(self) -> None:
        pid = self.service_pid()
        if pid is not None:
            os.kill(pid, signal.SIGTERM)

    def stopped_cleanly(self) -> bool:
        """Exit 0, or death by the SIGTERM it was sent, as uvicorn re-raises it after its
        graceful shutdown (`gas dev` counts -SIGTERM as clean too). buildah reports the
        latter as status 1 with this line."""
        if self.process.returncode == 0:
            return True
        return self.process.returncode == 1 and "subprocess exited on terminated" in self.lines

    def kill(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_service(name: str, container: str, command: list[str], *, env: dict[str, str],
                  volumes: tuple[str, ...] = ()) -> Service:
    process = subprocess.Popen(run_command(container, *command, env=env, volumes=volumes),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    service = Service(name, process)
    threading.Thread(target=service.pump, daemon=True).start()
    return service
