"""Hostile input fails fast, with a one-line reason, in bounded time and memory.

The bombs are generated on the fly, small: most tests scale the limits down through
EngineOptions(limits=...); the tests at the default limits stay fast because they fail early.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import pyarrow.parquet as pq
import pysam
import pysam.bcftools
import pytest

from gas_annotator.engine import EngineOptions, InputError, InputLimits, annotate
from gas_annotator.reference import Bundle
from gas_annotator.settings import AnnotatorSettings
from gas_core.settings import Tier
from tests.services.annotator.annotator_helpers import HEADER

KB = 1 << 10
MB = 1 << 20


def _record(seq: str, pos: int, ident: str = ".", info: str = ".") -> str:
    ref = seq[pos - 1]
    return f"1\t{pos}\t{ident}\t{ref}\t{'A' if ref != 'A' else 'G'}\t.\t.\t{info}\n"


@pytest.fixture(scope="module")
def seq(demo_bundle: Bundle) -> str:
    return pysam.FastaFile(str(demo_bundle.fasta)).fetch("1").upper()


def _records(seq: str, n: int, start: int = 10) -> str:
    return "".join(_record(seq, pos) for pos in range(start, start + n))


def _reason(path: Path, bundle: Bundle, tmp_path: Path, **limits: int) -> str:
    options = EngineOptions(limits=InputLimits(**limits))
    with pytest.raises(InputError) as info:
        annotate(path, reference_dir=bundle.root, out_dir=tmp_path / "out", options=options)
    message = str(info.value)
    assert "\n" not in message, "reasons are one line"
    return message


def _gzip_bomb(path: Path, line: bytes, text_bytes: int, *, head: bytes = b"") -> Path:
    """A gzip file of ``line`` repeated to ``text_bytes``, written as one compressed member
    repeated (a valid multi-member gzip stream), so a GB-sized bomb costs milliseconds."""
    member_text = line * max(1, (4 * MB) // len(line))
    member = gzip.compress(member_text, 9)
    with path.open("wb") as out:
        out.write(gzip.compress(head))
        for _ in range(max(1, text_bytes // len(member_text))):
            out.write(member)
    return path


# --------------------------------------------------------------------------- header bomb


def test_header_over_the_header_limit_is_rejected(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    meta = "".join(f"##note{i}={'x' * 90}\n" for i in range(2000))  # ~200 KB
    path = tmp_path / "fat_header.vcf"
    path.write_text("##fileformat=VCFv4.2\n" + meta + HEADER + "\n" + _records(seq, 5))
    reason = _reason(path, demo_bundle, tmp_path, max_header_bytes=64 * KB)
    assert reason.startswith("line ") and "the header is larger than 64 KB, the limit" in reason


def test_header_bomb_fails_early_at_the_default_limits(tmp_path: Path, demo_bundle: Bundle) -> None:
    # 1 GB of "##" lines in ~4 MB of gzip: the reader stops at the 64 MB header limit instead of
    # holding the whole header in memory.
    bomb = _gzip_bomb(
        tmp_path / "bomb.vcf.gz",
        b"##" + b"x" * 98 + b"\n",
        1 << 30,
        head=b"##fileformat=VCFv4.2\n",
    )
    assert bomb.stat().st_size < 8 * MB
    reason = _reason(bomb, demo_bundle, tmp_path)
    assert "the header is larger than 64 MB, the limit" in reason


def test_text_over_the_decompressed_limit_is_rejected(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    # Blank lines are no records (no variant limit stops them): only the text limit does.
    head = ("##fileformat=VCFv4.2\n" + HEADER + "\n" + _records(seq, 3)).encode()
    bomb = _gzip_bomb(tmp_path / "blank.vcf.gz", b"\n", 8 * MB, head=head)
    reason = _reason(bomb, demo_bundle, tmp_path, max_text_bytes=2 * MB)
    assert "the file holds more than 2 MB of text (decompressed), the limit" in reason


def test_a_header_of_many_tiny_lines_is_rejected_at_the_line_limit(
    tmp_path: Path, demo_bundle: Bundle
) -> None:
    # 64 MB of "##" lines is 21 million lines: far more memory and time than 64 MB suggests.
    bomb = _gzip_bomb(tmp_path / "tiny.vcf.gz", b"##\n", 64 * MB, head=b"##fileformat=VCFv4.2\n")
    reason = _reason(bomb, demo_bundle, tmp_path, max_header_lines=100_000)
    assert (
        reason == "line 100001: the header has more than 100,000 lines, the limit (is this a VCF?)"
    )


def test_blank_lines_beyond_the_limit_are_rejected(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    # Each blank line goes through the per-line path and counts as no record: a gzip of newlines
    # within the text limit would otherwise keep a worker busy for many minutes.
    head = ("##fileformat=VCFv4.2\n" + HEADER + "\n" + _records(seq, 3)).encode()
    bomb = _gzip_bomb(tmp_path / "blank.vcf.gz", b"\n", 1 * MB, head=head)
    reason = _reason(bomb, demo_bundle, tmp_path)
    assert reason == "line 10006: more than 10,000 blank lines, the limit"


def test_a_carriage_return_inside_a_line_is_rejected_with_its_line(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    body = _records(seq, 3) + _record(seq, 50, ident="rs5\rx") + _records(seq, 2, start=60)
    path = tmp_path / "cr.vcf"
    path.write_bytes(("##fileformat=VCFv4.2\n" + HEADER + "\n" + body).encode())
    reason = _reason(path, demo_bundle, tmp_path)
    assert reason == "line 6: a carriage return (CR) inside the line"


def test_crlf_line_ends_are_accepted(tmp_path: Path, demo_bundle: Bundle, seq: str) -> None:
    text = "##fileformat=VCFv4.2\n" + HEADER + "\n" + _records(seq, 3)
    path = tmp_path / "crlf.vcf"
    path.write_bytes(text.replace("\n", "\r\n").encode())
    result = annotate(path, reference_dir=demo_bundle.root, out_dir=tmp_path / "out")
    assert result.variant_count == 3


def _bcf(tmp_path: Path, text: str, mode: str = "b") -> Path:
    vcf = tmp_path / "source.vcf"
    # BCF needs its contigs declared.
    vcf.write_text(text.replace("\n", "\n##contig=<ID=1,length=40000>\n", 1))
    out = tmp_path / ("input.bcf" if mode == "b" else "input.u.bcf")
    pysam.bcftools.view("--no-version", f"-O{mode}", "-o", str(out), str(vcf), catch_stdout=False)
    return out


def test_a_bcf_with_more_data_than_the_limit_fails_before_conversion(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    # BCF is converted to VCF text on the scratch disk first: its size is checked before that,
    # from the BGZF block footers, without decompressing it.
    bcf = _bcf(tmp_path, "##fileformat=VCFv4.2\n" + HEADER + "\n" + _records(seq, 5_000))
    reason = _reason(bcf, demo_bundle, tmp_path, max_text_bytes=64 * KB)
    assert reason == "the BCF file holds more than 16 KB of data (decompressed), the limit"


def test_a_bcf_header_over_the_limit_fails_before_htslib_reads_it(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    meta = "".join(f"##note{i}={'x' * 90}\n" for i in range(2000))
    bcf = _bcf(tmp_path, "##fileformat=VCFv4.2\n" + meta + HEADER + "\n" + _records(seq, 3))
    reason = _reason(bcf, demo_bundle, tmp_path, max_header_bytes=64 * KB)
    assert reason == "the BCF header is larger than 64 KB, the limit"


@pytest.mark.parametrize("mode", ["b", "u"])
def test_compressed_and_uncompressed_bcf_within_the_limits_are_annotated(
    tmp_path: Path, demo_bundle: Bundle, seq: str, mode: str
) -> None:
    bcf = _bcf(tmp_path, "##fileformat=VCFv4.2\n" + HEADER + "\n" + _records(seq, 30), mode)
    result = annotate(bcf, reference_dir=demo_bundle.root, out_dir=tmp_path / "out")
    assert result.variant_count == 30


def test_service_text_limit_is_a_multiple_of_the_tiers_upload_cap() -> None:
    settings = AnnotatorSettings(reference_dir="/nonexistent")
    free = settings.input_limits(Tier.FREE)
    premium = settings.input_limits(Tier.PREMIUM)
    multiple = settings.annotator_max_text_multiple
    assert free.max_text_bytes == multiple * settings.max_upload_bytes(Tier.FREE)
    assert premium.max_text_bytes == multiple * settings.max_upload_bytes(Tier.PREMIUM)
    assert free.max_header_bytes == settings.annotator_max_header_bytes
    assert free.max_records_per_position == settings.annotator_max_records_per_position


# --------------------------------------------------------------------------- long lines


def test_a_line_over_the_default_limit_names_the_line_and_the_limit(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    path = tmp_path / "long.vcf"
    path.write_text(
        '##fileformat=VCFv4.2\n##INFO=<ID=X,Number=1,Type=String,Description="x">\n'
        + HEADER
        + "\n"
        + _record(seq, 100)
        + _record(seq, 200, info="X=" + "a" * (5 * MB))
    )
    assert _reason(path, demo_bundle, tmp_path) == "line 5: the line is longer than 4 MB, the limit"


@pytest.mark.parametrize("where", ["header", "early record", "deep record", "last, unterminated"])
def test_a_line_over_the_limit_is_found_wherever_it_is(
    tmp_path: Path, demo_bundle: Bundle, seq: str, where: str
) -> None:
    long_info = "X=" + "a" * (80 * KB)
    header = "##fileformat=VCFv4.2\n" + HEADER + "\n"
    if where == "header":
        text, line = "##fileformat=VCFv4.2\n##note=" + "n" * (80 * KB) + "\n" + HEADER, 2
        text += "\n" + _records(seq, 3)
    elif where == "early record":
        text, line = header + _records(seq, 3) + _record(seq, 50, info=long_info), 6
    elif where == "deep record":
        # Past the first 2,000 records: the fast path's territory.
        text = header + _records(seq, 30_000) + _record(seq, 35_000, info=long_info)
        line = 2 + 30_000 + 1
    else:
        text = header + _records(seq, 3) + _record(seq, 50, info=long_info).rstrip("\n")
        line = 6
    path = tmp_path / "long.vcf"
    path.write_text(text)
    reason = _reason(path, demo_bundle, tmp_path, max_line_bytes=64 * KB)
    assert reason == f"line {line}: the line is longer than 64 KB, the limit"


def test_lines_at_the_limit_are_accepted(tmp_path: Path, demo_bundle: Bundle, seq: str) -> None:
    # The ##INFO line is the longest header line; one record is padded to the same length.
    declaration = '##INFO=<ID=X,Number=1,Type=String,Description="x">'
    limit = len(declaration)  # the newline does not count
    short = _record(seq, 100, info="X=1")
    padded = _record(seq, 200, info="X=" + "p" * (limit + 2 - len(short)))
    assert len(padded) == limit + 1
    path = tmp_path / "edge.vcf"
    path.write_text("##fileformat=VCFv4.2\n" + declaration + "\n" + HEADER + "\n" + short + padded)
    result = annotate(
        path,
        reference_dir=demo_bundle.root,
        out_dir=tmp_path / "out",
        options=EngineOptions(limits=InputLimits(max_line_bytes=limit)),
    )
    assert result.variant_count == 2


# --------------------------------------------------------------------------- crowded positions


def test_too_many_records_at_one_position_are_rejected_naming_it(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    # Past the first 2,000 records (the fast path), and the crowded run straddles the end of the
    # first 4 MB block: its count carries from one block to the next.
    header = "##fileformat=VCFv4.2\n" + HEADER + "\n"
    body: list[str] = []
    size, pos = 0, 10
    crowded = _record(seq, 39_000)
    while size < 4 * MB - 500 * len(crowded):
        lines = _record(seq, pos, ident=f"rs{pos}_{'x' * 20}") * 5  # five times: within the limit
        body.append(lines)
        size += len(lines)
        pos += 1
    path = tmp_path / "crowded.vcf"
    path.write_text(header + "".join(body) + crowded * 1_001)
    lineno = 2 + 5 * len(body) + 1_001
    assert _reason(path, demo_bundle, tmp_path) == (
        f"line {lineno}: more than 1,000 records at 1:39000, the limit for one position "
        "(is a record repeated?)"
    )


def test_identical_records_in_the_first_lines_are_rejected(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    path = tmp_path / "same.vcf"
    path.write_text("##fileformat=VCFv4.2\n" + HEADER + "\n" + _record(seq, 100) * 64_000)
    reason = _reason(path, demo_bundle, tmp_path)
    assert reason.startswith("line 1003: more than 1,000 records at 1:100, the limit")


def test_records_repeating_positions_over_the_file_limit_are_rejected(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    body = "".join(_record(seq, p) * 3 for p in range(100, 130))  # 60 repeated-position records
    path = tmp_path / "repeats.vcf"
    path.write_text("##fileformat=VCFv4.2\n" + HEADER + "\n" + body)
    reason = _reason(path, demo_bundle, tmp_path, max_repeated_position_records=50)
    assert reason.startswith("line ") and (
        "more than 50 records share their position with the record before them" in reason
    )


def test_records_at_one_position_within_the_limit_are_annotated(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    ref = seq[99]
    alts = [b for b in "ACGT" if b != ref]
    body = "".join(f"1\t100\t.\t{ref}\t{alt}\t.\t.\t.\n" for alt in alts)
    path = tmp_path / "multi.vcf"
    path.write_text("##fileformat=VCFv4.2\n" + HEADER + "\n" + body + _record(seq, 200))
    result = annotate(
        path,
        reference_dir=demo_bundle.root,
        out_dir=tmp_path / "out",
        options=EngineOptions(limits=InputLimits(max_records_per_position=3)),
    )
    assert result.variant_count == 4


# --------------------------------------------------------------------------- quoting


def test_quotes_and_backslashes_in_fields_round_trip_to_the_outputs(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    # VCF forbids only whitespace and ';' in ID, and tab, newline, ';', '=' (and ',' in lists)
    # inside INFO values: quotes, apostrophes and backslashes are all allowed.
    ids = ['rs1"x', "rs2'y", "a\\b", '"quoted"', "id,with,commas"]
    infos = ['NOTE=say "hi"', "NOTE=it's", "NOTE=back\\slash", "NOTE=a b c", 'NOTE="']
    body = "".join(
        _record(seq, 100 + 50 * i, ident, info)
        for i, (ident, info) in enumerate(zip(ids, infos, strict=True))
    )
    path = tmp_path / "quotes.vcf"
    path.write_text(
        '##fileformat=VCFv4.2\n##INFO=<ID=NOTE,Number=1,Type=String,Description="free text">\n'
        + HEADER
        + "\n"
        + body
    )
    result = annotate(path, reference_dir=demo_bundle.root, out_dir=tmp_path / "out")
    assert result.variant_count == len(ids)
    tsv = [line.split("\t") for line in result.tsv.read_text().splitlines()]
    column = tsv[0].index("id")
    assert sorted({row[column] for row in tsv[1:]}) == sorted(ids)
    assert sorted(set(pq.read_table(result.parquet).column("id").to_pylist())) == sorted(ids)
    with gzip.open(result.vcf, "rt") as handle:
        records = [line.rstrip("\n").split("\t") for line in handle if not line.startswith("#")]
    assert [r[2] for r in records] == ids
    assert [r[7].split(";")[0] for r in records] == infos


# --------------------------------------------------------------------------- header declarations


def _declared_file(path: Path, seq: str, n: int, bad: str, *, samples: bool = False) -> Path:
    """n good records, then one whose FILTER/INFO/FORMAT (``bad``) uses an undeclared key."""
    meta = (
        "##fileformat=VCFv4.2\n"
        '##INFO=<ID=DP,Number=1,Type=Integer,Description="depth">\n'
        '##FILTER=<ID=q10,Description="low quality">\n'
        '##FORMAT=<ID=GT,Number=1,Type=String,Description="genotype">\n'
    )
    header = HEADER + ("\tFORMAT\tS1" if samples else "") + "\n"
    tail = "\tGT\t0/1" if samples else ""
    good = "".join(
        _record(seq, 10 + i, info="DP=5").replace("\t.\t.\tDP=5", "\t.\tq10\tDP=5")[:-1]
        + tail
        + "\n"
        for i in range(n)
    )
    ref = seq[39_000 - 1]
    alt = "A" if ref != "A" else "G"
    filt, info, fmt = bad.split("|")
    sample = ":".join(["0/1"] + ["3"] * fmt.count(":"))
    last = f"1\t39000\t.\t{ref}\t{alt}\t.\t{filt}\t{info}" + (
        f"\t{fmt}\t{sample}" if samples else ""
    )
    path.write_text(meta + header + good + last + "\n")
    return path


@pytest.mark.parametrize("n", [3, 5_000])  # the per-line path, and the vectorised one
@pytest.mark.parametrize(
    ("bad", "samples", "expected"),
    [
        ("LowQ|DP=1|", False, "FILTER key 'LowQ' is not declared in the header"),
        ("q10;Other|DP=1|", False, "FILTER key 'Other' is not declared in the header"),
        ("PASS|DP=1;XYZ=2|", False, "INFO key 'XYZ' is not declared in the header"),
        ("PASS|SOMATIC|", False, "INFO key 'SOMATIC' is not declared in the header"),
        ("PASS|DP=1|GT:AD", True, "FORMAT key 'AD' is not declared in the header"),
    ],
)
def test_an_undeclared_key_names_the_line_and_the_key(
    tmp_path: Path, demo_bundle: Bundle, seq: str, n: int, bad: str, samples: bool, expected: str
) -> None:
    # htslib would add the key with a warning and the next bcftools step then fail on its own
    # BCF ("Invalid INFO id"): an internal failure, three times over.
    path = _declared_file(tmp_path / "undeclared.vcf", seq, n, bad, samples=samples)
    reason = _reason(path, demo_bundle, tmp_path)
    assert reason.startswith(f"line {5 + n + 1}: {expected} (add a line like ##"), reason


def test_declared_keys_and_implicit_pass_are_accepted(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    path = _declared_file(tmp_path / "declared.vcf", seq, 5_000, "PASS|DP=1|GT", samples=True)
    result = annotate(path, reference_dir=demo_bundle.root, out_dir=tmp_path / "out")
    assert result.variant_count == 5_001


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("compress", [False, True])
def test_a_utf8_byte_order_mark_is_ignored(
    tmp_path: Path, demo_bundle: Bundle, seq: str, compress: bool
) -> None:
    text = b"\xef\xbb\xbf" + ("##fileformat=VCFv4.2\n" + HEADER + "\n" + _records(seq, 3)).encode()
    path = tmp_path / ("bom.vcf.gz" if compress else "bom.vcf")
    path.write_bytes(gzip.compress(text) if compress else text)
    result = annotate(path, reference_dir=demo_bundle.root, out_dir=tmp_path / "out")
    assert result.variant_count == 3


def test_a_latin1_byte_names_the_line_and_the_byte(
    tmp_path: Path, demo_bundle: Bundle, seq: str
) -> None:
    records = _records(seq, 8).encode()
    bad = _record(seq, 300, info="NOTE=caf\xe9").encode("latin-1")
    path = tmp_path / "latin1.vcf"
    path.write_bytes(b"##fileformat=VCFv4.2\n" + HEADER.encode() + b"\n" + records + bad + records)
    column = bad.index(b"\xe9") + 1
    assert _reason(path, demo_bundle, tmp_path) == (
        f"line 11: byte 0xE9 (byte {column} of the line) is not valid UTF-8; save the file as "
        "UTF-8 text (from Latin-1: iconv -f latin1 -t utf-8)"
    )


def test_a_latin1_byte_in_the_header_names_the_line(tmp_path: Path, demo_bundle: Bundle) -> None:
    path = tmp_path / "latin1_header.vcf"
    path.write_bytes(b"##fileformat=VCFv4.2\n##source=Soci\xe9t\xe9\n" + HEADER.encode() + b"\n")
    assert _reason(path, demo_bundle, tmp_path).startswith("line 2: byte 0xE9 (byte 14 of")


def test_a_nul_byte_names_the_line(tmp_path: Path, demo_bundle: Bundle, seq: str) -> None:
    head = ("##fileformat=VCFv4.2\n" + HEADER + "\n" + _records(seq, 4000)).encode()
    path = tmp_path / "nul.vcf"
    path.write_bytes(head + b"1\t9\x00\n")  # beyond the 64 KB the sniffer looks at
    assert len(head) > 64 * KB
    assert _reason(path, demo_bundle, tmp_path).startswith(
        "line 4003: byte 0x00 (NUL, byte 4 of the line): the file is binary"
    )


def test_a_utf16_file_is_named(tmp_path: Path, demo_bundle: Bundle) -> None:
    path = tmp_path / "utf16.vcf"
    path.write_bytes(("##fileformat=VCFv4.2\n" + HEADER + "\n").encode("utf-16"))
    assert _reason(path, demo_bundle, tmp_path) == (
        "the file is UTF-16 text; save it as UTF-8 (or ASCII) text"
    )
