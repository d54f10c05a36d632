"""The demo example VCF: a small input made for the synthetic demo bundle, so a new user of the
demo can annotate something that matches it (real data does not: the demo genome is random).

Every REF comes from the demo FASTA; the records hit both coding genes (missense and
synonymous SNVs, a stop_gained, a frameshift deletion, a splice donor), the lincRNA, an
intergenic position and the gene-less MT contig, include every known variant of the bundle
(rsIDs, AF, ClinVar) and one multiallelic site, and carry one sample's genotypes
(het, hom-alt, hom-ref and missing), so the genotype views have something to show.

The web serves a copy checked in at `services/web/gas_web/static/demo/example.vcf` (the web
has neither pysam nor the bundle); a test regenerates it from a fresh demo bundle and checks the
copy is identical and annotates with no REF mismatch. Regenerate after changing the demo bundle:

    uv run python -m gas_annotator.reference.demo_example \
        services/web/gas_web/static/demo/example.vcf
"""

from __future__ import annotations

import gzip
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pysam

from gas_annotator.reference.demo import DEMO_CONTIG

# Appended to the engine's error when an input does not fit the demo bundle (one line).
REAL_DATA_ON_DEMO = (
    "this looks like real data, and this GAS runs on the SYNTHETIC demo reference, which only "
    "the demo example VCF matches. For real data start with a real bundle: "
    "`gas reference install GRCh38 --out DIR`, then `gas dev --reference DIR` (deployed: "
    "publish the bundle as docs/operations.md says)"
)
SAMPLE = "DEMO-SAMPLE-1"
_TRANSITION = {"A": "G", "C": "T", "G": "A", "T": "C"}
_STOPS = {"TAA", "TAG", "TGA"}
_COMPLEMENT = str.maketrans("ACGT", "TGCA")
# Novel SNVs: one every this many coding bases (about a dozen per gene).
_CODING_STEP = 29


@dataclass(frozen=True)
class _Transcript:
    name: str
    strand: str
    exons: list[tuple[int, int]]  # ascending, 1-based inclusive
    cds: list[tuple[int, int]]


@dataclass(frozen=True)
class _Record:
    chrom: str
    pos: int
    ref: str
    alts: tuple[str, ...]
    gt: str
    note: str  # what the record exercises, in the VCF's INFO (for people reading the file)


def demo_example_vcf(bundle_dir: Path) -> str:
    """The example VCF's text for the demo bundle in `bundle_dir` (deterministic)."""
    fasta = pysam.FastaFile(str(bundle_dir / "genome.fa.gz"))
    try:
        return _vcf_text(_records(bundle_dir, fasta), fasta)
    finally:
        fasta.close()


def write_demo_example(out: Path) -> Path:
    """Build a demo bundle in a temporary directory and write its example VCF to `out`."""
    from gas_annotator.reference.demo import build_demo_bundle

    with tempfile.TemporaryDirectory(prefix="gas-demo-example-") as tmp:
        bundle = Path(tmp) / "demo"
        build_demo_bundle(bundle)
        out.write_text(demo_example_vcf(bundle))
    return out


def _records(bundle_dir: Path, fasta: pysam.FastaFile) -> list[_Record]:
    def base(pos: int, chrom: str = DEMO_CONTIG) -> str:
        return fasta.fetch(chrom, pos - 1, pos).upper()

    coding = [t for t in _transcripts(bundle_dir) if t.cds]
    noncoding = [t for t in _transcripts(bundle_dir) if not t.cds]
    records: dict[tuple[str, int], _Record] = {}
    genotypes = _GenotypeCycle()

    def add(pos: int, ref: str, alts: tuple[str, ...], note: str, *, gt: str | None = None,
            chrom: str = DEMO_CONTIG) -> None:
        # Keep records apart: a deletion's span never covers another record.
        if any(c == chrom and abs(p - pos) <= 2 for c, p in records):
            return
        records[(chrom, pos)] = _Record(chrom, pos, ref, alts, gt or genotypes.next(), note)

    with pysam.VariantFile(str(bundle_dir / "known" / "0.vcf.gz")) as known:
        for rec in known:
            assert rec.ref is not None and rec.alts
            add(rec.pos, rec.ref.upper(), (rec.alts[0],), "known", chrom=rec.chrom)
    for transcript in coding:
        positions = [p for a, b in transcript.cds for p in range(a, b + 1)]
        for pos in positions[10:-10:_CODING_STEP]:
            add(pos, base(pos), (_TRANSITION[base(pos)],), "coding")
        stop = _stop_gain(transcript, base)
        if stop is not None:
            add(stop[0], base(stop[0]), (stop[1],), "stop_gained", gt="0/1")
    plus = next(t for t in coding if t.strand == "+")
    # A 1-base deletion in the middle of the first coding exon: a frameshift.
    a, b = plus.cds[0]
    mid = (a + b) // 2
    add(mid, base(mid) + base(mid + 1), (base(mid),), "frameshift", gt="0/1")
    # The intron's first base (the G of GT) after the first exon: a splice donor.
    donor = plus.exons[0][1] + 1
    add(donor, base(donor), (_TRANSITION[base(donor)],), "splice_donor", gt="1/1")
    # Two different ALT alleles at one coding position: split into two records.
    second = plus.cds[1][0] + 20
    ref = base(second)
    add(second, ref, tuple(x for x in "ACGT" if x != ref)[:2], "multiallelic", gt="1/2")
    for transcript in noncoding:
        pos = transcript.exons[0][0] + 50
        add(pos, base(pos), (_TRANSITION[base(pos)],), "lincRNA")
    for pos in (11_000, 30_000):
        add(pos, base(pos), (_TRANSITION[base(pos)],), "intergenic")
    mt = 1_000
    add(mt, base(mt, "MT"), (_TRANSITION[base(mt, "MT")],), "no_genes", chrom="MT", gt="1")
    return sorted(records.values(), key=lambda r: (r.chrom != DEMO_CONTIG, r.chrom, r.pos))


