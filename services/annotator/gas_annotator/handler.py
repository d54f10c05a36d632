"""The annotator's message handler: one `job.requested` → one annotated result.

Idempotent under duplicate delivery:
* a finished job does no work (its outcome event is published again, in case the worker that
  finished it died before publishing; consumers are idempotent);
* a job whose lease another live worker holds does no work (that worker has its own copy of
  the message; if it dies, that copy comes back after the lease has expired and takes over);
* a job whose lease expired is taken over and annotated from the start.
The message is deleted (the handler returns) only after the results are uploaded, the job
is COMPLETED or FAILED, and the event is published.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gas_annotator.engine import AnnotationResult, InputError, annotate
from gas_annotator.metrics import AnnotatorMetrics
from gas_core.events import JobCompleted, JobFailed, JobRequested, publish
from gas_core.jobs import ConflictError, Job, JobNotFound, JobRepository, JobStatus
from gas_core.logging import bind_context, get_logger
from gas_core.settings import Tier
from gas_core.worker import MessageContext, PermanentError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient

    from gas_annotator.settings import AnnotatorSettings

log = get_logger("gas.annotator")

# Result kinds (the REST API's `results/{kind}`) → AnnotationResult attribute.
RESULT_FILES = {
    "vcf": "vcf",
    "vcf_index": "vcf_index",
    "tsv": "tsv",
    "summary": "summary",
    "log": "log",
    "parquet": "parquet",
}
# The job item keeps a bounded summary (DynamoDB items are at most 400 KB); the full
# summary.json stays in S3.
SUMMARY_MAX_ENTRIES = 50
INTERNAL_FAILURE_REASON = (
    "The annotation failed for an internal reason after {attempts} attempts. "
    "Our team has been alerted; please try again later."
)


class LeaseLost(Exception):
    """Another worker took the job over (this one stalled past its lease)."""


@dataclass
class Annotator:
    """Everything the handler needs, passed in (the service's __main__ builds it)."""

    settings: AnnotatorSettings
    repository: JobRepository
    s3: S3Client
    sns: SNSClient
    results_topic_arn: str
    reference_dir: Path
    metrics: AnnotatorMetrics
    worker_id: str

    def __call__(self, event: JobRequested, context: MessageContext) -> None:
        handle_job_requested(event, context, annotator=self)


def handle_job_requested(
    event: JobRequested, context: MessageContext, *, annotator: Annotator
) -> None:
    repo = annotator.repository
    try:
        job = repo.get_job(event.user_id, event.job_id)
    except JobNotFound:
        annotator.metrics.jobs.labels(outcome="skipped").inc()
        raise PermanentError("job does not exist (deleted, or a forged message)") from None
    if job.is_finished:
        log.info("job_already_finished", status=job.status)
        _publish_outcome(job, annotator=annotator)
        annotator.metrics.jobs.labels(outcome="skipped").inc()
        return
    try:
        job = repo.claim_lease(
            job, owner=annotator.worker_id, ttl_seconds=annotator.settings.annotator_lease_seconds
        )
    except ConflictError as conflict:
        current = conflict.current
        if current is not None and current.is_finished:
            _publish_outcome(current, annotator=annotator)
        else:
            log.info("job_held_by_live_lease", owner=current.lease_owner if current else None)
        annotator.metrics.jobs.labels(outcome="skipped").inc()
        return
    with bind_context(attempt=job.attempts):
        _run_leased_job(job, event=event, annotator=annotator)


def _run_leased_job(job: Job, *, event: JobRequested, annotator: Annotator) -> None:
    settings = annotator.settings
    scratch = Path(settings.annotator_scratch_dir) / f"{job.job_id}-{annotator.worker_id}"
    started = time.monotonic()
    try:
        with _lease_kept(job, annotator=annotator) as keeper:
            result = _annotate_job(job, scratch=scratch, annotator=annotator, keeper=keeper)
            keys = _upload_results(job, result, annotator=annotator)
            completed = annotator.repository.complete_job(
                job.user_id,
                job.job_id,
                owner=annotator.worker_id,
                summary=compact_summary(result.summary_data),
                result_keys=keys,
            )
    except InputError as error:
        reason = str(error)
        failed = _fail(job, reason, annotator=annotator)
        annotator.metrics.jobs.labels(outcome="failed").inc()
        if failed is not None:
            _observe_end_to_end(failed, annotator=annotator)
            _publish_outcome(failed, annotator=annotator)
        raise PermanentError(reason) from None
    except (LeaseLost, ConflictError):
        # Someone else owns the job now; our copy of the message is redundant.
        log.warning("lease_lost_job_abandoned")
        annotator.metrics.jobs.labels(outcome="skipped").inc()
        return
    except Exception:
        _after_internal_failure(job, annotator=annotator)
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    annotator.metrics.jobs.labels(outcome="completed").inc()
    annotator.metrics.variants.inc(result.variant_count)
    annotator.metrics.job_seconds.observe(time.monotonic() - started)
    _observe_end_to_end(completed, annotator=annotator)
    _publish_outcome(completed, annotator=annotator)
    log.info(
        "job_completed", variants=result.variant_count, seconds=round(time.monotonic() - started, 2)
    )


def _annotate_job(
    job: Job, *, scratch: Path, annotator: Annotator, keeper: _LeaseKeeper
) -> AnnotationResult:
    settings = annotator.settings
    input_path = scratch / "input" / safe_file_name(job.input_file_name)
    input_path.parent.mkdir(parents=True, exist_ok=True)
    with _stage("download", annotator):
        annotator.s3.download_file(settings.names.inputs_bucket, job.input_key, str(input_path))
    with _stage("annotate", annotator):
        return annotate(
            input_path,
            reference_dir=annotator.reference_dir,
            out_dir=scratch / "out",
            workers=settings.annotator_workers,
            max_variants=settings.max_variants(_current_tier(job, annotator)),
            progress=keeper.report,
            scratch_dir=scratch / "tmp",
        )


def _upload_results(job: Job, result: AnnotationResult, *, annotator: Annotator) -> dict[str, str]:
    keys: dict[str, str] = {}
    with _stage("upload", annotator):
        for kind, attribute in RESULT_FILES.items():
            path: Path = getattr(result, attribute)
            key = f"results/{job.user_id}/{job.job_id}/{path.name}"
            annotator.s3.upload_file(str(path), annotator.settings.names.results_bucket, key)
            keys[kind] = key
    return keys


def _fail(job: Job, reason: str, *, annotator: Annotator) -> Job | None:
    try:
        return annotator.repository.fail_job(
            job.user_id, job.job_id, reason=reason, owner=annotator.worker_id
        )
    except ConflictError:
        log.warning("fail_refused_lease_lost")
        return None


def _after_internal_failure(job: Job, *, annotator: Annotator) -> None:
    """A transient failure: retry (another worker may take over at once), or give up."""
    if job.attempts >= annotator.settings.annotator_max_attempts:
        failed = _fail(
            job, INTERNAL_FAILURE_REASON.format(attempts=job.attempts), annotator=annotator
        )
        annotator.metrics.jobs.labels(outcome="failed").inc()
        if failed is not None:
            _observe_end_to_end(failed, annotator=annotator)
            _publish_outcome(failed, annotator=annotator)
        raise PermanentError(f"gave up after {job.attempts} attempts")
    annotator.metrics.jobs.labels(outcome="retried").inc()
    with suppress(ConflictError):  # already taken over: nothing to release
        annotator.repository.release_lease(job.user_id, job.job_id, owner=annotator.worker_id)


def _current_tier(job: Job, annotator: Annotator) -> Tier:
    profile = annotator.repository.get_profile(job.user_id)
    return profile.tier if profile else job.user_tier


def _observe_end_to_end(job: Job, *, annotator: Annotator) -> None:
    """Submit → finished, recorded once by the worker that finished the job."""
    if job.completed_at is not None:
        seconds = (job.completed_at - job.submitted_at).total_seconds()
        annotator.metrics.end_to_end_seconds.labels(outcome=job.status.value.lower()).observe(
            max(seconds, 0.0)
        )


def _publish_outcome(job: Job, *, annotator: Annotator) -> None:
    tier = _current_tier(job, annotator)
    event: JobCompleted | JobFailed
    if job.status is JobStatus.COMPLETED:
        event = JobCompleted(
            user_id=job.user_id,
            job_id=job.job_id,
            user_tier=tier,
            completed_at=job.completed_at or job.updated_at,
        )
    elif job.status is JobStatus.FAILED:
        event = JobFailed(
            user_id=job.user_id, job_id=job.job_id, user_tier=tier, error=job.error or "failed"
        )
    else:
        return
    publish(annotator.sns, annotator.results_topic_arn, event)


@contextmanager
def _stage(name: str, annotator: Annotator) -> Iterator[None]:
    started = time.monotonic()
    try:
        yield
    finally:
        annotator.metrics.stage_seconds.labels(stage=name).observe(time.monotonic() - started)


class _LeaseKeeper:
    """Renews the job's lease and writes progress from a background thread.

    The engine reports progress often; the table gets at most one write per progress interval,
    and at least one per third of the lease even when progress stalls (a long chunk).
    """

    def __init__(self, job: Job, annotator: Annotator) -> None:
        self._job = job
        self._annotator = annotator
        self._progress = 0.0
        self._written = -1.0
        self._lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def report(self, fraction: float) -> None:
        """The engine's progress callback; raising here stops the engine."""
        if self._lost.is_set():
            raise LeaseLost(self._job.job_id)
        self._progress = fraction

    def _run(self) -> None:
        settings = self._annotator.settings
        lease = settings.annotator_lease_seconds
        interval = min(settings.annotator_progress_interval_seconds, lease / 3)
        last_write = time.monotonic()
        while not self._stop.wait(interval):
            due = time.monotonic() - last_write >= lease / 3
            if self._progress == self._written and not due:
                continue
            try:
                self._annotator.repository.update_progress(
                    self._job.user_id,
                    self._job.job_id,
                    owner=self._annotator.worker_id,
                    progress=self._progress,
                    ttl_seconds=lease,
                )
            except ConflictError:
                self._lost.set()
                return
            except Exception as error:  # a blip: the lease has slack for two more tries
                log.warning("lease_renewal_failed", error=str(error))
                continue
            self._written = self._progress
            last_write = time.monotonic()

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if self._lost.is_set() and exc[0] is None:
            raise LeaseLost(self._job.job_id)


def _lease_kept(job: Job, *, annotator: Annotator) -> _LeaseKeeper:
    return _LeaseKeeper(job, annotator)


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_file_name(name: str) -> str:
    """A file name safe to use on disk, keeping the VCF extensions the engine relies on."""
    cleaned = _UNSAFE.sub("_", Path(name).name).lstrip(".")
    return cleaned or "input.vcf"


def compact_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary as stored on the job: long mappings and lists cut to their largest entries."""

    def cut(value: Any) -> Any:
        if isinstance(value, dict):
            items = list(value.items())
            if len(items) > SUMMARY_MAX_ENTRIES and all(
                isinstance(v, int | float) for _, v in items
            ):
                items = sorted(items, key=lambda kv: kv[1], reverse=True)[:SUMMARY_MAX_ENTRIES]
            return {k: cut(v) for k, v in items}
        if isinstance(value, list):
            return [cut(v) for v in value[:SUMMARY_MAX_ENTRIES]]
        return value

    return {str(k): cut(v) for k, v in summary.items()}
