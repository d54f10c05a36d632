"""The annotated VCF.gz's tabix index: merged from the chunks' own indexes, it must answer
every region query as an index htslib builds over the joined file does."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pysam
import pysam.bcftools
import pytest

from gas_annotator.engine import AnnotationResult, EngineOptions, annotate
from gas_annotator.engine import outputs as engine_outputs
from gas_annotator.engine.tabix_merge import read_tbi
from gas_annotator.reference import build_bundle
from tests.services.annotator.annotator_helpers import write_vcf


def _bundle(tmp_path: Path, sequences: dict[str, str]) -> None:
    """A bundle of these sequences with one non-coding gene on the first."""
    fasta = tmp_path / "genome.fa"
    fasta.write_text("".join(f">{name}\n{seq}\n" for name, seq in sequences.items()))
    first = next(iter(sequences))
    gff = tmp_path / "genes.gff3"
    gff.write_text(
        "##gff-version 3\n"
        f"{first}\tt\tgene\t100\t400\t.\t+\t.\tID=gene:G1;Name=G1;biotype=lincRNA\n"
        f"{first}\tt\tlnc_RNA\t100\t400\t.\t+\t.\tID=transcript:T1;Parent=gene:G1;biotype=lincRNA\n"
        f"{first}\tt\texon\t100\t400\t.\t+\t.\tParent=transcript:T1\n"
    )
    build_bundle("GRCh38", fasta, gff, [], tmp_path / "bundle", name="index-test")


def _fresh_index(result: AnnotationResult, tmp_path: Path) -> Path:
    """The same VCF.gz indexed by htslib over the whole file."""
    copy = tmp_path / "fresh" / result.vcf.name
    copy.parent.mkdir()
    shutil.copy(result.vcf, copy)
    pysam.bcftools.index("-t", "-f", str(copy), catch_stdout=False)
    return copy


def _same_answers(merged: Path, fresh: Path, contigs: dict[str, int], queries: int) -> int:
    rng = random.Random(7)
    compared = 0
    with pysam.TabixFile(str(merged)) as a, pysam.TabixFile(str(fresh)) as b:
        assert a.contigs == b.contigs
        for contig, length in contigs.items():
            assert list(a.fetch(contig)) == list(b.fetch(contig))
            for _ in range(queries):
                start = rng.randrange(0, length)
                end = min(length, start + rng.choice([1, 50, 2_000, 20_000, length]))
                lines = list(a.fetch(contig, start, end))
                assert lines == list(b.fetch(contig, start, end)), (contig, start, end)
                compared += len(lines)
    return compared


def test_the_merged_index_answers_every_region_as_a_fresh_index_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(11)
    contigs = {"1": 300_000, "2": 120_000}  # 19 and 8 windows of the linear index
    sequences = {name: "".join(rng.choice("ACGT") for _ in range(n)) for name, n in contigs.items()}
    _bundle(tmp_path, sequences)
    records = []
    for name, seq in sequences.items():
        for pos in sorted(rng.sample(range(20, len(seq) - 20), len(seq) // 200)):
            ref = seq[pos - 1]
            if rng.random() < 0.1:  # deletions: records spanning several bases
                records.append((name, pos, ".", seq[pos - 1 : pos + 6], ref))
            else:
                records.append((name, pos, ".", ref, "A" if ref != "A" else "G"))
    # Not isolated, so the fallback (htslib over the whole file) can be ruled out here.
    fallback: list[Path] = []
    monkeypatch.setattr(engine_outputs, "_index_vcf", lambda out, _s: fallback.append(out))
    result = annotate(
        write_vcf(tmp_path / "two_contigs.vcf", records),
        reference_dir=tmp_path / "bundle",
        out_dir=tmp_path / "out",
        workers=2,
        options=EngineOptions(chunk_records=250, isolate=False),
    )
    assert result.summary_data["engine"]["chunks"] >= 6
    assert fallback == []  # the merged index was written
    fresh = _fresh_index(result, tmp_path)
    assert _same_answers(result.vcf, fresh, contigs, queries=400) > 0
    # The linear index (first record per 16 kb window) is exactly htslib's.
    merged, expected = read_tbi(result.vcf_index), read_tbi(Path(f"{fresh}.tbi"))
    assert merged.names == expected.names
    assert merged.conf == expected.conf
    for got, want in zip(merged.references, expected.references, strict=True):
        assert got.linear.tolist() == want.linear.tolist()
        assert got.bins[37450] == want.bins[37450]  # offsets and record counts
    assert [p.name for p in (tmp_path / "out").glob("*.tbi")] == [result.vcf_index.name]


@pytest.mark.parametrize("repeat_units", [100, 2_000], ids=["one-block", "many-blocks"])
def test_an_indel_left_aligned_across_a_chunk_boundary_is_sorted_without_sorting_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, repeat_units: int
) -> None:
    # An (AC)n repeat: the deletion of its last AC starts the second chunk and left-aligns to
    # the repeat's start, behind the first chunk's last records. Each chunk is sorted on its
    # own, so only the two members at that boundary are out of order: the job puts their
    # records back in order and merges the chunks' indexes, with no sort or htslib pass over
    # the whole file. With 2,000 units the moved records fill several BGZF blocks.
    rng = random.Random(3)
    left = "".join(rng.choice("ACGT") for _ in range(3_000))
    right = "".join(rng.choice("ACGT") for _ in range(3_000))
    seq = left + "AC" * repeat_units + right
    _bundle(tmp_path, {"1": seq})
    repeat_end = len(left) + 2 * repeat_units
    deletion = ("1", repeat_end - 2, ".", seq[repeat_end - 3 : repeat_end], seq[repeat_end - 3])
    before = [
        ("1", p, ".", seq[p - 1], "G" if seq[p - 1] != "G" else "T")
        for p in range(len(left) - 400, repeat_end - 2, 2)
    ]
    after = [
        ("1", p, ".", seq[p - 1], "G" if seq[p - 1] != "G" else "T")
        for p in range(repeat_end + 10, repeat_end + 2_000, 2)
    ]
    records = [*before, deletion, *after]
    fallback: list[Path] = []
    monkeypatch.setattr(engine_outputs, "_index_vcf", lambda out, _s: fallback.append(out))
    result = annotate(
        write_vcf(tmp_path / "boundary.vcf", records),
        reference_dir=tmp_path / "bundle",
        out_dir=tmp_path / "out",
        options=EngineOptions(chunk_records=len(before), isolate=False),
    )
    log = result.log.read_text()
    assert f"chunk 1: 1:{deletion[1]}-" in log  # the deletion opened the second chunk
    assert fallback == []  # no whole-file sort or index
    assert "re-sorted: 1" in log
    assert result.variant_count == len(records)
    with pysam.VariantFile(str(result.vcf)) as vcf:
        positions = [rec.pos for rec in vcf]
    assert positions == sorted(positions)
    assert len(left) in positions  # the deletion now sits at the repeat's start
    assert len(positions) == len(records)
    fresh = _fresh_index(result, tmp_path)
    assert _same_answers(result.vcf, fresh, {"1": len(seq)}, queries=200) > 0


@pytest.mark.parametrize(
    ("alt", "info"),
    [("<DEL>", "SVTYPE=DEL;SVLEN=-150000"), ("G", "END={end}")],
    ids=["symbolic-deletion", "snv-with-end"],
)
def test_a_record_whose_end_htslib_takes_from_info_is_indexed_as_htslib_does(
    tmp_path: Path, alt: str, info: str
) -> None:
    # htslib ends such a record at INFO/END or, for a symbolic allele, POS + |SVLEN|, not at
    # POS + len(REF): its chunk's index is then htslib's own, not the one built from the
    # record offsets (which knows only REF).
    rng = random.Random(4)
    length = 300_000
    seq = "".join(rng.choice("ACGT") for _ in range(length))
    _bundle(tmp_path, {"1": seq})
    long_pos = 1_000 + 997 * 40  # inside the first chunk
    lines = ["##fileformat=VCFv4.2", '##INFO=<ID=END,Number=1,Type=Integer,Description="End">',
             '##INFO=<ID=SVLEN,Number=A,Type=Integer,Description="Length">',
             '##INFO=<ID=SVTYPE,Number=1,Type=String,Description="Type">',
             '##ALT=<ID=DEL,Description="Deletion">',
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    for pos in range(1_000, length - 1_000, 997):
        ref = seq[pos - 1]
        if pos == long_pos:
            text = info.format(end=pos + 150_000)
            lines.append(f"1\t{pos}\t.\t{ref}\t{alt}\t.\t.\t{text}")
        else:
            lines.append(f"1\t{pos}\t.\t{ref}\t{'A' if ref != 'A' else 'C'}\t.\t.\t.")
    vcf = tmp_path / "with_end.vcf"
    vcf.write_text("\n".join(lines) + "\n")
    result = annotate(vcf, reference_dir=tmp_path / "bundle", out_dir=tmp_path / "out",
                      workers=2, options=EngineOptions(chunk_records=100))
    with pysam.VariantFile(str(result.vcf)) as annotated:
        # (norm may move the symbolic deletion left by a base, END with it)
        assert [r.stop - r.pos for r in annotated if r.stop - r.pos > 1] == [150_000]
    fresh = _fresh_index(result, tmp_path)
    merged, expected = read_tbi(result.vcf_index), read_tbi(Path(f"{fresh}.tbi"))
    assert merged.references[0].linear.tolist() == expected.references[0].linear.tolist()
    assert _same_answers(result.vcf, fresh, {"1": length}, queries=300) > 0
