"""The six images, built with buildah and run: each holds only its own installed package and
runs unprivileged; and the whole local stack, every service started from its own image with
the settings `gas dev` gives it, takes a real job from upload to restored results.

Slow (the first build of all six takes minutes on two cores; see docs/operations.md#images)."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from gas_cli.dev import DevStack
from gas_cli.emulator import SES_MAIL_PATH
from gas_cli.infra import Infrastructure
from gas_core.settings import GasSettings
from images.build import SERVICES, Built
from tests.images.containers import (
    Service,
    entrypoint,
    run_command,
    start_service,
    working_container,
)
from tests.services.web.web_helpers import shared_reference
from tests.support import free_port, require_or_skip

# The first test also pays for building the images (minutes when cold, on two cores).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

T = TypeVar("T")

# Run inside each image: who it runs as, which tools it has, where our code is.
INSPECT = r"""
import importlib.metadata, json, os, shutil, sysconfig
site = sysconfig.get_paths()["purelib"]
sources = []
for root, dirs, files in os.walk("/"):
    dirs[:] = [d for d in dirs if os.path.join(root, d) not in ("/proc", "/sys", "/dev", site)]
    if "/gas_" in root + "/":
        sources += [os.path.join(root, f) for f in files if f.endswith(".py")]
print(json.dumps({
    "uid": os.getuid(), "gid": os.getgid(),
    "tools": {t: shutil.which(t) for t in ("gcc", "cc", "g++", "make", "uv")},
    "sources": sources[:10],
    "src_dir": os.path.exists("/src"),
    "ours": sorted(d.metadata["Name"] for d in importlib.metadata.distributions()
                   if d.metadata["Name"].startswith("gas-")),
    "site": site,
}))
"""


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_runs_unprivileged_with_only_its_own_installed_package(
    service: str, built_images: dict[str, Built]
) -> None:
    built = built_images[service]
    print(f"\n{built}")
    assert entrypoint(built.image) == ["python", "-m", f"gas_{service}"]
    with working_container(built.image) as container:
        result = subprocess.run(run_command(container, "python", "-c", INSPECT),
                                capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert (found["uid"], found["gid"]) == (10001, 10001)
    assert found["tools"] == dict.fromkeys(found["tools"]), found["tools"]
    # Our code only as installed wheels: no source tree copied, not even the build stage's.
    assert found["sources"] == [] and not found["src_dir"], found["sources"]
    assert found["site"].startswith("/app/.venv/")
    assert found["ours"] == sorted(["gas-core", f"gas-{service}"])


# -- the local stack from the images -----------------------------------------------------------

RETENTION_SECONDS = 5
# Each step takes seconds; generous bounds that still fail with the services' output.
READY_TIMEOUT_SECONDS = 120
STEP_TIMEOUT_SECONDS = 120
IN_IMAGE_REFERENCE = "/reference"


class ImageStack:
    def __init__(self, web_url: str, emulator_url: str) -> None:
        self.web_url = web_url
        self.emulator_url = emulator_url
        self.services: dict[str, Service] = {}

    def tail(self, count: int = 40) -> str:
        return "\n".join(f"{name} | {line}" for name, service in self.services.items()
                         for line in service.lines[-count:])

    def wait_for(self, what: str, probe: Callable[[], T | None],
                 timeout: float = STEP_TIMEOUT_SECONDS) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, service in self.services.items():
                assert service.process.poll() is None, f"{name} exited:\n{self.tail()}"
            value = probe()
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {what}:\n{self.tail()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.web_url}/readyz", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def sent_emails(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.emulator_url}{SES_MAIL_PATH}", timeout=10) as r:
            return list(json.load(r)["ses"]["Message"])


@pytest.fixture
def image_stack(
    built_images: dict[str, Built], moto_endpoint: str, stack_reference: tuple[Path, Path]
) -> Iterator[ImageStack]:
    """Every service from its image, against this process's emulator, configured as `gas dev`
    configures its processes (only the endpoint, names and reference path differ)."""
    require_or_skip(shared_reference() is not None,
                    "GAS_TEST_REFERENCE (the real chr21 data) is not available")
    port = free_port()
    dev = DevStack(port=port, reference=Path(IN_IMAGE_REFERENCE), out=io.StringIO(),
                   retention_seconds=RETENTION_SECONDS,
                   name_prefix="img" + uuid.uuid4().hex[:8])
    # Only the settings: the host's PATH and the like would mean nothing inside an image.
    env = {k: v for k, v in dev.environment(moto_endpoint).items()
           if k.startswith("GAS_") or k == "PYTHONUNBUFFERED"}
    env["GAS_REFERENCE_DIR"] = IN_IMAGE_REFERENCE
    env["GAS_WORKER_RETRY_BASE_SECONDS"] = "1"
    Infrastructure(GasSettings(
        aws_endpoint_url=moto_endpoint, aws_access_key_id=env["GAS_AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["GAS_AWS_SECRET_ACCESS_KEY"],
        name_prefix=env["GAS_NAME_PREFIX"], web_base_url=env["GAS_WEB_BASE_URL"],
    )).apply()
    stack = ImageStack(f"http://127.0.0.1:{port}", moto_endpoint)
    with ExitStack() as cleanup:
        reference = cleanup.enter_context(readable_copy(stack_reference[0]))
        containers = {service: cleanup.enter_context(working_container(built.image))
                      for service, built in built_images.items()}
        # Registered last, so it runs first: services stop before their containers go.
        cleanup.callback(stop_all, stack)
        for service in SERVICES:
            image = built_images[service].image
            volumes = ((f"{reference}:{IN_IMAGE_REFERENCE}:ro",)
                       if service == "annotator" else ())
            stack.services[service] = start_service(
                service, containers[service], entrypoint(image),
                env={**env, "GAS_METRICS_PORT": str(free_port())}, volumes=volumes)
        stack.wait_for("the web app to be ready", stack.ready, READY_TIMEOUT_SECONDS)
        yield stack


@contextmanager
def readable_copy(bundle: Path) -> Iterator[Path]:
    """The bundle where the images' user (10001) can read it: pytest's own temporary folders
    are private to root, as a host path mounted into a pod need not be."""
    with tempfile.TemporaryDirectory(prefix="gas-image-reference-") as folder:
        copy = Path(folder) / "bundle"
        shutil.copytree(bundle, copy)
        for path in [Path(folder), *copy.rglob("*"), copy]:
            path.chmod(0o755 if path.is_dir() else 0o644)
        yield copy


def stop_all(stack: ImageStack) -> None:
    """SIGTERM, then SIGKILL what is still running (before its container is removed)."""
    for service in stack.services.values():
        if service.process.poll() is None:
            service.terminate()
    for name, service in stack.services.items():
        try:
            service.process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            print(f"{name} did not stop on SIGTERM:\n{stack.tail()}")
        service.kill()


def test_the_stack_from_the_images_takes_a_job_from_upload_to_restored_results(
    image_stack: ImageStack, stack_reference: tuple[Path, Path]
) -> None:
    stack, sample = image_stack, stack_reference[1]
    user = "img-" + uuid.uuid4().hex[:8]
    api = httpx.Client(base_url=stack.web_url, timeout=30,
                       headers={"Authorization": f"Bearer dev:{user}"})

    created = api.post("/api/v1/jobs", json={"file_name": sample.name})
    assert created.status_code == 201, created.text
    job_id, upload = created.json()["job_id"], created.json()["upload"]
    posted = httpx.post(upload["url"], data=upload["fields"], timeout=120,
                        files={"file": (sample.name, sample.read_bytes())})
    assert posted.status_code < 400, posted.text
    assert api.post(f"/api/v1/jobs/{job_id}/submit").status_code == 202

    def job() -> dict[str, Any]:
        response = api.get(f"/api/v1/jobs/{job_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    def finished_job() -> dict[str, Any] | None:
        current = job()
        return current if current["status"] in ("COMPLETED", "FAILED") else None

    finished = stack.wait_for("the annotation", finished_job)
    assert finished["status"] == "COMPLETED", finished["error"]
    assert finished["summary"]["variants"]["annotated"] > 0

    # A free user's results go to Glacier after the short retention...
    stack.wait_for("archived", lambda: job()["storage"] == "archived")
    assert api.get(f"/api/v1/jobs/{job_id}/results/tsv").status_code == 409
    # ...and come back when the user upgrades.
    upgraded = api.post("/api/v1/me/tier", json={"tier": "premium"})
    assert upgraded.status_code == 200, upgraded.text
    stack.wait_for("restored", lambda: job()["storage"] == "hot")

    download = api.get(f"/api/v1/jobs/{job_id}/results/tsv")
    assert download.status_code == 302, download.text
    tsv = httpx.get(download.headers["location"], timeout=60)
    assert tsv.status_code == 200 and "chrom" in tsv.text.splitlines()[0].lower(), tsv.text
    assert len(tsv.text.splitlines()) > 1
    # The variant browser's query (DuckDB on the Parquet result) in the web image.
    rows = api.get(f"/api/v1/jobs/{job_id}/variants", params={"limit": 5})
    assert rows.status_code == 200, rows.text
    assert rows.json()["items"], rows.text

    def emails() -> list[dict[str, Any]] | None:
        sent = [m for m in stack.sent_emails() if f"/jobs/{job_id}" in m["body"]]
        return sent if len(sent) >= 2 else None

    subjects = sorted(m["subject"] for m in stack.wait_for("the two emails", emails))
    assert subjects == [f"Your GAS job for {sample.name} has completed",
                        f"Your GAS results for {sample.name} are available again"]

    # SIGTERM to each service inside its image: every one drains and stops cleanly.
    for service in stack.services.values():
        service.terminate()
    for name, service in stack.services.items():
        service.process.wait(timeout=40)
        assert service.stopped_cleanly(), f"{name}:\n{stack.tail()}"
