"""The synthetic demo bundle: a small seeded genome with gene models and known variants, so
the service and its tests run without downloading a real reference."""

from __future__ import annotations

import random
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gas_annotator.reference.build import build_bundle
from gas_annotator.reference.bundle import Manifest

_CODONS = [
    a + b + c
    for a in "ACGT"
    for b in "ACGT"
    for c in "ACGT"
    if a + b + c not in {"TAA", "TAG", "TGA"}
]


_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def revcomp(seq: str) -> str:
    return seq.translate(_COMPLEMENT)[::-1]


@dataclass(frozen=True)
class _DemoGene:
    gene_id: str
    name: str
    strand: str
    exons: list[tuple[int, int]]  # genomic, 1-based inclusive, ascending
    cds: list[tuple[int, int]]
    biotype: str = "protein_coding"


def _demo_genome(rng: random.Random, length: int) -> list[str]:
    return [rng.choice("ACGT") for _ in range(length)]


def _place_coding_gene(
    seq: list[str], rng: random.Random, *, start: int, strand: str, gene_id: str, name: str
) -> _DemoGene:
    """Write a spliceable ORF (ATG ... stop, GT..AG introns, UTRs) into ``seq`` at ``start``."""
    n_codons = [40, 35, 45]
    utr5, utr3, intron = 60, 80, 300
    coding = "ATG" + "".join(rng.choice(_CODONS) for _ in range(sum(n_codons) - 2)) + "TAA"
    pieces = [coding[0 : n_codons[0] * 3]]
    pieces.append(coding[n_codons[0] * 3 : (n_codons[0] + n_codons[1]) * 3])
    pieces.append(coding[(n_codons[0] + n_codons[1]) * 3 :])
    # Transcript-orientation layout: UTR5 + cds1 | intron | cds2 | intron | cds3 + UTR3
    tx: list[str] = []
    exons_tx: list[tuple[int, int]] = []
    cds_tx: list[tuple[int, int]] = []
    pos = 0
    for i, piece in enumerate(pieces):
        exon_start = pos
        if i == 0:
            tx.append("".join(rng.choice("ACGT") for _ in range(utr5)))
            pos += utr5
        cds_tx.append((pos, pos + len(piece) - 1))
        tx.append(piece)
        pos += len(piece)
        if i == len(pieces) - 1:
            tx.append("".join(rng.choice("ACGT") for _ in range(utr3)))
            pos += utr3
        exons_tx.append((exon_start, pos - 1))
        if i < len(pieces) - 1:
            body = "".join(rng.choice("ACGT") for _ in range(intron - 4))
            tx.append("GT" + body + "AG")
            pos += intron
    transcript = "".join(tx)
    length = len(transcript)
    genomic = transcript if strand == "+" else revcomp(transcript)
    seq[start - 1 : start - 1 + length] = list(genomic)

    def to_genomic(a: int, b: int) -> tuple[int, int]:
        if strand == "+":
            return start + a, start + b
        return start + length - 1 - b, start + length - 1 - a

    exons = sorted(to_genomic(a, b) for a, b in exons_tx)
    cds = sorted(to_genomic(a, b) for a, b in cds_tx)
    return _DemoGene(gene_id=gene_id, name=name, strand=strand, exons=exons, cds=cds)


def _demo_gff(contig: str, genes: Iterable[_DemoGene]) -> list[str]:
    lines: list[str] = []
    for gene in genes:
        g0, g1 = gene.exons[0][0], gene.exons[-1][1]
        tx = gene.gene_id.replace("DEMOG", "DEMOT")
        lines.append(
            f"{contig}\tdemo\tgene\t{g0}\t{g1}\t.\t{gene.strand}\t.\t"
            f"ID=gene:{gene.gene_id};Name={gene.name};biotype={gene.biotype};gene_id={gene.gene_id}"
        )
        lines.append(
            f"{contig}\tdemo\tmRNA\t{g0}\t{g1}\t.\t{gene.strand}\t.\t"
            f"ID=transcript:{tx};Parent=gene:{gene.gene_id};Name={gene.name}-201;"
            f"biotype={gene.biotype};transcript_id={tx}"
        )
        for a, b in gene.exons:
            lines.append(
                f"{contig}\tdemo\texon\t{a}\t{b}\t.\t{gene.strand}\t.\tParent=transcript:{tx}"
            )
        # GFF3 CDS phase: bases to skip at the feature's 5' end (transcript orientation).
        ordered = gene.cds if gene.strand == "+" else list(reversed(gene.cds))
        done = 0
        for a, b in ordered:
            phase = (3 - done % 3) % 3
            lines.append(
                f"{contig}\tdemo\tCDS\t{a}\t{b}\t.\t{gene.strand}\t{phase}\t"
                f"ID=CDS:{tx};Parent=transcript:{tx}"
            )
            done += b - a + 1
        for a, b in gene.exons:
            utr_parts = _subtract(a, b, gene.cds)
            for u0, u1 in utr_parts:
                five = (u1 < gene.cds[0][0]) if gene.strand == "+" else (u0 > gene.cds[-1][1])
                kind = "five_prime_UTR" if five else "three_prime_UTR"
                lines.append(
                    f"{contig}\tdemo\t{kind}\t{u0}\t{u1}\t.\t{gene.strand}\t.\t"
                    f"Parent=transcript:{tx}"
                )
    return lines


