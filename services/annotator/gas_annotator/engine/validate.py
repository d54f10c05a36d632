"""Read the user's file once: validate every record and write contig-bounded chunk files.

htslib accepts a lot that is wrong (a POS of ``abc`` becomes 0, a REF of ``Z`` passes) and, when
it does fail, says so without a line number. Users need "line 57: ..." so this pass reads the
text itself. It works on blocks of a few MB: a vectorised fast path (numpy over the bytes,
pyarrow's C++ CSV parser and RE2 regexes over the columns) proves a block valid at ~0.2 us per
record; only a block the fast path rejects is re-read line by line in Python, which finds the
first bad line and says exactly what is wrong with it. Memory is bounded by the block.

REF alleles are compared with the reference here only for the first records (a quick, early
"wrong assembly?" answer with a line number); the exact count over every record comes from
``bcftools norm --check-ref x`` in the chunk stage, which also drops the mismatching records.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pysam
import pysam.bcftools
from pysam.utils import SamtoolsError

from gas_annotator.engine.errors import InputError
from gas_annotator.reference import Bundle

FIXED_COLUMNS = ("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_BASES = "ACGTNacgtn"
_BLOCK_BYTES = 4 << 20  # text per fast-path block: bounds memory, amortises per-block cost
# REF is checked in Python for this many leading records: enough to call a wrong assembly early
# (with a line number); the exact whole-file count comes from bcftools norm.
REF_SAMPLE_RECORDS = 2_000
_POS_RE = r"^[1-9][0-9]*$"
_REF_RE = r"^[ACGTNacgtn]+$"
# Symbolic alleles (<DEL>) leave the fast path: the slow path checks they carry END or SVLEN.
_ALLELE = r"(?:[ACGTNacgtn]+|\*)"
_ALT_RE = rf"^(?:\.|{_ALLELE}(?:,{_ALLELE})*)$"
# Our INFO fields: a user's file that already has them (re-annotation) must not clash with ours.
_OWN_INFO_PREFIXES = ("##INFO=<ID=BCSQ,", "##INFO=<ID=GAS_")

OWN_HEADER_LINES = (
    '##INFO=<ID=BCSQ,Number=.,Type=String,Description="Local consequence annotation from '
    "BCSQ (bcftools csq --local-csq). Format: Consequence|gene|transcript|biotype|strand|"
    'amino_acid_change|dna_change">',
    '##INFO=<ID=GAS_KNOWN_ID,Number=.,Type=String,Description="ID of the matching known variant '
    '(dbSNP rsID) in the reference bundle">',
    '##INFO=<ID=GAS_AF,Number=A,Type=Float,Description="Population allele frequency of the '
    'matching known variant (field named in the bundle manifest)">',
    '##INFO=<ID=GAS_CLNSIG,Number=.,Type=String,Description="ClinVar clinical significance of '
    'the matching known variant">',
)


@dataclass(frozen=True)
class ChunkSpec:
    index: int
    path: Path
    contig: str  # bundle naming
    records: int
    first_pos: int
    last_pos: int
    input_offset: int  # bytes of the input consumed when the chunk closed (progress)
    # Sum of the gaps of more than GAP_BP between consecutive records: not part of the span the
    # records occupy (a chunk across an unsequenced stretch is still dense; see norm_window).
    skipped: int = 0


GAP_BP = 1000


@dataclass
class Mismatch:
    line: int
    chrom: str
    pos: int
    ref: str
    expected: str


@dataclass
class ValidationStats:
    input_format: str = "vcf"
    records: int = 0
    header_lines: int = 0
    samples: int = 0
    ref_mismatches: int = 0
    first_mismatches: list[Mismatch] = field(default_factory=list)
    contigs: dict[str, str] = field(default_factory=dict)  # user name -> bundle name
    input_bytes: int = 0


def sniff(path: Path) -> str:
    """'vcf', 'gzip' (bgzip or plain gzip VCF) or 'bcf'; InputError for empty or binary files."""
    size = path.stat().st_size
    if size == 0:
        raise InputError("the file is empty")
    with path.open("rb") as handle:
        head = handle.read(65536)
    if head[:2] == b"\x1f\x8b":
        try:
            with gzip.open(path, "rb") as gz:
                inner = gz.read(4)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(
                "the compressed file is corrupt or truncated (gzip could not read it)"
            ) from exc
        if inner[:3] == b"BCF":
            return "bcf"
        if not inner:
            raise InputError("the file is empty (a compressed file with no content)")
        return "gzip"
    if head[:3] == b"BCF":
        return "bcf"
    if b"\x00" in head:
        raise InputError("the file is binary, not VCF text (expected .vcf, .vcf.gz or .bcf)")
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A cut in the middle of a multi-byte character at the 64 KiB boundary is not binary.
        if exc.start < len(head) - 4:
            raise InputError(
                "the file is binary, not VCF text (expected .vcf, .vcf.gz or .bcf)"
            ) from exc
    if not head.strip():
        raise InputError("the file is empty")
    return "vcf"


def bcf_to_vcf(path: Path, out: Path) -> None:
    try:
        pysam.bcftools.view("--no-version", "-Ov", "-o", str(out), str(path), catch_stdout=False)
    except SamtoolsError as exc:
        raise InputError("the BCF file is truncated or corrupt (htslib could not read it)") from exc


class _Counted(io.RawIOBase):
    """A raw binary stream that counts bytes read: progress for compressed input too."""

    def __init__(self, raw: io.BufferedReader) -> None:
        super().__init__()
        self.raw = raw
        self.count = 0

    def readinto(self, buffer: Any) -> int:
        n = self.raw.readinto(buffer)
        self.count += n
        return n

    def readable(self) -> bool:
        return True


@dataclass
class ChunkPlan:
    scratch: Path
    chunk_records: int
    max_variants: int | None
    ref_mismatch_threshold: float


def _binary_error(line: int) -> InputError:
    return InputError(
        f"line {line}: the file is binary or not UTF-8 text (expected .vcf, .vcf.gz or .bcf)"
    )


def _text_line(raw: bytes, lineno: int) -> str:
    """One line as text, or the binary-input error naming it (not UTF-8, or a NUL byte)."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _binary_error(lineno) from exc
    if "\x00" in line:
        raise _binary_error(lineno)
    return line


