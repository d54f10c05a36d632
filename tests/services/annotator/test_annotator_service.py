"""The annotator service's handler against the emulator: lease, results, events, failures."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import subprocess
import sys
import textwrap
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError
from prometheus_client import CollectorRegistry

from gas_annotator.engine import InputError
from gas_annotator.engine import annotate as real_annotate
from gas_annotator.handler import (
    INPUT_CHANGED_REASON,
    Annotator,
    download_input,
    handle_job_requested,
)
from gas_annotator.metrics import AnnotatorMetrics
from gas_annotator.reference import Bundle
from gas_annotator.settings import AnnotatorSettings
from gas_core.aws import AwsClients
from gas_core.events import JobRequested
from gas_core.jobs import ItemKey, Job, JobRepository, JobStatus, new_job_id
from gas_core.outbox import Outbox
from gas_core.resources import Queue, Topic
from gas_core.settings import GasSettings, Tier
from gas_core.worker import MessageContext, PermanentError, RetryLater
from tests.services.annotator.annotator_helpers import demo_expectations, write_vcf
from tests.support import FakeClock, emulator_settings


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def repository(settings: GasSettings, aws: AwsClients, clock: FakeClock) -> JobRepository:
    return JobRepository(aws.dynamodb, settings.names.table, clock=clock)


@pytest.fixture
def make_annotator(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    demo_bundle: Bundle,
    tmp_path: Path,
    clock: FakeClock,
) -> Callable[..., Annotator]:
    def make(worker_id: str = "worker-a", **overrides: Any) -> Annotator:
        service_settings = emulator_settings(
            settings.aws_endpoint_url or "",
            AnnotatorSettings,
            name_prefix=settings.name_prefix,
            reference_dir=str(demo_bundle.root),
            annotator_scratch_dir=str(tmp_path / "scratch"),
            **overrides,
        )
        return Annotator(
            settings=service_settings,
            repository=repository,
            s3=aws.s3,
            sns=aws.sns,
            results_topic_arn=aws.topic_arn(Topic.JOB_RESULTS),
            reference_dir=demo_bundle.root,
            metrics=AnnotatorMetrics(CollectorRegistry()),
            worker_id=worker_id,
            clock=clock,
        )

    return make


def submit(
    *,
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    body: bytes,
    file_name: str = "sample.vcf",
) -> tuple[Job, JobRequested]:
    job_id = new_job_id()
    key = f"inputs/{user_id}/{job_id}/{file_name}"
    put = aws.s3.put_object(Bucket=settings.names.inputs_bucket, Key=key, Body=body)
    repository.ensure_profile(user_id, name="Test", email="t@example.org")
    # As the web records it at submit: the exact object its checks read.
    job = repository.create_job(
        Job(user_id=user_id, job_id=job_id, input_file_name=file_name, input_key=key,
            input_etag=put["ETag"], input_version_id=put.get("VersionId"))
    )
    event = JobRequested(
        user_id=user_id,
        job_id=job_id,
        user_tier=Tier.FREE,
        input_bucket=settings.names.inputs_bucket,
        input_key=key,
    )
    return job, event


def context(receive_count: int = 1) -> MessageContext:
    import threading

    return MessageContext(
        message_id="m-1", receive_count=receive_count, attributes={}, stopping=threading.Event()
    )


def results_events(aws: AwsClients, settings: GasSettings, job_id: str) -> list[str]:
    """Event types for this job that reached the notifier's queue (which gets them all)."""
    url = aws.queue_url(Queue.NOTIFIER)
    seen: list[str] = []
    for _ in range(5):
        # A short wait: the queue defaults to 20 s long polls, and an empty one would wait.
        messages = aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            break
        for message in messages:
            body = json.loads(message["Body"])
            if body.get("job_id") == job_id:
                seen.append(body["type"])
                aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            else:
                aws.sqs.change_message_visibility(
                    QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
                )
    return seen


@pytest.fixture
def good_vcf(demo_bundle: Bundle, tmp_path: Path) -> bytes:
    records = sorted(("1", e.pos, ".", e.ref, e.alt) for e in demo_expectations(demo_bundle))
    return write_vcf(tmp_path / "in.vcf", records).read_bytes()


