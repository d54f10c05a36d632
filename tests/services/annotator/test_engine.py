"""The engine on the synthetic demo bundle: always runs, no real data needed."""

from __future__ import annotations

import csv
import gzip
import itertools
import json
import random
import re
from pathlib import Path

import pyarrow.parquet as pq
import pysam
import pysam.bcftools
import pytest

from gas_annotator.engine import AnnotationResult, EngineOptions, annotate
from gas_annotator.reference import Bundle, build_bundle
from tests.services.annotator.annotator_helpers import Expected, demo_expectations, write_vcf


def _records(expected: list[Expected], chrom: str = "1") -> list[tuple[object, ...]]:
    return [(chrom, e.pos, ".", e.ref, e.alt) for e in sorted(expected, key=lambda e: e.pos)]


def _tsv(result: AnnotationResult) -> list[dict[str, str]]:
    with result.tsv.open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _run(tmp_path: Path, bundle: Bundle, vcf: Path, **kwargs: object) -> AnnotationResult:
    return annotate(vcf, reference_dir=bundle.root, out_dir=tmp_path / "out", **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def demo_result(tmp_path: Path, demo_bundle: Bundle) -> tuple[AnnotationResult, list[Expected]]:
    expected = demo_expectations(demo_bundle)
    vcf = write_vcf(tmp_path / "demo_input.vcf", _records(expected))
    return _run(tmp_path, demo_bundle, vcf), expected


def test_outputs_are_named_after_the_input_stem(
    demo_result: tuple[AnnotationResult, list[Expected]],
) -> None:
    result, _ = demo_result
    names = {
        p.name
        for p in (
            result.vcf,
            result.vcf_index,
            result.tsv,
            result.summary,
            result.log,
            result.parquet,
        )
    }
    assert names == {
        "demo_input.annot.vcf.gz",
        "demo_input.annot.vcf.gz.tbi",
        "demo_input.annot.tsv",
        "demo_input.summary.json",
        "demo_input.log",
        "demo_input.annot.parquet",
    }
    for path in (
        result.vcf,
        result.vcf_index,
        result.tsv,
        result.summary,
        result.log,
        result.parquet,
    ):
        assert path.stat().st_size > 0


def test_each_demo_variant_gets_the_independently_computed_consequence(
    demo_result: tuple[AnnotationResult, list[Expected]],
) -> None:
    result, expected = demo_result
    rows = _tsv(result)
    for e in expected:
        mine = [r for r in rows if int(r["pos"]) == e.pos and r["alt"] == e.alt]
        assert mine, f"no TSV row for {e}"
        if e.gene is None:
            assert len(mine) == 1 and mine[0]["gene"] == "" and mine[0]["transcript"] == ""
            assert mine[0]["consequence"] == e.consequence
            assert mine[0]["nearest_gene"] != ""
            assert int(mine[0]["distance"]) > 0
        else:
            hit = [r for r in mine if r["gene"] == e.gene]
            assert hit, f"{e}: genes {[r['gene'] for r in mine]}"
            assert e.consequence in hit[0]["consequence"].split("&"), (e, hit[0])
            if e.protein_change:
                assert hit[0]["protein_change"] == e.protein_change


def test_impacts_follow_the_sequence_ontology_terms(
    demo_result: tuple[AnnotationResult, list[Expected]],
) -> None:
    result, _ = demo_result
    impact = {"missense_variant": "MODERATE", "start_lost": "HIGH", "splice_donor_variant": "HIGH",
              "frameshift_variant": "HIGH", "upstream_gene_variant": "MODIFIER",
              "intergenic_variant": "MODIFIER"}  # fmt: skip
    for row in _tsv(result):
        first = row["consequence"].split("&")[0]
        if first in impact:
            assert row["impact"] == impact[first], row


def test_tsv_header_has_the_contract_columns_first(
    demo_result: tuple[AnnotationResult, list[Expected]],
) -> None:
    result, _ = demo_result
    header = result.tsv.read_text().splitlines()[0].split("\t")
    contract = [
        "chrom",
        "pos",
        "id",
        "ref",
        "alt",
        "gene",
        "transcript",
        "consequence",
        "impact",
        "protein_change",
        "known_id",
        "clinvar",
        "allele_frequency",
    ]
    assert set(contract) <= set(header)
    assert header[:5] == ["chrom", "pos", "id", "ref", "alt"]


def test_parquet_holds_the_same_rows_as_the_tsv(
    demo_result: tuple[AnnotationResult, list[Expected]],
) -> None:
    result, _ = demo_result
    table = pq.read_table(result.parquet)
    rows = _tsv(result)
    assert table.num_rows == len(rows)
    assert table.column("consequence").to_pylist() == [r["consequence"] for r in rows]


def test_vcf_header_describes_every_info_field_we_add(
    demo_result: tuple[AnnotationResult, list[Expected]],
) -> None:
    result, _ = demo_result
    with pysam.VariantFile(str(result.vcf)) as vcf:
        declared = set(vcf.header.info.keys())
        used: set[str] = set()
        for rec in vcf:
            used.update(rec.info.keys())
    assert used <= declared
    assert {
        "BCSQ",
        "GAS_CSQ",
        "GAS_IMPACT",
        "GAS_GENE",
        "GAS_NEAREST_GENE",
        "GAS_DISTANCE",
        "GAS_MANE",
    } <= declared
    assert pysam.TabixFile(str(result.vcf), index=str(result.vcf_index)).contigs == ["1"]


def test_known_variant_gets_rsid_frequency_and_clinvar(tmp_path: Path, demo_bundle: Bundle) -> None:
    known_path = demo_bundle.known_paths()[0][1]
    with pysam.VariantFile(str(known_path)) as known:
        patho = next(r for r in known if "pathogenic" in (r.info.get("CLNSIG") or ()))
    vcf = write_vcf(tmp_path / "k.vcf", [("1", patho.pos, ".", patho.ref, patho.alts[0])])
    result = _run(tmp_path, demo_bundle, vcf)
    rows = _tsv(result)
    assert {r["id"] for r in rows} == {patho.id}
    assert {r["known_id"] for r in rows} == {patho.id}
    assert all("pathogenic" in r["clinvar"] for r in rows)
    assert float(rows[0]["allele_frequency"]) == pytest.approx(patho.info["AF"][0])
    summary = result.summary_data
    assert summary["known"] == 1 and summary["novel"] == 0
    assert summary["clinvar_pathogenic_count"] == 1
    hit = summary["clinvar_pathogenic"][0]
    assert hit["gene"] and hit["protein_change"].startswith("p.")


def test_identical_records_get_the_same_known_variant_annotation(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    # bcftools annotate gives a known variant to one input record only; the second copy of a
    # duplicated record used to come out without rsID, ClinVar and AF. A user ID is kept.
    known_path = demo_bundle.known_paths()[0][1]
    with pysam.VariantFile(str(known_path)) as known:
        patho = next(r for r in known if "pathogenic" in (r.info.get("CLNSIG") or ()))
    site = ("1", patho.pos, ".", patho.ref, patho.alts[0])
    mine = ("1", patho.pos, "my_id", patho.ref, patho.alts[0])
    result = _run(tmp_path, demo_bundle, write_vcf(tmp_path / "dup.vcf", [site, site, mine]))
    with pysam.VariantFile(str(result.vcf)) as out:
        records = list(out)
    assert str(records[0]) == str(records[1])
    assert [r.id for r in records] == [patho.id, patho.id, "my_id"]
    assert {r.info["GAS_KNOWN_ID"] for r in records} == {(patho.id,)}
    assert {r.info["GAS_CLNSIG"] for r in records} == {records[0].info["GAS_CLNSIG"]}
    rows = _tsv(result)
    assert {r["known_id"] for r in rows} == {patho.id}
    assert all("pathogenic" in r["clinvar"] and r["allele_frequency"] for r in rows)
    assert result.summary_data["known"] == 3


def test_known_variants_are_found_in_every_cluster_of_a_gapped_input(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    # An exome-like input (records in clusters, long gaps): annotate reads the known variants
    # only around the clusters (chunk.known_regions). Every known variant is still found, and
    # the result equals reading the chunk's whole span.
    with pysam.VariantFile(str(demo_bundle.known_paths()[0][1])) as known_file:
        known = [r for r in known_file if len(r.alts or ()) == 1]
    positions = [r.pos for r in known]
    assert max(b - a for a, b in itertools.pairwise(positions)) > 1_000  # gaps in the input
    vcf = write_vcf(tmp_path / "gapped.vcf",
                    [("1", r.pos, ".", r.ref, r.alts[0]) for r in known])  # type: ignore[index]

    def run(name: str, gap_bp: int) -> AnnotationResult:
        return annotate(vcf, reference_dir=demo_bundle.root, out_dir=tmp_path / name,
                        options=EngineOptions(known_region_gap_bp=gap_bp))

    clusters, whole = run("clusters", 50), run("whole", 10**9)
    assert "known variants read in 1 region(s)" in whole.log.read_text()
    regions = re.search(r"known variants read in (\d+) region", clusters.log.read_text())
    assert regions and int(regions.group(1)) > 1
    assert clusters.summary_data["known"] == whole.summary_data["known"] == len(known)
    assert clusters.tsv.read_text() == whole.tsv.read_text()
    with gzip.open(clusters.vcf, "rt") as a, gzip.open(whole.vcf, "rt") as b:
        assert a.read() == b.read()


def test_summary_is_labelled_synthetic_with_tool_versions(
    demo_result: tuple[AnnotationResult, list[Expected]],
) -> None:
    result, expected = demo_result
    summary = json.loads(result.summary.read_text())
    assert summary == result.summary_data
    assert summary["reference"]["synthetic"] is True
    assert summary["reference"]["name"] == "gas-demo"
    assert set(summary["tools"]) == {"pysam", "htslib", "bcftools"}
    assert summary["variants"]["annotated"] == result.variant_count == len(expected)
    assert sum(summary["impacts"].values()) == len(expected)
    assert "ti_tv" in summary and "ref_mismatch" in summary
    assert "SYNTHETIC" in result.log.read_text()


def test_multiallelic_records_are_split_and_each_allele_annotated(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    e = demo_expectations(demo_bundle)[0]
    others = [b for b in "ACGT" if b != e.ref][:2]
    vcf = write_vcf(tmp_path / "m.vcf", [("1", e.pos, ".", e.ref, ",".join(others))])
    result = _run(tmp_path, demo_bundle, vcf)
    assert result.variant_count == 2
    assert result.summary_data["variants"]["split_from_multiallelic"] == 1
    assert {r["alt"] for r in _tsv(result)} == set(others)


def test_sites_only_and_sample_files_give_the_same_consequences(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    expected = demo_expectations(demo_bundle)
    sites = write_vcf(tmp_path / "sites.vcf", _records(expected))
    with_samples = write_vcf(
        tmp_path / "samples.vcf",
        [(*r, "0/1", "1|0") for r in _records(expected)],
        samples=("S1", "S2"),
    )
    a = annotate(sites, reference_dir=demo_bundle.root, out_dir=tmp_path / "a")
    b = annotate(with_samples, reference_dir=demo_bundle.root, out_dir=tmp_path / "b")
    # The same rows; a multi-sample file's TSV adds its carriers count as the last column.
    with_carriers = [line.split("\t") for line in b.tsv.read_text().splitlines()]
    assert ["\t".join(cols[:-1]) for cols in with_carriers] == a.tsv.read_text().splitlines()
    assert with_carriers[0][-1] == "carriers"
    assert {cols[-1] for cols in with_carriers[1:]} == {"2"}
    with pysam.VariantFile(str(b.vcf)) as vcf:
        assert list(vcf.header.samples) == ["S1", "S2"]
        assert next(iter(vcf)).samples["S1"]["GT"] == (0, 1)


@pytest.mark.parametrize("compress", ["gzip", "bgzip", "bcf"])
def test_compressed_and_binary_inputs_match_plain_vcf(
    tmp_path: Path, demo_bundle: Bundle, compress: str
) -> None:
    expected = demo_expectations(demo_bundle)
    plain = write_vcf(tmp_path / "plain.vcf", _records(expected))
    if compress == "bcf":
        # BCF needs every contig declared in the header.
        length = demo_bundle.manifest.contigs["1"]
        declared = write_vcf(
            tmp_path / "declared.vcf",
            _records(expected),
            meta=("##fileformat=VCFv4.2", f"##contig=<ID=1,length={length}>"),
        )
        other = tmp_path / "other.bcf"
        pysam.bcftools.view("-Ob", "-o", str(other), str(declared), catch_stdout=False)
    else:
        other = write_vcf(tmp_path / "other.vcf.gz", _records(expected), compress=compress)
    a = annotate(plain, reference_dir=demo_bundle.root, out_dir=tmp_path / "a")
    b = annotate(other, reference_dir=demo_bundle.root, out_dir=tmp_path / "b")
    assert a.tsv.read_text() == b.tsv.read_text()
    assert b.vcf.name == "other.annot.vcf.gz"


@pytest.mark.parametrize("naming", ["chr1", "demo1"])
def test_aliased_contig_names_annotate_the_same_and_keep_the_users_naming(
    tmp_path: Path, demo_bundle: Bundle, naming: str
) -> None:
    expected = demo_expectations(demo_bundle)
    plain = annotate(
        write_vcf(tmp_path / "p.vcf", _records(expected)),
        reference_dir=demo_bundle.root,
        out_dir=tmp_path / "p",
    )
    aliased = annotate(
        write_vcf(tmp_path / "a.vcf", _records(expected, chrom=naming)),
        reference_dir=demo_bundle.root,
        out_dir=tmp_path / "a",
    )
    strip = lambda rows: [{k: v for k, v in r.items() if k != "chrom"} for r in rows]  # noqa: E731
    assert strip(_tsv(aliased)) == strip(_tsv(plain))
    assert {r["chrom"] for r in _tsv(aliased)} == {naming}
    with pysam.VariantFile(str(aliased.vcf)) as vcf:
        assert {rec.chrom for rec in vcf} == {naming}
    assert pysam.TabixFile(str(aliased.vcf)).contigs == [naming]


def test_parallel_output_equals_serial_output(tmp_path: Path, demo_bundle: Bundle) -> None:
    fasta = pysam.FastaFile(str(demo_bundle.fasta))
    seq = fasta.fetch("1").upper()
    records = []
    for pos in range(100, len(seq) - 10, 37):
        ref = seq[pos - 1]
        records.append(("1", pos, ".", ref, "A" if ref != "A" else "G"))
    vcf = write_vcf(tmp_path / "many.vcf", records)
    options = EngineOptions(chunk_records=150)  # several chunks from ~1,000 records
    serial = annotate(
        vcf, reference_dir=demo_bundle.root, out_dir=tmp_path / "w1", workers=1, options=options
    )
    parallel = annotate(
        vcf, reference_dir=demo_bundle.root, out_dir=tmp_path / "w2", workers=2, options=options
    )
    assert serial.summary_data["engine"]["chunks"] > 2
    assert serial.tsv.read_text() == parallel.tsv.read_text()

    def body(path: Path) -> list[str]:
        with gzip.open(path, "rt") as handle:
            return [line for line in handle if not line.startswith("#")]

    assert body(serial.vcf) == body(parallel.vcf)
    drop = lambda s: {k: v for k, v in s.items() if k not in ("engine", "created_at")}  # noqa: E731
    assert drop(serial.summary_data) == drop(parallel.summary_data)


@pytest.mark.parametrize("workers", [1, 2])
def test_progress_is_monotonic_and_ends_at_one(
    tmp_path: Path, demo_bundle: Bundle, workers: int
) -> None:
    fasta = pysam.FastaFile(str(demo_bundle.fasta))
    seq = fasta.fetch("1").upper()
    records = [
        ("1", p, ".", seq[p - 1], "A" if seq[p - 1] != "A" else "C") for p in range(50, 39_000, 41)
    ]
    seen: list[float] = []
    annotate(
        write_vcf(tmp_path / "p.vcf", records),
        reference_dir=demo_bundle.root,
        out_dir=tmp_path / "out",
        workers=workers,
        progress=seen.append,
        options=EngineOptions(chunk_records=200),
    )
    assert seen, "no progress reported"
    assert all(b >= a for a, b in itertools.pairwise(seen))
    assert seen[-1] == 1.0
    assert all(0.0 <= f <= 1.0 for f in seen)
    assert len(seen) >= 3


def test_a_few_ref_mismatches_are_excluded_and_reported(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    fasta = pysam.FastaFile(str(demo_bundle.fasta))
    seq = fasta.fetch("1").upper()
    records = [
        ("1", p, ".", seq[p - 1], "A" if seq[p - 1] != "A" else "C")
        for p in range(100, 30_100, 100)
    ]
    bad_pos = records[10][1]
    wrong = "A" if seq[bad_pos - 1] != "A" else "C"
    records[10] = ("1", bad_pos, ".", wrong, "G" if wrong != "G" else "T")
    result = _run(tmp_path, demo_bundle, write_vcf(tmp_path / "mm.vcf", records))
    assert result.variant_count == len(records) - 1
    assert result.summary_data["ref_mismatch"]["count"] == 1
    assert result.summary_data["ref_mismatch"]["rate"] == pytest.approx(1 / len(records))
    assert f"1:{bad_pos}" in result.log.read_text()


def test_an_indel_left_aligned_past_norms_window_is_resorted_not_lost(tmp_path: Path) -> None:
    # A 200 bp (AC)n repeat: deleting the last AC left-aligns it to the repeat's start, further
    # back than norm's re-sorting window on dense input. The chunk must be rerun sorted.
    rng = random.Random(3)
    left = "".join(rng.choice("ACGT") for _ in range(3_000))
    right = "".join(rng.choice("ACGT") for _ in range(3_000))
    seq = left + "AC" * 100 + right
    fasta = tmp_path / "repeat.fa"
    fasta.write_text(">1\n" + seq + "\n")
    gff = tmp_path / "repeat.gff3"
    gff.write_text(
        "##gff-version 3\n"
        "1\tt\tgene\t100\t400\t.\t+\t.\tID=gene:G1;Name=G1;biotype=lincRNA\n"
        "1\tt\tlnc_RNA\t100\t400\t.\t+\t.\tID=transcript:T1;Parent=gene:G1;biotype=lincRNA\n"
        "1\tt\texon\t100\t400\t.\t+\t.\tParent=transcript:T1\n"
    )
    build_bundle("GRCh38", fasta, gff, [], tmp_path / "bundle", name="repeat")
    repeat_end = len(left) + 200  # 1-based position of the repeat's last base
    deletion = (repeat_end - 2, seq[repeat_end - 3 : repeat_end], seq[repeat_end - 3])
    records = [
        ("1", p, ".", seq[p - 1], "G" if seq[p - 1] != "G" else "T")
        for p in range(len(left) - 100, repeat_end + 100)
        if p != deletion[0]
    ]
    records.append(("1", deletion[0], ".", deletion[1], deletion[2]))
    records.sort(key=lambda r: int(r[1]))  # type: ignore[call-overload]
    result = annotate(
        write_vcf(tmp_path / "dense.vcf", records),
        reference_dir=tmp_path / "bundle",
        out_dir=tmp_path / "out",
    )
    assert result.variant_count == len(records)
    assert result.summary_data["variants"]["left_aligned"] == 1
    assert "sorted after left-alignment" in result.log.read_text()
    with pysam.VariantFile(str(result.vcf)) as vcf:
        positions = [rec.pos for rec in vcf]
    assert positions == sorted(positions)
    assert len(left) in positions  # the deletion now sits at the repeat's start


def test_chrm_input_maps_to_mt_and_a_contig_without_genes_is_intergenic(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    mito = pysam.FastaFile(str(demo_bundle.fasta)).fetch("MT").upper()
    first = demo_expectations(demo_bundle)[0]
    records = [
        ("1", first.pos, ".", first.ref, first.alt),
        ("chrM", 500, ".", mito[499], "A" if mito[499] != "A" else "C"),
    ]
    # Mixed naming is what users send when a file was merged from two sources.
    result = _run(tmp_path, demo_bundle, write_vcf(tmp_path / "mt.vcf", records))
    rows = _tsv(result)
    mt = [r for r in rows if r["chrom"] == "chrM"]
    assert len(mt) == 1
    assert mt[0]["consequence"] == "intergenic_variant"
    assert mt[0]["nearest_gene"] == "" and mt[0]["distance"] == ""
    assert result.summary_data["input"]["contigs"] == {"1": "1", "chrM": "MT"}
    assert pysam.TabixFile(str(result.vcf)).contigs == ["1", "chrM"]


def test_a_chunk_emptied_by_ref_mismatches_still_joins(tmp_path: Path, demo_bundle: Bundle) -> None:
    seq = pysam.FastaFile(str(demo_bundle.fasta)).fetch("1").upper()
    mito = pysam.FastaFile(str(demo_bundle.fasta)).fetch("MT").upper()
    records: list[tuple[object, ...]] = [
        ("1", p, ".", seq[p - 1], "A" if seq[p - 1] != "A" else "C")
        for p in range(100, 30_100, 100)
    ]
    wrong = "A" if mito[99] != "A" else "C"
    records.append(
        ("MT", 100, ".", wrong, "G" if wrong != "G" else "T")
    )  # the MT chunk's only record
    result = _run(tmp_path, demo_bundle, write_vcf(tmp_path / "mm.vcf", records))
    assert result.variant_count == len(records) - 1
    assert result.summary_data["ref_mismatch"]["count"] == 1
    with pysam.VariantFile(str(result.vcf)) as vcf:
        assert {rec.chrom for rec in vcf} == {"1"}
