"""Reference bundles: build, verify, alias, demo, and install over HTTP."""

from __future__ import annotations

import gzip
import hashlib
import http.server
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from click.testing import CliRunner

from gas_annotator.commands import reference_group
from gas_annotator.reference import (
    BundleError,
    InstallUrls,
    bsd_sum,
    bsd_sum_python,
    build_bundle,
    build_demo_bundle,
    install_bundle,
    load_bundle,
    resolve_contig,
)
from tests.services.annotator.conftest import CHR21_FASTA, CHR21_GFF, CHR21_KNOWN


def test_demo_bundle_builds_fast_and_is_labelled_synthetic(tmp_path: Path) -> None:
    started = time.perf_counter()
    manifest = build_demo_bundle(tmp_path / "demo")
    assert time.perf_counter() - started < 2.0
    assert manifest.synthetic is True
    on_disk = json.loads((tmp_path / "demo" / "manifest.json").read_text())
    assert on_disk["synthetic"] is True and on_disk["name"] == "gas-demo"
    bundle = load_bundle(tmp_path / "demo")
    assert "SYNTHETIC" in bundle.label
    assert bundle.manifest.known[0].af_field == "AF"
    assert bundle.manifest.known[0].clnsig_field == "CLNSIG"
    assert bundle.mane is not None


def test_demo_bundle_is_reproducible(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = build_demo_bundle(tmp_path / "a")
    # A later build (gzip headers used to carry the build's second).
    later = time.time() + 3600
    monkeypatch.setattr(time, "time", lambda: later)
    b = build_demo_bundle(tmp_path / "b")
    assert a.files == b.files  # same seed, same bytes, same checksums


def test_demo_bundle_has_a_coding_gene_on_each_strand(demo_bundle: object) -> None:
    bundle = demo_bundle
    rows = [line.split("\t") for line in bundle.genes.read_text().splitlines()[1:]]  # type: ignore[attr-defined]
    coding = {r[3] for r in rows if r[6] == "protein_coding"}
    assert coding == {"+", "-"}


def test_tampered_bundle_file_is_refused(tmp_path: Path) -> None:
    build_demo_bundle(tmp_path / "demo")
    genes = tmp_path / "demo" / "genes.tsv"
    genes.write_text(genes.read_text() + "1\t1\t2\t+\tX\tX\tX\n")
    with pytest.raises(BundleError, match=r"genes\.tsv does not match its manifest checksum"):
        load_bundle(tmp_path / "demo")


def test_missing_bundle_file_is_refused(tmp_path: Path) -> None:
    build_demo_bundle(tmp_path / "demo")
    (tmp_path / "demo" / "known" / "0.vcf.gz.tbi").unlink()
    with pytest.raises(BundleError, match="missing"):
        load_bundle(tmp_path / "demo")


def test_directory_without_manifest_is_not_a_bundle(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a reference bundle"):
        load_bundle(tmp_path)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("21", "21"),
        ("chr21", "21"),
        ("chrM", "MT"),
        ("M", "MT"),
        ("MT", "MT"),
        ("NC_000021.9", "21"),
        ("chr22", None),
    ],
)
def test_contig_aliases_resolve_both_ways(name: str, expected: str | None) -> None:
    contigs = {"21": 46_709_983, "MT": 16_569}
    assert resolve_contig(name, contigs, {"NC_000021.9": "21"}) == expected
    ucsc = {"chr21": 46_709_983, "chrM": 16_569}
    if expected is not None and name != "NC_000021.9":
        assert resolve_contig(expected, ucsc, {}) == ("chrM" if expected == "MT" else "chr21")


def test_build_rejects_gene_models_on_contigs_the_fasta_lacks(tmp_path: Path) -> None:
    fasta = tmp_path / "g.fa"
    fasta.write_text(">1\n" + "ACGT" * 100 + "\n")
    gff = tmp_path / "g.gff3"
    gff.write_text("##gff-version 3\n7\tx\tgene\t1\t10\t.\t+\t.\tID=gene:G1\n")
    with pytest.raises(BundleError, match="contigs the FASTA lacks"):
        build_bundle("GRCh38", fasta, gff, [], tmp_path / "b")
    assert not (tmp_path / "b").exists(), "a failed build leaves nothing that looks like a bundle"


def test_build_rejects_a_non_fasta(tmp_path: Path) -> None:
    fasta = tmp_path / "g.fa"
    fasta.write_text("hello\n")
    gff = tmp_path / "g.gff3"
    gff.write_text("##gff-version 3\n")
    with pytest.raises(BundleError, match="not a FASTA"):
        build_bundle("GRCh38", fasta, gff, [], tmp_path / "b")


