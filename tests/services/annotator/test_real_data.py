"""The engine on real GRCh38 data (chr21 slice) and bcftools' own consequence fixtures."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import pysam
import pytest

from gas_annotator.engine import AnnotationResult, InputError, annotate
from gas_annotator.engine import consequences as cq
from gas_annotator.engine.chunk import csq_args
from gas_annotator.reference import Bundle, build_bundle, load_bundle
from tests.services.annotator.annotator_helpers import write_vcf
from tests.services.annotator.conftest import CHR21_SAMPLE

pytestmark = pytest.mark.reference


def _tsv(result: AnnotationResult) -> list[dict[str, str]]:
    with result.tsv.open() as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def test_app_v717i_is_a_pathogenic_missense_on_the_mane_transcript(
    tmp_path: Path, chr21_bundle: Bundle
) -> None:
    vcf = write_vcf(tmp_path / "app.vcf", [("21", 25891784, ".", "C", "T")])
    result = annotate(vcf, reference_dir=chr21_bundle.root, out_dir=tmp_path / "out")
    rows = _tsv(result)
    row = next(r for r in rows if r["transcript"] == "ENST00000346798")
    assert row["gene"] == "APP"
    assert row["consequence"] == "missense_variant"
    assert row["impact"] == "MODERATE"
    assert row["protein_change"] == "p.Val717Ile"
    assert row["id"] == "rs63750264" and row["known_id"] == "rs63750264"
    assert "pathogenic" in row["clinvar"].split(",")
    assert row["mane_select"] == "true"
    hit = result.summary_data["clinvar_pathogenic"][0]
    assert (hit["gene"], hit["protein_change"], hit["id"]) == ("APP", "p.Val717Ile", "rs63750264")
    assert result.summary_data["reference"]["synthetic"] is False
    with pysam.VariantFile(str(result.vcf)) as out:
        rec = next(iter(out))
        assert rec.id == "rs63750264"
        assert rec.info["GAS_CSQ"] == "missense_variant"
        assert rec.info["GAS_MANE"].startswith("ENST00000346798|missense_variant|p.Val717Ile")


def test_entries_without_a_transcript_id_stay_apart_per_gene(
    tmp_path: Path, chr21_bundle: Bundle
) -> None:
    # csq: BCSQ=intron|APP||protein_coding,non_coding|AP001442.2||antisense (no transcript ids).
    vcf = write_vcf(tmp_path / "antisense.vcf", [("21", 25936834, ".", "T", "C")])
    result = annotate(vcf, reference_dir=chr21_bundle.root, out_dir=tmp_path / "out")
    rows = {(r["gene"], r["biotype"]): r["consequence"] for r in _tsv(result)}
    assert rows == {
        ("APP", "protein_coding"): "intron_variant",
        ("AP001442.2", "antisense"): "non_coding_transcript_exon_variant",
    }
    with pysam.VariantFile(str(result.vcf)) as out:
        rec = next(iter(out))
        # The most severe consequence is the non-coding gene's, and it is credited to it.
        assert (rec.info["GAS_CSQ"], rec.info["GAS_GENE"]) == (
            "non_coding_transcript_exon_variant",
            "AP001442.2",
        )


def test_every_record_of_the_hg00096_sample_is_annotated(
    tmp_path: Path, chr21_bundle: Bundle, reference_source: Path
) -> None:
    sample = reference_source / CHR21_SAMPLE
    with pysam.VariantFile(str(sample)) as vcf:
        keys = [(r.pos, r.ref, r.alts[0]) for r in vcf]
    result = annotate(sample, reference_dir=chr21_bundle.root, out_dir=tmp_path / "out", workers=2)
    assert result.variant_count == len(keys)
    with pysam.VariantFile(str(result.vcf)) as out:
        annotated = [
            (r.pos, r.ref, r.alts[0]) for r in out if "BCSQ" in r.info and "GAS_CSQ" in r.info
        ]
        assert list(out.header.samples) == ["HG00096"]
    assert annotated == keys
    rows = _tsv(result)
    assert {(int(r["pos"]), r["ref"], r["alt"]) for r in rows} == set(keys)
    assert all(r["gene"] and r["consequence"] for r in rows)
    assert result.summary_data["ref_mismatch"]["count"] == 0
    assert result.summary_data["known"] == len(keys)


def test_both_copies_of_a_duplicated_record_get_the_same_annotation(
    tmp_path: Path, chr21_bundle: Bundle, reference_source: Path
) -> None:
    # annotate pairs a known variant with one input record: the second copy used to lose its
    # rsID, ClinVar and AF. Here every record of the sample (sites only) is written twice, and
    # one allele is also repeated with another allele in between.
    with pysam.VariantFile(str(reference_source / CHR21_SAMPLE)) as vcf:
        sites = [("21", r.pos, ".", r.ref, r.alts[0]) for r in vcf]
    twice = [site for site in sites for _ in range(2)]
    app = [("21", 25891784, ".", "C", alt) for alt in ("T", "A", "T")]
    records = sorted(twice + app, key=lambda r: int(str(r[1])))  # stable: copies stay adjacent
    result = annotate(
        write_vcf(tmp_path / "twice.vcf", records),
        reference_dir=chr21_bundle.root,
        out_dir=tmp_path / "out",
    )
    with pysam.VariantFile(str(result.vcf)) as out:
        lines = [str(r) for r in out]
    at_app = [line for line in lines if line.startswith("21\t25891784\t")]
    others = [line for line in lines if not line.startswith("21\t25891784\t")]
    assert others[0::2] == others[1::2]
    assert at_app[0] == at_app[2] and "rs63750264" in at_app[2]
    rows = _tsv(result)
    by_site: dict[tuple[str, str, str], list[dict[str, str]]] = {}
    for row in rows:
        by_site.setdefault((row["pos"], row["ref"], row["alt"]), []).append(row)
    for (pos, _ref, alt), site_rows in by_site.items():
        if (pos, alt) == ("25891784", "A"):
            continue  # the one allele given once
        # Each copy gives the same rows: every distinct row appears an even number of times.
        counts: dict[tuple[str, ...], int] = {}
        for row in site_rows:
            key = tuple(row.values())
            counts[key] = counts.get(key, 0) + 1
        assert all(c % 2 == 0 for c in counts.values()), site_rows[0]
    assert result.summary_data["known"] == len(twice) + 3


def test_chr_prefixed_input_gives_the_same_consequences(
    tmp_path: Path, chr21_bundle: Bundle, reference_source: Path
) -> None:
    sample = reference_source / CHR21_SAMPLE
    with gzip.open(sample, "rt") as handle:
        text = handle.read()
    renamed = tmp_path / "chr.vcf"
    renamed.write_text(
        "".join(
            ("chr" + line)
            if line and not line.startswith("#")
            else line.replace("ID=21,", "ID=chr21,")
            for line in text.splitlines(keepends=True)
        )
    )
    plain = annotate(sample, reference_dir=chr21_bundle.root, out_dir=tmp_path / "plain")
    chr_named = annotate(renamed, reference_dir=chr21_bundle.root, out_dir=tmp_path / "chr")
    strip = lambda rows: [{k: v for k, v in r.items() if k != "chrom"} for r in rows]  # noqa: E731
    assert strip(_tsv(chr_named)) == strip(_tsv(plain))
    assert {r["chrom"] for r in _tsv(chr_named)} == {"chr21"}
    assert pysam.TabixFile(str(chr_named.vcf)).contigs == ["chr21"]


def test_wrong_assembly_is_rejected_with_mismatch_rate_on_grch38(
    tmp_path: Path, chr21_bundle: Bundle, reference_source: Path
) -> None:
    # GRCh37-like input: the same alleles 1 kb away from where GRCh38 has them.
    with pysam.VariantFile(str(reference_source / CHR21_SAMPLE)) as vcf:
        records = [("21", r.pos + 1000, ".", r.ref, r.alts[0]) for r in vcf]
    with pytest.raises(InputError) as info:
        annotate(
            write_vcf(tmp_path / "hg19.vcf", records),
            reference_dir=chr21_bundle.root,
            out_dir=tmp_path / "o",
        )
    assert "does not match GRCh38 — wrong assembly?" in str(info.value)
    assert "%" in str(info.value)


# --------------------------------------------------------------------------- csq fixtures


def _fixture_cases(root: Path) -> list[Path]:
    return sorted(root.glob("ENST*/*.vcf"))


def _expected_bcsq(path: Path) -> dict[tuple[int, str, str], set[str]]:
    """bcftools' test output: per record a line with EXP, then the (sorted) BCSQ line."""
    lines = [ln for ln in path.read_text().splitlines() if ln.strip()]
    expected: dict[tuple[int, str, str], set[str]] = {}
    for line in lines[1::2]:
        pos, ref, alt, bcsq = line.split("\t")
        expected[(int(pos), ref, alt)] = set() if bcsq == "." else set(bcsq.split(","))
    return expected


