"""/api/v1/jobs: create an upload, submit it, list and read jobs, download results, browse rows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import RedirectResponse

from gas_core.jobs import InvalidCursor
from gas_web.app.api.schemas import JobList, JobOut, NewJob, NewJobUpload, VariantList
from gas_web.app.core.errors import Problem
from gas_web.app.deps import Aws, CurrentUser, Jobs, Settings, Uploads, UserJob, Variants
from gas_web.app.results import (
    ResultKind,
    download_name,
    ensure_available,
    failure_log,
    failure_log_download,
    presigned_download,
    result_key,
)
from gas_web.app.submissions import create_upload, submit_job
from gas_web.app.variants import SORTS, VariantQuery, decode_cursor, encode_cursor

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
    return job.to_api()


@router.get("", response_model=JobList,
            responses={400: {"description": "The cursor is not valid"}})
def list_jobs(
    user: CurrentUser,
    jobs: Jobs,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    """The caller's jobs, newest first; pass `next_cursor` back as `cursor` for the next page."""
    try:
        page = jobs.list_jobs(user.user_id, limit=limit, cursor=cursor)
    except InvalidCursor:
        raise Problem(400, "The cursor is not valid; start from the first page.") from None
    return {"items": [job.to_api() for job in page.items], "next_cursor": page.next_cursor}


@router.get("/{job_id}", response_model=JobOut)
def read_job(job: UserJob) -> Any:
    return job.to_api()


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


@router.get("/{job_id}/variants", response_model=VariantList,
            responses={400: {"description": "The cursor is not valid"},
                       409: {"description": "Results archived, restoring, or not ready"}})
def list_variants(
    *,
    job: UserJob,
    variants: Variants,
    gene: Annotated[str | None, Query(max_length=64)] = None,
    consequence: Annotated[str | None, Query(max_length=64)] = None,
    impact: Annotated[str | None, Query(pattern="^(?i:HIGH|MODERATE|LOW|MODIFIER)$")] = None,
    clinvar: Annotated[str | None, Query(max_length=64)] = None,
    known: Annotated[bool | None, Query(description="true: known variants; false: novel")] = None,
    max_af: Annotated[float | None, Query(ge=0, le=1)] = None,
    sort: Annotated[str, Query(pattern="^(" + "|".join(SORTS) + ")$")] = "position",
    order: Annotated[str, Query(pattern="^(asc|desc)$")] = "asc",
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    """Filtered rows of the annotated result; keys are the TSV columns."""
    ensure_available(job)  # the same rules as downloads: 409 while archived or restoring
    query = VariantQuery(gene=gene, consequence=consequence, impact=impact, clinvar=clinvar,
                         known=known, max_af=max_af, sort=sort, descending=order == "desc")
    page = variants.page(job, query, offset=decode_cursor(cursor), limit=limit)
    next_offset = page.next_offset
    return {
        "items": page.items,
        "next_cursor": encode_cursor(next_offset) if next_offset is not None else None,
        "total": page.total,
    }
