"""The result lifecycle in the local stack: archiver, restorer, thawer and notifier run as real
processes, the way `gas dev` runs them (same modules, same environment), against their own
moto server with a 3-second retention.

A free user's job completes → archived (hot copy gone, archive copy in GLACIER) → the user
upgrades → restoring → hot, downloadable and byte-identical → both emails were sent.
The job is created directly (repository + S3 objects + `job.completed`), as the annotator
would leave it.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from gas_archiver.handler import DUE_SLACK_SECONDS
from gas_cli.dev import DevStack
from gas_cli.emulator import SES_MAIL_PATH, start_emulator
from gas_cli.infra import Infrastructure
from gas_core.aws import AwsClients
from gas_core.events import JobCompleted, publish
from gas_core.jobs import Job, JobRepository, StorageState, new_job_id, results_prefix
from gas_core.resources import Topic
from gas_core.settings import GasSettings, Tier
from gas_core.tiers import change_tier
from tests.support import REPO_ROOT, free_port

pytestmark = pytest.mark.e2e

SERVICES = ("archiver", "restorer", "thawer", "notifier")
RETENTION_SECONDS = 3
STEP_TIMEOUT_SECONDS = 45
RESULT_FILES = {
    "vcf": "sample.annot.vcf.gz",
    "vcf_index": "sample.annot.vcf.gz.tbi",
    "tsv": "sample.annot.tsv",
    "parquet": "sample.annot.parquet",
    "summary": "sample.summary.json",
    "log": "sample.log",
}
ARCHIVED_KINDS = {"vcf", "vcf_index", "tsv", "parquet"}
T = TypeVar("T")


@dataclass
class LocalStack:
    endpoint: str
    settings: GasSettings
    aws: AwsClients
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)
    metrics_ports: dict[str, int] = field(default_factory=dict)
    lines: list[str] = field(default_factory=list)

    def pump(self, name: str, stream: io.TextIOBase) -> None:
        for line in stream:
            self.lines.append(f"{name} | {line.rstrip()}")

    def log_records(self, service: str) -> list[dict[str, Any]]:
        records = []
        for line in list(self.lines):
            name, _, text = line.partition(" | ")
            if name == service and text.startswith("{"):
                records.append(json.loads(text))
        return records

    def sent_emails(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"{self.endpoint}{SES_MAIL_PATH}", timeout=10) as r:
            return list(json.load(r)["ses"]["Message"])

    def metrics(self, service: str) -> str:
        url = f"http://127.0.0.1:{self.metrics_ports[service]}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def tail(self) -> str:
        return "\n".join(self.lines[-60:])


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    # The emulator's web server logs every request at INFO.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    port = free_port()
    server = start_emulator(port)  # the emulator `gas dev` runs, with its defect workarounds
    endpoint = f"http://127.0.0.1:{port}"
    # Exactly the environment `gas dev` gives its services, with a short retention.
    # Its own name prefix: moto's state is shared by every emulator in this test process
    # (another test's stack may still be running its services on the default names).
    env = DevStack(retention_seconds=RETENTION_SECONDS, out=io.StringIO(),
                   name_prefix="life" + uuid.uuid4().hex[:8]).environment(endpoint)
    env["GAS_LOG_FORMAT"] = "json"
    env["GAS_WORKER_RETRY_BASE_SECONDS"] = "1"
    settings = GasSettings(
        aws_endpoint_url=endpoint, aws_access_key_id=env["GAS_AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["GAS_AWS_SECRET_ACCESS_KEY"],
        name_prefix=env["GAS_NAME_PREFIX"], web_base_url=env["GAS_WEB_BASE_URL"],
        free_retention_seconds=RETENTION_SECONDS,
    )
    Infrastructure(settings).apply()
    local = LocalStack(endpoint=endpoint, settings=settings, aws=AwsClients(settings))
    for name in SERVICES:
        local.metrics_ports[name] = free_port()
        process = subprocess.Popen(
            [sys.executable, "-m", f"gas_{name}"],
            env={**env, "GAS_METRICS_PORT": str(local.metrics_ports[name])},
            cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        local.processes[name] = process
        assert process.stdout is not None
        threading.Thread(target=local.pump, args=(name, process.stdout), daemon=True).start()
    try:
        yield local
    finally:
        for process in local.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in local.processes.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        server.stop()


def wait_for(what: str, probe: Callable[[], T | None], stack: LocalStack) -> T:
    deadline = time.monotonic() + STEP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for name, process in stack.processes.items():
            assert process.poll() is None, f"{name} exited:\n{stack.tail()}"
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}:\n{stack.tail()}")


def _completed_job(stack: LocalStack, repo: JobRepository, user_id: str) -> tuple[Job, dict]:
    s3, bucket = stack.aws.s3, stack.settings.names.results_bucket
    repo.ensure_profile(user_id, name="Grace", email=f"{user_id}@example.org")
    job_id = new_job_id()
    job = repo.create_job(Job(user_id=user_id, job_id=job_id, input_file_name="sample.vcf.gz",
                              input_key=f"inputs/{user_id}/{job_id}/sample.vcf.gz"))
    contents, keys = {}, {}
    for kind, name in RESULT_FILES.items():
        key = results_prefix(user_id, job_id) + name
        contents[key] = os.urandom(64 * 1024) + kind.encode()
        s3.put_object(Bucket=bucket, Key=key, Body=contents[key])
        keys[kind] = key
    job = repo.claim_lease(job, owner="e2e-annotator", ttl_seconds=60)
    job = repo.complete_job(user_id, job_id, owner="e2e-annotator",
                            summary={"variants": 42}, result_keys=keys)
    return job, contents


def test_a_free_users_result_is_archived_then_restored_on_upgrade_with_emails(
    stack: LocalStack,
) -> None:
    settings, aws = stack.settings, stack.aws
    repo = JobRepository(aws.dynamodb, settings.names.table)
    user_id = "grace"
    job, contents = _completed_job(stack, repo, user_id)
    assert job.completed_at is not None
    publish(aws.sns, aws.topic_arn(Topic.JOB_RESULTS), JobCompleted(
        user_id=user_id, job_id=job.job_id, user_tier=Tier.FREE, completed_at=job.completed_at))

    # Archived after the retention window: hot copies of the big files gone, archive copies
    # in GLACIER, summary and log still hot.
    def current() -> Job:
        return repo.get_job(user_id, job.job_id)

    archived = wait_for("archived", lambda: current().storage is StorageState.ARCHIVED
                        and current(), stack)
    assert archived.completed_at is not None
    assert archived.updated_at is not None
    # Not before the window ends, less the archiver's slack (it archives a message due within
    # DUE_SLACK_SECONDS now rather than sending it round again for a second).
    waited = (archived.updated_at - archived.completed_at).total_seconds()
    assert waited >= RETENTION_SECONDS - DUE_SLACK_SECONDS
    prefix = results_prefix(user_id, job.job_id)

    def listing(bucket: str) -> dict[str, str]:
        found = aws.s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
        return {o["Key"]: o.get("StorageClass", "STANDARD") for o in found}

    archive_copies = listing(settings.names.archive_bucket)
    assert archive_copies == {job.result_keys[k]: "GLACIER" for k in ARCHIVED_KINDS}
    # The hot copies go right after the `archived` write.
    stays_hot = {job.result_keys["summary"], job.result_keys["log"]}
    wait_for("hot copies deleted",
             lambda: set(listing(settings.names.results_bucket)) == stays_hot, stack)

    # Upgrade, as the web does it: restoring, then hot again.
    profile = repo.get_profile(user_id)
    assert profile is not None
    change_tier(repository=repo, sns=aws.sns, user_events_topic_arn=aws.topic_arn(
        Topic.USER_EVENTS), profile=profile, new_tier=Tier.PREMIUM)
    hot = wait_for("hot again", lambda: current().storage is StorageState.HOT and current(),
                   stack)
    assert hot.restore_tier == "Expedited" and hot.restore_requested_at is not None
    assert listing(settings.names.archive_bucket) == {}
    for key, body in contents.items():
        downloaded = aws.s3.get_object(Bucket=settings.names.results_bucket, Key=key)
        assert downloaded.get("StorageClass", "STANDARD") == "STANDARD"
        assert downloaded["Body"].read() == body, key

    # Both emails, in moto's SES store, with a link to the job.
    def emails() -> list[dict[str, Any]] | None:
        sent = [m for m in stack.sent_emails()
                if m["destinations"]["ToAddresses"] == [f"{user_id}@example.org"]]
        return sent if len(sent) >= 2 else None

    sent = wait_for("two emails", emails, stack)
    assert sorted(m["subject"] for m in sent) == [
        "Your GAS job for sample.vcf.gz has completed",
        "Your GAS results for sample.vcf.gz are available again",
    ]
    assert all(f"/jobs/{job.job_id}" in m["body"] for m in sent)
    # One log line per email (the development outbox in the log stream).
    wait_for("email log lines", lambda: len(
        [r for r in stack.log_records("notifier") if r["event"] == "email_sent"]) == 2, stack)

    # One canonical line per message, carrying the service's own fields; metrics exported.
    archiver_lines = [r for r in stack.log_records("archiver") if r["event"] == "message"]
    assert "archived" in {r.get("archive_outcome") for r in archiver_lines}
    assert all(r.get("archive_outcome") and r["job_id"] == job.job_id for r in archiver_lines)
    assert 'gas_archiver_jobs_total{outcome="archived"} 1.0' in stack.metrics("archiver")
    wait_for("thaw metrics", lambda: 'gas_thawer_jobs_total{outcome="thawed"} 1.0'
             in stack.metrics("thawer"), stack)
    assert "gas_thawer_restore_seconds_count 1.0" in stack.metrics("thawer")

    # SIGTERM: every service stops cleanly.
    for process in stack.processes.values():
        process.send_signal(signal.SIGTERM)
    for name, process in stack.processes.items():
        assert process.wait(timeout=30) == 0, f"{name}:\n{stack.tail()}"