@pytest.fixture(scope="module")
def csq_fixture_root(reference_source: Path) -> Path:
    root = reference_source.parent / "csq_fixtures"
    if not root.is_dir():
        pytest.fail(f"{root} is missing: the shared reference data is incomplete")
    return root


def _fixture_bundle(case_dir: Path, out: Path) -> Bundle:
    name = case_dir.name
    build_bundle("GRCh38", case_dir / f"{name}.fa", case_dir / f"{name}.gff", [], out, name=name)
    return load_bundle(out)


def test_csq_fixtures_reproduce_bcftools_expected_local_consequences(
    tmp_path: Path, csq_fixture_root: Path
) -> None:
    compared = 0
    for vcf in _fixture_cases(csq_fixture_root):
        local = vcf.with_suffix(".txt-l")
        haplotype = vcf.with_suffix(".txt")
        expected = _expected_bcsq(local if local.exists() else haplotype)
        # Without a -l file the haplotype-mode answer applies only where no other record joins in.
        if not local.exists() and any(
            c.startswith("@") or "+" in c for v in expected.values() for c in v
        ):
            continue
        bundle = _fixture_bundle(vcf.parent, tmp_path / f"bundle_{vcf.stem}")
        result = annotate(vcf, reference_dir=bundle.root, out_dir=tmp_path / vcf.stem)
        with pysam.VariantFile(str(result.vcf)) as out:
            got = {(r.pos, r.ref, r.alts[0]): set(r.info.get("BCSQ", ())) for r in out}
        assert got == expected, vcf.name
        compared += 1
    assert compared == 3


