"""Read the user's file once: validate every record and write contig-bounded chunk files.

htslib accepts a lot that is wrong (a POS of ``abc`` becomes 0, a REF of ``Z`` passes) and, when
it does fail, says so without a line number. Users need "line 57: ..." so this pass reads the
text itself. It works on blocks of a few MB: a vectorised fast path (numpy over the bytes,
pyarrow's C++ CSV parser and RE2 regexes over the columns) proves a block valid at ~0.2 us per
record; only a block the fast path rejects is re-read line by line in Python, which finds the
first bad line and says exactly what is wrong with it. Memory is bounded by the block, and
by the limits on lines and the header (limits.py, enforced by textio.Reader).

REF alleles are compared with the reference here only for the first records (a quick, early
"wrong assembly?" answer with a line number); the exact count over every record comes from
``bcftools norm --check-ref x`` in the chunk stage, which also drops the mismatching records.
"""

from __future__ import annotations

import gzip
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pysam

from gas_annotator.engine.declared import KINDS, Declared
from gas_annotator.engine.errors import InputError, ReferenceMismatch
from gas_annotator.engine.genotypes import chunk_records
from gas_annotator.engine.header import chunk_header, read_header
from gas_annotator.engine.limits import InputLimits
from gas_annotator.engine.textio import Counted, Reader, bcf_to_vcf, sniff, text_line
from gas_annotator.reference import Bundle

_BASES = "ACGTNacgtn"
# REF is checked in Python for this many leading records: enough to call a wrong assembly early
# (with a line number); the exact whole-file count comes from bcftools norm.
REF_SAMPLE_RECORDS = 2_000
_POS_RE = r"^[1-9][0-9]*$"
_REF_RE = r"^[ACGTNacgtn]+$"
# Symbolic alleles (<DEL>) leave the fast path: the slow path checks they carry END or SVLEN.
_ALLELE = r"(?:[ACGTNacgtn]+|\*)"
_ALT_RE = rf"^(?:\.|{_ALLELE}(?:,{_ALLELE})*)$"


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


@dataclass
class ChunkPlan:
    scratch: Path
    chunk_records: int
    max_variants: int | None
    ref_mismatch_threshold: float
    limits: InputLimits = field(default_factory=InputLimits)