def _subtract(a: int, b: int, cds: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    parts = [(a, b)]
    for c0, c1 in cds:
        nxt: list[tuple[int, int]] = []
        for p0, p1 in parts:
            if c1 < p0 or c0 > p1:
                nxt.append((p0, p1))
                continue
            if p0 < c0:
                nxt.append((p0, c0 - 1))
            if p1 > c1:
                nxt.append((c1 + 1, p1))
        parts = nxt
    return parts


DEMO_CONTIG = "1"


DEMO_LENGTH = 40_000


DEMO_MITO_LENGTH = 2_000


DEMO_SEED = 20240917


def build_demo_bundle(out: Path, *, seed: int = DEMO_SEED) -> Manifest:
    """A small, seeded, clearly SYNTHETIC bundle so the system works with no real data."""
    rng = random.Random(seed)  # noqa: S311 - seeded synthetic data, not security
    seq = _demo_genome(rng, DEMO_LENGTH)
    genes = [
        _place_coding_gene(seq, rng, start=5_001, strand="+", gene_id="DEMOG0001", name="DEMOPLUS"),
        _place_coding_gene(
            seq, rng, start=15_001, strand="-", gene_id="DEMOG0002", name="DEMOMINUS"
        ),
    ]
    nc = _DemoGene(
        gene_id="DEMOG0003",
        name="DEMONC",
        strand="+",
        exons=[(22_001, 22_400), (23_001, 23_300)],
        cds=[],
        biotype="lincRNA",
    )
    with tempfile.TemporaryDirectory(prefix="gas-demo-") as tmp_name:
        tmp = Path(tmp_name)
        fasta = tmp / "demo.fa"
        body = "".join(seq)
        # A second, gene-less contig named like a mitochondrion: exercises chrM <-> MT naming
        # and contigs without gene models.
        mito = "".join(rng.choice("ACGT") for _ in range(DEMO_MITO_LENGTH))
        fasta.write_text(
            f">{DEMO_CONTIG} synthetic demo sequence, seed {seed}\n"
            + "\n".join(body[i : i + 60] for i in range(0, len(body), 60))
            + f"\n>MT synthetic, no genes, seed {seed}\n"
            + "\n".join(mito[i : i + 60] for i in range(0, len(mito), 60))
            + "\n"
        )
        gff_lines = ["##gff-version 3", f"##sequence-region {DEMO_CONTIG} 1 {DEMO_LENGTH}"]
        gff_lines += _demo_gff(DEMO_CONTIG, genes)
        g0, g1 = nc.exons[0][0], nc.exons[-1][1]
        gff_lines += [
            f"{DEMO_CONTIG}\tdemo\tncRNA_gene\t{g0}\t{g1}\t.\t+\t.\t"
            f"ID=gene:{nc.gene_id};Name={nc.name};biotype=lincRNA;gene_id={nc.gene_id}",
            f"{DEMO_CONTIG}\tdemo\tlnc_RNA\t{g0}\t{g1}\t.\t+\t.\t"
            f"ID=transcript:DEMOT0003;Parent=gene:{nc.gene_id};biotype=lincRNA;"
            "transcript_id=DEMOT0003",
        ]
        gff_lines += [
            f"{DEMO_CONTIG}\tdemo\texon\t{a}\t{b}\t.\t+\t.\tParent=transcript:DEMOT0003"
            for a, b in nc.exons
        ]
        gff = tmp / "demo.gff3"
        gff.write_text("\n".join(gff_lines) + "\n")

        known = tmp / "demo_known.vcf"
        known.write_text(_demo_known_vcf(seq, genes))
        mane = tmp / "demo_mane.txt"
        mane.write_text(
            "#NCBI_GeneID\tEnsembl_Gene\tsymbol\tEnsembl_nuc\tMANE_status\n"
            "GeneID:0\tDEMOG0001\tDEMOPLUS\tDEMOT0001.1\tMANE Select\n"
        )
        return build_bundle(
            "demo",
            fasta,
            gff,
            [known],
            out,
            name="gas-demo",
            version=f"seed-{seed}",
            aliases={"demo1": DEMO_CONTIG},
            mane=mane,
            synthetic=True,
            sources=[
                {"role": "fasta", "file": "synthetic", "seed": seed},
                {"role": "gff3", "file": "synthetic", "seed": seed},
                {"role": "mane", "file": "synthetic", "seed": seed},
            ],
        )


def _demo_known_vcf(seq: Sequence[str], genes: Sequence[_DemoGene]) -> str:
    lines = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={DEMO_CONTIG},length={DEMO_LENGTH}>",
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Synthetic population allele frequency">',
        '##INFO=<ID=CLNSIG,Number=.,Type=String,Description="Synthetic clinical significance">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    records: list[tuple[int, str, str, str]] = []
    rs = 9_000_000_001
    for gene in genes:
        for j, (a, _b) in enumerate(gene.cds):
            pos = a + 7 + j
            ref = seq[pos - 1]
            alt = {"A": "G", "C": "T", "G": "A", "T": "C"}[ref]
            info = f"AF={0.01 * (j + 1):.2f}"
            if j == 1:
                info += ";CLNSIG=pathogenic"
            elif j == 2:
                info += ";CLNSIG=benign"
            records.append((pos, f"rs{rs}", ref, alt + "\t.\t.\t" + info))
            rs += 1
    # One intergenic common variant.
    ref = seq[1_999]
    records.append((2_000, f"rs{rs}", ref, ("A" if ref != "A" else "C") + "\t.\t.\tAF=0.45"))
    records.sort()
    lines += [f"{DEMO_CONTIG}\t{p}\t{i}\t{r}\t{rest}" for p, i, r, rest in records]
    return "\n".join(lines) + "\n"
