"""Genome-density input for benchmarks/annotate.py (`--density genome`).

The default benchmark input is dense (about one variant per base over chr21's ~1 Mb of real
sequence): the worst case for norm's window and csq's transcript lookups. A whole genome's VCF
has about one variant per 500-600 bp. This builds a synthetic reference of a few hundred Mb
with the demo bundle's gene models (a spliceable three-exon coding gene, reference/demo.py)
placed at human-like density (one gene per ~50 kb, strands alternating), known variants for
one record in ten, and N variants spread at one per ~`spacing` bp (seeded).

The sequence is random (numpy), one 50 Mb contig at a time, so memory stays ~100 MB.
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np

CONTIG_BP = 50_000_000
GENE_EVERY_BP = 50_000
SEED = 20240917
_BASES = np.frombuffer(b"ACGT", dtype=np.uint8)


def build(n: int, out_vcf: Path, bundle_dir: Path, *, spacing: int = 500) -> None:
    """Write the reference bundle to ``bundle_dir`` and ``n`` variants to ``out_vcf``."""
    from gas_annotator.reference import build_bundle
    from gas_annotator.reference.demo import _demo_gff, _DemoGene, _place_coding_gene

    total = n * spacing
    contigs = [(str(i + 1), min(CONTIG_BP, total - i * CONTIG_BP))
               for i in range(-(-total // CONTIG_BP))]  # fmt: skip
    work = bundle_dir.parent / "genome-src"
    work.mkdir(parents=True, exist_ok=True)
    fasta, gff, known = work / "genome.fa", work / "genes.gff3", work / "known.vcf"
    rng = random.Random(SEED)
    np_rng = np.random.default_rng(SEED)
    gff_lines = ["##gff-version 3"]
    header = "##fileformat=VCFv4.2\n" + "".join(
        f"##contig=<ID={c},length={length}>\n" for c, length in contigs
    )
    with fasta.open("wb") as fa, out_vcf.open("w") as vcf, known.open("w") as kn:
        vcf.write(header + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n")
        kn.write(
            header + '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">\n'
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        )
        rs = 0
        for contig, length in contigs:
            seq = bytearray(_BASES[np_rng.integers(0, 4, length, dtype=np.uint8)].tobytes())
            genes: list[_DemoGene] = []
            for k, start in enumerate(range(5_001, length - 5_000, GENE_EVERY_BP)):
                window = ["A"] * 2_000
                strand = "+" if k % 2 == 0 else "-"
                gene_id = f"DEMOG{contig}_{k:06d}"
                g = _place_coding_gene(window, rng, start=1, strand=strand, gene_id=gene_id,
                                       name=f"G{contig}_{k}")  # fmt: skip
                span = g.exons[-1][1]
                seq[start - 1 : start - 1 + span] = "".join(window[:span]).encode()
                shift = start - 1
                genes.append(
                    _DemoGene(
                        gene_id=gene_id, name=g.name, strand=strand,
                        exons=[(a + shift, b + shift) for a, b in g.exons],
                        cds=[(a + shift, b + shift) for a, b in g.cds],
                    )
                )  # fmt: skip
            gff_lines.append(f"##sequence-region {contig} 1 {length}")
            gff_lines += _demo_gff(contig, genes)
            fa.write(f">{contig} synthetic genome-density contig, seed {SEED}\n".encode())
            view = memoryview(seq)
            fa.write(b"\n".join(view[i : i + 60] for i in range(0, length, 60)) + b"\n")
            count = length // spacing
            positions = np.sort(np_rng.choice(length - 20, count, replace=False) + 10)
            lines, known_lines = [], []
            for p0 in positions.tolist():
                r = chr(seq[p0])
                x = rng.random()
                if x < 0.85:
                    ref, alt = r, rng.choice([b for b in "ACGT" if b != r])
                elif x < 0.93:
                    ref, alt = seq[p0 : p0 + rng.randint(2, 7)].decode(), r
                else:
                    ref, alt = r, r + "".join(rng.choice("ACGT") for _ in range(rng.randint(1, 6)))
                lines.append(f"{contig}\t{p0 + 1}\t.\t{ref}\t{alt}\t.\t.\t.\n")
                if rng.random() < 0.1:
                    rs += 1
                    af = rng.random() / 2
                    known_lines.append(
                        f"{contig}\t{p0 + 1}\trs{rs}\t{ref}\t{alt}\t.\t.\tAF={af:.4g}\n"
                    )
            vcf.writelines(lines)
            kn.writelines(known_lines)
    gff.write_text("\n".join(gff_lines) + "\n")
    build_bundle(
        "synthetic-genome", fasta, gff, [known], bundle_dir, name="bench-genome",
        version=f"seed-{SEED}", synthetic=True,
    )  # fmt: skip
