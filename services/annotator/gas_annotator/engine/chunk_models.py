"""What a chunk worker is given (the bundle's files for the chunk's contig, the engine's
settings) and what it hands back to the job process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The INFO key our annotate pass gives the bundle's default AF field (allele_frequency).
DEFAULT_AF_KEY = "GAS_AF"


@dataclass(frozen=True)
class KnownFile:
    """One known-variant file and which of its INFO fields annotate copies into ours."""

    path: str
    id_is_rsid: bool
    af: str | None  # the default AF field -> GAS_AF
    clnsig: str | None
    extra_af: tuple[tuple[str, str], ...] = ()  # (its INFO field, our GAS_AF_<NAME> key)


@dataclass(frozen=True)
class ChunkContext:
    fasta: str
    gff: str | None
    known: list[KnownFile]
    genes: str
    mane: str | None
    to_user: dict[str, str]  # bundle contig -> user's name
    context_distance: int
    norm_window_records: int
    known_region_gap_bp: int = 10_000
    local_csq: bool = True
    presort: bool = False
    # The af_<name> result columns in display order, each with the INFO key it is read from
    # (DEFAULT_AF_KEY for the one allele_frequency copies), and the Parquet metadata naming them.
    af_columns: tuple[tuple[str, str], ...] = ()
    parquet_metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class ChunkResult:
    index: int
    vcf: Path
    tsv: Path
    arrow: Path
    records_in: int
    variants: int
    rows: int
    mismatch_removed: int
    split: int
    realigned: int
    stats: dict[str, Any]
    log: list[str] = field(default_factory=list)
    # The VCF header (every chunk's is the same); ``vcf`` is the body, BGZF without EOF block.
    header: bytes = b""
    tsv_columns: list[str] = field(default_factory=list)
    # The member's own tabix index (None when htslib refused it) and its first and last
    # record's (contig, POS, contig, POS): the job process merges the indexes (tabix_merge).
    vcf_index: Path | None = None
    span: tuple[str, int, str, int] | None = None


@dataclass
class Staged:
    """What the bcftools stages leave for the Python stages of a chunk."""

    work: Path
    annotated: Path  # the last pass's VCF text
    norm_counts: list[int]  # norm's total/split/joined/realigned/mismatch_removed
    window: int
    regions: int
    timings: dict[str, float]
    log: list[str]