class _ChunkWriter:
    def __init__(self, scratch: Path, header: bytes, counter: Counted) -> None:
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
        self._run = 0  # records so far at the current position
        self._repeated = 0  # records at the position of the record before them
        self._blank = 0
        self._declared = Declared([])

    @property
    def records_seen(self) -> int:
        return self._records

    # ------------------------------------------------------------------ entry point

    def chunks(  # noqa: PLR0915 - one pass over the input, in order
        self, on_progress: Callable[[float], None] | None = None
    ) -> Iterator[ChunkSpec]:
        kind = sniff(self.path)
        source = self.path
        if kind == "bcf":
            self.stats.input_format = "bcf"
            source = self.plan.scratch / "input.from_bcf.vcf"
            bcf_to_vcf(self.path, source, self.plan.limits)
            kind = "vcf"
        elif kind == "gzip":
            self.stats.input_format = "vcf.gz"
        total = max(source.stat().st_size, 1)
        self.stats.input_bytes = total
        with source.open("rb", buffering=0) as raw:
            counter = Counted(raw)  # type: ignore[arg-type]
            buffered = io.BufferedReader(counter, 1 << 20)
            stream = cast(
                "IO[bytes]",
                gzip.GzipFile(fileobj=buffered, mode="rb") if kind == "gzip" else buffered,
            )
            reader = Reader(stream, self.plan.limits)
            header = read_header(reader, self.plan.limits)
            self.stats.header_lines = header.lines
            self.stats.samples = max(len(header.columns) - 9, 0)
            # Smaller chunks for files whose rows carry a genotype list per sample.
            self.plan = replace(
                self.plan, chunk_records=chunk_records(self.plan.chunk_records, self.stats.samples)
            )
            self._ntabs = len(header.columns) - 1
            text = chunk_header(header, self.bundle.manifest.contigs)
            self._declared = Declared(text.splitlines())
            writer = _ChunkWriter(self.plan.scratch, text.encode(), counter)
            self._writer = writer
            line = header.lines + 1  # first line of the next block
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
        keyed = names[6:9]  # FILTER, INFO and FORMAT: their keys must be declared
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
                    include_columns=["chrom", "pos", "ref", "alt", *keyed],
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
        if not all(
            self._declared.column_ok(kind, table.column(name))
            for kind, name in zip(KINDS, keyed, strict=False)
        ):
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
        crowding = self._crowding(pos, same, first_contig=run_contigs[0])
        if crowding is None:
            return False
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
        self._run, repeated = crowding
        self._repeated += repeated
        return True

    def _crowding(
        self,
        pos: np.ndarray[Any, np.dtype[np.int64]],
        same_contig: np.ndarray[Any, np.dtype[np.bool_]],
        *,
        first_contig: str,
    ) -> tuple[int, int] | None:
        """For a block: (records at its last position, records repeating the position before
        them), or None when a limit on repeated positions is crossed (the slow path names it)."""
        limits = self.plan.limits
        repeats = np.empty(len(pos), dtype=np.bool_)
        repeats[0] = first_contig == self._current and pos[0] == self._last_pos
        repeats[1:] = same_contig & (pos[1:] == pos[:-1])
        repeated = int(repeats.sum())
        if not repeated:
            return 1, 0
        if self._repeated + repeated > limits.max_repeated_position_records:
            return None
        # Runs of one position; run 0 continues the previous block's last position.
        counts = np.bincount(np.cumsum(~repeats))
        counts[0] += self._run
        if counts.max() > limits.max_records_per_position:
            return None
        return int(counts[-1]), repeated

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
        lines = block.split(b"\n")  # not splitlines: a stray CR must not shift line numbers
        if not lines[-1]:
            lines.pop()
        for offset, raw in enumerate(lines):
            lineno = first_line + offset
            self._slow_line(text_line(raw, lineno).rstrip("\r"), lineno)

    def _slow_line(self, line: str, lineno: int) -> None:  # noqa: PLR0912 - one branch per check
        if not line.strip():
            self._count_blank(lineno)
            return
        if line.startswith("#"):
            raise InputError(f"line {lineno}: a header line after the #CHROM header line")
        if "\r" in line:
            # Only as part of a CRLF line end; inside a field it would break the TSV output.
            raise InputError(f"line {lineno}: a carriage return (CR) inside the line")
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
            raise ReferenceMismatch(
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
        self._count_position(chrom, pos, lineno)
        length = self._lengths[contig]
        if pos > length:
            raise ReferenceMismatch(
                f"line {lineno}: POS {pos} is beyond the end of contig '{chrom}' "
                f"({length:,} bp in {self._assembly})"
            )
        if not ref or ref.strip(_BASES):
            raise InputError(
                f"line {lineno}: malformed REF '{ref[:20]}': it must be one or more of the "
                "bases A, C, G, T, N"
            )
        self._check_alt_and_keys(ref, alt, rest, lineno)
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

    def _check_alt_and_keys(self, ref: str, alt: str, rest: str, lineno: int) -> None:
        _check_alt(alt, ref, lineno)
        if "<" in alt:
            _check_symbolic(alt, rest, lineno)
        self._declared.check_line(rest.split("\t", 4)[:4], lineno)

    def _count_blank(self, lineno: int) -> None:
        # Tolerated (a trailing empty line is common) but not without end: each costs a trip
        # through the per-line path, and none of them counts as a record.
        self._blank += 1
        if self._blank > self.plan.limits.max_blank_lines:
            raise InputError(
                f"line {lineno}: more than {self.plan.limits.max_blank_lines:,} blank lines, "
                "the limit"
            )

    def _count_position(self, chrom: str, pos: int, lineno: int) -> None:
        # Many records at one position make bcftools norm and annotate quadratic (64,000 copies
        # of one record took minutes): a real file never has more than a few dozen.
        if pos != self._last_pos:
            self._run = 1
            return
        self._run += 1
        self._repeated += 1
        limits = self.plan.limits
        if self._run > limits.max_records_per_position:
            raise InputError(
                f"line {lineno}: more than {limits.max_records_per_position:,} records at "
                f"{chrom}:{pos}, the limit for one position (is a record repeated?)"
            )
        if self._repeated > limits.max_repeated_position_records:
            raise InputError(
                f"line {lineno}: more than {limits.max_repeated_position_records:,} records "
                "share their position with the record before them, the limit for one file"
            )

    def _check_ref(self, contig: str, pos: int, ref: str, chrom: str, lineno: int) -> None:
        expected = self._fasta.fetch(contig, pos - 1, pos - 1 + len(ref)).upper()
        self._ref_checked += 1
        if len(expected) < len(ref):
            raise ReferenceMismatch(
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
    raise ReferenceMismatch(
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
