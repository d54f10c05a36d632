"""The real local stack (`gas_cli.dev.DevStack`: moto + every service as its own process) for
browser and CLI end-to-end tests, on free ports, with its output kept for failure messages."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from gas_cli.dev import SERVICES, DevStack
from gas_core.aws import AwsClients
from gas_core.jobs import JobRepository
from gas_core.settings import GasSettings
from tests.support import emulator_settings, free_port

READY_TIMEOUT_SECONDS = 120
# Long enough that nothing is archived while a test looks at its results.
RETENTION_SECONDS = 3600


class _Lines:
    """A text stream for DevStack's merged output that keeps the lines."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self.lines.extend(line for line in text.splitlines() if line)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def tail(self, count: int = 60) -> str:
        with self._lock:
            return "\n".join(self.lines[-count:])


@dataclass
class LocalStack:
    web_url: str
    settings: GasSettings
    output: _Lines
    aws: AwsClients = field(init=False)
    repository: JobRepository = field(init=False)

    def __post_init__(self) -> None:
        self.aws = AwsClients(self.settings)
        self.repository = JobRepository(self.aws.dynamodb, self.settings.names.table)


def has_service(name: str) -> bool:
    return any(service.name == name for service in SERVICES)


@contextmanager
def running_stack(state_dir: Path, reference: Path) -> Iterator[LocalStack]:
    output = _Lines()
    port = free_port()
    # Its own name prefix: moto's state is shared by every emulator in this test process.
    prefix = "e2e" + uuid.uuid4().hex[:8]
    stack = DevStack(port=port, reference=reference, state_dir=state_dir,
                     retention_seconds=RETENTION_SECONDS, out=output, name_prefix=prefix)  # type: ignore[arg-type]
    try:
        stack.start()
        if not stack.wait_until_ready(READY_TIMEOUT_SECONDS):
            raise RuntimeError(f"the local stack did not become ready:\n{output.tail()}")
        assert stack.emulator_url is not None
        settings: GasSettings = emulator_settings(
            stack.emulator_url, name_prefix=prefix, aws_access_key_id="local-emulator",
            aws_secret_access_key="local-emulator", web_base_url=f"http://127.0.0.1:{port}")
        yield LocalStack(web_url=f"http://127.0.0.1:{port}", settings=settings, output=output)
    finally:
        stack.stop()
