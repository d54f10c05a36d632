"""What a chunk worker is given (the bundle's files for the chunk's contig, the engine's
settings) and what it hands back to the job process."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ChunkContext:
    fasta: str
    gff: str | None
    known: list[tuple[str, bool, str | None, str | None]]  # path, id_is_rsid, af, clnsig
    genes: str
    mane: str | None
    to_user: dict[str, str]  # bundle contig -> user's name
    context_distance: int
    norm_window_records: int
    known_region_gap_bp: int = 10_000
    local_csq: bool = True
    presort: bool = False


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
