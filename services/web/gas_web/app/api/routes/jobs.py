"""/api/v1/jobs: create an upload, submit it, list and read jobs, download results (the variant
table's routes are in variants.py)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse

from gas_core.jobs import InvalidCursor
from gas_web.app.api.schemas import JobList, JobOut, NewJob, NewJobUpload
from gas_web.app.core.errors import Problem
from gas_web.app.deps import Aws, CurrentUser, Jobs, Settings, Uploads, UserJob
from gas_web.app.results import (
    ResultKind,
    download_name,
    failure_log,
    failure_log_download,
    presigned_download,
    result_key,
)
from gas_web.app.submissions import create_upload, submit_job

router = APIRouter(prefix="/api/v1/jobs", tags=["jobs"])


@router.post("", status_code=201, response_model=NewJobUpload)
def create_job_upload(body: NewJob, user: CurrentUser, settings: Settings, aws: Aws,
                      uploads: Uploads) -> Any:
    """Start a job: a presigned POST for this user and job only, capped at the tier's size."""
    return create_upload(settings=settings, aws=aws, uploads=uploads, profile=user,
                         file_name=body.file_name, assembly=body.assembly)


@router.post("/{job_id}/submit", status_code=202, response_model=JobOut,
             responses={413: {"description": "Larger than the tier accepts"}})
def submit(*, job_id: str, user: CurrentUser, settings: Settings, aws: Aws, jobs: Jobs,
           uploads: Uploads) -> Any:
    """Check the uploaded file (owner, size cap of the tier, type) and queue the annotation."""
    job = submit_job(settings=settings, aws=aws, repository=jobs, uploads=uploads, profile=user,
                     job_id=job_id)
    queue = jobs.queue_status(job, slots=settings.annotator_slots, now=datetime.now(UTC))
    return {**job.to_api(), **queue.to_api()}


@router.get("", response_model=JobList,
            responses={400: {"description": "The cursor is not valid"}})
def list_jobs(
    user: CurrentUser,
    jobs: Jobs,
    settings: Settings,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    """The caller's jobs, newest first; pass `next_cursor` back as `cursor` for the next page.
    PENDING jobs carry their queue position and estimate, as in GET /jobs/{job_id}."""
    try:
        page = jobs.list_jobs(user.user_id, limit=limit, cursor=cursor)
    except InvalidCursor:
        raise Problem(400, "The cursor is not valid; start from the first page.") from None
    queue = jobs.queue_statuses(page.items, slots=settings.annotator_slots, now=datetime.now(UTC))
    return {"items": [{**job.to_api(), **queue[job.job_id].to_api()} for job in page.items],
            "next_cursor": page.next_cursor}


@router.get("/{job_id}", response_model=JobOut)
def read_job(job: UserJob, jobs: Jobs, settings: Settings) -> Any:
    """The job; while PENDING, with its place in the queue and an estimated start and finish."""
    queue = jobs.queue_status(job, slots=settings.annotator_slots, now=datetime.now(UTC))
    return {**job.to_api(), **queue.to_api()}


@router.get(
    "/{job_id}/results/{kind}",
    status_code=302,
    response_class=RedirectResponse,
    responses={302: {"description": "Redirect to a short-lived download URL"},
               200: {"description": "A failed job's log, written from the job's record when "
                                    "the engine left none",
                     "content": {"text/plain": {"schema": {"type": "string"}}}},
               409: {"description": "Results archived, restoring, or not ready"}},
)
def download_result(job: UserJob, kind: ResultKind, settings: Settings, aws: Aws) -> Any:
    if kind == "log" and (text := failure_log(job)) is not None:
        return failure_log_download(job, text)  # failed before the engine wrote a log
    key = result_key(job, kind)
    url = presigned_download(
        s3=aws.s3, bucket=settings.names.results_bucket, key=key,
        file_name=download_name(job, kind, key), expires=settings.download_url_seconds,
    )
    return RedirectResponse(url, status_code=302)
