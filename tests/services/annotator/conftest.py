"""Fixtures for the annotation engine and reference bundles.

Real-data tests read the shared GRCh38 chr21 files through GAS_TEST_REFERENCE (relative to the
repository root). Without it they skip, except under CI=true where a skip would hide a missing
test and so fails instead. Everything else runs on the synthetic demo bundle.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gas_annotator.reference import Bundle, build_bundle, build_demo_bundle, load_bundle

REPO_ROOT = Path(__file__).resolve().parents[3]
IN_CI = os.environ.get("CI", "").lower() == "true"

CHR21_FASTA = "GRCh38_chr21.fa.gz"
CHR21_GFF = "Ensembl84_chr21_25mb_plusAPP.gff3"
CHR21_KNOWN = "known_variants_dbSNP149_1KG_gnomADe_ClinVar.norm.vcf.gz"
CHR21_SAMPLE = "sample_HG00096_1KG_chr21.vcf.gz"
MANE_SUMMARY = "mane/MANE.GRCh38.v1.5.summary.txt.gz"


def _missing(message: str) -> None:
    if IN_CI:
        pytest.fail(f"{message} (CI=true: real-data tests must run)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def reference_source() -> Path:
    """The directory named by GAS_TEST_REFERENCE, resolved against the repository root."""
    value = os.environ.get("GAS_TEST_REFERENCE")
    if not value:
        _missing("GAS_TEST_REFERENCE is not set (e.g. ../shared/refdata/grch38_chr21)")
    path = (REPO_ROOT / str(value)).resolve()
    if not (path / CHR21_FASTA).is_file():
        _missing(f"GAS_TEST_REFERENCE={value} has no {CHR21_FASTA} (looked in {path})")
    return path


@pytest.fixture(scope="session")
def chr21_bundle(reference_source: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("bundles") / "grch38_chr21"
    mane = reference_source.parent / MANE_SUMMARY
    build_bundle(
        "GRCh38",
        reference_source / CHR21_FASTA,
        reference_source / CHR21_GFF,
        [reference_source / CHR21_KNOWN],
        out,
        name="grch38-chr21-test",
        version="ensembl84",
        mane=mane if mane.is_file() else None,
    )
    return load_bundle(out)


@pytest.fixture(scope="session")
def demo_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("bundles") / "demo"
    build_demo_bundle(out)
    return load_bundle(out)
