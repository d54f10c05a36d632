"""The annotator's message handler: one `job.requested` → one annotated result.

Idempotent under duplicate delivery:
* a finished job does no work (its outcome event still pending in the job's outbox is
  published, or the outcome is published again; consumers are idempotent);
* a job whose lease another live worker holds does no work now: the message comes back
  (RetryLater) just after that lease would expire, so if that worker died it is taken over,
  and the message is never dropped while the job is unfinished;
* a job whose lease expired is taken over and annotated from the start.
The outcome (COMPLETED or FAILED) and its event are one write (the event waits in the job's
outbox until published, gas_core.outbox), so an outcome is never lost. The message is deleted
(the handler returns) only after that write.

Every job has a wall-clock limit (GAS_ANNOTATOR_JOB_TIMEOUT_SECONDS): at it the lease keeper
stops the engine (its job process and every process that started, killed as one process
group, whether or not it still reports progress) and the job FAILS with a reason, so a hung
engine holds neither its lease nor the worker's slot. The input downloaded is exactly the
object checked at submit (its ETag, and VersionId on a versioned bucket): a file uploaded
again to the same key fails the job.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gas_annotator.engine import (
    AnnotationResult,
    EngineOptions,
    EngineStopped,
    InputError,
    annotate,
)
from gas_annotator.metrics import AnnotatorMetrics
from gas_annotator.scratch import job_scratch, release_scratch
from gas_core.events import JobCompleted, JobFailed, JobRequested, publish
from gas_core.jobs import ConflictError, ItemKey, Job, JobNotFound, JobRepository, JobStatus
from gas_core.logging import bind_context, get_logger
from gas_core.outbox import Outbox
from gas_core.resources import Topic
from gas_core.settings import Tier
from gas_core.worker import MessageContext, PermanentError, RetryLater

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


INPUT_CHANGED_REASON = (
    "The input file was replaced after it was submitted (uploaded again to the same job); "
    "submit it as a new job."
)
TIMED_OUT_REASON = (
    "The annotation took longer than this service's limit of {limit} and was stopped; "
    "try a smaller file, or split it by chromosome."
)
# Chunks of the streamed input download.
_DOWNLOAD_CHUNK_BYTES = 8 * 1024 * 1024


class LeaseLost(Exception):
    """Another worker took the job over (this one stalled past its lease)."""


class JobTimedOut(Exception):
    """The job ran past its wall-clock limit (raised through the engine's progress callback)."""


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
    # The clock leases are measured by (the repository's).
    clock: Callable[[], float] = time.time
    outbox: Outbox = field(init=False)

    def __post_init__(self) -> None:
        # Outcome events go to the results topic; the outbox publishes them from the job.
        self.outbox = Outbox(self.repository, self.sns, self._topic_arn, clock=self.clock)

    def _topic_arn(self, topic: Topic) -> str:
        if topic is not Topic.JOB_RESULTS:
            raise LookupError(f"the annotator publishes no {topic} events")
        return self.results_topic_arn

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
            annotator.metrics.jobs.labels(outcome="skipped").inc()
            return
        raise _come_back_later(current, annotator=annotator) from None
    with bind_context(attempt=job.attempts):
        _run_leased_job(job, event=event, annotator=annotator)


def _come_back_later(current: Job | None, *, annotator: Annotator) -> RetryLater:
    """The job is unfinished and not ours to run now: the message must come back, not go.

    Another worker's live lease: come back just after it would expire (a live worker has
    renewed it by then and we wait again; a dead one's job is taken over). Otherwise the job
    changed between our read and our claim: look again in a moment.
    """
    now = annotator.clock()
    if current is not None and current.lease_is_live(now):
        wait = (current.lease_expires_at or now) - now + 1
        log.info("job_held_by_live_lease", owner=current.lease_owner, retry_in=round(wait))
        return RetryLater(wait, f"job {current.job_id} is held by {current.lease_owner}'s "
                                f"lease for {wait:.0f}s more")
    return RetryLater(1, "the job changed while its lease was being claimed")


def _run_leased_job(job: Job, *, event: JobRequested, annotator: Annotator) -> None:
    settings = annotator.settings
    started = time.monotonic()
    keeper = _LeaseKeeper(
        job, annotator, deadline=started + settings.annotator_job_timeout_seconds
    )
    try:
        scratch = job_scratch(settings, job.job_id, annotator.worker_id)
        try:
            with keeper:
                result = _annotate_job(job, scratch=scratch, annotator=annotator, keeper=keeper)
                keys = _upload_results(job, result, annotator=annotator)
        finally:
            release_scratch(scratch)
        # The keeper is stopped and joined: no renewal can land after the completion
        # write released the lease (and be mistaken for a lost lease).
        completed = _complete(job, result, keys, annotator=annotator)
    except (InputError, JobTimedOut) as error:
        reason = (
            TIMED_OUT_REASON.format(limit=_duration(settings.annotator_job_timeout_seconds))
            if isinstance(error, JobTimedOut) else str(error)
        )
        log.warning("job_failed", reason=reason)
        _fail(job, reason, annotator=annotator)
        annotator.metrics.jobs.labels(outcome="failed").inc()
        raise PermanentError(reason) from None
    except (LeaseLost, ConflictError):
        log.warning("lease_lost_job_abandoned")
        _after_lease_lost(job, annotator=annotator)
        return
    except Exception:
        _after_internal_failure(job, annotator=annotator)
        raise
    if completed is None:  # taken over just before our completion write
        _after_lease_lost(job, annotator=annotator)
        return
    seconds = time.monotonic() - started
    annotator.metrics.jobs.labels(outcome="completed").inc()
    annotator.metrics.variants.inc(result.variant_count)
    annotator.metrics.job_seconds.observe(seconds)
    log.info("job_completed", variants=result.variant_count, seconds=round(seconds, 2))
    _record_pace(completed, result, seconds, annotator=annotator)


def _record_pace(
    job: Job, result: AnnotationResult, seconds: float, *, annotator: Annotator
) -> None:
    """Fold this job into the annotators' recent pace (PENDING jobs' estimated start and
    finish, gas_core.jobs.queue). After the outcome is recorded and published, and never an
    error: the estimate is advisory."""
    try:
        annotator.repository.record_completed_job(
            seconds=seconds, input_bytes=job.input_bytes or 0, variants=result.variant_count
        )
    except Exception as error:
        log.warning("pace_not_recorded", error=str(error))


def _after_lease_lost(job: Job, *, annotator: Annotator) -> None:
    """Another worker took the job over. The message is deleted only once the job is
    finished: its new owner may die too (and the message it received is this same one, so
    deleting ours could delete its copy), so while the job runs it comes back later."""
    annotator.metrics.jobs.labels(outcome="skipped").inc()
    current = annotator.repository.get_job(job.user_id, job.job_id)
    if current.is_finished:
        _publish_outcome(current, annotator=annotator)
        return
    raise _come_back_later(current, annotator=annotator)


def _annotate_job(
    job: Job, *, scratch: Path, annotator: Annotator, keeper: _LeaseKeeper
) -> AnnotationResult:
    settings = annotator.settings
    input_path = scratch / "input" / safe_file_name(job.input_file_name)
    input_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _stage("download", annotator):
        download_input(job, input_path, annotator=annotator)
    tier = _current_tier(job, annotator)
    with _stage("annotate", annotator):
        try:
            return annotate(
                input_path,
                reference_dir=annotator.reference_dir,
                out_dir=scratch / "out",
                workers=settings.annotator_workers,
                max_variants=settings.max_variants(tier),
                progress=keeper.report,
                scratch_dir=scratch / "tmp",
                options=EngineOptions(limits=settings.input_limits(tier)),
                cancel=keeper.cancel,
            )
        except EngineStopped:
            raise keeper.why_stopped() from None


def download_input(job: Job, path: Path, *, annotator: Annotator) -> None:
    """Exactly the object checked at submit: its VersionId where the bucket keeps versions,
    and its ETag (If-Match) always, so a file uploaded again after the checks is refused."""
    request: dict[str, Any] = {"Bucket": annotator.settings.names.inputs_bucket,
                               "Key": job.input_key}
    if job.input_version_id:
        request["VersionId"] = job.input_version_id
    if job.input_etag:
        request["IfMatch"] = job.input_etag
    try:
        body = annotator.s3.get_object(**request)["Body"]
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("PreconditionFailed", "NoSuchVersion") or (
            code == "InvalidArgument" and job.input_version_id
        ):
            raise InputError(INPUT_CHANGED_REASON) from None
        raise
    with body, path.open("wb") as out:
        shutil.copyfileobj(body, out, _DOWNLOAD_CHUNK_BYTES)


def _upload_results(job: Job, result: AnnotationResult, *, annotator: Annotator) -> dict[str, str]:
    keys: dict[str, str] = {}
    with _stage("upload", annotator):
        for kind, attribute in RESULT_FILES.items():
            path: Path = getattr(result, attribute)
            key = f"results/{job.user_id}/{job.job_id}/{path.name}"
            annotator.s3.upload_file(str(path), annotator.settings.names.results_bucket, key)
            keys[kind] = key
    return keys


def _complete(
    job: Job, result: AnnotationResult, keys: dict[str, str], *, annotator: Annotator
) -> Job | None:
    """COMPLETED and `job.completed` in one write, then published; None if the lease was
    taken over meanwhile (whatever that worker's outcome is, it publishes it)."""
    completed_at = datetime.fromtimestamp(annotator.clock(), UTC)
    event = JobCompleted(user_id=job.user_id, job_id=job.job_id,
                         user_tier=_current_tier(job, annotator), completed_at=completed_at)
    return _finish(job, event, lambda: annotator.repository.complete_job(
        job.user_id, job.job_id, owner=annotator.worker_id,
        summary=compact_summary(result.summary_data), result_keys=keys,
        completed_at=completed_at, events=[event],
    ), refused="complete_refused_lease_lost", annotator=annotator)


def _fail(job: Job, reason: str, *, annotator: Annotator) -> Job | None:
    """FAILED and `job.failed` in one write, then published; None if no longer ours."""
    event = JobFailed(user_id=job.user_id, job_id=job.job_id,
                      user_tier=_current_tier(job, annotator), error=reason)
    return _finish(job, event, lambda: annotator.repository.fail_job(
        job.user_id, job.job_id, reason=reason, owner=annotator.worker_id, events=[event]
    ), refused="fail_refused_lease_lost", annotator=annotator)


def _finish(
    job: Job, event: JobCompleted | JobFailed, write: Callable[[], Job], *, refused: str,
    annotator: Annotator,
) -> Job | None:
    """Run the lease-guarded write that ends the job and records `event`, then publish it.
    None if the lease was lost: a worker that finished the job meanwhile has recorded its
    own outcome, which is published again here in case that worker died before it could."""
    try:
        finished = write()
    except ConflictError as conflict:
        log.warning(refused)
        if conflict.current is not None and conflict.current.is_finished:
            _publish_outcome(conflict.current, annotator=annotator)
        return None
    annotator.outbox.deliver(ItemKey.of_job(job.user_id, job.job_id), [event])
    _observe_end_to_end(finished, annotator=annotator)
    return finished


def _after_internal_failure(job: Job, *, annotator: Annotator) -> None:
    """A transient failure: retry (another worker may take over at once), or give up."""
    if job.attempts >= annotator.settings.annotator_max_attempts:
        _fail(job, INTERNAL_FAILURE_REASON.format(attempts=job.attempts), annotator=annotator)
        annotator.metrics.jobs.labels(outcome="failed").inc()
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
    """The finished job's outcome event: whatever is still pending in its outbox, or (nothing
    pending: it went out, or the job predates outboxes) a fresh copy of it."""
    if annotator.outbox.flush(ItemKey.of_job(job.user_id, job.job_id)).found:
        return
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


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    if seconds >= 60:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


# Progress is written when it moved at least this much (the page shows whole percents; the
# engine's estimate moves a little on every tick) or when the lease needs renewing anyway.
PROGRESS_WRITE_STEP = 0.01


def progress_write_due(progress: float, written: float, *, since_last: float, lease: float) -> bool:
    """Whether the keeper's next tick writes: the lease is due for renewal (a third of it
    passed), or progress moved by a visible step since the last write."""
    return since_last >= lease / 3 or round(abs(progress - written), 6) >= PROGRESS_WRITE_STEP


class _LeaseKeeper:
    """Renews the job's lease and writes progress from a background thread, until the job's
    wall-clock deadline (time.monotonic).

    The engine reports progress often; the table gets at most one write per progress interval
    (and only when progress moved a whole percent since the last), and at least one per third
    of the lease even when progress stalls (a long chunk).

    It is also the job's watchdog: at the deadline, or when the lease is lost, it sets
    `cancel`, and the engine kills the job's processes within a tick (a hung engine reports
    no progress, so the progress callback alone could not stop it); the engine's progress
    report raises too. If the job is somehow still running at the deadline plus one lease
    (stuck outside the engine), the lease is no longer renewed, so it expires instead of
    being held forever.
    """

    def __init__(self, job: Job, annotator: Annotator, *, deadline: float) -> None:
        self._job = job
        self._annotator = annotator
        self._deadline = deadline
        self._progress = 0.0
        self._written = -1.0
        self._lost = threading.Event()
        self._timed_out = threading.Event()
        self._stop = threading.Event()
        # Set by the watchdog: the engine then kills the job's processes (EngineStopped).
        self.cancel = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def report(self, fraction: float) -> None:
        """The engine's progress callback; raising here stops the engine."""
        if self._lost.is_set():
            raise LeaseLost(self._job.job_id)
        if time.monotonic() > self._deadline:
            raise JobTimedOut(self._job.job_id)
        self._progress = fraction

    def why_stopped(self) -> Exception:
        """Why the watchdog stopped the engine."""
        if self._timed_out.is_set():
            return JobTimedOut(self._job.job_id)
        return LeaseLost(self._job.job_id)

    def _next_wait(self, interval: float) -> float:
        # Wake at the deadline too, not only every interval: it may fall between two.
        if self._timed_out.is_set():
            return interval
        return max(0.0, min(interval, self._deadline - time.monotonic()))

    def _run(self) -> None:
        settings = self._annotator.settings
        lease = settings.annotator_lease_seconds
        interval = min(settings.annotator_progress_interval_seconds, lease / 3)
        last_write = time.monotonic()
        while not self._stop.wait(self._next_wait(interval)):
            if not self._timed_out.is_set() and time.monotonic() >= self._deadline:
                log.warning("job_past_its_deadline_engine_stopped")
                self._timed_out.set()
                self.cancel.set()
            if time.monotonic() > self._deadline + lease:
                log.error("job_unresponsive_past_its_deadline_lease_not_renewed")
                return
            if not progress_write_due(self._progress, self._written,
                                      since_last=time.monotonic() - last_write, lease=lease):
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
                self.cancel.set()  # not ours any more: stop the engine (LeaseLost)
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
            # Lost while the job ran (taken over after we stalled past the lease): the
            # results we produced are not ours to record.
            raise LeaseLost(self._job.job_id)


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