def test_haplotype_fixture_shows_what_local_mode_changes(
    tmp_path: Path, csq_fixture_root: Path
) -> None:
    vcf = csq_fixture_root / "ENST00000269081" / "stop-gained-not-inframe-insertion.vcf"
    expected = _expected_bcsq(vcf.with_suffix(".txt"))
    bundle = _fixture_bundle(vcf.parent, tmp_path / "bundle")
    # Our csq invocation in haplotype mode reproduces bcftools' expected output exactly ...
    text = pysam.bcftools.csq(
        *csq_args(str(bundle.fasta), str(bundle.gff_for("17")), local=False), str(vcf)
    )
    haplotype = {}
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        cols = line.split("\t")
        bcsq = next((f[5:] for f in cols[7].split(";") if f.startswith("BCSQ=")), "")
        haplotype[(int(cols[1]), cols[3], cols[4])] = set(bcsq.split(",")) if bcsq else set()
    assert haplotype == expected
    # ... while the engine (local mode) predicts each record alone: no "@POS" back-references,
    # and the deletion is reported as the frameshift it is on its own.
    result = annotate(vcf, reference_dir=bundle.root, out_dir=tmp_path / "out")
    rows = _tsv(result)
    assert all("@" not in r["consequence"] for r in rows)
    deletion = [r for r in rows if r["pos"] == "46862"]
    assert any("frameshift_variant" in r["consequence"].split("&") for r in deletion)