def test_a_requested_job_is_annotated_uploaded_completed_and_announced(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
    tmp_path: Path,
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    annotator = make_annotator()
    handle_job_requested(event, context(), annotator=annotator)

    done = repository.get_job(user_id, job.job_id)
    assert done.status is JobStatus.COMPLETED
    assert done.progress == 1.0 and done.lease_owner is None
    assert set(done.result_keys) == {"vcf", "vcf_index", "tsv", "summary", "log", "parquet"}
    for key in done.result_keys.values():
        assert key.startswith(f"results/{user_id}/{job.job_id}/")
        assert (
            aws.s3.head_object(Bucket=settings.names.results_bucket, Key=key)["ContentLength"] > 0
        )
    assert done.summary is not None and done.summary["reference"]["synthetic"] is True
    assert results_events(aws, settings, job.job_id) == ["job.completed"]
    assert not any((tmp_path / "scratch").iterdir()), "scratch directory left behind"
    registry = annotator.metrics.registry
    assert (
        registry.get_sample_value("gas_job_end_to_end_seconds_count", {"outcome": "completed"}) == 1
    )
    assert registry.get_sample_value("gas_annotator_jobs_total", {"outcome": "completed"}) == 1


def test_duplicate_delivery_of_a_finished_job_does_not_rerun_it(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    handle_job_requested(event, context(), annotator=make_annotator())
    first = repository.get_job(user_id, job.job_id)
    results_events(aws, settings, job.job_id)

    handle_job_requested(event, context(), annotator=make_annotator("worker-b"))
    again = repository.get_job(user_id, job.job_id)
    assert (again.version, again.attempts) == (first.version, 1)
    # The outcome is announced again, in case the first worker died before announcing it.
    assert results_events(aws, settings, job.job_id) == ["job.completed"]


def test_a_job_held_by_another_live_lease_comes_back_just_after_that_lease_would_expire(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
    clock: FakeClock,
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    repository.claim_lease(job, owner="worker-a", ttl_seconds=120)
    clock.now += 20
    # Never returned (deleted) while the job is unfinished: the message comes back, after
    # the lease would expire, to take the job over if worker-a died.
    with pytest.raises(RetryLater) as later:
        handle_job_requested(event, context(), annotator=make_annotator("worker-b"))
    assert later.value.delay_seconds == pytest.approx(101)
    still = repository.get_job(user_id, job.job_id)
    assert (still.status, still.lease_owner, still.attempts) == (JobStatus.RUNNING, "worker-a", 1)
    assert results_events(aws, settings, job.job_id) == []


def test_a_job_whose_worker_died_is_taken_over_after_its_lease_expires(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
    clock: FakeClock,
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    repository.claim_lease(job, owner="worker-that-died", ttl_seconds=120)
    clock.now += 121
    handle_job_requested(event, context(receive_count=2), annotator=make_annotator("worker-b"))
    done = repository.get_job(user_id, job.job_id)
    assert (done.status, done.attempts) == (JobStatus.COMPLETED, 2)


def test_bad_input_fails_the_job_with_the_engines_reason(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=b""
    )
    with pytest.raises(PermanentError) as failure:
        handle_job_requested(event, context(), annotator=make_annotator())
    failed = repository.get_job(user_id, job.job_id)
    assert failed.status is JobStatus.FAILED
    assert failed.error == str(failure.value)
    assert "empty" in (failed.error or "").lower()
    assert results_events(aws, settings, job.job_id) == ["job.failed"]


def test_a_transient_failure_releases_the_lease_and_gives_up_after_max_attempts(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    annotator = make_annotator(annotator_max_attempts=2)
    # The input vanishes from S3 (a transient-looking failure on every try).
    aws.s3.delete_object(Bucket=settings.names.inputs_bucket, Key=job.input_key)

    with pytest.raises(Exception) as first:
        handle_job_requested(event, context(), annotator=annotator)
    assert not isinstance(first.value, PermanentError)
    retried = repository.get_job(user_id, job.job_id)
    assert retried.status is JobStatus.RUNNING and retried.lease_expires_at == 0

    with pytest.raises(PermanentError):
        handle_job_requested(event, context(receive_count=2), annotator=annotator)
    failed = repository.get_job(user_id, job.job_id)
    assert failed.status is JobStatus.FAILED and failed.attempts == 2
    assert "internal reason" in (failed.error or "")
    assert results_events(aws, settings, job.job_id) == ["job.failed"]


def test_a_lease_renewal_landing_after_completion_does_not_lose_the_outcome(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The interleaving seen in production: the keeper's renewal lands just after the
    completion write released the lease, is refused, and was taken for a lost lease."""
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    annotator = make_annotator(annotator_progress_interval_seconds=0.01)
    progress: list[Callable[[float], None]] = []

    def capturing_annotate(*args: Any, **kwargs: Any) -> Any:
        progress.append(kwargs["progress"])
        return real_annotate(*args, **kwargs)

    renewed_after_completion = threading.Event()
    completed = threading.Event()
    real_complete, real_renew = repository.complete_job, repository.update_progress

    def renew(*args: Any, **kwargs: Any) -> Any:
        try:
            return real_renew(*args, **kwargs)
        finally:
            if completed.is_set():
                renewed_after_completion.set()

    def complete_then_let_a_renewal_land(*args: Any, **kwargs: Any) -> Any:
        done = real_complete(*args, **kwargs)
        completed.set()
        if any(t.name == "lease-keeper" and t.is_alive() for t in threading.enumerate()):
            progress[0](0.5)  # new progress: the keeper writes on its next tick
            assert renewed_after_completion.wait(10)
        return done

    monkeypatch.setattr("gas_annotator.handler.annotate", capturing_annotate)
    monkeypatch.setattr(repository, "complete_job", complete_then_let_a_renewal_land)
    monkeypatch.setattr(repository, "update_progress", renew)
    handle_job_requested(event, context(), annotator=annotator)

    assert repository.get_job(user_id, job.job_id).status is JobStatus.COMPLETED
    assert results_events(aws, settings, job.job_id) == ["job.completed"]


def _crash_on_publish(monkeypatch: pytest.MonkeyPatch, aws: AwsClients) -> None:
    def crash(**_: Any) -> Any:
        # SNS unreachable: as if the process died before its publish got out.
        raise EndpointConnectionError(endpoint_url="https://sns.example")

    monkeypatch.setattr(aws.sns, "publish", crash)


def test_a_completion_whose_publish_crashed_is_announced_by_the_reconciler(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    with monkeypatch.context() as patch:
        _crash_on_publish(patch, aws)
        handle_job_requested(event, context(), annotator=make_annotator())
    assert repository.get_job(user_id, job.job_id).status is JobStatus.COMPLETED
    assert results_events(aws, settings, job.job_id) == []

    clock.now += 61
    Outbox(repository, aws.sns, aws.topic_arn, clock=clock).reconcile()
    assert results_events(aws, settings, job.job_id) == ["job.completed"]
    assert repository.pending_events(ItemKey.of_job(user_id, job.job_id)) == []


def test_a_redelivery_after_a_crashed_publish_announces_the_recorded_outcome(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=b""
    )
    with monkeypatch.context() as patch:
        _crash_on_publish(patch, aws)
        with pytest.raises(PermanentError):
            handle_job_requested(event, context(), annotator=make_annotator())
    assert results_events(aws, settings, job.job_id) == []
    handle_job_requested(event, context(receive_count=2), annotator=make_annotator())
    assert results_events(aws, settings, job.job_id) == ["job.failed"]


def test_an_input_uploaded_again_after_submit_fails_the_job(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    # Replaced under the same key after the web checked it.
    aws.s3.put_object(Bucket=settings.names.inputs_bucket, Key=job.input_key,
                      Body=b"not what was checked\n")
    with pytest.raises(PermanentError) as failure:
        handle_job_requested(event, context(), annotator=make_annotator())
    failed = repository.get_job(user_id, job.job_id)
    assert failed.status is JobStatus.FAILED
    assert failed.error == str(failure.value) == INPUT_CHANGED_REASON
    assert "\n" not in INPUT_CHANGED_REASON
    assert results_events(aws, settings, job.job_id) == ["job.failed"]


def test_a_job_past_its_wall_clock_limit_is_stopped_and_fails_with_a_reason(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    annotator = make_annotator(annotator_job_timeout_seconds=0.001)
    with pytest.raises(PermanentError) as failure:
        handle_job_requested(event, context(), annotator=annotator)
    failed = repository.get_job(user_id, job.job_id)
    assert (failed.status, failed.lease_owner) == (JobStatus.FAILED, None)
    assert failed.error == str(failure.value)
    assert "longer than" in (failed.error or "") and "limit" in (failed.error or "")
    assert failed.result_keys == {}
    assert results_events(aws, settings, job.job_id) == ["job.failed"]


def _gone(pid: int) -> bool:
    """The process no longer runs (or is only a zombie waiting for its reaper)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return True
    return state == "Z"


def test_an_engine_hung_without_progress_is_killed_at_the_limit_and_the_job_fails(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """bcftools blocks forever in a chunk's fork (a grandchild of the job process), so the
    engine never reports progress again: at the limit the whole process tree is killed, the
    job FAILS with the limit's reason and its event, and the next job runs."""
    import multiprocessing
    import time

    import gas_annotator.engine as engine

    marks = tmp_path / "hung"
    marks.mkdir()
    real_stages = engine.bcftools_stages

    def hang_once(spec: Any, ctx: Any) -> Any:
        # Only the first job hangs; its processes note their pids (bcftools fork, worker).
        if not (marks / "hung").exists():
            (marks / "hung").touch()
            (marks / "pids").write_text(f"{os.getpid()} {os.getppid()}")
            threading.Event().wait()
        return real_stages(spec, ctx)

    # Job processes forked from this process, so they run the patched stage (the service's
    # forkserver would import a fresh copy of the engine).
    monkeypatch.setattr(engine, "_process_context", lambda: multiprocessing.get_context("fork"))
    monkeypatch.setattr(engine, "bcftools_stages", hang_once)
    annotator = make_annotator(annotator_job_timeout_seconds=4)
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            handle_job_requested(event, context(), annotator=annotator)
            outcome.append(None)
        except BaseException as error:  # handed to the test thread
            outcome.append(error)

    handler = threading.Thread(target=run, daemon=True)
    handler.start()
    handler.join(60)
    assert not handler.is_alive(), "the hung job was never stopped"
    assert isinstance(outcome[0], PermanentError)
    failed = repository.get_job(user_id, job.job_id)
    assert (failed.status, failed.lease_owner) == (JobStatus.FAILED, None)
    assert failed.error == str(outcome[0])
    assert failed.error == (
        "The annotation took longer than this service's limit of 4 s and was stopped; "
        "try a smaller file, or split it by chromosome."
    )
    assert results_events(aws, settings, job.job_id) == ["job.failed"]
    hung = [int(pid) for pid in (marks / "pids").read_text().split()]
    deadline = time.monotonic() + 10
    while not all(_gone(pid) for pid in hung) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(pid) for pid in hung), f"left running: {hung}"
    # The slot is free: the same annotator runs the next job to the end.
    second, second_event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )
    handle_job_requested(second_event, context(), annotator=annotator)
    assert repository.get_job(user_id, second.job_id).status is JobStatus.COMPLETED


def test_files_the_engine_writes_are_private_to_the_service_user(
    demo_bundle: Bundle, tmp_path: Path, good_vcf: bytes
) -> None:
    """As the service starts: the scratch is prepared before the engine's first process, so
    every process the engine forks writes with the private umask."""
    vcf = tmp_path / "good.vcf"
    vcf.write_bytes(good_vcf)
    root = tmp_path / "scratch"
    script = textwrap.dedent("""
        import sys
        from pathlib import Path
        from gas_annotator.engine import annotate
        from gas_annotator.scratch import job_scratch, prepare_scratch
        from gas_annotator.settings import AnnotatorSettings

        settings = AnnotatorSettings(reference_dir=sys.argv[1], annotator_scratch_dir=sys.argv[2])
        prepare_scratch(settings, "worker-a")
        scratch = job_scratch(settings, "01ARZ3NDEKTSV4RRFFQ69G5FAV", "worker-a")
        vcf = scratch / "input" / "in.vcf"
        vcf.parent.mkdir()
        vcf.write_bytes(Path(sys.argv[3]).read_bytes())
        annotate(vcf, reference_dir=Path(sys.argv[1]), out_dir=scratch / "out",
                 scratch_dir=scratch / "tmp")
        for path in sorted(Path(sys.argv[2]).rglob("*")):
            print(oct(path.stat().st_mode & 0o777), path.relative_to(sys.argv[2]))
    """)
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAS_")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(demo_bundle.root), str(root), str(vcf)],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    listing = [line.split(" ", 1) for line in done.stdout.splitlines()]
    assert any(name.endswith(".vcf.gz") for _, name in listing), done.stdout
    assert all(int(mode, 8) & 0o077 == 0 for mode, _ in listing), done.stdout
    assert stat.S_IMODE(root.stat().st_mode) == 0o700


def test_a_job_taken_over_while_it_ran_keeps_its_message_until_the_job_is_finished(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,
    user_id: str,
    make_annotator: Callable[..., Annotator],
    good_vcf: bytes,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    job, event = submit(
        settings=settings, aws=aws, repository=repository, user_id=user_id, body=good_vcf
    )

    def stall_then_lose_the_lease(*args: Any, **kwargs: Any) -> Any:
        # This worker stalled past its lease, and worker-b took the job over meanwhile.
        clock.now += 121
        repository.claim_lease(repository.get_job(user_id, job.job_id), owner="worker-b",
                               ttl_seconds=120)
        return real_annotate(*args, **kwargs)

    monkeypatch.setattr("gas_annotator.handler.annotate", stall_then_lose_the_lease)
    with pytest.raises(RetryLater) as later:
        handle_job_requested(event, context(), annotator=make_annotator("worker-a"))
    assert later.value.delay_seconds == pytest.approx(121)
    taken = repository.get_job(user_id, job.job_id)
    assert (taken.status, taken.lease_owner) == (JobStatus.RUNNING, "worker-b")
    assert results_events(aws, settings, job.job_id) == []


def test_on_a_versioned_bucket_the_submitted_version_is_annotated_even_after_a_re_upload(
    settings: GasSettings, aws: AwsClients, make_annotator: Callable[..., Annotator],
    user_id: str, tmp_path: Path,
) -> None:
    # A deployment of its own, whose inputs bucket keeps versions.
    own = emulator_settings(settings.aws_endpoint_url or "", AnnotatorSettings,
                            name_prefix=f"gasv{uuid.uuid4().hex[:8]}", reference_dir=str(tmp_path))
    annotator = dataclasses.replace(make_annotator(), settings=own)
    bucket = annotator.settings.names.inputs_bucket
    aws.s3.create_bucket(Bucket=bucket)
    aws.s3.put_bucket_versioning(Bucket=bucket,
                                 VersioningConfiguration={"Status": "Enabled"})
    key = f"inputs/{user_id}/x/a.vcf"
    checked = aws.s3.put_object(Bucket=bucket, Key=key, Body=b"the checked file\n")
    aws.s3.put_object(Bucket=bucket, Key=key, Body=b"uploaded again\n")
    job = Job(user_id=user_id, job_id=new_job_id(), input_file_name="a.vcf", input_key=key,
              input_etag=checked["ETag"], input_version_id=checked["VersionId"])

    download_input(job, tmp_path / "in.vcf", annotator=annotator)
    assert (tmp_path / "in.vcf").read_bytes() == b"the checked file\n"

    aws.s3.delete_object(Bucket=bucket, Key=key, VersionId=checked["VersionId"])
    with pytest.raises(InputError, match="replaced after it was submitted"):
        download_input(job, tmp_path / "again.vcf", annotator=annotator)
