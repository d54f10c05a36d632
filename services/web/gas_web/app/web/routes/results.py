"""The results browser (a job's variants, filtered, with charts of the filtered set), one
variant's detail page, and the filtered export, for people signed in with the session cookie.

Filter values arrive as the same query parameters the API and the CLI take and are parsed by
the data layer (`query_from_params`), after the job is known: a bad value is a 400 page that
links back to the same view without the bad value, with the signed-in user in the navigation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from gas_core.jobs import Job, UserProfile
from gas_web.app.charts import summary_charts
from gas_web.app.core.errors import Problem
from gas_web.app.deps import PageJob, PageUser, Settings, Variants
from gas_web.app.results import ensure_available, filtered_export_response
from gas_web.app.variants import (
    PRESETS,
    SORTS,
    LinkTemplates,
    Preset,
    ResultInfo,
    VariantQuery,
    query_from_params,
    query_params,
    variant_key,
)
from gas_web.app.variants.links import rsids
from gas_web.app.web.routes.saved_filters import saved_filters_context

router = APIRouter(include_in_schema=False)
ROWS_PER_PAGE = 50
MAX_PAGE_NUMBER = 1_000_000
# The parameters of a view (the API's names); anything else in a query is ignored.
QUERY_KEYS = ("preset", "gene", "consequence", "impact", "clinvar", "known", "max_af",
              "af_field", "keep_no_af", "view", "carriers", "zygosity", "sample", "sort",
              "order", "desc")
# The job page's ClinVar panel lists at most this many of the summary's hits.
PLP_SHOWN = 50


def _render(request: Request, template: str, **context: Any) -> Response:
    response: Response = request.app.state.templates.TemplateResponse(request, template, context)
    return response


def _given(request: Request) -> dict[str, str]:
    params = {k: v for k, v in request.query_params.items() if k in QUERY_KEYS}
    # Links written before the API's names: known=known|novel.
    if params.get("known") in ("known", "novel"):
        params["known"] = "true" if params["known"] == "known" else "false"
    return params


def _href(path: str, params: dict[str, str]) -> str:
    kept = {k: v for k, v in params.items() if v not in ("", None)}
    return path + (f"?{urlencode(kept)}" if kept else "")


def _results_path(job: Job) -> str:
    return f"/jobs/{job.job_id}/results"


def _remember(request: Request, user: UserProfile, links: list[tuple[str, str]]) -> None:
    """What an error page shows: this user in the navigation, and these ways back."""
    request.state.page_user = user
    request.state.back_links = links


def _bad_field(problem: Problem) -> str | None:
    errors = problem.extra.get("errors")
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        field = errors[0].get("field")
        return str(field) if field else None
    return None


def _parse(request: Request, user: UserProfile, job: Job, *, call: Callable[[], Any]) -> Any:
    """Run `call` (parsing or a query that may find a parameter this job cannot answer); a
    400 leaves a link back to the results without the offending parameter."""
    try:
        return call()
    except Problem as problem:
        if problem.status == 400:
            given = _given(request)
            field = _bad_field(problem)
            # An unknown AF field or sample (found by the query) names no field: drop both.
            drop = {field} if field else {"af_field", "sample", "zygosity"}
            kept = {k: v for k, v in given.items() if k not in drop}
            _remember(request, user, [
                ("Back to the variants (your other filters kept)",
                 _href(_results_path(job), kept)),
                ("Back to the job", f"/jobs/{job.job_id}")])
        raise


def _view_params(query: VariantQuery, given: dict[str, str]) -> dict[str, str]:
    """The view's parameters for links (pages, sort, export, detail), the preset expanded."""
    params = query_params(query)
    if given.get("preset") and given["preset"] in PRESETS:
        params["preset"] = given["preset"]
    return params


def _preset_href(job: Job, preset: Preset, params: dict[str, str]) -> str:
    # A preset replaces the filters and keeps how the rows are shown.
    kept: dict[str, str] = {k: params[k] for k in ("view", "carriers", "sample", "af_field")
                            if k in params}
    return _href(_results_path(job), {**kept, "preset": preset.id})


def _detail_href(job: Job, row: dict[str, Any], params: dict[str, str]) -> str:
    key = row.get("variant_key") or variant_key(str(row.get("chrom")), int(row.get("pos") or 0),
                                                str(row.get("ref")), str(row.get("alt")))
    return _href(f"/jobs/{job.job_id}/variants/{quote(str(key), safe='')}", params)


