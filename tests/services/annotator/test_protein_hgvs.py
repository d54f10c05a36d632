"""Every protein change the engine writes is HGVS p. notation, on real data: every record of
the chr21 known-variant file and bcftools' csq fixtures (stop lost, frameshifts, splice)."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

import pyarrow.parquet as pq
import pysam
import pytest

from gas_annotator.engine import AnnotationResult, annotate
from gas_annotator.engine.consequences import HGVS_P_REGEX
from gas_annotator.reference import Bundle, build_bundle, load_bundle

pytestmark = pytest.mark.reference

HGVS = re.compile(HGVS_P_REGEX)


def _protein_changes(result: AnnotationResult) -> set[str]:
    """Every protein change of every output: Parquet rows, summary hits, the VCF's GAS_MANE."""
    table = pq.read_table(result.parquet, columns=["protein_change"])
    found = {p for p in table.column("protein_change").to_pylist() if p}
    found |= {h["protein_change"] for h in result.summary_data["clinvar_pathogenic"]
              if h["protein_change"]}  # fmt: skip
    with pysam.VariantFile(str(result.vcf)) as records:
        for record in records:
            mane = record.info.get("GAS_MANE")
            if mane:
                protein = urllib.parse.unquote(str(mane).split("|")[2])
                if protein:
                    found.add(protein)
    return found


def test_every_protein_change_of_the_known_variants_is_hgvs(
    tmp_path: Path, chr21_bundle: Bundle, reference_source: Path
) -> None:
    vcf = reference_source / "known_variants_dbSNP149_1KG_gnomADe_ClinVar.vcf.gz"
    result = annotate(vcf, reference_dir=chr21_bundle.root, out_dir=tmp_path / "out", workers=2)
    changes = _protein_changes(result)
    assert len(changes) > 1000
    assert sorted(p for p in changes if not HGVS.match(p)) == []
    # The forms csq writes differently are all there, converted.
    assert "p.Ter354?" in changes  # csq: 354*>354? (a lost stop, extension unknown)
    assert any(re.match(r"^p\.Ter\d+[A-Z][a-z]{2}extTer\?$", p) for p in changes)  # 339*>339Q
    assert any(p.endswith("fs") for p in changes)
    tsv = result.tsv.read_text()
    assert ">" not in "".join(line.split("\t")[10] for line in tsv.splitlines()[1:])


def test_every_protein_change_of_the_csq_fixtures_is_hgvs(
    tmp_path: Path, reference_source: Path
) -> None:
    root = reference_source.parent / "csq_fixtures"
    if not root.is_dir():
        pytest.fail(f"{root} is missing: the shared reference data is incomplete")
    changes: set[str] = set()
    for vcf in sorted(root.glob("*/*.vcf")):
        name = vcf.parent.name
        out = tmp_path / f"bundle_{vcf.stem}"
        build_bundle("GRCh38", vcf.parent / f"{name}.fa", vcf.parent / f"{name}.gff", [], out,
                     name=name)  # fmt: skip
        result = annotate(vcf, reference_dir=load_bundle(out).root, out_dir=tmp_path / vcf.stem)
        changes |= _protein_changes(result)
    assert changes
    assert sorted(p for p in changes if not HGVS.match(p)) == []
