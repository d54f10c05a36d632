"""Pages: home, annotate, jobs, one job, its results browser and log, and downloads."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response

from gas_core.jobs import InvalidCursor, Job, JobStatus
from gas_web.app.charts import summary_charts
from gas_web.app.core.errors import Problem
from gas_web.app.deps import Aws, Jobs, MaybeUser, PageJob, PageUser, Settings
from gas_web.app.results import (
    RESULT_KINDS,
    RESULT_LABELS,
    ResultKind,
    availability,
    download_name,
    failure_log,
    failure_log_download,
    presigned_download,
    read_log,
    restore_eta,
    result_key,
)
from gas_web.app.variants import LinkTemplates
from gas_web.app.web.routes import results

router = APIRouter(include_in_schema=False)
router.include_router(results.router)  # the results browser, variant detail and export
JOBS_PER_PAGE = 20


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
    settings: Settings,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    try:
        page = jobs.list_jobs(user.user_id, limit=JOBS_PER_PAGE, cursor=cursor)
    except InvalidCursor:
        return RedirectResponse("/jobs", status_code=303)
    active = any(not job.is_finished for job in page.items)
    queue = jobs.queue_statuses(page.items, slots=settings.annotator_slots, now=datetime.now(UTC))
    return _render(request, "jobs.html", user=user, jobs=page.items, queue=queue,
                   next_cursor=page.next_cursor, first_page=cursor is None, active=active)


@router.get("/jobs/{job_id}")
def job_page(request: Request, user: PageUser, job: PageJob, settings: Settings) -> Response:
    state = availability(job)
    kinds = [kind for kind in RESULT_KINDS if kind in job.result_keys]
    return _render(
        request, "job.html", user=user, job=job, state=state, kinds=kinds, labels=RESULT_LABELS,
        restore_eta=restore_eta(job) if job.restore_tier else None,
        # The summary stays with the job whatever its storage state (it is never archived).
        charts=summary_charts(job.summary) if job.status is JobStatus.COMPLETED else [],
        **_plp_panel(job, linked=state.ready, templates=settings.link_templates),
    )


def _plp_panel(job: Job, *, linked: bool, templates: LinkTemplates) -> dict[str, Any]:
    """The whole file's ClinVar P/LP variants for the job page (details need the table, so
    they are linked only while the results are ready)."""
    summary = job.summary or {}
    hits = summary.get("clinvar_pathogenic")
    if job.status is not JobStatus.COMPLETED or not isinstance(hits, list):
        return {"plp": None}
    entries = results.plp_entries(job, [h for h in hits if isinstance(h, dict)], {}, templates)
    if not linked:
        entries = [{**entry, "href": None} for entry in entries]
    counts = summary.get("counts")
    total = counts.get("clinvar_plp_variants") if isinstance(counts, dict) else None
    if not isinstance(total, int):
        total = summary.get("clinvar_pathogenic_count")
    return {"plp": entries[:results.PLP_SHOWN], "plp_scope": "whole file",
            "plp_total": total if isinstance(total, int) else len(entries)}


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