class _GenotypeCycle:
    """Mostly carriers, with some hom-ref and one missing call, in a fixed order."""

    _CYCLE = ("0/1", "0/1", "1/1", "0/0", "0|1", "0/1", "0/0", "1|1", "0/1", "./.")

    def __init__(self) -> None:
        self._i = 0

    def next(self) -> str:
        gt = self._CYCLE[self._i % len(self._CYCLE)]
        self._i += 1
        return gt


def _stop_gain(transcript: _Transcript, base: Callable[[int], str]) -> tuple[int, str] | None:
    """The first SNV (position, ALT) in a middle codon that makes it a stop codon."""
    positions = [p for a, b in transcript.cds for p in range(a, b + 1)]
    if transcript.strand == "-":
        positions.reverse()

    def coding_base(pos: int) -> str:
        b = base(pos)
        return b.translate(_COMPLEMENT) if transcript.strand == "-" else b

    for start in range(30, len(positions) - 30, 3):
        codon_pos = positions[start : start + 3]
        codon = "".join(coding_base(p) for p in codon_pos)
        for i, pos in enumerate(codon_pos):
            for alt in "ACGT":
                if alt != codon[i] and codon[:i] + alt + codon[i + 1 :] in _STOPS:
                    genomic_alt = alt.translate(_COMPLEMENT) if transcript.strand == "-" else alt
                    return pos, genomic_alt
    return None


def _transcripts(bundle_dir: Path) -> list[_Transcript]:
    names: dict[str, tuple[str, str]] = {}
    exons: dict[str, list[tuple[int, int]]] = {}
    cds: dict[str, list[tuple[int, int]]] = {}
    with gzip.open(bundle_dir / "gff" / f"{DEMO_CONTIG}.gff3.gz", "rt") as gff:
        for line in gff:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            kind, start, end, strand = fields[2], int(fields[3]), int(fields[4]), fields[6]
            attrs = dict(kv.split("=", 1) for kv in fields[8].split(";") if "=" in kv)
            if "transcript_id" in attrs:
                names[attrs["ID"]] = (attrs["transcript_id"], strand)
            elif kind == "exon":
                exons.setdefault(attrs["Parent"], []).append((start, end))
            elif kind == "CDS":
                cds.setdefault(attrs["Parent"], []).append((start, end))
    return [
        _Transcript(name=name, strand=strand, exons=sorted(exons.get(key, [])),
                    cds=sorted(cds.get(key, [])))
        for key, (name, strand) in sorted(names.items())
    ]


def _vcf_text(records: list[_Record], fasta: pysam.FastaFile) -> str:
    lines = [
        "##fileformat=VCFv4.2",
        "##source=GAS demo example (SYNTHETIC: made for the synthetic demo reference only)",
        *(f"##contig=<ID={name},length={fasta.get_reference_length(name)}>"
          for name in fasta.references),
        '##INFO=<ID=DEMO,Number=1,Type=String,Description="What this demo record exercises">',
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">',
        "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                   SAMPLE]),
    ]
    for i, r in enumerate(records):
        depth, quality = 20 + (i * 7) % 31, 30 + (i * 11) % 70
        sample = f"{r.gt}:{depth}:{quality}" if r.gt not in ("./.", ".") else f"{r.gt}:.:."
        lines.append("\t".join([r.chrom, str(r.pos), ".", r.ref, ",".join(r.alts), "50",
                                "PASS", f"DEMO={r.note}", "GT:DP:GQ", sample]))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    write_demo_example(Path(sys.argv[1]))