def _page_number(request: Request) -> int:
    text = request.query_params.get("page", "1").strip() or "1"
    if not text.isdigit() or not 1 <= int(text) <= MAX_PAGE_NUMBER:
        raise Problem(400, f"page must be a whole number from 1 to {MAX_PAGE_NUMBER:,}.",
                      title="Invalid page", errors=[{"field": "page", "message": "invalid"}])
    return int(text)


def _sample_row(row: dict[str, Any], sample: str | None) -> dict[str, Any]:
    """A multi-sample row with the selected sample's genotype as flat fields."""
    if sample and row.get("genotypes"):
        for entry in row["genotypes"]:
            if entry.get("sample") == sample:
                return {**row, "genotype": entry.get("gt"), "zygosity": entry.get("zygosity")}
    return row


def plp_entries(job: Job, hits: list[dict[str, Any]], params: dict[str, str],
                templates: LinkTemplates) -> list[dict[str, Any]]:
    """ClinVar P/LP hits (filtered summary or the job's summary) with a detail link and, for
    an rsID, its ClinVar page."""
    entries = []
    for hit in hits:
        key = hit.get("variant_key")
        if not key and all(hit.get(k) is not None for k in ("chrom", "pos", "ref", "alt")):
            key = variant_key(str(hit["chrom"]), int(hit["pos"]), str(hit["ref"]), str(hit["alt"]))
        known = hit.get("known_id") or (hit.get("id") if hit.get("id") not in (None, ".") else None)
        entries.append({
            "gene": hit.get("gene"), "protein_change": hit.get("protein_change"),
            "known_id": known, "clinvar": hit.get("clinvar"),
            "href": _href(f"/jobs/{job.job_id}/variants/{quote(str(key), safe='')}", params)
            if key else None,
            "clinvar_links": [(rsid, templates.clinvar.format(rsid=quote(rsid)))
                              for rsid in rsids(str(known or ""))],
        })
    return entries


def _af_choice(info: ResultInfo, query: VariantQuery) -> tuple[list[Any], Any]:
    """(the AF fields to offer, the one in use). The column `allele_frequency` copies is
    offered once, as the default, unless a link names it."""
    fields = info.af_columns()
    active = fields.get(query.af_field or "allele_frequency", fields["allele_frequency"])
    offered = [af for af in fields.values()
               if af.column != info.af_default or af.column == active.column]
    return offered, active


@router.get("/jobs/{job_id}/results")
def results_browser(request: Request, user: PageUser, job: PageJob, variants: Variants,
                    settings: Settings) -> Response:
    _remember(request, user, [("Back to the job", f"/jobs/{job.job_id}")])
    ensure_available(job)
    given = _given(request)
    query: VariantQuery = _parse(request, user, job, call=lambda: query_from_params(given))
    page = _parse(request, user, job, call=lambda: _page_number(request))
    params = _view_params(query, given)
    # From here on an error (a 500) offers the very same view again.
    _remember(request, user, [("Back to the variants (same filters)",
                               _href(_results_path(job), {**params, "page": str(page)})),
                              ("Back to the job", f"/jobs/{job.job_id}")])
    info = variants.info(job)
    multi_sample = info.has_samples and not info.single_sample
    rows = _parse(request, user, job, call=lambda: variants.page(
        job, query, offset=(page - 1) * ROWS_PER_PAGE, limit=ROWS_PER_PAGE,
        genotypes=not multi_sample or bool(query.sample)))  # else the table shows carriers
    # The filtered summary scans the whole set (0.4-0.6 s at 4M rows, the page ~0.2 s): unless
    # kept from an earlier request for this filter, the rows are shown first and the page
    # loads the summary on its own (`filtered_summary`; without script, a link asks for it
    # inline).
    summary = (variants.summary(job, query) if request.query_params.get("summary") == "inline"
               else variants.kept_summary(job, query))
    pages = max(1, math.ceil(rows.total / ROWS_PER_PAGE))
    af_fields, active_af = _af_choice(info, query)
    filters = {**params, "known": params.get("known", ""), "view": query.view,
               "carriers": query.carriers or ("only" if info.has_samples else "all")}
    results_path = _results_path(job)
    return _render(
        request, "results.html", user=user, job=job, info=info,
        rows=rows.__class__(items=[_sample_row(r, query.sample) for r in rows.items],
                            total=rows.total, offset=rows.offset, limit=rows.limit),
        filters=filters, options=variants.filter_options(job), sort=query.sort,
        order="desc" if query.descending else "asc", page=page, pages=pages,
        past_end=page > pages, last_page_href=_href(results_path, {**params, "page": str(pages)}),
        variant_view=query.view == "variant", presets=list(PRESETS.values()),
        preset_href=lambda preset: _preset_href(job, preset, params),
        af_fields=af_fields, active_af=active_af,
        show_genotype=info.single_sample or bool(query.sample and info.has_genotypes),
        show_carriers=multi_sample and not query.sample,
        summary_loaded=summary is not None,
        summary_href=_href(f"{results_path}/summary", params),
        summary_inline_href=_href(results_path, {**params, "page": str(page),
                                                 "summary": "inline"}),
        **(_summary_context(job, summary, params, settings.link_templates)
           if summary is not None else {}),
        sorts=list(SORTS),
        href=lambda **changes: _href(results_path, {
            **params, "page": str(page),
            **{k: (str(v) if v is not None else "") for k, v in changes.items()}}),
        export_href=lambda fmt: _href(f"{results_path}/export", {**params, "format": fmt}),
        detail_href=lambda row: _detail_href(job, row, params),
        **saved_filters_context(request, user),
    )