class _Reader:
    """Header lines, then newline-terminated blocks of the data section, as bytes."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.pending = b""

    def _guard(self, fn: Callable[[], bytes], line: int) -> bytes:
        try:
            return fn()
        except EOFError as exc:
            raise InputError(
                "the compressed file is truncated (it ends before the end of the gzip stream)"
            ) from exc
        except (OSError, zlib.error) as exc:
            raise InputError(f"the compressed file is corrupt after line {line}") from exc

    def readline(self, line: int) -> bytes:
        return self._guard(self.stream.readline, line)

    def block(self, line: int) -> bytes:
        data = self._guard(lambda: self.stream.read(_BLOCK_BYTES), line)
        if data and not data.endswith(b"\n"):
            data += self._guard(self.stream.readline, line)
        return data


class _ChunkWriter:
    def __init__(self, scratch: Path, header: bytes, counter: _Counted) -> None:
        self.scratch = scratch
        self.header = header
        self.counter = counter
        self.index = 0
        self.handle: IO[bytes] | None = None
        self.path: Path | None = None
        self.contig = ""
        self.records = 0
        self.first_pos = 0
        self.last_pos = 0
        self.skipped = 0
        self.closed: list[ChunkSpec] = []

    def open(self, contig: str, first_pos: int) -> None:
        self.path = self.scratch / f"chunk{self.index:05d}.vcf"
        self.handle = self.path.open("wb")
        self.handle.write(self.header)
        self.contig = contig
        self.records = 0
        self.first_pos = first_pos
        self.last_pos = first_pos
        self.skipped = 0

    def write(self, data: bytes, records: int, last_pos: int, skipped: int = 0) -> None:
        assert self.handle is not None
        self.handle.write(data)
        self.records += records
        self.last_pos = last_pos
        self.skipped += skipped

    def close(self) -> None:
        if self.handle is None or self.path is None:
            return
        self.handle.close()
        self.closed.append(
            ChunkSpec(
                index=self.index,
                path=self.path,
                contig=self.contig,
                records=self.records,
                first_pos=self.first_pos,
                last_pos=self.last_pos,
                input_offset=self.counter.count,
                skipped=self.skipped,
            )
        )
        self.handle = None
        self.path = None
        self.index += 1


class Validator:
    """Validate and chunk one input. Iterate ``chunks()``; then read ``stats``."""

    def __init__(self, path: Path, bundle: Bundle, plan: ChunkPlan) -> None:
        self.path = path
        self.bundle = bundle
        self.plan = plan
        self.stats = ValidationStats()
        self._fasta = pysam.FastaFile(str(bundle.fasta))
        manifest = bundle.manifest
        self._lengths = manifest.contigs
        self._assembly = manifest.assembly
        self._resolved: dict[str, str] = {}
        self._done_contigs: set[str] = set()
        self._current = ""  # bundle name of the contig being read
        self._last_pos = 0
        self._records = 0
        self._ref_checked = 0
        self._ref_mismatched = 0
        self._writer: _ChunkWriter | None = None
        self._ntabs = 7

    @property
    def records_seen(self) -> int:
        return self._records

    # ------------------------------------------------------------------ entry point

    def chunks(self, on_progress: Callable[[float], None] | None = None) -> Iterator[ChunkSpec]:
        kind = sniff(self.path)
        source = self.path
        if kind == "bcf":
            self.stats.input_format = "bcf"
            source = self.plan.scratch / "input.from_bcf.vcf"
            bcf_to_vcf(self.path, source)
            kind = "vcf"
        elif kind == "gzip":
            self.stats.input_format = "vcf.gz"
        total = max(source.stat().st_size, 1)
        self.stats.input_bytes = total
        with source.open("rb", buffering=0) as raw:
            counter = _Counted(raw)  # type: ignore[arg-type]
            buffered = io.BufferedReader(counter, 1 << 20)
            stream = cast(
                "IO[bytes]",
                gzip.GzipFile(fileobj=buffered, mode="rb") if kind == "gzip" else buffered,
            )
            reader = _Reader(stream)
            meta, columns, lineno = self._header(reader)
            self.stats.header_lines = lineno
            self.stats.samples = max(len(columns) - 9, 0)
            self._ntabs = len(columns) - 1
            writer = _ChunkWriter(
                self.plan.scratch, self.chunk_header(meta, columns).encode(), counter
            )
            self._writer = writer
            line = lineno + 1  # first line of the next block
            while True:
                block = reader.block(line)
                if not block:
                    break
                if self._ref_checked < REF_SAMPLE_RECORDS:
                    # The first records go through the per-line path, which checks REF.
                    head, block = _split_lines(block, REF_SAMPLE_RECORDS - self._ref_checked)
                    self._slow_block(head, line)
                    line += head.count(b"\n")
                    if not block:
                        continue
                if not self._fast_block(block):
                    self._slow_block(block, line)
                line += block.count(b"\n")
                yield from writer.closed
                if writer.closed:
                    writer.closed.clear()
                    if on_progress is not None:
                        on_progress(counter.count / total)
        if self._records == 0:
            raise InputError("the file has a header but no variant records")
        self.stats.records = self._records
        self.finish_sample_check()
        writer.close()
        yield from writer.closed
        writer.closed.clear()

    # ------------------------------------------------------------------ header

    def _header(self, reader: _Reader) -> tuple[list[str], list[str], int]:
        meta: list[str] = []
        lineno = 0
        while True:
            raw = reader.readline(lineno)
            if not raw:
                break
            lineno += 1
            line = _text_line(raw, lineno)
            if line.startswith("##"):
                if line.startswith("##contig=") or line.startswith(_OWN_INFO_PREFIXES):
                    continue
                meta.append(line.rstrip("\r\n") + "\n")
                continue
            if line.startswith(("#CHROM", "#chrom")):
                columns = line.rstrip("\r\n").lstrip("#").split("\t")
                if tuple(c.upper() for c in columns[:8]) != FIXED_COLUMNS:
                    raise InputError(
                        f"line {lineno}: the #CHROM header must list the columns "
                        "CHROM POS ID REF ALT QUAL FILTER INFO, tab-separated"
                    )
                if len(columns) > 8 and columns[8] != "FORMAT":
                    raise InputError(
                        f"line {lineno}: the 9th column of the #CHROM header must be FORMAT"
                    )
                return meta, columns, lineno
            if not line.strip():
                continue
            raise InputError(
                f"line {lineno}: missing #CHROM header line before the first record; "
                "a VCF needs '#CHROM POS ID REF ALT QUAL FILTER INFO' before its records"
            )
        if lineno == 0 or not meta:
            raise InputError("the file is empty")
        raise InputError("missing #CHROM header line: the file has no records header; is it a VCF?")

    def chunk_header(self, meta: list[str], columns: list[str]) -> str:
        contigs = [
            f"##contig=<ID={name},length={length}>\n"
            for name, length in self.bundle.manifest.contigs.items()
        ]
        fileformat = [m for m in meta if m.startswith("##fileformat")] or ["##fileformat=VCFv4.2\n"]
        rest = [m for m in meta if not m.startswith("##fileformat")]
        if len(columns) > 9 and not any(m.startswith("##FORMAT=<ID=GT,") for m in meta):
            # htslib would guess GT is a String, and csq then cannot read its own input back.
            rest.append(
                '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype '
                '(declaration added by GAS: the input used GT without declaring it)">\n'
            )
        return "".join(
            fileformat
            + rest
            + contigs
            + [line + "\n" for line in OWN_HEADER_LINES]
            + ["#" + "\t".join(columns) + "\n"]
        )

    # ------------------------------------------------------------------ fast path

    # A linear list of independent checks; splitting it would only scatter them.
    def _fast_block(self, block: bytes) -> bool:  # noqa: PLR0911, PLR0912, PLR0915
        """Validate and write a whole block with vectorised checks; False = use the slow path."""
        if b"\x00" in block or b"\r" in block or not block.isascii():
            return False
        data = np.frombuffer(block, dtype=np.uint8)
        ends = np.flatnonzero(data == 10)
        if len(ends) == 0:
            return False
        starts = np.empty_like(ends)
        starts[0] = 0
        starts[1:] = ends[:-1] + 1
        if ((data[starts] == 10) | (data[starts] == 35)).any():  # blank or '#' lines
            return False
        names = ["chrom", "pos", "id", "ref", "alt"] + [f"c{i}" for i in range(5, self._ntabs + 1)]
        bad_rows: list[int] = []

        def invalid(_row: object) -> str:
            bad_rows.append(1)
            return "skip"

        try:
            table = pacsv.read_csv(
                pa.BufferReader(block),
                read_options=pacsv.ReadOptions(
                    column_names=names, use_threads=False, block_size=len(block) + 1
                ),
                parse_options=pacsv.ParseOptions(
                    delimiter="\t", quote_char=False, escape_char=False,
                    invalid_row_handler=invalid,
                ),
                convert_options=pacsv.ConvertOptions(
                    include_columns=["chrom", "pos", "ref", "alt"],
                    column_types=dict.fromkeys(names, pa.string()),
                    strings_can_be_null=False,
                    quoted_strings_can_be_null=False,
                ),
            )  # fmt: skip
        except (pa.ArrowInvalid, UnicodeDecodeError):
            return False
        if bad_rows or table.num_rows != len(ends):
            return False
        chrom = table.column("chrom").combine_chunks()
        pos_text = table.column("pos").combine_chunks()
        ref = table.column("ref").combine_chunks()
        alt = table.column("alt").combine_chunks()
        if not (
            pc.all(pc.match_substring_regex(pos_text, _POS_RE)).as_py()
            and pc.all(pc.match_substring_regex(ref, _REF_RE)).as_py()
            and pc.all(pc.match_substring_regex(alt, _ALT_RE)).as_py()
            and pc.all(pc.less_equal(pc.utf8_length(pos_text), 11)).as_py()
        ):
            return False
        if pc.any(pc.equal(pc.utf8_upper(ref), pc.utf8_upper(alt))).as_py():
            return False
        multi = pc.match_substring(alt, ",")
        if pc.any(multi).as_py() and not self._multi_alt_ok(ref, alt, multi):
            return False
        pos = pc.cast(pos_text, pa.int64()).to_numpy()
        encoded = pc.dictionary_encode(chrom)
        names_in_block = encoded.dictionary.to_pylist()
        bundle_names = [self._resolve(c) for c in names_in_block]
        if any(b is None for b in bundle_names):
            return False
        known_names = [b for b in bundle_names if b is not None]
        codes = encoded.indices.to_numpy(zero_copy_only=False)
        # Contig runs in this block: contigs must be contiguous and each seen only once.
        change = np.flatnonzero(codes[1:] != codes[:-1]) + 1
        run_starts = np.concatenate([[0], change])
        run_ends = np.concatenate([change, [len(codes)]])
        run_contigs = [bundle_names[codes[i]] for i in run_starts.tolist()]
        seen = set()
        for i, contig in enumerate(run_contigs):
            assert contig is not None
            if contig in seen or (contig in self._done_contigs and contig != self._current):
                return False
            if i == 0 and contig == self._current and pos[0] < self._last_pos:
                return False
            seen.add(contig)
        lengths = np.array([self._lengths[c] for c in known_names], dtype=np.int64)
        if (pos > lengths[codes]).any():
            return False
        same = codes[1:] == codes[:-1]
        if (same & (pos[1:] < pos[:-1])).any():
            return False
        n = len(pos)
        limit = self.plan.max_variants
        if limit is not None and self._records + n > limit:
            return False
        # ---- valid: write, renaming contigs and cutting chunks
        for run, contig in enumerate(run_contigs):
            assert contig is not None
            user = names_in_block[codes[run_starts[run]]]
            self._write_rows(
                block,
                starts=starts,
                ends=ends,
                pos=pos,
                lo=int(run_starts[run]),
                hi=int(run_ends[run]),
                user=user,
                contig=contig,
            )
        self._records += n
        return True

    def _multi_alt_ok(self, ref: pa.Array, alt: pa.Array, multi: pa.Array) -> bool:
        refs = pc.filter(ref, multi).to_pylist()
        alts = pc.filter(alt, multi).to_pylist()
        return all(r.upper() not in a.upper().split(",") for r, a in zip(refs, alts, strict=True))

    def _resolve(self, chrom: str) -> str | None:
        found = self._resolved.get(chrom)
        if found is None:
            found = self.bundle.resolve_contig(chrom)
            if found is not None:
                self._resolved[chrom] = found
                self.stats.contigs[chrom] = found
        return found

    def _switch_contig(self, contig: str) -> None:
        writer = self._writer
        assert writer is not None
        writer.close()
        if self._current:
            self._done_contigs.add(self._current)
        self._current = contig
        self._last_pos = 0

    def _write_rows(
        self,
        block: bytes,
        *,
        starts: np.ndarray[Any, np.dtype[np.int64]],
        ends: np.ndarray[Any, np.dtype[np.int64]],
        pos: np.ndarray[Any, np.dtype[np.int64]],
        lo: int,
        hi: int,
        user: str,
        contig: str,
    ) -> None:
        writer = self._writer
        assert writer is not None
        if contig != self._current:
            self._switch_contig(contig)
        rename = user != contig
        old = ("\n" + user + "\t").encode()
        new = ("\n" + contig + "\t").encode()
        i = lo
        while i < hi:
            if writer.handle is None:
                writer.open(contig, int(pos[i]))
            room = self.plan.chunk_records - writer.records
            j = hi
            if hi - i > room:
                # Cut only between different positions, so a site's records stay together.
                j = i + max(room, 0)
                while j < hi and j > i and pos[j] == pos[j - 1]:
                    j += 1
            if j == i:
                writer.close()
                continue
            piece = block[int(starts[i]) : int(ends[j - 1]) + 1]
            if rename:
                piece = (b"\n" + piece).replace(old, new)[1:]
            steps = np.diff(pos[i:j])
            skipped = int(steps[steps > GAP_BP].sum())
            if writer.records and int(pos[i]) - writer.last_pos > GAP_BP:
                skipped += int(pos[i]) - writer.last_pos
            writer.write(piece, j - i, int(pos[j - 1]), skipped)
            self._last_pos = int(pos[j - 1])
            i = j
            if i < hi:
                writer.close()

    # ------------------------------------------------------------------ slow path

    def _slow_block(self, block: bytes, first_line: int) -> None:
        """Line-by-line validation: raises with the exact line, or writes the lines."""
        lineno = first_line - 1
        for raw in block.splitlines(keepends=True):
            lineno += 1
            self._slow_line(_text_line(raw, lineno).rstrip("\r\n"), lineno)

    def _slow_line(self, line: str, lineno: int) -> None:  # noqa: PLR0912 - one branch per check
        if not line.strip():
            return
        if line.startswith("#"):
            raise InputError(f"line {lineno}: a header line after the #CHROM header line")
        ntabs = self._ntabs
        if line.count("\t") != ntabs:
            raise InputError(
                f"line {lineno}: wrong column count: expected {ntabs + 1} tab-separated columns "
                f"(as in the #CHROM header), found {line.count(chr(9)) + 1}"
            )
        chrom, pos_text, _ident, ref, alt, rest = line.split("\t", 5)
        contig = self._resolve(chrom)
        if contig is None:
            lengths = self._lengths
            known = ", ".join(list(lengths)[:8]) + (", ..." if len(lengths) > 8 else "")
            raise InputError(
                f"line {lineno}: contig '{chrom}' is not in the reference "
                f"{self.bundle.manifest.name} ({self._assembly}; contigs: {known})"
            )
        if not pos_text.isdigit() or pos_text[0] == "0" or len(pos_text) > 11:
            raise InputError(f"line {lineno}: POS '{pos_text[:20]}' is not a positive integer")
        pos = int(pos_text)
        if contig != self._current:
            if contig in self._done_contigs:
                raise InputError(
                    f"line {lineno}: records are not sorted: contig '{chrom}' appears again "
                    "after other contigs (sort the file, e.g. with `bcftools sort`)"
                )
            self._switch_contig(contig)
        elif pos < self._last_pos:
            raise InputError(
                f"line {lineno}: records are not sorted by position ({chrom}:{pos} after "
                f"{chrom}:{self._last_pos}; sort the file, e.g. with `bcftools sort`)"
            )
        length = self._lengths[contig]
        if pos > length:
            raise InputError(
                f"line {lineno}: POS {pos} is beyond the end of contig '{chrom}' "
                f"({length:,} bp in {self._assembly})"
            )
        if not ref or ref.strip(_BASES):
            raise InputError(
                f"line {lineno}: malformed REF '{ref[:20]}': it must be one or more of the "
                "bases A, C, G, T, N"
            )
        _check_alt(alt, ref, lineno)
        if "<" in alt:
            _check_symbolic(alt, rest, lineno)
        self._records += 1
        limit = self.plan.max_variants
        if limit is not None and self._records > limit:
            raise InputError(
                f"the file has more than {limit:,} variants, the limit for this account; "
                "split it or upgrade"
            )
        if self._ref_checked < REF_SAMPLE_RECORDS:
            self._check_ref(contig, pos, ref, chrom, lineno)
        writer = self._writer
        assert writer is not None
        if (
            writer.handle is not None
            and writer.records >= self.plan.chunk_records
            and (pos != self._last_pos)
        ):
            writer.close()
        if writer.handle is None:
            writer.open(contig, pos)
        if chrom != contig:
            line = contig + line[len(chrom) :]
        gap = pos - writer.last_pos if writer.records else 0
        writer.write((line + "\n").encode(), 1, pos, gap if gap > GAP_BP else 0)
        self._last_pos = pos

    def _check_ref(self, contig: str, pos: int, ref: str, chrom: str, lineno: int) -> None:
        expected = self._fasta.fetch(contig, pos - 1, pos - 1 + len(ref)).upper()
        self._ref_checked += 1
        if len(expected) < len(ref):
            raise InputError(
                f"line {lineno}: REF '{ref[:20]}' runs past the end of contig '{chrom}'"
            )
        if expected != ref.upper() and not _n_compatible(ref, expected):
            self._ref_mismatched += 1
            if len(self.stats.first_mismatches) < 20:
                self.stats.first_mismatches.append(Mismatch(lineno, chrom, pos, ref, expected))
        if self._ref_checked in (100, REF_SAMPLE_RECORDS):
            check_mismatch_rate(
                self._ref_mismatched,
                self._ref_checked,
                threshold=self.plan.ref_mismatch_threshold,
                assembly=self._assembly,
                scope=f" of the first {self._ref_checked:,} records",
                first=self.stats.first_mismatches[0] if self.stats.first_mismatches else None,
            )

    def finish_sample_check(self) -> None:
        """Apply the threshold to a file shorter than the sample (called after reading)."""
        if 0 < self._ref_checked < 100:
            check_mismatch_rate(
                self._ref_mismatched,
                self._ref_checked,
                threshold=self.plan.ref_mismatch_threshold,
                assembly=self._assembly,
                scope="",
                first=self.stats.first_mismatches[0] if self.stats.first_mismatches else None,
            )


def _split_lines(block: bytes, count: int) -> tuple[bytes, bytes]:
    at = -1
    for _ in range(count):
        at = block.find(b"\n", at + 1)
        if at < 0:
            return block, b""
    return block[: at + 1], block[at + 1 :]


def check_mismatch_rate(
    mismatches: int,
    records: int,
    *,
    threshold: float,
    assembly: str,
    scope: str,
    first: Mismatch | None,
) -> None:
    if records == 0:
        return
    rate = mismatches / records
    if rate <= threshold:
        return
    where = ""
    if first is not None:
        where = (
            f" (first at line {first.line}: {first.chrom}:{first.pos} REF {first.ref[:10]}, "
            f"reference {first.expected[:10]})"
        )
    raise InputError(
        f"REF does not match {assembly} — wrong assembly? {rate:.1%} of REF alleles{scope} "
        f"({mismatches:,} of {records:,}) disagree with the reference{where}"
    )


def _n_compatible(ref: str, expected: str) -> bool:
    """An N on either side is "unknown base", not a mismatch."""
    if len(ref) != len(expected):
        return False
    return all(a in (b, "N") or b == "N" for a, b in zip(ref.upper(), expected, strict=True))


_BREAKEND = re.compile(r"[\[\]]")
_NO_LENGTH_NEEDED = {"<*>", "<NON_REF>", "<X>"}


def _check_symbolic(alt: str, rest: str, lineno: int) -> None:
    """A symbolic SV allele needs its length: without END/SVLEN bcftools norm misplaces it."""
    info = rest.split("\t", 3)[2] if rest.count("\t") >= 2 else ""
    keys = {item.split("=", 1)[0] for item in info.split(";")}
    for allele in alt.split(","):
        if (
            allele.startswith("<")
            and allele not in _NO_LENGTH_NEEDED
            and not keys
            & {
                "END",
                "SVLEN",
            }
        ):
            raise InputError(
                f"line {lineno}: symbolic allele {allele[:20]} needs INFO/END or INFO/SVLEN"
            )


def _check_alt(alt: str, ref: str, lineno: int) -> None:
    if not alt:
        raise InputError(f"line {lineno}: malformed ALT: it is empty")
    if alt == ".":
        return  # a reference-only site: valid VCF, csq simply predicts nothing
    for allele in alt.split(","):
        if not allele:
            raise InputError(f"line {lineno}: malformed ALT '{alt[:40]}': it has an empty allele")
        if allele.upper() == ref.upper():
            raise InputError(
                f"line {lineno}: malformed ALT: allele '{allele[:20]}' is the same as REF"
            )
        if allele == "*" or (allele.startswith("<") and allele.endswith(">")):
            continue
        if _BREAKEND.search(allele):
            continue
        if allele.strip(_BASES):
            raise InputError(
                f"line {lineno}: malformed ALT allele '{allele[:20]}': it must be bases "
                "A, C, G, T, N, '*', or a symbolic allele like <DEL>"
            )
