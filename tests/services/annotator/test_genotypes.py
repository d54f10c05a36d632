"""Genotypes in the outputs: carriers, per-sample genotype lists, the flat single-sample columns
(Parquet, TSV, summary counts), on the real HG00096 sample and on synthetic multi-sample files."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pysam
import pytest

from gas_annotator.engine import AnnotationResult, annotate
from gas_annotator.engine.rows import TSV_SCHEMA
from gas_annotator.reference import Bundle
from tests.services.annotator.annotator_helpers import demo_expectations
from tests.services.annotator.conftest import CHR21_SAMPLE


def _rows(result: AnnotationResult) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = pq.read_table(result.parquet).to_pylist()
    return rows


def _metadata(result: AnnotationResult) -> dict[str, str]:
    meta = pq.read_metadata(result.parquet).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"gas.")}


def _tsv(result: AnnotationResult) -> list[dict[str, str]]:
    with result.tsv.open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _write(path: Path, samples: list[str], records: list[tuple[int, str, str, str, list[str]]],
           fmt_lines: str = "") -> Path:  # fmt: skip
    header = (
        "##fileformat=VCFv4.2\n"
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
        '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
        '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">\n'
        + fmt_lines
        + "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\t"
        + "\t".join(samples)
        + "\n"
    )
    body = "".join(
        f"1\t{pos}\t.\t{ref}\t{alt}\t.\t.\t.\t{fmt}\t" + "\t".join(values) + "\n"
        for pos, ref, alt, fmt, values in records
    )
    path.write_text(header + body)
    return path


@pytest.mark.reference
def test_hg00096_carriers_are_exactly_the_sites_where_the_sample_is_not_hom_ref(
    tmp_path: Path, chr21_bundle: Bundle, reference_source: Path
) -> None:
    vcf = reference_source / CHR21_SAMPLE
    with pysam.VariantFile(str(vcf)) as records:
        written = {
            (r.pos, r.ref, (r.alts or ("",))[0]): "|".join(
                str(a) for a in r.samples["HG00096"]["GT"]
            )
            for r in records
        }
    result = annotate(vcf, reference_dir=chr21_bundle.root, out_dir=tmp_path / "out")
    rows = _rows(result)
    carriers = {(r["pos"], r["ref"], r["alt"]) for r in rows if r["carriers"] > 0}
    assert carriers == {site for site, gt in written.items() if gt != "0|0"}
    assert len(carriers) == 2
    zygosity = {"0|0": "hom_ref", "0|1": "het", "1|0": "het", "1|1": "hom_alt"}
    for row in rows:
        gt = written[(row["pos"], row["ref"], row["alt"])]
        assert (row["genotype"], row["zygosity"]) == (gt, zygosity[gt])
        assert row["genotypes"] == [{"gt": gt, "zygosity": zygosity[gt], "depth": None, "gq": None}]
        assert row["depth"] is None and row["gq"] is None
    assert _metadata(result)["gas.samples"] == json.dumps(["HG00096"])
    assert _metadata(result)["gas.samples_truncated"] == "false"
    tsv = _tsv(result)
    assert list(tsv[0]) == [*TSV_SCHEMA.names, "genotype", "zygosity", "depth", "gq"]
    assert {r["zygosity"] for r in tsv} == {"hom_ref", "het", "hom_alt"}
    assert result.summary_data["counts"]["carrier_variants"] == 2
    assert result.summary_data["counts"]["variants"] == 132


def test_multi_sample_genotypes_cover_het_hom_missing_haploid_and_split_multiallelics(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    e, f = demo_expectations(demo_bundle)[:2]
    c, g = [b for b in "ACGT" if b != f.ref][:2]
    samples = ["S1", "S2", "S3", "S4", "S5"]
    vcf = _write(
        tmp_path / "multi.vcf",
        samples,
        sorted([
            (e.pos, e.ref, e.alt, "GT:DP:GQ", ["0/1:10:30", "1/1:11:31", "./.:.:.", "1:3:9",
                                               "0|0:20:."]),
            # norm -m -any gives each ALT its own record; the other ALT becomes 0.
            (f.pos, f.ref, f"{c},{g}", "GT:GQ", ["1/2:40", "0/2:41", "2|2:42", "./1:43", "0:44"]),
        ]),
    )  # fmt: skip
    result = annotate(vcf, reference_dir=demo_bundle.root, out_dir=tmp_path / "out")
    picked = {(r["pos"], r["alt"]): r for r in _rows(result) if r["picked"]}

    def genotypes(row: dict[str, Any]) -> list[tuple[Any, ...]]:
        return [(s["gt"], s["zygosity"], s["depth"], s["gq"]) for s in row["genotypes"]]

    first = picked[(e.pos, e.alt)]
    assert genotypes(first) == [
        ("0/1", "het", 10, 30), ("1/1", "hom_alt", 11, 31), ("./.", "missing", None, None),
        ("1", "hom_alt", 3, 9), ("0|0", "hom_ref", 20, None),
    ]  # fmt: skip
    assert first["carriers"] == 3
    on_c = picked[(f.pos, c)]
    assert genotypes(on_c) == [
        ("1/0", "het", None, 40), ("0/0", "hom_ref", None, 41), ("0|0", "hom_ref", None, 42),
        ("./1", "hom_alt", None, 43), ("0", "hom_ref", None, 44),
    ]  # fmt: skip
    assert on_c["carriers"] == 2
    on_g = picked[(f.pos, g)]
    assert [z for _, z, _, _ in genotypes(on_g)] == ["het", "het", "hom_alt", "hom_ref", "hom_ref"]
    assert on_g["carriers"] == 3
    assert "genotype" not in picked[(f.pos, g)]  # flat columns are for single-sample files
    assert _metadata(result)["gas.samples"] == json.dumps(samples)
    tsv = _tsv(result)
    assert list(tsv[0])[-1] == "carriers"
    assert result.summary_data["counts"]["carrier_variants"] == 3


def _carriers_of(values: list[str], fmt: str) -> int:
    """What a correct reader counts: samples with an ALT allele in their GT (the first subfield
    when FORMAT starts with GT)."""
    if not fmt.startswith("GT"):
        return 0
    count = 0
    for value in values:
        alleles = value.split(":")[0].replace("|", "/").split("/")
        count += any(a not in (".", "0") for a in alleles)
    return count


def test_more_than_100_samples_give_the_carrier_count_only(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    rng = random.Random(7)
    samples = [f"S{i:03d}" for i in range(150)]
    choices = ["0/0", "0|1", "1|1", "./.", "1", "0", ".", "1/0", "./1", "0/0/1", "0/0/0"]
    records = []
    for i, e in enumerate(sorted(demo_expectations(demo_bundle), key=lambda x: x.pos)):
        fmt = ["GT", "GT:DP", "DP:GT", "GT:GQ:DP"][i % 4]
        values = []
        for _ in samples:
            gt = rng.choice(choices)
            values.append({"GT": gt, "GT:DP": f"{gt}:12", "DP:GT": f"7:{gt}",
                           "GT:GQ:DP": f"{gt}:99:1"}[fmt])  # fmt: skip
        records.append((e.pos, e.ref, e.alt, fmt, values))
    vcf = _write(tmp_path / "many.vcf", samples, records)
    result = annotate(vcf, reference_dir=demo_bundle.root, out_dir=tmp_path / "out")
    table = pq.read_table(result.parquet)
    assert "carriers" in table.column_names
    assert not {"genotypes", "genotype", "zygosity"} & set(table.column_names)
    expected = {(pos, alt): _carriers_of(values, fmt) for pos, _ref, alt, fmt, values in records}
    got = {(r["pos"], r["alt"]): r["carriers"] for r in table.to_pylist()}
    assert got == expected
    assert any(expected.values())
    meta = _metadata(result)
    assert meta["gas.samples_truncated"] == "true"
    assert json.loads(meta["gas.samples"]) == samples


def test_a_sites_only_file_gets_no_genotype_columns(tmp_path: Path, demo_bundle: Bundle) -> None:
    e = demo_expectations(demo_bundle)[0]
    vcf = tmp_path / "sites.vcf"
    vcf.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"1\t{e.pos}\t.\t{e.ref}\t{e.alt}\t.\t.\t.\n"
    )
    result = annotate(vcf, reference_dir=demo_bundle.root, out_dir=tmp_path / "out")
    names = pq.read_schema(result.parquet).names
    assert names[: len(TSV_SCHEMA)] == TSV_SCHEMA.names
    assert not {"carriers", "genotypes", "genotype", "zygosity", "depth", "gq"} & set(names)
    assert "gas.samples" not in _metadata(result)
    assert list(_tsv(result)[0]) == TSV_SCHEMA.names
    assert result.summary_data["counts"]["carrier_variants"] is None
