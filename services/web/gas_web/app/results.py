"""Result files: whether a job's results can be downloaded now, and if not, why in plain words;
short-lived download links with sensible file names; the log for the log view."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Literal

from fastapi.responses import PlainTextResponse, Response, StreamingResponse

from gas_core.jobs import Job, JobStatus, StorageState, utc_now
from gas_web.app.core.errors import Problem

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ResultKind = Literal["vcf", "tsv", "summary", "log"]
RESULT_KINDS: tuple[ResultKind, ...] = ("vcf", "tsv", "summary", "log")
RESULT_LABELS: dict[str, str] = {
    "vcf": "Annotated VCF (.vcf.gz)",
    "tsv": "Table (TSV)",
    "summary": "Summary (JSON)",
    "log": "Log",
}
# How long S3 takes to restore from the archive, per retrieval tier (AWS documentation for the
# GLACIER storage class). DEEP_ARCHIVE is slower; the restorer picks its tier accordingly.
RESTORE_WINDOWS: dict[str, tuple[timedelta, timedelta]] = {
    "Expedited": (timedelta(minutes=1), timedelta(minutes=5)),
    "Standard": (timedelta(hours=3), timedelta(hours=5)),
    "Bulk": (timedelta(hours=5), timedelta(hours=12)),
}
# Small files that never leave the results bucket (docs/lifecycle.md): what users read to see
# what a job found or why it failed, so they are served whatever the job's storage state.
ALWAYS_HOT_KINDS: frozenset[str] = frozenset({"summary", "log"})
LOG_VIEW_MAX_BYTES = 1024 * 1024
_DASH = "\N{EN DASH}"


@dataclass(frozen=True)
class Availability:
    """Whether results can be read; `reason` says why not, for people."""

    ready: bool
    reason: str = ""
    state: Literal["ready", "not_finished", "failed", "archived", "restoring"] = "ready"


def availability(job: Job, now: datetime | None = None) -> Availability:
    if job.status is JobStatus.FAILED:
        return Availability(False, "The annotation failed, so there are no results.", "failed")
    if job.status is not JobStatus.COMPLETED:
        return Availability(False, f"The job is {job.status.value.lower()}; results appear when "
                                   "it completes.", "not_finished")
    if job.storage is StorageState.ARCHIVED:
        return Availability(False, "The results are archived — upgrade to premium to restore "
                                   "them.", "archived")
    if job.storage is StorageState.RESTORING:
        return Availability(False, f"The results are being restored — {restore_eta(job, now)}.",
                            "restoring")
    # ARCHIVING: the hot copy stays until the archive copy is verified, so it is still served.
    return Availability(True)


def restore_eta(job: Job, now: datetime | None = None) -> str:
    """`expected in 1-5 minutes`, shrinking as time passes; never a promise that has passed."""
    window = RESTORE_WINDOWS.get(job.restore_tier or "")
    if window is None:
        return "expected within 12 hours"
    low, high = window
    if job.restore_requested_at is not None:
        elapsed = (now or utc_now()) - job.restore_requested_at
        low, high = low - elapsed, high - elapsed
    if high <= timedelta(0):
        return "expected any moment now"
    return f"expected in {_span(max(low, timedelta(0)), high)}"


def _span(low: timedelta, high: timedelta) -> str:
    # Round the near end, ceil the far end: "2-4 hours" at 1h59m, never a window that is short.
    if high <= timedelta(hours=2):
        lo, hi = round(low.total_seconds() / 60), max(math.ceil(high.total_seconds() / 60), 1)
        if lo and lo < hi:
            return f"{lo}{_DASH}{hi} minutes"
        return f"under {hi} minute{'s' * (hi > 1)}"
    lo_h, hi_h = round(low.total_seconds() / 3600), math.ceil(high.total_seconds() / 3600)
    return f"{lo_h}{_DASH}{hi_h} hours" if lo_h and lo_h < hi_h else f"under {hi_h} hours"


def ensure_available(job: Job) -> None:
    """Raise 409 with the plain-words reason unless the job's results can be read now."""
    state = availability(job)
    if not state.ready:
        raise Problem(409, state.reason, title="Results not available", state=state.state)


def result_key(job: Job, kind: str) -> str:
    """The S3 key of one result file, or a Problem saying in plain words why it cannot be had."""
    key = job.result_keys.get(kind)
    if key and kind in ALWAYS_HOT_KINDS and job.is_finished:
        return key  # still hot while archived or restoring; a failed job's log explains it
    ensure_available(job)
    if not key:
        raise Problem(404, f"This job has no {kind} result.")
    return key


def failure_log(job: Job) -> str | None:
    """A failed job's log when the annotator left none (it failed before the engine wrote
    one): the job's own record of what happened, so every failed job has a log to read."""
    if job.status is not JobStatus.FAILED or "log" in job.result_keys:
        return None
    def when(moment: datetime | None) -> str:
        return moment.isoformat(timespec="seconds") if moment else "-"
    return "\n".join([
        f"job:       {job.job_id}",
        f"input:     {job.input_file_name}",
        f"assembly:  {job.assembly}",
        f"submitted: {when(job.submitted_at)}",
        f"started:   {when(job.started_at)}",
        f"failed:    {when(job.completed_at)}",
        f"attempts:  {job.attempts}",
        "",
        "The annotation failed:",
        f"  {job.error or 'for an unknown reason.'}",
        "",
    ])


def failure_log_download(job: Job, text: str) -> Response:
    """The failure log as a plain-text attachment, named like the annotator's logs."""
    stem = PurePosixPath(job.input_file_name or job.job_id).name.split(".")[0] or job.job_id
    safe = f"{stem}.log".replace('"', "").replace("\\", "")
    return PlainTextResponse(
        text, headers={"Content-Disposition": f'attachment; filename="{safe}"'}
    )


def download_name(job: Job, kind: str, key: str) -> str:
    """The annotator names files after the input (`sample.annot.tsv`); keep that name."""
    name = PurePosixPath(key).name
    return name or f"{job.job_id}.{kind}"


def presigned_download(
    *, s3: S3Client, bucket: str, key: str, file_name: str, expires: int
) -> str:
    safe = file_name.replace('"', "").replace("\\", "")
    return s3.generate_presigned_url(
        "get_object",
        Params={
            "Bucket": bucket,
            "Key": key,
            "ResponseContentDisposition": f'attachment; filename="{safe}"',
        },
        ExpiresIn=expires,
    )


def read_log(*, s3: S3Client, bucket: str, key: str) -> tuple[str, bool]:
    """The log's text for the log view (at most LOG_VIEW_MAX_BYTES) and whether it was cut."""
    body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{LOG_VIEW_MAX_BYTES}")["Body"]
    data = body.read()
    truncated = len(data) > LOG_VIEW_MAX_BYTES
    return data[:LOG_VIEW_MAX_BYTES].decode("utf-8", errors="replace"), truncated


def filtered_export_response(
    job: Job, chunks: Iterable[bytes], fmt: Literal["tsv", "vcf"]
) -> StreamingResponse:
    """A filtered export streamed as a download named after the input (API and page alike)."""
    stem = PurePosixPath(job.input_file_name or job.job_id).name.split(".")[0] or job.job_id
    name = f"{stem}.filtered.{'tsv' if fmt == 'tsv' else 'vcf.gz'}"
    safe = name.replace('"', "").replace("\\", "")
    media = "text/tab-separated-values; charset=utf-8" if fmt == "tsv" else "application/gzip"
    return StreamingResponse(chunks, media_type=media,
                             headers={"Content-Disposition": f'attachment; filename="{safe}"'})
