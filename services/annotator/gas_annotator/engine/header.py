"""The VCF header: read and check the user's, and write the one every chunk file starts with."""

from __future__ import annotations

from dataclasses import dataclass

from gas_annotator.engine.errors import InputError
from gas_annotator.engine.limits import InputLimits, size_text
from gas_annotator.engine.textio import Reader, text_line

FIXED_COLUMNS = ("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
# Our INFO fields: a user's file that already has them (re-annotation) must not clash with ours.
_OWN_INFO_PREFIXES = ("##INFO=<ID=BCSQ,", "##INFO=<ID=GAS_")

OWN_HEADER_LINES = (
    '##INFO=<ID=BCSQ,Number=.,Type=String,Description="Local consequence annotation from '
    "BCSQ (bcftools csq --local-csq). Format: Consequence|gene|transcript|biotype|strand|"
    'amino_acid_change|dna_change">',
    '##INFO=<ID=GAS_KNOWN_ID,Number=.,Type=String,Description="ID of the matching known variant '
    '(dbSNP rsID) in the reference bundle">',
    '##INFO=<ID=GAS_AF,Number=A,Type=Float,Description="Population allele frequency of the '
    'matching known variant (field named in the bundle manifest)">',
    '##INFO=<ID=GAS_CLNSIG,Number=.,Type=String,Description="ClinVar clinical significance of '
    'the matching known variant">',
)


@dataclass
class Header:
    meta: list[str]  # the ## lines we keep (not ##contig, not our own INFO), newline-terminated
    columns: list[str]  # of the #CHROM line, without the '#'
    lines: int  # header lines, the #CHROM line included


def read_header(reader: Reader, limits: InputLimits) -> Header:
    """Read up to and including the #CHROM line, within the limits on header size."""
    max_bytes = limits.max_header_bytes
    meta: list[str] = []
    lineno = 0
    size = 0
    while True:
        raw = reader.readline(lineno + 1)
        if not raw:
            break
        lineno += 1
        size += len(raw)
        if size > max_bytes:
            raise InputError(
                f"line {lineno}: the header is larger than {size_text(max_bytes)}, the limit "
                "(is this a VCF?)"
            )
        if lineno > limits.max_header_lines:
            raise InputError(
                f"line {lineno}: the header has more than {limits.max_header_lines:,} lines, "
                "the limit (is this a VCF?)"
            )
        line = text_line(raw, lineno)
        if line.startswith("##"):
            if line.startswith("##contig=") or line.startswith(_OWN_INFO_PREFIXES):
                continue
            meta.append(line.rstrip("\r\n") + "\n")
            continue
        if line.startswith(("#CHROM", "#chrom")):
            columns = line.rstrip("\r\n").lstrip("#").split("\t")
            if tuple(c.upper() for c in columns[:8]) != FIXED_COLUMNS:
                raise InputError(
                    f"line {lineno}: the #CHROM header must list the columns "
                    "CHROM POS ID REF ALT QUAL FILTER INFO, tab-separated"
                )
            if len(columns) > 8 and columns[8] != "FORMAT":
                raise InputError(
                    f"line {lineno}: the 9th column of the #CHROM header must be FORMAT"
                )
            return Header(meta, columns, lineno)
        if not line.strip():
            continue
        raise InputError(
            f"line {lineno}: missing #CHROM header line before the first record; "
            "a VCF needs '#CHROM POS ID REF ALT QUAL FILTER INFO' before its records"
        )
    if lineno == 0 or not meta:
        raise InputError("the file is empty")
    raise InputError("missing #CHROM header line: the file has no records header; is it a VCF?")


def chunk_header(header: Header, contigs: dict[str, int]) -> str:
    """The header of every chunk file: the user's meta lines, the bundle's contigs, ours."""
    meta, columns = header.meta, header.columns
    contig_lines = [f"##contig=<ID={name},length={length}>\n" for name, length in contigs.items()]
    fileformat = [m for m in meta if m.startswith("##fileformat")] or ["##fileformat=VCFv4.2\n"]
    rest = [m for m in meta if not m.startswith("##fileformat")]
    if len(columns) > 9 and not any(m.startswith("##FORMAT=<ID=GT,") for m in meta):
        # htslib would guess GT is a String, and csq then cannot read its own input back.
        rest.append(
            '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype '
            '(declaration added by GAS: the input used GT without declaring it)">\n'
        )
    return "".join(
        fileformat
        + rest
        + contig_lines
        + [line + "\n" for line in OWN_HEADER_LINES]
        + ["#" + "\t".join(columns) + "\n"]
    )
