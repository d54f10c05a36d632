"""Every population AF field of the bundle's known variants: af_<name> columns, the INFO fields
of the VCF, the Parquet metadata naming them, and manifests written before they existed."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pysam
import pytest

from gas_annotator.engine import AnnotationResult, annotate
from gas_annotator.reference import MANIFEST_NAME, Bundle, load_bundle
from tests.services.annotator.annotator_helpers import demo_expectations, write_vcf

CHR21_KNOWN = "known_variants_dbSNP149_1KG_gnomADe_ClinVar.norm.vcf.gz"


def _metadata(result: AnnotationResult) -> dict[str, str]:
    meta = pq.read_metadata(result.parquet).metadata or {}
    return {k.decode(): v.decode() for k, v in meta.items() if k.startswith(b"gas.")}


@pytest.mark.reference
def test_every_af_field_of_the_known_file_is_a_column_with_the_known_values(
    tmp_path: Path, chr21_bundle: Bundle, reference_source: Path
) -> None:
    # rs370871564 AG>A: MINOR_ALLELE=G is the REF, so the ALT's 1000G frequency is 1 - MAF.
    # rs564188226 C>A,T: MINOR_ALLELE=T: MAF is T's, A's is unknown.
    # rs57012620 C>CA: MINOR_ALLELE=- (no insertion) is the REF.
    wanted = {"rs370871564", "rs564188226", "rs57012620", "rs79617486", "rs574523538"}
    known = reference_source / CHR21_KNOWN
    with pysam.VariantFile(str(known)) as records:
        picked = [r for r in records if r.id in wanted]
        info = {(r.pos, r.ref, (r.alts or ("",))[0]): dict(r.info) for r in picked}
        lines = [(r.chrom, r.pos, ".", r.ref, (r.alts or ("",))[0]) for r in picked]
    vcf = write_vcf(tmp_path / "k.vcf", lines)
    result = annotate(vcf, reference_dir=chr21_bundle.root, out_dir=tmp_path / "out")
    meta = _metadata(result)
    fields = json.loads(meta["gas.af_fields"])
    columns = [f["column"] for f in fields]
    names = pq.read_schema(result.parquet).names
    assert [n for n in names if n.startswith("af_")] == columns
    assert meta["gas.af_default"] == "af_gnomade" == columns[0]
    wanted_columns = {"af_gnomade", "af_kg_global", "af_kg_afr", "af_kg_eur", "af_gnomade_nfe"}
    assert wanted_columns <= set(columns)
    assert {f["column"]: f["label"] for f in fields}["af_kg_global"] == "1000 Genomes global"
    by_field = {f["field"]: f["column"] for f in fields}
    rows = {
        (r["pos"], r["ref"], r["alt"]): r
        for r in pq.read_table(result.parquet).to_pylist()
        if r["picked"]
    }
    assert set(rows) == set(info)
    for site, values in info.items():
        row = rows[site]
        assert row["allele_frequency"] == row["af_gnomade"]
        for field, column in by_field.items():
            if field == "GAS_MAF_AF":
                continue
            value = values.get(field)
            value = value[0] if isinstance(value, tuple) else value
            assert row[column] == pytest.approx(value) if value is not None else row[column] is None
    kg = {site[1:]: rows[site]["af_kg_global"] for site in rows}
    assert kg[("AG", "A")] == pytest.approx(1 - 0.4014)
    assert kg[("C", "T")] == pytest.approx(0.001)
    assert kg[("C", "A")] is None
    assert kg[("C", "CA")] == pytest.approx(1 - 0.0006)
    assert kg[("TTAC", "T")] == pytest.approx(1 - 0.0915)
    # The VCF carries every field too, under GAS_AF (the default) and GAS_AF_<NAME>.
    with pysam.VariantFile(str(result.vcf)) as out:
        assert {"GAS_AF", "GAS_AF_KG_GLOBAL", "GAS_AF_KG_AFR"} <= set(out.header.info)
        assert "GAS_AF_GNOMADE" not in out.header.info


def test_a_bundle_manifest_without_af_fields_still_annotates(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    """Bundles installed before every AF field was kept: their one af_field is the column."""
    old = tmp_path / "old-bundle"
    old.mkdir()
    for path in demo_bundle.root.rglob("*"):
        if path.is_file():
            target = old / path.relative_to(demo_bundle.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
    manifest = json.loads((old / MANIFEST_NAME).read_text())
    for known in manifest["known"]:
        known.pop("af_fields", None)
    (old / MANIFEST_NAME).write_text(json.dumps(manifest))
    bundle = load_bundle(old)
    assert bundle.manifest.known[0].af_fields is None
    field = bundle.manifest.known[0].af_field
    assert field
    e = demo_expectations(bundle)[0]
    vcf = write_vcf(tmp_path / "d.vcf", [("1", e.pos, ".", e.ref, e.alt)])
    result = annotate(vcf, reference_dir=old, out_dir=tmp_path / "out")
    fields = json.loads(_metadata(result)["gas.af_fields"])
    assert [f["field"] for f in fields] == [field]
    assert _metadata(result)["gas.af_default"] == fields[0]["column"]
    assert fields[0]["column"] in pq.read_schema(result.parquet).names
