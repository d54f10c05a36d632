"""The synthetic demo bundle, honestly: its example VCF annotates on it, and real data on it
fails with one line that says what happened and how to start with a real bundle."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from gas_annotator.engine import InputError, annotate
from gas_annotator.reference import Bundle, load_bundle
from gas_annotator.reference.demo_example import demo_example_vcf
from tests.services.annotator.conftest import CHR21_SAMPLE, REPO_ROOT

CHECKED_IN_EXAMPLE = REPO_ROOT / "services/web/gas_web/static/demo/example.vcf"
NEXT_STEP = "gas reference install GRCh38 --out DIR"


def _vcf(path: Path, records: list[tuple[str, int, str, str]]) -> Path:
    lines = ["##fileformat=VCFv4.2", "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"{c}\t{p}\t.\t{r}\t{a}\t.\t.\t." for c, p, r, a in records]
    path.write_text("\n".join(lines) + "\n")
    return path


def _failure(vcf: Path, bundle: Bundle, out: Path) -> str:
    with pytest.raises(InputError) as failed:
        annotate(vcf, reference_dir=bundle.root, out_dir=out)
    message = str(failed.value)
    assert "\n" not in message
    return message


def _real_bundle_from(demo: Bundle, out: Path) -> Bundle:
    """The demo's files under a manifest that does not say synthetic (a stand-in for a real
    bundle with the same contigs)."""
    shutil.copytree(demo.root, out)
    manifest = json.loads((out / "manifest.json").read_text())
    manifest["synthetic"] = False
    (out / "manifest.json").write_text(json.dumps(manifest))
    return load_bundle(out)


def test_the_checked_in_demo_example_is_what_the_generator_makes(demo_bundle: Bundle) -> None:
    assert CHECKED_IN_EXAMPLE.read_text() == demo_example_vcf(demo_bundle.root)


def test_the_demo_example_annotates_on_the_demo_bundle_with_no_ref_mismatch(
    demo_bundle: Bundle, tmp_path: Path
) -> None:
    result = annotate(CHECKED_IN_EXAMPLE, reference_dir=demo_bundle.root, out_dir=tmp_path)
    summary = result.summary_data
    assert summary["ref_mismatch"]["count"] == 0
    assert summary["variants"]["excluded_ref_mismatch"] == 0
    assert summary["variants"]["annotated"] >= 35
    assert summary["reference"]["synthetic"] is True
    for term in ("missense_variant", "synonymous_variant", "stop_gained", "frameshift_variant",
                 "splice_donor_variant", "intergenic_variant"):
        assert summary["consequences"].get(term, 0) >= 1, term
    assert summary["impacts"]["HIGH"] >= 3
    assert summary["clinvar_pathogenic_count"] >= 1
    table = pq.read_table(result.parquet, columns=["gene", "known_id"])
    genes = set(table.column("gene").to_pylist())
    assert {"DEMOPLUS", "DEMOMINUS", "DEMONC"} <= genes
    assert any(k for k in table.column("known_id").to_pylist())


def test_a_real_chr21_vcf_on_the_demo_bundle_fails_with_the_next_step(
    reference_source: Path, demo_bundle: Bundle, tmp_path: Path
) -> None:
    message = _failure(reference_source / CHR21_SAMPLE, demo_bundle, tmp_path)
    assert "is not in the reference gas-demo" in message
    assert "SYNTHETIC demo reference" in message and "real data" in message
    assert NEXT_STEP in message and "gas dev --reference DIR" in message


def test_real_looking_data_on_the_demo_contig_fails_with_the_next_step(
    demo_bundle: Bundle, tmp_path: Path
) -> None:
    # Records past the demo contig's 40 kb, as any real chromosome 1 file has.
    beyond = _failure(_vcf(tmp_path / "beyond.vcf", [("1", 1_000, "A", "G"),
                                                     ("1", 55_000, "A", "G")]),
                      demo_bundle, tmp_path / "o1")
    assert "beyond the end of contig" in beyond and NEXT_STEP in beyond
    # REF alleles from another genome: the "wrong assembly?" rate check.
    rng = random.Random(7)
    records = [("1", pos, rng.choice("ACGT"), "N") for pos in range(100, 30_000, 200)]
    records = [(c, p, r, "A" if r != "A" else "C") for c, p, r, _ in records]
    mismatch = _failure(_vcf(tmp_path / "mismatch.vcf", records), demo_bundle, tmp_path / "o2")
    assert "wrong assembly?" in mismatch and NEXT_STEP in mismatch
    assert "SYNTHETIC demo reference" in mismatch


def test_on_a_real_bundle_the_same_failures_say_nothing_about_the_demo(
    demo_bundle: Bundle, tmp_path: Path
) -> None:
    real = _real_bundle_from(demo_bundle, tmp_path / "real")
    message = _failure(_vcf(tmp_path / "chr21.vcf", [("chr21", 5_000_000, "A", "G")]),
                       real, tmp_path / "out")
    assert "is not in the reference" in message
    assert "SYNTHETIC" not in message and NEXT_STEP not in message
