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


class JobList(BaseModel):
    items: list[JobOut]
    next_cursor: str | None


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


class VariantList(BaseModel):
    items: list[VariantRow]
    next_cursor: str | None
    total: int = Field(description="Rows matching the filters.")


class AuthConfig(BaseModel):
    mode: Literal["globus", "dev"]
    globus_native_client_id: str | None = None
    scopes: list[str] = Field(default_factory=list)
