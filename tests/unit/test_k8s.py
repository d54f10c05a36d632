"""Pod busy marking (gas_core.k8s) against a fake Kubernetes API server on 127.0.0.1.

The fake records every request; it answers like the API server does for a merge patch on a
pod (200 with the pod), or with the error a test scripts.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from gas_core.aws import AwsClients
from gas_core.k8s import (
    BUSY_COST,
    DELETION_COST_ANNOTATION,
    IDLE_COST,
    PodDeletionCostMarker,
    marker_from_settings,
)
from gas_core.resources import Queue
from gas_core.service import build_worker
from gas_core.settings import GasSettings, WorkerSettings
from gas_core.worker import MessageContext
from tests.support import emulator_settings


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeApiServer:
    url: str
    requests: list[Recorded] = field(default_factory=list)
    # Status codes to answer with, in order, before answering 200.
    failures: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def costs(self) -> list[str]:
        with self.lock:
            return [
                r.body["metadata"]["annotations"][DELETION_COST_ANNOTATION]
                for r in self.requests
            ]

    def wait_for_costs(self, expected: list[str], timeout: float = 10) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.costs() != expected:
            time.sleep(0.02)
        return self.costs()


@pytest.fixture
def api_server() -> Iterator[FakeApiServer]:
    fake = FakeApiServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_PATCH(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(length))
            with fake.lock:
                fake.requests.append(
                    Recorded("PATCH", self.path, dict(self.headers.items()), body))
                status = fake.failures.pop(0) if fake.failures else 200
            payload = json.dumps({"kind": "Pod", "metadata": body["metadata"]}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def service_account(tmp_path: Path) -> Path:
    """A mounted service-account directory, as the kubelet projects it."""
    (tmp_path / "token").write_text("token-abc\n")
    (tmp_path / "namespace").write_text("gas")
    return tmp_path


def make_marker(api: FakeApiServer, service_account: Path, **kw: Any) -> PodDeletionCostMarker:
    return PodDeletionCostMarker(
        api_url=api.url, namespace="gas", pod_name="gas-annotator-7f9c-x2",
        token_path=service_account / "token", **kw,
    )


def test_busy_then_idle_patches_own_pod_annotation_with_the_service_account_token(
    api_server: FakeApiServer, service_account: Path
) -> None:
    # Given a marker for this pod
    marker = make_marker(api_server, service_account)
    # When the worker becomes busy, then idle again
    marker(True)
    assert marker.wait_applied(10)
    marker(False)
    assert marker.wait_applied(10)
    marker.close()
    # Then the pod was patched twice: high cost, then zero
    assert api_server.costs() == [str(BUSY_COST), str(IDLE_COST)]
    first = api_server.requests[0]
    assert first.path == "/api/v1/namespaces/gas/pods/gas-annotator-7f9c-x2"
    assert first.headers["Authorization"] == "Bearer token-abc"
    assert first.headers["Content-Type"] == "application/merge-patch+json"
    # and the patch touches nothing but that one annotation
    assert first.body == {"metadata": {"annotations": {DELETION_COST_ANNOTATION: "1000"}}}


def test_token_is_reread_for_every_request_because_the_kubelet_rotates_it(
    api_server: FakeApiServer, service_account: Path
) -> None:
    marker = make_marker(api_server, service_account)
    marker(True)
    assert marker.wait_applied(10)
    (service_account / "token").write_text("token-rotated")
    marker(False)
    assert marker.wait_applied(10)
    marker.close()
    assert [r.headers["Authorization"] for r in api_server.requests] == [
        "Bearer token-abc", "Bearer token-rotated"]


def test_a_refused_patch_is_retried_until_the_state_is_applied(
    api_server: FakeApiServer, service_account: Path
) -> None:
    # Given an API server that first answers 500, then 403
    api_server.failures = [500, 403]
    marker = make_marker(api_server, service_account, retry_seconds=0.05)
    # When the worker becomes busy
    marker(True)
    # Then the marker keeps trying and finally applies it
    assert marker.wait_applied(10)
    marker.close()
    assert api_server.costs() == [str(BUSY_COST)] * 3


def test_an_unreachable_api_server_never_blocks_the_caller(service_account: Path) -> None:
    # Given an API server address where nothing listens
    marker = PodDeletionCostMarker(
        api_url="http://127.0.0.1:9", namespace="gas", pod_name="p",
        token_path=service_account / "token", retry_seconds=0.05,
    )
    started = time.monotonic()
    # When the worker flips busy and idle
    marker(True)
    marker(False)
    # Then the calls return at once, and closing gives up cleanly
    assert time.monotonic() - started < 0.5
    marker.close(timeout=5)


def test_flips_faster_than_requests_are_coalesced_to_the_last_state(
    api_server: FakeApiServer, service_account: Path
) -> None:
    marker = make_marker(api_server, service_account)
    for _ in range(50):
        marker(True)
        marker(False)
    assert marker.wait_applied(10)
    marker.close()
    costs = api_server.costs()
    assert len(costs) < 100
    assert costs == [] or costs[-1] == str(IDLE_COST)


def test_outside_kubernetes_there_is_no_marker(tmp_path: Path) -> None:
    # No downward-API settings: a laptop, `gas dev`, tests
    assert marker_from_settings(GasSettings(), service_account_dir=tmp_path) is None
    # Downward-API settings but no token mounted (automountServiceAccountToken: false)
    settings = GasSettings(pod_name="p", pod_namespace="gas")
    assert marker_from_settings(settings, service_account_dir=tmp_path) is None


def test_in_a_pod_the_marker_uses_the_settings_api_url_and_the_mounted_token(
    api_server: FakeApiServer, service_account: Path
) -> None:
    settings = GasSettings(pod_name="gas-notifier-1", pod_namespace="prod",
                           kubernetes_api_url=api_server.url)
    marker = marker_from_settings(settings, service_account_dir=service_account)
    assert marker is not None
    marker(True)
    assert marker.wait_applied(10)
    marker.close()
    assert api_server.requests[0].path == "/api/v1/namespaces/prod/pods/gas-notifier-1"


class Ping(BaseModel):
    job_id: str


def test_a_worker_marks_its_pod_busy_exactly_while_it_handles_a_message(
    api_server: FakeApiServer, service_account: Path, moto_endpoint: str
) -> None:
    # Given a worker built the way services build it, with its marker pointed at the fake
    settings = emulator_settings(
        moto_endpoint, cls=WorkerSettings, worker_wait_seconds=1,
        pod_name="gas-annotator-0", pod_namespace="gas", kubernetes_api_url=api_server.url,
    )
    aws = AwsClients(settings)
    for name in (settings.names.queue(Queue.ANNOTATOR), settings.names.dlq(Queue.ANNOTATOR)):
        aws.sqs.create_queue(QueueName=name)
    release = threading.Event()
    handled = threading.Event()

    def handle(message: Ping, context: MessageContext) -> None:
        handled.set()
        release.wait(10)

    marker = marker_from_settings(settings, service_account_dir=service_account)
    assert marker is not None
    worker = build_worker(
        service="annotator", settings=settings, aws=aws, queue=Queue.ANNOTATOR,
        parse=Ping.model_validate_json, handle=handle, registry=CollectorRegistry(),
        on_busy_change=marker,
    )
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        # When a message arrives and its handler is running
        aws.sqs.send_message(QueueUrl=aws.queue_url(Queue.ANNOTATOR),
                             MessageBody=json.dumps({"job_id": uuid.uuid4().hex}))
        assert handled.wait(15)
        # Then the pod is marked busy
        assert api_server.wait_for_costs([str(BUSY_COST)]) == [str(BUSY_COST)]
        # And when the handler finishes, idle again
        release.set()
        expected = [str(BUSY_COST), str(IDLE_COST)]
        assert api_server.wait_for_costs(expected) == expected
    finally:
        release.set()
        worker.request_stop()
        worker.request_stop()
        thread.join(30)
        marker.close()
