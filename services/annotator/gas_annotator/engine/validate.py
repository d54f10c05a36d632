"""Read the user's file once: validate every line, check REF against the reference, write chunks.

htslib accepts a lot that is wrong (a POS of ``abc`` becomes 0, a REF of ``Z`` passes) and, when
it does fail, says so without a line number. Users need "line 57: ..." so this pass reads the
text itself, one line at a time with only C-level string operations per line, and writes the
accepted records into contig-bounded chunk files for the bcftools stages. Nothing but the current
write buffer and a window of reference sequence is held in memory.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import pysam
import pysam.bcftools

from gas_annotator.engine.errors import InputError
from gas_annotator.reference import Bundle

FIXED_COLUMNS = ("CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
_BASES = "ACGTNacgtn"
_WINDOW = 1 << 20  # reference sequence held per contig while scanning (bytes)
_WRITE_BATCH = 20_000
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
    except pysam.SamtoolsError as exc:
        raise InputError("the BCF file is truncated or corrupt (htslib could not read it)") from exc


class _Counted:
    """A binary file wrapper that counts bytes read: progress for compressed input."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.count = 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.count += len(data)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()


def _lines(path: Path, kind: str, counter: _Counted) -> Iterator[str]:
    stream: IO[bytes]
    if kind == "gzip":
        stream = gzip.GzipFile(fileobj=counter, mode="rb")  # type: ignore[arg-type]
    else:
        stream = counter  # type: ignore[assignment]
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="strict", newline="")  # type: ignore[type-var]
    lineno = 0
    try:
        for line in text:
            lineno += 1
            yield line
    except UnicodeDecodeError as exc:
        raise InputError(
            f"line {lineno + 1}: the file is binary or not UTF-8 text "
            "(expected .vcf, .vcf.gz or .bcf)"
        ) from exc
    except EOFError as exc:
        raise InputError(
            "the compressed file is truncated (it ends before the end of the gzip stream)"
        ) from exc
    except (OSError, zlib.error) as exc:
        raise InputError(f"the compressed file is corrupt after line {lineno}: {exc}") from exc


@dataclass
class ChunkPlan:
    scratch: Path
    chunk_records: int
    max_variants: int | None
    ref_mismatch_threshold: float


