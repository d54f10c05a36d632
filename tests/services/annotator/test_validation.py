"""Bad input: each class of problem gets its own one-line, user-readable reason."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pysam
import pytest
from click.testing import CliRunner

from gas_annotator.commands import annotate_command
from gas_annotator.engine import InputError, annotate
from gas_annotator.reference import Bundle
from tests.services.annotator.annotator_helpers import HEADER, write_vcf


def _good_records(bundle: Bundle, n: int, step: int = 7) -> list[tuple[object, ...]]:
    seq = pysam.FastaFile(str(bundle.fasta)).fetch("1").upper()
    out: list[tuple[object, ...]] = []
    for i in range(n):
        pos = 10 + (i * step) % (len(seq) - 20)
        ref = seq[pos - 1]
        out.append(("1", pos, ".", ref, "A" if ref != "A" else "G"))
    return sorted(out, key=lambda r: int(r[1]))  # type: ignore[call-overload]


def _lines_file(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def _reason(path: Path, bundle: Bundle, tmp_path: Path, **kwargs: object) -> str:
    with pytest.raises(InputError) as info:
        annotate(path, reference_dir=bundle.root, out_dir=tmp_path / "out", **kwargs)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message, "reasons are one line"
    return message


def _body(bundle: Bundle, n: int = 5) -> list[str]:
    return ["\t".join(map(str, r)) + "\t.\t.\t." for r in _good_records(bundle, n)]


def test_empty_file_is_rejected(tmp_path: Path, demo_bundle: Bundle) -> None:
    empty = tmp_path / "empty.vcf"
    empty.write_bytes(b"")
    assert _reason(empty, demo_bundle, tmp_path) == "the file is empty"


def test_file_with_only_blank_lines_is_empty(tmp_path: Path, demo_bundle: Bundle) -> None:
    blank = tmp_path / "blank.vcf"
    blank.write_text("\n\n  \n")
    assert "empty" in _reason(blank, demo_bundle, tmp_path)


def test_missing_chrom_header_is_rejected_with_the_line(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    path = _lines_file(tmp_path / "nohdr.vcf", ["##fileformat=VCFv4.2", *_body(demo_bundle)])
    reason = _reason(path, demo_bundle, tmp_path)
    assert reason.startswith("line 2: missing #CHROM header")


def test_header_without_records_is_rejected(tmp_path: Path, demo_bundle: Bundle) -> None:
    path = _lines_file(tmp_path / "only.vcf", ["##fileformat=VCFv4.2", HEADER])
    assert "no variant records" in _reason(path, demo_bundle, tmp_path)


def test_binary_file_is_rejected(tmp_path: Path, demo_bundle: Bundle) -> None:
    path = tmp_path / "picture.vcf"
    path.write_bytes(random.Random(1).randbytes(4096))
    assert "binary" in _reason(path, demo_bundle, tmp_path)


def test_truncated_gzip_is_rejected(tmp_path: Path, demo_bundle: Bundle) -> None:
    full = write_vcf(tmp_path / "full.vcf.gz", _good_records(demo_bundle, 3000), compress="gzip")
    data = full.read_bytes()
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(data[: len(data) // 2])
    assert "truncated" in _reason(cut, demo_bundle, tmp_path)


def test_truncated_bgzip_is_rejected(tmp_path: Path, demo_bundle: Bundle) -> None:
    full = write_vcf(tmp_path / "full.vcf.gz", _good_records(demo_bundle, 3000), compress="bgzip")
    data = full.read_bytes()
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(data[: len(data) - 40])
    assert "truncated" in _reason(cut, demo_bundle, tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        (1, "abc", "POS 'abc' is not a positive integer"),
        (1, "0", "POS '0' is not a positive integer"),
        (3, "XYZ", "malformed REF 'XYZ'"),
        (4, "Q", "malformed ALT allele 'Q'"),
        (4, "<DEL>", "symbolic allele <DEL> needs INFO/END or INFO/SVLEN"),
        (4, "", "malformed ALT"),
        (0, "chrUn_demo", "contig 'chrUn_demo' is not in the reference gas-demo"),
        (1, "99999999", "POS 99999999 is beyond the end of contig '1'"),
    ],
)
def test_malformed_fields_are_reported_with_their_line(
    tmp_path: Path, demo_bundle: Bundle, field: int, value: str, expected: str
) -> None:
    body = _body(demo_bundle)
    cols = body[2].split("\t")
    cols[field] = value
    body[2] = "\t".join(cols)
    path = _lines_file(tmp_path / "bad.vcf", ["##fileformat=VCFv4.2", HEADER, *body])
    reason = _reason(path, demo_bundle, tmp_path)
    assert reason.startswith("line 5: "), reason
    assert expected in reason


def test_wrong_column_count_is_reported_with_its_line(tmp_path: Path, demo_bundle: Bundle) -> None:
    body = _body(demo_bundle)
    body[3] = body[3].rsplit("\t", 2)[0]
    path = _lines_file(tmp_path / "cols.vcf", ["##fileformat=VCFv4.2", HEADER, *body])
    reason = _reason(path, demo_bundle, tmp_path)
    assert reason == (
        "line 6: wrong column count: expected 8 tab-separated columns "
        "(as in the #CHROM header), found 6"
    )


def test_errors_deep_in_a_large_file_still_name_the_exact_line(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    # Past the first records the vectorised fast path runs; it must still find the exact line.
    records = _good_records(demo_bundle, 6000, step=5)
    lines = ["##fileformat=VCFv4.2", HEADER] + [
        "\t".join(map(str, r)) + "\t.\t.\t." for r in records
    ]
    cols = lines[4711].split("\t")
    cols[3] = "J"
    lines[4711] = "\t".join(cols)
    reason = _reason(_lines_file(tmp_path / "deep.vcf", lines), demo_bundle, tmp_path)
    assert reason.startswith("line 4712: malformed REF 'J'")


def test_unsorted_records_are_rejected(tmp_path: Path, demo_bundle: Bundle) -> None:
    body = _body(demo_bundle)
    body[1], body[3] = body[3], body[1]
    path = _lines_file(tmp_path / "unsorted.vcf", ["##fileformat=VCFv4.2", HEADER, *body])
    assert "not sorted" in _reason(path, demo_bundle, tmp_path)


def _foreign_records(bundle: Bundle, n: int) -> tuple[list[tuple[object, ...]], str]:
    seq = pysam.FastaFile(str(bundle.fasta)).fetch("1").upper()
    rng = random.Random(7)
    records: list[tuple[object, ...]] = []
    for pos in range(100, 100 + 50 * n, 50):
        ref = rng.choice("ACGT")  # a REF from some other genome: ~3/4 disagree
        records.append(("1", pos, ".", ref, "A" if ref != "A" else "C"))
    return records, seq


def test_wrong_assembly_is_rejected_with_mismatch_rate(tmp_path: Path, demo_bundle: Bundle) -> None:
    records, seq = _foreign_records(demo_bundle, 60)
    mismatched = sum(r[3] != seq[int(r[1]) - 1] for r in records)  # type: ignore[call-overload]
    reason = _reason(write_vcf(tmp_path / "other.vcf", records), demo_bundle, tmp_path)
    assert "does not match demo — wrong assembly?" in reason
    assert (
        f"{mismatched / len(records):.1%} of REF alleles ({mismatched} of {len(records)})" in reason
    )


def test_wrong_assembly_fails_early_on_a_large_file(tmp_path: Path, demo_bundle: Bundle) -> None:
    records, _ = _foreign_records(demo_bundle, 700)
    reason = _reason(write_vcf(tmp_path / "other.vcf", records), demo_bundle, tmp_path)
    assert "wrong assembly?" in reason and "of the first 100 records" in reason


def test_files_over_the_variant_limit_are_rejected(tmp_path: Path, demo_bundle: Bundle) -> None:
    path = write_vcf(tmp_path / "big.vcf", _good_records(demo_bundle, 50))
    assert "more than 20 variants" in _reason(path, demo_bundle, tmp_path, max_variants=20)


def test_cli_exits_nonzero_with_the_reason_on_stderr(tmp_path: Path, demo_bundle: Bundle) -> None:
    body = _body(demo_bundle)
    body[0] = body[0].replace("\t.\t", "\t.\t", 1)
    cols = body[0].split("\t")
    cols[1] = "x1"
    body[0] = "\t".join(cols)
    path = _lines_file(tmp_path / "cli.vcf", ["##fileformat=VCFv4.2", HEADER, *body])
    result = CliRunner().invoke(
        annotate_command,
        [str(path), "--reference", str(demo_bundle.root), "--out", str(tmp_path / "o"), "--quiet"],
    )
    assert result.exit_code == 2
    assert result.stderr.strip() == "error: line 3: POS 'x1' is not a positive integer"
    assert result.stdout == ""


def test_cli_annotates_a_good_file(tmp_path: Path, demo_bundle: Bundle) -> None:
    path = write_vcf(tmp_path / "good.vcf.gz", _good_records(demo_bundle, 30), compress="bgzip")
    result = CliRunner().invoke(
        annotate_command,
        [
            str(path),
            "--reference",
            str(demo_bundle.root),
            "--out",
            str(tmp_path / "o"),
            "--workers",
            "2",
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert "30 variants annotated" in result.stdout and "SYNTHETIC" in result.stdout
    assert (tmp_path / "o" / "good.annot.vcf.gz").is_file()


def test_cli_reports_a_missing_input_file(tmp_path: Path, demo_bundle: Bundle) -> None:
    result = CliRunner().invoke(
        annotate_command,
        [str(tmp_path / "nope.vcf"), "--reference", str(demo_bundle.root), "--out", str(tmp_path)],
    )
    assert result.exit_code == 2
    assert "no such file" in result.stderr


def test_gzip_text_with_a_bad_line_reports_the_line(tmp_path: Path, demo_bundle: Bundle) -> None:
    body = _body(demo_bundle)
    cols = body[1].split("\t")
    cols[4] = "A,,C"
    body[1] = "\t".join(cols)
    path = tmp_path / "bad.vcf.gz"
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join(["##fileformat=VCFv4.2", HEADER, *body]) + "\n")
    assert _reason(path, demo_bundle, tmp_path).startswith("line 4: malformed ALT")
