"""/api/v1/jobs/{id}/variants: the variant table of a finished job — filtered pages, a filtered
summary, one variant's detail, streamed filtered exports — and /api/v1/presets.

Every route takes the same filter parameters (also the results page's and the CLI's); they are
parsed in one place (gas_web.app.variants.query_from_params). The table needs the result
Parquet, so these answer 409 while the results are archived or restoring, like downloads.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query
from fastapi.responses import StreamingResponse

from gas_web.app.api.schemas import (
    PresetOut,
    VariantDetail,
    VariantFields,
    VariantList,
    VariantSummary,
)
from gas_web.app.deps import CurrentUser, Settings, UserJob, Variants
from gas_web.app.results import ensure_available, filtered_export_response
from gas_web.app.variants import (
    PRESETS,
    SORTS,
    VariantQuery,
    decode_cursor,
    encode_cursor,
    query_from_params,
)

router = APIRouter(prefix="/api/v1", tags=["variants"])
_NOT_READY: dict[int | str, dict[str, Any]] = {
    409: {"description": "Results archived, restoring, or not ready"}}
_BAD_QUERY: dict[int | str, dict[str, Any]] = {400: {
    "description": "A filter this job cannot answer (unknown AF field or sample, zygosity "
                   "without a sample, unknown preset)"}}
_TERMS = "One value or a comma list (any matches)."
_IMPACT = "(HIGH|MODERATE|LOW|MODIFIER)"


def variant_query(
    *,
    gene: Annotated[str | None, Query(max_length=64)] = None,
    consequence: Annotated[str | None, Query(max_length=512, description=_TERMS)] = None,
    impact: Annotated[str | None, Query(
        max_length=64, pattern=f"^(?i:{_IMPACT}(,{_IMPACT})*)$",
        description=_TERMS)] = None,
    clinvar: Annotated[str | None, Query(max_length=256, description=_TERMS)] = None,
    known: Annotated[bool | None, Query(description="true: known variants; false: novel")] = None,
    max_af: Annotated[float | None, Query(ge=0, le=1)] = None,
    af_field: Annotated[str | None, Query(
        max_length=64, description="The AF column `max_af` and the AF sort use (see "
                                   "`/variants/fields`); default `allele_frequency`.")] = None,
    keep_no_af: Annotated[bool, Query(
        description="With max_af: keep variants with no frequency (default: dropped).")] = False,
    view: Annotated[Literal["variant", "transcript"], Query(
        description="variant: one row per variant (its picked transcript); transcript: "
                    "every transcript row.")] = "variant",
    carriers: Annotated[Literal["only", "all"] | None, Query(
        description="only (default for inputs with samples): sites where a sample, or the "
                    "selected sample, carries the ALT allele.")] = None,
    zygosity: Annotated[Literal["het", "hom_alt", "hom_ref", "missing"] | None, Query(
        description="Single-sample inputs, or with `sample`.")] = None,
    sample: Annotated[str | None, Query(max_length=200)] = None,
    preset: Annotated[str | None, Query(
        max_length=64, description="A built-in preset (`/api/v1/presets`); explicit "
                                   "parameters override its own.")] = None,
    sort: Annotated[str | None, Query(pattern="^(" + "|".join(SORTS) + ")$")] = None,
    order: Annotated[Literal["asc", "desc"] | None, Query()] = None,
) -> VariantQuery:
    # Only what the caller gave, so a preset's parameters apply unless overridden.
    given: dict[str, Any] = {
        "gene": gene, "consequence": consequence, "impact": impact, "clinvar": clinvar,
        "known": known, "max_af": max_af, "af_field": af_field,
        "keep_no_af": keep_no_af or None, "view": view if view != "variant" else None,
        "carriers": carriers, "zygosity": zygosity, "sample": sample, "preset": preset,
        "sort": sort, "order": order,
    }
    return query_from_params(given)


Filters = Annotated[VariantQuery, Depends(variant_query)]


@router.get("/jobs/{job_id}/variants", response_model=VariantList,
            responses={400: {"description": "The cursor or a filter is not valid"}, **_NOT_READY})
def list_variants(
    *,
    job: UserJob,
    variants: Variants,
    query: Filters,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Any:
    """Filtered rows of the annotated result: the TSV columns first, then the variant key,
    picked flag, AF in use and genotypes. One row per variant unless `view=transcript`."""
    ensure_available(job)  # the same rules as downloads: 409 while archived or restoring
    page = variants.page(job, query, offset=decode_cursor(cursor), limit=limit)
    next_offset = page.next_offset
    return {
        "items": page.items,
        "next_cursor": encode_cursor(next_offset) if next_offset is not None else None,
        "total": page.total,
    }


@router.get("/jobs/{job_id}/variants/fields", response_model=VariantFields,
            responses=_NOT_READY)
def read_variant_fields(job: UserJob, variants: Variants) -> Any:
    """The AF fields (for `af_field`) and samples (for `sample`) of this job's table."""
    ensure_available(job)
    return variants.info(job).to_api()


@router.get("/jobs/{job_id}/variants/summary", response_model=VariantSummary,
            responses={**_BAD_QUERY, **_NOT_READY})
def variant_summary(job: UserJob, variants: Variants, query: Filters) -> Any:
    """Counts over the filtered set for charts: every consequence term, impacts, the top 50
    genes, the ClinVar pathogenic/likely pathogenic variants, and totals."""
    ensure_available(job)
    return variants.summary(job, query)


@router.get(
    "/jobs/{job_id}/variants/export",
    response_class=StreamingResponse,
    responses={
        200: {"description": "The filtered set, streamed: TSV (the annotator's TSV columns) "
                             "or a bgzipped VCF (one record per variant, genomic order)",
              "content": {"text/tab-separated-values": {"schema": {"type": "string"}},
                          "application/gzip": {"schema": {"type": "string",
                                                          "format": "binary"}}}},
        **_BAD_QUERY, **_NOT_READY,
    },
)
def export_variants(
    job: UserJob,
    variants: Variants,
    query: Filters,
    format: Annotated[Literal["tsv", "vcf"], Query()] = "tsv",
) -> StreamingResponse:
    """Download exactly the filtered, sorted set (the same parameters as `/variants`)."""
    ensure_available(job)
    chunks = variants.export(job, query, format)
    return filtered_export_response(job, chunks, format)


@router.get("/jobs/{job_id}/variants/{variant_key}", response_model=VariantDetail,
            responses={404: {"description": "No such job (or another user's), or no such "
                                            "variant in it"}, **_NOT_READY})
def read_variant(
    job: UserJob,
    variants: Variants,
    settings: Settings,
    variant_key: Annotated[str, Path(max_length=1100, examples=["21-10413612-G-A"])],
) -> Any:
    """One variant (`{chrom}-{pos}-{ref}-{alt}`): every transcript row, every AF field,
    ClinVar, known ids, genotypes, and links to dbSNP, ClinVar, gnomAD and Ensembl."""
    ensure_available(job)
    return variants.detail(job, variant_key, settings.link_templates)


@router.get("/presets", response_model=list[PresetOut])
def list_presets(user: CurrentUser) -> Any:
    """Built-in filter presets: pass `preset=<id>` to a variants route."""
    return [preset.to_api() for preset in PRESETS.values()]