def _summary_context(job: Job, summary: dict[str, Any], params: dict[str, str],
                     templates: LinkTemplates) -> dict[str, Any]:
    """What _filtered_summary.html shows of a filtered summary."""
    return {
        "charts": summary_charts(summary), "totals": summary.get("totals"),
        "plp": plp_entries(job, summary.get("clinvar_plp") or [], params, templates),
        "plp_scope": "filtered", "plp_total": (summary.get("totals") or {}).get("clinvar_plp"),
    }


@router.get("/jobs/{job_id}/results/summary")
def filtered_summary(request: Request, user: PageUser, job: PageJob, variants: Variants,
                     settings: Settings) -> Response:
    """The results page's summary of its filtered set (totals, charts, ClinVar P/LP), as the
    HTML fragment the page inserts once its rows are shown."""
    given = _given(request)
    _remember(request, user, [("Back to the variants (same filters)",
                               _href(_results_path(job), given)),
                              ("Back to the job", f"/jobs/{job.job_id}")])
    ensure_available(job)
    query: VariantQuery = _parse(request, user, job, call=lambda: query_from_params(given))
    summary = variants.summary(job, query)
    params = _view_params(query, given)
    return _render(request, "_filtered_summary.html", job=job,
                   variant_view=query.view == "variant",
                   **_summary_context(job, summary, params, settings.link_templates))


@router.get("/jobs/{job_id}/results/export")
def export_results(request: Request, user: PageUser, job: PageJob,
                   variants: Variants) -> Response:
    """Exactly the browser's filtered, sorted set (every page), streamed as TSV or VCF.gz."""
    given = _given(request)
    _remember(request, user, [("Back to the variants (same filters)",
                               _href(_results_path(job), given)),
                              ("Back to the job", f"/jobs/{job.job_id}")])
    ensure_available(job)
    fmt_text = request.query_params.get("format", "tsv")
    if fmt_text not in ("tsv", "vcf"):
        raise Problem(400, "format must be tsv or vcf.", title="Invalid format")
    fmt: Literal["tsv", "vcf"] = "tsv" if fmt_text == "tsv" else "vcf"
    query: VariantQuery = _parse(request, user, job, call=lambda: query_from_params(given))
    chunks = _parse(request, user, job, call=lambda: variants.export(job, query, fmt))
    return filtered_export_response(job, chunks, fmt)


@router.get("/jobs/{job_id}/variants/{key}")
def variant_page(*, request: Request, user: PageUser, job: PageJob, variants: Variants,
                 settings: Settings, key: str) -> Response:
    """One variant: every transcript, every AF field, ClinVar, genotypes and outbound links.
    The query string is the results view it was opened from (kept for the way back)."""
    given = _given(request)
    back = _href(_results_path(job), given)
    _remember(request, user, [("Back to the variants (same filters)", back),
                              ("Back to the job", f"/jobs/{job.job_id}")])
    ensure_available(job)
    if len(key) > 1100:
        raise Problem(404, "No such variant in this job.")
    detail = variants.detail(job, key, settings.link_templates)
    return _render(request, "variant.html", user=user, job=job, variant=detail, back_href=back)
