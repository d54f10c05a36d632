"""The `picked` column: exactly one row per variant record, chosen like VEP's --pick (MANE
Select, then protein_coding, then the most severe consequence, then the transcript id)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pysam
import pytest

from gas_annotator.engine import annotate
from gas_annotator.engine.consequences import RANK
from gas_annotator.engine.rows import gene_first_rows, picked_rows
from gas_annotator.reference import Bundle
from tests.services.annotator.annotator_helpers import demo_expectations, write_vcf


def test_pick_order_is_mane_then_protein_coding_then_severity_then_transcript() -> None:
    # Variant 0: a MANE intron row beats a more severe non-MANE missense row.
    # Variant 1: protein_coding beats a more severe lincRNA row.
    # Variant 2: the more severe of two protein_coding rows.
    # Variant 3: equal on everything else: the smaller transcript id.
    parent = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    mane = pa.array([False, True, False, False, False, False, False, False])
    biotype = pa.array(
        [
            "protein_coding",
            "protein_coding",
            "lincRNA",
            "protein_coding",
            "protein_coding",
            "protein_coding",
            "protein_coding",
            "protein_coding",
        ]
    )
    terms = [
        "missense_variant",
        "intron_variant",
        "splice_donor_variant",
        "intron_variant",
        "intron_variant",
        "stop_gained",
        "missense_variant",
        "missense_variant",
    ]
    rank = np.array([RANK[t] for t in terms], dtype=np.int64)
    transcript = pa.array(["T9", "T1", "T2", "T3", "T4", "T5", "T7", "T6"])
    got = picked_rows(parent, mane, biotype, rank, transcript).to_pylist()
    assert got == [False, True, False, True, False, True, False, True]


def test_gene_first_marks_one_row_per_variant_and_gene() -> None:
    # Variant 0: two APP transcripts and an antisense gene; variant 1: APP again, its rows
    # not adjacent; a row without a gene is never marked.
    parent = np.array([0, 0, 0, 1, 1, 1])
    gene = pa.array(["APP", "AP001442.2", "APP", "APP", None, "APP"])
    got = gene_first_rows(parent, gene).to_pylist()
    assert got == [True, True, False, True, False, False]


def _picked_by_variant(parquet: Path) -> dict[tuple[int, str, str], list[dict[str, object]]]:
    out: dict[tuple[int, str, str], list[dict[str, object]]] = defaultdict(list)
    for row in pq.read_table(parquet).to_pylist():
        out[(int(row["pos"]), str(row["ref"]), str(row["alt"]))].append(row)
    return out


def test_every_variant_of_a_demo_file_has_exactly_one_picked_row(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    expected = demo_expectations(demo_bundle)
    records = sorted({(e.pos, e.ref, e.alt) for e in expected})
    vcf = write_vcf(tmp_path / "d.vcf", [("1", p, ".", r, a) for p, r, a in records])
    result = annotate(vcf, reference_dir=demo_bundle.root, out_dir=tmp_path / "out")
    by_variant = _picked_by_variant(result.parquet)
    assert len(by_variant) == result.variant_count
    for rows in by_variant.values():
        assert sum(bool(r["picked"]) for r in rows) == 1
        if any(r["mane_select"] for r in rows):
            assert next(r for r in rows if r["picked"])["mane_select"]


@pytest.mark.reference
def test_picked_is_one_row_per_real_variant_and_the_mane_row_where_there_is_one(
    tmp_path: Path, chr21_bundle: Bundle, reference_source: Path
) -> None:
    vcf = reference_source / "known_variants_dbSNP149_1KG_gnomADe_ClinVar.norm.vcf.gz"
    result = annotate(vcf, reference_dir=chr21_bundle.root, out_dir=tmp_path / "out", workers=2)
    by_variant = _picked_by_variant(result.parquet)
    # A record repeated in the file (same position and alleles) is a variant record per copy.
    copies: dict[tuple[int, str, str], int] = defaultdict(int)
    with pysam.VariantFile(str(vcf)) as records:
        for r in records:
            copies[(r.pos, str(r.ref), r.alts[0] if r.alts else "")] += 1
    several = 0
    for key, rows in by_variant.items():
        picked = [r for r in rows if r["picked"]]
        assert len(picked) == copies[key], key
        if any(r["mane_select"] for r in rows):
            assert all(r["mane_select"] for r in picked)
        several += len(rows) > copies[key]
        # `gene_first`: per copy of the record, one row in each of its genes.
        for gene in {r["gene"] for r in rows if r["gene"]}:
            assert sum(bool(r["gene_first"]) for r in rows if r["gene"] == gene) == copies[key]
        assert not any(r["gene_first"] for r in rows if not r["gene"])
    assert several > 1000  # the rule was exercised: many variants have several transcript rows
    assert sum(bool(r["picked"]) for rows in by_variant.values() for r in rows) == (
        result.variant_count
    )
