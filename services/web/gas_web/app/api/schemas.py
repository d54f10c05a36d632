"""Request and response bodies of the REST API, for validation and the OpenAPI docs."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from gas_core.settings import Tier
from gas_web.app.submissions import ASSEMBLY_PATTERN


class Profile(BaseModel):
    user_id: str
    name: str
    email: str
    tier: Tier
    tier_changed_at: str | None = None
    notify_email: bool = True


class TierChange(BaseModel):
    tier: Tier


class NewJob(BaseModel):
    file_name: str = Field(min_length=1, max_length=255, examples=["sample.vcf.gz"])
    assembly: str = Field(default="GRCh38", pattern=ASSEMBLY_PATTERN)


class PresignedPost(BaseModel):
    url: str
    fields: dict[str, str]


class NewJobUpload(BaseModel):
    job_id: str
    file_name: str = Field(description="The name the file is stored under (sanitized).")
    upload: PresignedPost = Field(
        description="POST the file as multipart/form-data to `url` with these `fields` first "
                    "and the file last (field name `file`).")
    max_bytes: int = Field(description="The largest file the caller's tier accepts.")


class JobEta(BaseModel):
    start: str = Field(description="Estimated start (UTC, ISO 8601).")
    finish: str = Field(description="Estimated finish (UTC, ISO 8601).")


class JobOut(BaseModel):
    job_id: str
    status: Literal["PENDING", "RUNNING", "COMPLETED", "FAILED"]
    storage: Literal["hot", "archiving", "archived", "restoring"]
    input_file_name: str
    assembly: str
    submitted_at: str | None
    started_at: str | None
    completed_at: str | None
    progress: float
    error: str | None
    summary: dict[str, Any] | None
    restore_tier: str | None = None
    restore_requested_at: str | None = None
    queue_position: int | None = Field(
        default=None,
        description="While PENDING: how many jobs, anyone's, submitted "
                    "before this one still wait (0: it is next; counting stops at 1000). "
                    "Otherwise null.")
    eta: JobEta | None = Field(
        default=None,
        description="While PENDING and once the annotators have "
                    "completed a job: estimated start and finish from their recent pace. "
                    "Otherwise null.")


class JobList(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


class SampleGenotype(BaseModel):
    sample: str
    gt: str | None
    zygosity: str | None = Field(description="het, hom_alt, hom_ref or missing")
    depth: int | None
    gq: int | None


class VariantRow(BaseModel):
    chrom: str | None
    pos: int | None
    id: str | None
    ref: str | None
    alt: str | None
    gene: str | None
    transcript: str | None
    consequence: str | None
    impact: str | None
    protein_change: str | None
    known_id: str | None
    clinvar: str | None
    allele_frequency: float | None
    biotype: str | None = None
    mane_select: bool | None = None
    nearest_gene: str | None = Field(default=None, description="Rows hitting no transcript.")
    distance: int | None = Field(default=None, description="bp to nearest_gene.")
    picked: bool | None = Field(default=None, description="The variant's row in the variant "
                                                          "view (one per variant).")
    variant_key: str | None = Field(default=None, examples=["21-10413612-G-A"])
    af: float | None = Field(default=None, description="The frequency in the AF field the "
                                                       "query uses (`af_field`).")
    genotype: str | None = Field(default=None, description="Single-sample inputs.")
    zygosity: str | None = Field(default=None, description="Single-sample inputs: het, "
                                                           "hom_alt, hom_ref or missing.")
    depth: int | None = None
    gq: int | None = None
    carriers: int | None = Field(default=None, description="Samples carrying the ALT allele.")
    genotypes: list[SampleGenotype] | None = Field(
        default=None, description="Per sample (inputs of at most 100 samples).")


class VariantList(BaseModel):
    items: list[VariantRow]
    next_cursor: str | None
    total: int = Field(description="Rows matching the filters.")


class AfFieldOut(BaseModel):
    column: str = Field(examples=["af_gnomade"])
    field: str = Field(examples=["gnomADe_AF"])
    label: str = Field(examples=["gnomAD exomes"])


class VariantFields(BaseModel):
    """What a job's variant table holds: the AF fields and samples a query may name."""

    af_fields: list[AfFieldOut]
    af_default: str | None
    samples: list[str]
    samples_truncated: bool
    has_samples: bool
    single_sample: bool
    has_genotypes: bool
    has_picked: bool
    rows: int


class TermCount(BaseModel):
    term: str
    count: int


class ImpactCount(BaseModel):
    impact: str | None
    count: int


class GeneCount(BaseModel):
    gene: str
    count: int


class ClinvarHit(BaseModel):
    variant_key: str
    chrom: str
    pos: int
    ref: str
    alt: str
    gene: str | None
    transcript: str | None
    consequence: str | None
    protein_change: str | None
    known_id: str | None
    clinvar: str | None


class SummaryTotals(BaseModel):
    variants: int
    rows: int
    high_impact: int = Field(description="Variants with a HIGH-impact row in the set.")
    clinvar_plp: int = Field(description="ClinVar pathogenic or likely pathogenic variants.")


class VariantSummary(BaseModel):
    view: Literal["variant", "transcript"]
    totals: SummaryTotals
    consequences: list[TermCount] = Field(description="Every term, most frequent first.")
    impacts: list[ImpactCount]
    genes: list[GeneCount] = Field(description="The 50 genes with the most variants.")
    clinvar_plp: list[ClinvarHit] = Field(description="At most 500, in genomic order.")
    clinvar_plp_truncated: bool


class TranscriptRow(BaseModel):
    gene: str | None
    transcript: str | None
    biotype: str | None
    consequence: str | None
    impact: str | None
    protein_change: str | None
    mane_select: bool | None
    picked: bool | None


class Frequency(BaseModel):
    column: str
    field: str
    label: str
    value: float | None


class VariantLink(BaseModel):
    name: Literal["dbsnp", "clinvar", "gnomad", "ensembl"]
    label: str
    url: str


class VariantDetail(BaseModel):
    variant_key: str
    chrom: str
    pos: int
    ref: str
    alt: str
    id: str | None
    known_ids: list[str]
    clinvar: str | None
    clinvar_terms: list[str]
    clinvar_plp: bool
    allele_frequency: float | None
    af_default: str | None
    frequencies: list[Frequency]
    nearest_gene: str | None
    distance: int | None
    transcripts: list[TranscriptRow]
    carriers: int | None
    samples_truncated: bool
    genotypes: list[SampleGenotype] | None
    links: list[VariantLink]


class PresetOut(BaseModel):
    id: str = Field(examples=["rare-coding"])
    label: str
    description: str
    params: dict[str, str] = Field(description="Query parameters; explicit ones override them.")


class AuthConfig(BaseModel):
    mode: Literal["globus", "dev"]
    globus_native_client_id: str | None = None
    scopes: list[str] = Field(default_factory=list)