def test_bsd_sum_matches_the_reference_algorithm(tmp_path: Path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(bytes(range(256)) * 37 + b"tail")
    assert bsd_sum(data) == bsd_sum_python(data)
    if shutil.which("sum"):
        out = subprocess.run(
            ["sum", str(data)], capture_output=True, text=True, check=True
        ).stdout.split()
        assert bsd_sum_python(data) == (int(out[0]), int(out[1]))


def test_cli_reference_demo_and_build(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(reference_group, ["demo", "--out", str(tmp_path / "demo")])
    assert result.exit_code == 0, result.output
    assert "SYNTHETIC" in result.output
    bad = runner.invoke(
        reference_group,
        ["build", "--assembly", "GRCh38", "--fasta", str(tmp_path / "demo" / "genes.tsv"),
         "--gff3", str(tmp_path / "demo" / "genes.tsv"), "--out", str(tmp_path / "x")],
    )  # fmt: skip
    assert bad.exit_code == 1
    assert bad.stderr.startswith("error: ") and "FASTA" in bad.stderr


# --------------------------------------------------------------------------- real data


@pytest.mark.reference
def test_chr21_bundle_records_sources_checksums_and_known_fields(chr21_bundle: object) -> None:
    m = chr21_bundle.manifest  # type: ignore[attr-defined]
    assert m.assembly == "GRCh38" and m.synthetic is False
    assert m.contigs["21"] == 46_709_983
    assert {s["role"] for s in m.sources} >= {"fasta", "gff3", "known_variants"}
    assert all(len(digest) == 64 for digest in m.files.values())
    known = m.known[0]
    assert known.id_is_rsid and known.clnsig_field == "CLNSIG" and known.af_field == "gnomADe_AF"
    assert known.records == 119_932


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def mirror(tmp_path: Path, reference_source: Path) -> Iterator[tuple[str, Path]]:
    """An Ensembl + NCBI look-alike on 127.0.0.1 serving the shared chr21 files."""
    root = tmp_path / "www"
    dna = root / "ensembl" / "release-84_fasta" / "homo_sapiens" / "dna"
    gff_dir = root / "ensembl" / "release-84_gff3" / "homo_sapiens"
    clinvar = root / "clinvar" / "vcf_GRCh38"
    for d in (dna, gff_dir, clinvar):
        d.mkdir(parents=True)
    fasta = dna / "Homo_sapiens.GRCh38.dna.primary_assembly.fa.gz"
    shutil.copy(reference_source / CHR21_FASTA, fasta)
    gff = gff_dir / "Homo_sapiens.GRCh38.84.gff3.gz"
    with (reference_source / CHR21_GFF).open("rb") as src, gzip.open(gff, "wb") as dst:
        shutil.copyfileobj(src, dst)
    vcf = clinvar / "clinvar.vcf.gz"
    shutil.copy(reference_source / CHR21_KNOWN, vcf)

    def checksums(path: Path) -> str:
        # Written with coreutils `sum`, independently of the code under test.
        out = subprocess.run(["sum", str(path)], capture_output=True, text=True, check=True)
        s, blocks = out.stdout.split()[:2]
        return f"{s} {blocks} {path.name}\n"

    (dna / "CHECKSUMS").write_text(checksums(fasta))
    (gff_dir / "CHECKSUMS").write_text(checksums(gff))
    (gff_dir / "index.html").write_text(f'<a href="{gff.name}">{gff.name}</a>')
    (clinvar / "clinvar.vcf.gz.md5").write_text(
        f"{hashlib.md5(vcf.read_bytes()).hexdigest()}  clinvar.vcf.gz\n"
    )
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", root
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.reference
def test_install_downloads_verifies_and_builds_from_a_mirror(
    tmp_path: Path, mirror: tuple[str, Path]
) -> None:
    if not shutil.which("sum"):
        pytest.skip("coreutils sum is needed to write the mirror's CHECKSUMS")
    base, _ = mirror
    urls = InstallUrls(ensembl=f"{base}/ensembl", clinvar=f"{base}/clinvar", release="release-84")
    manifest = install_bundle("GRCh38", tmp_path / "installed", urls=urls)
    assert manifest.version == "ensembl-84"
    assert {s["role"] for s in manifest.sources} == {"fasta", "gff3", "known_variants"}
    assert all(s["url"].startswith(base) and s["verified"] for s in manifest.sources)
    bundle = load_bundle(tmp_path / "installed")
    assert bundle.gff_for("21") is not None and bundle.manifest.known[0].clnsig_field == "CLNSIG"


@pytest.mark.reference
def test_install_refuses_a_download_that_fails_its_checksum(
    tmp_path: Path, mirror: tuple[str, Path]
) -> None:
    base, root = mirror
    fasta = next(root.rglob("*.dna.primary_assembly.fa.gz"))
    with fasta.open("ab") as handle:
        handle.write(b"corruption")
    urls = InstallUrls(ensembl=f"{base}/ensembl", clinvar=f"{base}/clinvar", release="release-84")
    with pytest.raises(BundleError, match="does not match Ensembl"):
        install_bundle("GRCh38", tmp_path / "installed", urls=urls)
    assert not (tmp_path / "installed").exists()


@pytest.mark.reference
def test_cli_install_reports_an_unreachable_mirror(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        reference_group,
        ["install", "GRCh38", "--out", str(tmp_path / "x"), "--base-url", "http://127.0.0.1:9/none",
         "--release", "release-84"],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "download of" in result.stderr and "failed" in result.stderr
