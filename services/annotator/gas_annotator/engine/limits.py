"""Caps on what one input may ask of the engine, so hostile input fails fast, with a reason.

Each cap is far above what a real VCF needs (see docs/annotation.md, "Input limits"); a file
over one is rejected with an InputError naming the line and the limit, before any bcftools work
on the part that broke it. Memory is bounded by the header and line caps (the reader never holds
more than one line and one block), time by the text and per-position caps.
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1 << 20
GB = 1 << 30


@dataclass(frozen=True)
class InputLimits:
    # All header lines together (## meta lines and #CHROM). The largest real headers (assemblies
    # with 100k+ contigs) are a few MB; a "header bomb" of ## lines would otherwise be held in
    # memory whole.
    max_header_bytes: int = 64 * MB
    # Header lines: bounds the per-line overhead (a header of 64 MB of "##" lines is 21 million
    # lines). Assemblies with 100k+ contigs have a few hundred thousand.
    max_header_lines: int = 2_000_000
    # One line. 4 MB holds a record with ~1,000,000 genotypes (GT only); the chunk stage reads
    # bcftools' output in 8 MB blocks (chunk.read_annotated) and a line must fit in one, with
    # room for the INFO fields annotation adds.
    max_line_bytes: int = 4 * MB
    # The whole text, after decompression. The service sets it to a multiple of the tier's upload
    # cap; this default is that multiple (100) of the premium cap (5 GB).
    max_text_bytes: int = 500 * GB
    # Records at one position. A real file has a handful (split multiallelics; a few dozen at
    # the most allelic STR sites); bcftools norm and annotate slow down quadratically with them.
    max_records_per_position: int = 1_000
    # Records that share their position with the record before them, over the whole file: bounds
    # the total extra work of crowded positions. Split multiallelic files have ~10-15 % of them.
    max_repeated_position_records: int = 10_000_000
    # Blank lines after the #CHROM line (VCF has none; a trailing one is common).
    max_blank_lines: int = 10_000


def size_text(n: int) -> str:
    """A limit as users read it: 64 MB, 1.5 GB, 512 bytes."""
    for unit, scale in (("GB", GB), ("MB", MB), ("KB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n} bytes"