class Validator:
    """Validate and chunk one input. Iterate ``chunks()``; then read ``stats``."""

    def __init__(self, path: Path, bundle: Bundle, plan: ChunkPlan) -> None:
        self.path = path
        self.bundle = bundle
        self.plan = plan
        self.stats = ValidationStats()
        self._fasta = pysam.FastaFile(str(bundle.fasta))
        self._window_contig = ""
        self._window_start = 0
        self._window = ""

    def _reference(self, contig: str, start0: int, length: int) -> str:
        if (
            contig != self._window_contig
            or start0 < self._window_start
            or start0 + length > self._window_start + len(self._window)
        ):
            self._window_contig = contig
            self._window_start = start0
            self._window = self._fasta.fetch(contig, start0, start0 + max(_WINDOW, length)).upper()
        offset = start0 - self._window_start
        return self._window[offset : offset + length]

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
        with source.open("rb") as raw:
            counter = _Counted(raw)
            yield from self._scan(_lines(source, kind, counter), counter, total, on_progress)

    def _header(self, lines: Iterator[str]) -> tuple[list[str], list[str], int]:
        meta: list[str] = []
        lineno = 0
        for line in lines:
            lineno += 1
            if line.startswith("##"):
                if line.startswith("##contig=") or line.startswith(_OWN_INFO_PREFIXES):
                    continue
                meta.append(line if line.endswith("\n") else line + "\n")
                continue
            if line.startswith("#CHROM") or line.startswith("#chrom"):
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
                f"line {lineno}: data before the #CHROM header line; "
                "a VCF needs '#CHROM POS ID REF ALT QUAL FILTER INFO' before its records"
            )
        if lineno == 0 or not meta:
            raise InputError("the file is empty")
        raise InputError("the file has no #CHROM header line; is it a VCF?")

    def chunk_header(self, meta: list[str], columns: list[str]) -> str:
        contigs = [
            f"##contig=<ID={name},length={length}>\n"
            for name, length in self.bundle.manifest.contigs.items()
        ]
        fileformat = [m for m in meta if m.startswith("##fileformat")] or [
            "##fileformat=VCFv4.2\n"
        ]
        rest = [m for m in meta if not m.startswith("##fileformat")]
        return "".join(
            fileformat
            + rest
            + contigs
            + [line + "\n" for line in OWN_HEADER_LINES]
            + ["#" + "\t".join(columns) + "\n"]
        )

    def _scan(
        self,
        lines: Iterator[str],
        counter: _Counted,
        total: int,
        on_progress: Callable[[float], None] | None,
    ) -> Iterator[ChunkSpec]:
        meta, columns, lineno = self._header(lines)
        self.stats.header_lines = lineno
        self.stats.samples = max(len(columns) - 9, 0)
        header = self.chunk_header(meta, columns)
        ntabs = len(columns) - 1
        manifest = self.bundle.manifest
        lengths = manifest.contigs
        assembly = manifest.assembly
        max_variants = self.plan.max_variants
        chunk_records = self.plan.chunk_records
        resolved: dict[str, str] = {}
        done_contigs: set[str] = set()
        current = ""
        current_len = 0
        last_pos = 0
        records = 0
        mismatches = 0
        first_mm = self.stats.first_mismatches
        reference = self._reference

        chunk_index = 0
        chunk_path: Path | None = None
        chunk_handle: IO[str] | None = None
        chunk_n = 0
        chunk_first = 0
        buffer: list[str] = []

        def close_chunk() -> ChunkSpec | None:
            nonlocal chunk_handle, chunk_path, chunk_n, chunk_index
            if chunk_handle is None or chunk_path is None:
                return None
            chunk_handle.writelines(buffer)
            buffer.clear()
            chunk_handle.close()
            spec = ChunkSpec(
                index=chunk_index,
                path=chunk_path,
                contig=current,
                records=chunk_n,
                first_pos=chunk_first,
                last_pos=last_pos,
                input_offset=counter.count,
            )
            chunk_handle = None
            chunk_path = None
            chunk_n = 0
            chunk_index += 1
            return spec

        for line in lines:
            lineno += 1
            if line.count("\t") != ntabs:
                if not line.strip():
                    continue
                if line.startswith("#"):
                    raise InputError(f"line {lineno}: a header line after the #CHROM line")
                raise InputError(
                    f"line {lineno}: expected {ntabs + 1} tab-separated columns "
                    f"(as in the #CHROM header), found {line.count(chr(9)) + 1}"
                )
            chrom, pos_text, _ident, ref, alt, _rest = line.split("\t", 5)
            contig = resolved.get(chrom)
            if contig is None:
                found = self.bundle.resolve_contig(chrom)
                if found is None:
                    known = ", ".join(list(lengths)[:8]) + (", ..." if len(lengths) > 8 else "")
                    raise InputError(
                        f"line {lineno}: contig '{chrom}' is not in the reference "
                        f"{manifest.name} ({assembly}; contigs: {known})"
                    )
                resolved[chrom] = found
                self.stats.contigs[chrom] = found
                contig = found
            if not pos_text.isdigit() or pos_text[0] == "0":
                raise InputError(f"line {lineno}: POS '{pos_text}' is not a positive integer")
            pos = int(pos_text)
            if contig != current:
                if contig in done_contigs:
                    raise InputError(
                        f"line {lineno}: records are not sorted: contig '{chrom}' appears again "
                        "after other contigs (sort the file, e.g. with `bcftools sort`)"
                    )
                spec = close_chunk()
                if spec is not None:
                    yield spec
                if current:
                    done_contigs.add(current)
                current = contig
                current_len = lengths[contig]
                last_pos = 0
            elif pos < last_pos:
                raise InputError(
                    f"line {lineno}: records are not sorted by position ({chrom}:{pos} after "
                    f"{chrom}:{last_pos}; sort the file, e.g. with `bcftools sort`)"
                )
            if pos > current_len:
                raise InputError(
                    f"line {lineno}: POS {pos} is beyond the end of contig '{chrom}' "
                    f"({current_len:,} bp in {assembly})"
                )
            if not ref or ref.strip(_BASES):
                raise InputError(
                    f"line {lineno}: REF '{ref[:20]}' must be one or more of the bases A, C, G, T, N"
                )
            if alt == ref or not alt or alt.strip(_BASES + ",") or ",," in alt or alt[0] == ",":
                _check_alt(alt, ref, lineno)
            expected = reference(contig, pos - 1, len(ref))
            if expected != ref and expected != ref.upper() and not _n_compatible(ref, expected):
                if len(expected) < len(ref):
                    raise InputError(
                        f"line {lineno}: REF '{ref[:20]}' runs past the end of contig '{chrom}'"
                    )
                mismatches += 1
                if len(first_mm) < 20:
                    first_mm.append(Mismatch(lineno, chrom, pos, ref, expected))
            records += 1
            if max_variants is not None and records > max_variants:
                raise InputError(
                    f"the file has more than {max_variants:,} variants, the limit for this "
                    "account; split it or upgrade"
                )
            if chunk_n >= chunk_records and pos != last_pos:
                spec = close_chunk()
                if spec is not None:
                    yield spec
                    self._check_mismatch_rate(records - 1, mismatches, final=False)
                    if on_progress is not None:
                        on_progress(counter.count / total)
            if chunk_handle is None:
                chunk_path = self.plan.scratch / f"chunk{chunk_index:05d}.vcf"
                chunk_handle = chunk_path.open("w")
                chunk_handle.write(header)
                chunk_first = pos
            chunk_n += 1
            last_pos = pos
            if chrom != contig:
                line = contig + line[len(chrom) :]
            buffer.append(line if line.endswith("\n") else line + "\n")
            if len(buffer) >= _WRITE_BATCH:
                assert chunk_handle is not None
                chunk_handle.writelines(buffer)
                buffer.clear()
        if records == 0:
            raise InputError("the file has a header but no variant records")
        self.stats.records = records
        self.stats.ref_mismatches = mismatches
        self._check_mismatch_rate(records, mismatches, final=True)
        spec = close_chunk()
        if spec is not None:
            yield spec

    def _check_mismatch_rate(self, records: int, mismatches: int, *, final: bool) -> None:
        if records == 0 or (not final and records < 1000):
            return
        rate = mismatches / records
        if rate <= self.plan.ref_mismatch_threshold:
            return
        first = self.stats.first_mismatches[0]
        scope = "" if final else f" of the first {records:,} records"
        raise InputError(
            f"REF does not match {self.bundle.manifest.assembly} — wrong assembly? "
            f"{rate:.1%} of REF alleles{scope} ({mismatches:,} of {records:,}) disagree with the "
            f"reference (first at line {first.line}: {first.chrom}:{first.pos} REF "
            f"{first.ref[:10]}, reference {first.expected[:10]})"
        )


def _n_compatible(ref: str, expected: str) -> bool:
    """An N on either side is "unknown base", not a mismatch."""
    if len(ref) != len(expected):
        return False
    return all(a == b or a == "N" or b == "N" for a, b in zip(ref.upper(), expected, strict=True))


def _check_alt(alt: str, ref: str, lineno: int) -> None:
    if not alt:
        raise InputError(f"line {lineno}: ALT is empty")
    if alt == ".":
        return  # a reference-only site: valid VCF, csq simply predicts nothing
    for allele in alt.split(","):
        if not allele:
            raise InputError(f"line {lineno}: ALT '{alt[:40]}' has an empty allele")
        if allele == ref:
            raise InputError(f"line {lineno}: ALT allele '{allele[:20]}' is the same as REF")
        if allele == "*" or (allele.startswith("<") and allele.endswith(">")):
            continue
        if "[" in allele or "]" in allele:
            continue  # breakend notation
        if allele.strip(_BASES):
            raise InputError(
                f"line {lineno}: ALT allele '{allele[:20]}' must be bases A, C, G, T, N, '*', "
                "or a symbolic allele like <DEL>"
            )
