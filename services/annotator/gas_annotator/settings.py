"""Settings of the annotator service."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Self

from pydantic import Field, model_validator

from gas_annotator.engine.limits import InputLimits
from gas_core.settings import Tier, WorkerSettings


class AnnotatorSettings(WorkerSettings):
    # Annotation jobs are long: one or two per pod; parallelism is inside a job.
    worker_concurrency: int = Field(default=1, ge=1, le=16)
    worker_visibility_seconds: int = Field(default=300, ge=30, le=43200)
    # Engine processes per job (region chunks in parallel).
    annotator_workers: int = Field(default=1, ge=1, le=64)
    # A job's lease; renewed every third of it while the job runs. A redelivered message that
    # finds another worker's live lease comes back just after it would expire (RetryLater),
    # so the lease need not be shorter than the visibility timeout (see docs/architecture.md,
    # "Leases").
    annotator_lease_seconds: int = Field(default=120, ge=10)
    # Progress is written to the job at most this often.
    annotator_progress_interval_seconds: float = Field(default=3.0, gt=0)
    # A job failing for internal reasons this many times is marked FAILED instead of retried.
    annotator_max_attempts: int = Field(default=3, ge=1)
    # Local scratch of running jobs. Unset: `{system temp}/gas-annotator-{name_prefix}`, so
    # stacks sharing a host never share it (pods point it at their emptyDir).
    annotator_scratch_dir: str | None = None
    # Wall-clock limit of one job (download + annotation): past it the job FAILS with a
    # reason instead of holding its lease forever.
    annotator_job_timeout_seconds: float = Field(default=2 * 3600, gt=0)
    # Where pods pull the reference bundle from, e.g. s3://gas-results/references/GRCh38/115/;
    # unset locally, where GAS_REFERENCE_DIR points at a bundle directory.
    annotator_reference_uri: str | None = None
    annotator_reference_cache_dir: str = "/tmp/gas-reference"  # noqa: S108
    # Variant limits per tier (records after splitting multiallelics).
    free_max_variants: int = Field(default=1_000_000, ge=1)
    premium_max_variants: int = Field(default=50_000_000, ge=1)
    # Input limits (engine/limits.py; docs/annotation.md, "Input limits"). The decompressed text
    # may be at most this multiple of the tier's upload cap (a gzip bomb expands ~1000x; real
    # VCF.gz 5-60x).
    annotator_max_text_multiple: int = Field(default=100, ge=1)
    annotator_max_header_bytes: int = Field(default=InputLimits.max_header_bytes, ge=1024)
    annotator_max_header_lines: int = Field(default=InputLimits.max_header_lines, ge=10)
    annotator_max_line_bytes: int = Field(default=InputLimits.max_line_bytes, ge=1024)
    annotator_max_records_per_position: int = Field(
        default=InputLimits.max_records_per_position, ge=1
    )
    annotator_max_repeated_position_records: int = Field(
        default=InputLimits.max_repeated_position_records, ge=0
    )
    annotator_max_blank_lines: int = Field(default=InputLimits.max_blank_lines, ge=0)

    @model_validator(mode="after")
    def _reference_given(self) -> Self:
        if self.annotator_reference_uri is None and self.reference_dir is None:
            raise ValueError("set GAS_REFERENCE_DIR or GAS_ANNOTATOR_REFERENCE_URI")
        return self

    @property
    def scratch_root(self) -> Path:
        if self.annotator_scratch_dir:
            return Path(self.annotator_scratch_dir)
        return Path(tempfile.gettempdir()) / f"gas-annotator-{self.name_prefix}"

    def max_variants(self, tier: Tier) -> int:
        return self.premium_max_variants if tier is Tier.PREMIUM else self.free_max_variants

    def input_limits(self, tier: Tier) -> InputLimits:
        return InputLimits(
            max_header_bytes=self.annotator_max_header_bytes,
            max_header_lines=self.annotator_max_header_lines,
            max_line_bytes=self.annotator_max_line_bytes,
            max_text_bytes=self.annotator_max_text_multiple * self.max_upload_bytes(tier),
            max_records_per_position=self.annotator_max_records_per_position,
            max_repeated_position_records=self.annotator_max_repeated_position_records,
            max_blank_lines=self.annotator_max_blank_lines,
        )