# --------------------------------------------------------------------------- concordance

# Differences from plain `bcftools csq -l` that are by design (docs/annotation.md, "Concordance
# with bcftools csq"): a variant csq gives nothing for gets one context row of ours.
_CONTEXT_TERMS = {
    "upstream_gene_variant",
    "downstream_gene_variant",
    "intergenic_variant",
    "intragenic_variant",
}


def _csq_by_transcript(bcsq: str) -> dict[tuple[str, str, str], set[str]]:
    """csq's entries of one record per transcript (gene and biotype when csq gives no transcript
    id), as sets of Sequence Ontology terms."""
    out: dict[tuple[str, str, str], set[str]] = {}
    for entry in bcsq.split(","):
        parts = (entry.split("|") + [""] * 4)[:4]
        csq, gene, transcript, biotype = parts
        key = (transcript, "", "") if transcript else ("", gene, biotype)
        terms = cq.so_terms(csq)[0]
        out.setdefault(key, set()).update(t for t in terms.split("&") if t)
    return out


def _plain_csq(
    vcf: Path, bundle: Bundle, work: Path
) -> dict[tuple[int, str, str], dict[tuple[str, str, str], set[str]]]:
    """norm (as the engine runs it) then plain `bcftools csq -l`, per (pos, ref, alt)."""
    normed = work / "norm.bcf"
    pysam.bcftools.norm(
        "--no-version", "-m", "-any", "-c", "x", "-f", str(bundle.fasta), "-Ob", "-o",
        str(normed), str(vcf), catch_stdout=False,
    )  # fmt: skip
    called = work / "csq.bcf"
    pysam.bcftools.csq(
        *csq_args(str(bundle.fasta), str(bundle.gff_for("21"))), "-Ob", "-o", str(called),
        str(normed), catch_stdout=False,
    )  # fmt: skip
    out: dict[tuple[int, str, str], dict[tuple[str, str, str], set[str]]] = {}
    query = pysam.bcftools.query("-f", "%POS\t%REF\t%ALT\t%BCSQ\n", str(called))
    for line in str(query).splitlines():
        pos, ref, alt, bcsq = line.split("\t")
        entries = _csq_by_transcript(bcsq) if bcsq != "." else {}
        slot = out.setdefault((int(pos), ref, alt), {})
        for key, terms in entries.items():
            slot.setdefault(key, set()).update(terms)
    return out


@pytest.mark.parametrize("source", ["known", "sample"])
def test_consequences_per_transcript_agree_with_plain_bcftools_csq(
    tmp_path: Path, chr21_bundle: Bundle, reference_source: Path, source: str
) -> None:
    name = (
        "known_variants_dbSNP149_1KG_gnomADe_ClinVar.vcf.gz" if source == "known" else CHR21_SAMPLE
    )
    vcf = reference_source / name
    expected = _plain_csq(vcf, chr21_bundle, tmp_path)
    result = annotate(vcf, reference_dir=chr21_bundle.root, out_dir=tmp_path / "out", workers=2)
    got: dict[tuple[int, str, str], dict[tuple[str, str, str], set[str]]] = {}
    context: set[tuple[int, str, str]] = set()
    for row in _tsv(result):
        site = (int(row["pos"]), row["ref"], row["alt"])
        terms = set(row["consequence"].split("&"))
        if not row["gene"] and terms <= _CONTEXT_TERMS:
            context.add(site)
            got.setdefault(site, {})
            continue
        key = (
            (row["transcript"], "", "") if row["transcript"] else ("", row["gene"], row["biotype"])
        )
        got.setdefault(site, {}).setdefault(key, set()).update(terms)
    assert set(got) == set(expected)
    unexplained = [
        (site, expected[site], got[site])
        for site in expected
        if expected[site] != got[site] and not (site in context and not expected[site])
    ]
    assert unexplained == [], f"{len(unexplained)} records differ, e.g. {unexplained[:3]}"
    assert context == {site for site, entries in expected.items() if not entries}
