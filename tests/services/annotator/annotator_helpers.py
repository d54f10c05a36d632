"""Helpers for the annotator tests: writing VCFs and computing expected demo consequences.

A module with a unique name (not conftest) so test files can import it by plain name.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pysam

from gas_annotator.reference import Bundle

CODONS = {
    a + b + c: aa
    for (a, b, c), aa in zip(
        ((x, y, z) for x in "TCAG" for y in "TCAG" for z in "TCAG"),
        "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG",
        strict=True,
    )
}
AA3 = {
    "A": "Ala", "R": "Arg", "N": "Asn", "D": "Asp", "C": "Cys", "Q": "Gln", "E": "Glu",
    "G": "Gly", "H": "His", "I": "Ile", "L": "Leu", "K": "Lys", "M": "Met", "F": "Phe",
    "P": "Pro", "S": "Ser", "T": "Thr", "W": "Trp", "Y": "Tyr", "V": "Val", "*": "Ter",
}  # fmt: skip
COMPLEMENT = str.maketrans("ACGT", "TGCA")


# --------------------------------------------------------------------------- VCF helpers

HEADER = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"


def write_vcf(
    path: Path,
    records: Iterable[Sequence[object]],
    *,
    samples: Sequence[str] = (),
    meta: Sequence[str] = ("##fileformat=VCFv4.2",),
    compress: str | None = None,
) -> Path:
    """records: (chrom, pos, id, ref, alt[, genotypes...]). compress: None, 'gzip' or 'bgzip'."""
    lines = list(meta)
    lines.append(HEADER + ("\tFORMAT\t" + "\t".join(samples) if samples else ""))
    for rec in records:
        chrom, pos, ident, ref, alt, *gts = rec
        fields = [str(chrom), str(pos), str(ident), str(ref), str(alt), ".", ".", "."]
        if samples:
            fields += ["GT", *(str(g) for g in gts)]
        lines.append("\t".join(fields))
    text = "\n".join(lines) + "\n"
    if compress == "gzip":
        with gzip.open(path, "wt") as handle:
            handle.write(text)
    elif compress == "bgzip":
        plain = path.with_suffix("")
        plain.write_text(text)
        pysam.tabix_compress(str(plain), str(path), force=True)
        plain.unlink()
    else:
        path.write_text(text)
    return path


@dataclass(frozen=True)
class Expected:
    """One demo variant and what a correct annotator must say about it."""

    pos: int
    ref: str
    alt: str
    consequence: str
    gene: str | None = None
    protein_change: str | None = None


def demo_gene(bundle: Bundle, name: str) -> tuple[str, list[tuple[int, int]]]:
    """(strand, CDS pieces ascending) of a demo gene, read from the bundle's GFF3."""
    strand = ""
    tx = ""
    cds: list[tuple[int, int]] = []
    gff = bundle.gff_for("1")
    assert gff is not None
    with gzip.open(gff, "rt") as handle:
        rows = [line.rstrip("\n").split("\t") for line in handle if not line.startswith("#")]
    for row in rows:
        if row[2] == "mRNA" and f"Name={name}-" in row[8]:
            strand = row[6]
            tx = row[8].split("ID=transcript:")[1].split(";")[0]
    for row in rows:
        if row[2] == "CDS" and f"Parent=transcript:{tx}" in row[8]:
            cds.append((int(row[3]), int(row[4])))
    return strand, sorted(cds)


def _missense(seq: str, codon_first: int, strand: str, codon_index: int) -> tuple[str, str, str]:
    """A substitution of a codon's first base that changes the amino acid (never to a stop)."""
    if strand == "+":
        codon = seq[codon_first - 1 : codon_first + 2]
    else:
        codon = seq[codon_first - 3 : codon_first].translate(COMPLEMENT)[::-1]
    for base in "ACGT":
        if base == codon[0]:
            continue
        new = base + codon[1:]
        if CODONS[new] not in ("*", CODONS[codon]):
            ref_genomic = codon[0] if strand == "+" else codon[0].translate(COMPLEMENT)
            alt_genomic = base if strand == "+" else base.translate(COMPLEMENT)
            change = f"p.{AA3[CODONS[codon]]}{codon_index}{AA3[CODONS[new]]}"
            return ref_genomic, alt_genomic, change
    raise AssertionError("no missense substitution found")


def demo_expectations(bundle: Bundle) -> list[Expected]:
    """Variants at computed places of the demo genome, with independently derived answers."""
    fasta = pysam.FastaFile(str(bundle.fasta))
    seq = fasta.fetch("1").upper()
    out: list[Expected] = []
    plus_strand, plus_cds = demo_gene(bundle, "DEMOPLUS")
    minus_strand, minus_cds = demo_gene(bundle, "DEMOMINUS")
    assert plus_strand == "+" and minus_strand == "-"
    # missense in codon 5 of the + strand gene
    first = plus_cds[0][0] + 3 * 4
    ref, alt, change = _missense(seq, first, "+", 5)
    out.append(Expected(first, ref, alt, "missense_variant", "DEMOPLUS", change))
    # missense in codon 7 of the - strand gene (its CDS starts at the highest coordinate)
    first_minus = minus_cds[-1][1] - 3 * 6
    ref, alt, change = _missense(seq, first_minus, "-", 7)
    out.append(Expected(first_minus, ref, alt, "missense_variant", "DEMOMINUS", change))
    # start codon A>G on the + strand gene
    start = plus_cds[0][0]
    out.append(Expected(start, seq[start - 1], "G", "start_lost", "DEMOPLUS", None))
    # first intron base (the G of GT) after the + gene's first coding exon
    donor = plus_cds[0][1] + 1
    assert seq[donor - 1 : donor + 1] == "GT"
    out.append(Expected(donor, "G", "A", "splice_donor_variant", "DEMOPLUS", None))
    # one-base insertion in the + gene's CDS
    ins = plus_cds[1][0] + 10
    # An inserted base unlike its neighbours, so left-alignment leaves the position alone.
    extra = next(b for b in "ACGT" if b not in (seq[ins - 1], seq[ins]))
    out.append(Expected(ins, seq[ins - 1], seq[ins - 1] + extra, "frameshift_variant", "DEMOPLUS"))
    # context for variants hitting no transcript
    genes = {
        row.split("\t")[5]: row.split("\t") for row in bundle.genes.read_text().splitlines()[1:]
    }
    up = int(genes["DEMOPLUS"][1]) - 2_000  # 2 kb before a + strand gene's start
    out.append(Expected(up, seq[up - 1], _other(seq[up - 1]), "upstream_gene_variant", None))
    far = max(int(g[2]) for g in genes.values()) + 8_000  # > 5 kb past the last gene
    out.append(Expected(far, seq[far - 1], _other(seq[far - 1]), "intergenic_variant", None))
    return out


def _other(base: str) -> str:
    return "C" if base != "C" else "T"
