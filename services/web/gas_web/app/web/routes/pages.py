"""Pages: home, annotate, jobs, one job, its results browser and log, and downloads."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from gas_core.jobs import InvalidCursor, JobStatus
from gas_web.app.charts import summary_charts
from gas_web.app.core.errors import Problem
from gas_web.app.deps import Aws, Jobs, MaybeUser, PageJob, PageUser, Settings, Variants
from gas_web.app.results import (
    RESULT_KINDS,
    RESULT_LABELS,
    ResultKind,
    availability,
    download_name,
    ensure_available,
    failure_log,
    failure_log_download,
    presigned_download,
    read_log,
    restore_eta,
    result_key,
)
from gas_web.app.variants import IMPACTS, SORTS, VariantQuery

router = APIRouter(include_in_schema=False)
JOBS_PER_PAGE = 20
ROWS_PER_PAGE = 50


def _render(request: Request, template: str, **context: Any) -> Response:
    response: Response = request.app.state.templates.TemplateResponse(request, template, context)
    return response


@router.get("/")
def home(request: Request, user: MaybeUser, settings: Settings) -> Response:
    return _render(request, "home.html", user=user,
                   free_max=settings.max_upload_bytes("free"),
                   premium_max=settings.max_upload_bytes("premium"))


@router.get("/annotate")
def annotate(request: Request, user: PageUser, settings: Settings) -> Response:
    return _render(request, "annotate.html", user=user,
                   max_bytes=settings.max_upload_bytes(user.tier))


@router.get("/jobs")
def jobs_page(
    request: Request,
    user: PageUser,
    jobs: Jobs,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    try:
        page = jobs.list_jobs(user.user_id, limit=JOBS_PER_PAGE, cursor=cursor)
    except InvalidCursor:
        return RedirectResponse("/jobs", status_code=303)
    active = any(not job.is_finished for job in page.items)
    return _render(request, "jobs.html", user=user, jobs=page.items,
                   next_cursor=page.next_cursor, first_page=cursor is None, active=active)


@router.get("/jobs/{job_id}")
def job_page(request: Request, user: PageUser, job: PageJob) -> Response:
    state = availability(job)
    kinds = [kind for kind in RESULT_KINDS if kind in job.result_keys]
    return _render(
        request, "job.html", user=user, job=job, state=state, kinds=kinds, labels=RESULT_LABELS,
        restore_eta=restore_eta(job) if job.restore_tier else None,
        # The summary stays with the job whatever its storage state (it is never archived).
        charts=summary_charts(job.summary) if job.status is JobStatus.COMPLETED else [],
    )


@router.get("/jobs/{job_id}/results")
def results_browser(
    *,
    request: Request,
    user: PageUser,
    job: PageJob,
    variants: Variants,
    gene: Annotated[str | None, Query(max_length=64)] = None,
    consequence: Annotated[str | None, Query(max_length=64)] = None,
    impact: Annotated[str | None, Query(max_length=16)] = None,
    clinvar: Annotated[str | None, Query(max_length=64)] = None,
    known: Annotated[str | None, Query(pattern="^(|known|novel)$")] = None,
    max_af: Annotated[str | None, Query(max_length=16)] = None,
    sort: Annotated[str, Query()] = "position",
    order: Annotated[str, Query()] = "asc",
    page: Annotated[int, Query(ge=1, le=1_000_000)] = 1,
) -> Response:
    ensure_available(job)
    af = _parse_af(max_af)
    query = VariantQuery(
        gene=gene or None, consequence=consequence or None,
        impact=impact if impact in IMPACTS else None, clinvar=clinvar or None,
        known={"known": True, "novel": False}.get(known or ""), max_af=af,
        sort=sort if sort in SORTS else "position", descending=order == "desc",
    )
    rows = variants.page(job, query, offset=(page - 1) * ROWS_PER_PAGE, limit=ROWS_PER_PAGE)
    filters = {"gene": gene or "", "consequence": consequence or "", "impact": query.impact or "",
               "clinvar": clinvar or "", "known": known or "",
               "max_af": max_af if af is not None else ""}
    return _render(
        request, "results.html", user=user, job=job, rows=rows, filters=filters,
        options=variants.filter_options(job), sort=query.sort,
        order="desc" if query.descending else "asc", page=page,
        pages=max(1, math.ceil(rows.total / ROWS_PER_PAGE)), charts=summary_charts(job.summary),
        sorts=list(SORTS),
    )


def _parse_af(value: str | None) -> float | None:
    if not value:
        return None
    try:
        af = float(value)
    except ValueError:
        raise Problem(422, "Maximum allele frequency must be a number between 0 and 1.") from None
    if not 0 <= af <= 1 or math.isnan(af):
        raise Problem(422, "Maximum allele frequency must be a number between 0 and 1.")
    return af


@router.get("/jobs/{job_id}/log")
def log_page(request: Request, user: PageUser, job: PageJob, settings: Settings,
             aws: Aws) -> Response:
    text = failure_log(job)
    truncated = False
    if text is None:
        key = result_key(job, "log")
        text, truncated = read_log(s3=aws.s3, bucket=settings.names.results_bucket, key=key)
    return _render(request, "log.html", user=user, job=job, text=text, truncated=truncated)


@router.get("/jobs/{job_id}/download/{kind}")
def download(job: PageJob, kind: ResultKind, settings: Settings, aws: Aws) -> Response:
    if kind == "log" and (text := failure_log(job)) is not None:
        return failure_log_download(job, text)
    key = result_key(job, kind)
    return RedirectResponse(presigned_download(
        s3=aws.s3, bucket=settings.names.results_bucket, key=key,
        file_name=download_name(job, kind, key), expires=settings.download_url_seconds,
    ), status_code=302)


@router.get("/jobs/{job_id}/input")
def download_input(job: PageJob, settings: Settings, aws: Aws) -> Response:
    if job.status is JobStatus.PENDING and not job.input_key:
        raise Problem(404, "The input file is not there.")
    return RedirectResponse(presigned_download(
        s3=aws.s3, bucket=settings.names.inputs_bucket, key=job.input_key,
        file_name=job.input_file_name, expires=settings.download_url_seconds,
    ), status_code=302)
