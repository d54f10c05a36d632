"""The input as bytes and lines: what kind of file it is, and a bounded reader over its text.

Everything that can go wrong below the level of a record is found here, with the line it is on:
a corrupt or truncated gzip stream, bytes that are not UTF-8, a binary file, a line or header or
decompressed text over its limit (limits.py). The reader never holds more than one block and one
line, whatever the input.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pysam.bcftools
from pysam.utils import SamtoolsError

from gas_annotator.engine.errors import InputError
from gas_annotator.engine.limits import InputLimits, size_text

BLOCK_BYTES = 4 << 20  # text per fast-path block: bounds memory, amortises per-block cost
UTF8_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_BINARY = "the file is binary, not VCF text (expected .vcf, .vcf.gz or .bcf)"
# Control bytes other than tab, CR and LF: text has none, binary data ~10 %.
_CONTROL = bytes(b for b in range(32) if b not in (9, 10, 13)) + b"\x7f"


def sniff(path: Path) -> str:
    """'vcf', 'gzip' (bgzip or plain gzip VCF) or 'bcf'; InputError for empty or binary files.

    Bytes that are not UTF-8 in otherwise textual content are left to the line reader, which
    names the line and the byte (a Latin-1 'é' in INFO is not a binary file)."""
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
    if head.startswith(_UTF16_BOMS):
        raise InputError("the file is UTF-16 text; save it as UTF-8 (or ASCII) text")
    if b"\x00" in head or len(head.translate(None, _CONTROL)) < len(head) * 0.99:
        raise InputError(_BINARY)
    if not head.removeprefix(UTF8_BOM).strip():
        raise InputError("the file is empty")
    return "vcf"


# VCF text is at most ~4x the binary BCF record data (a genotype byte becomes "0/1\t"): a BCF
# whose data exceeds a quarter of the text limit is rejected before it is converted to text on
# the scratch disk.
BCF_TEXT_FACTOR = 4


def bcf_to_vcf(path: Path, out: Path, limits: InputLimits) -> None:
    check_bcf_size(path, limits)
    try:
        pysam.bcftools.view("--no-version", "-Ov", "-o", str(out), str(path), catch_stdout=False)
    except SamtoolsError as exc:
        raise InputError("the BCF file is truncated or corrupt (htslib could not read it)") from exc


def check_bcf_size(path: Path, limits: InputLimits) -> None:
    """A BCF bomb fails here, before htslib reads its header or bcftools writes its text."""
    with path.open("rb") as raw:
        compressed = raw.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if compressed else path.open("rb") as handle:
        try:
            head = handle.read(9)
        except (OSError, EOFError, zlib.error) as exc:
            raise InputError(
                "the BCF file is truncated or corrupt (gzip could not read it)"
            ) from exc
    if len(head) == 9 and head[:3] == b"BCF":
        header_bytes = int.from_bytes(head[5:9], "little")
        if header_bytes > limits.max_header_bytes:
            raise InputError(
                f"the BCF header is larger than {size_text(limits.max_header_bytes)}, the limit"
            )
    cap = limits.max_text_bytes // BCF_TEXT_FACTOR
    size = _decompressed_size(path, cap) if compressed else path.stat().st_size
    if size > cap:
        raise InputError(
            f"the BCF file holds more than {size_text(cap)} of data (decompressed), the limit"
        )


def _decompressed_size(path: Path, cap: int) -> int:
    """The uncompressed size of a BGZF file from its block headers and footers (no
    decompression); a plain gzip stream is decompressed and counted, up to just past ``cap``."""
    total = 0
    with path.open("rb") as handle:
        size = path.stat().st_size
        at = 0
        while at < size:
            handle.seek(at)
            block = handle.read(18)
            # BGZF: gzip with FEXTRA holding the "BC" subfield, whose value is the block size - 1.
            if len(block) < 18 or block[:4] != b"\x1f\x8b\x08\x04" or block[12:14] != b"BC":
                return _gzip_size(path, cap)
            end = at + int.from_bytes(block[16:18], "little") + 1
            handle.seek(end - 4)
            total += int.from_bytes(handle.read(4), "little")  # ISIZE
            if total > cap:
                return total
            at = end
    return total


def _gzip_size(path: Path, cap: int) -> int:
    total = 0
    with gzip.open(path, "rb") as handle:
        while total <= cap:
            try:
                data = handle.read(1 << 20)
            except (OSError, EOFError, zlib.error) as exc:
                raise InputError(
                    "the BCF file is truncated or corrupt (gzip could not read it)"
                ) from exc
            if not data:
                break
            total += len(data)
    return total


class Counted(io.RawIOBase):
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


def text_line(raw: bytes, lineno: int) -> str:
    """One line as text, or an error naming the line and the offending byte."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"line {lineno}: byte 0x{raw[exc.start]:02X} (byte {exc.start + 1} of the line) is "
            "not valid UTF-8; save the file as UTF-8 text (from Latin-1: iconv -f latin1 -t utf-8)"
        ) from exc
    at = line.find("\x00")
    if at >= 0:
        raise InputError(f"line {lineno}: byte 0x00 (NUL, byte {at + 1} of the line): {_BINARY}")
    return line


class Reader:
    """Header lines, then newline-terminated blocks of the data section, as bytes, within the
    limits on line length and on the total text (after decompression)."""

    def __init__(self, stream: IO[bytes], limits: InputLimits) -> None:
        self.stream = stream
        self.limits = limits
        self.text_bytes = 0
        self._started = False

    def _guard(self, fn: Callable[[], bytes], line: int) -> bytes:
        try:
            data = fn()
        except EOFError as exc:
            raise InputError(
                "the compressed file is truncated (it ends before the end of the gzip stream)"
            ) from exc
        except (OSError, zlib.error) as exc:
            raise InputError(f"the compressed file is corrupt after line {line - 1}") from exc
        self.text_bytes += len(data)
        limit = self.limits.max_text_bytes
        if self.text_bytes > limit:
            raise InputError(
                f"line {line}: the file holds more than {size_text(limit)} of text "
                "(decompressed), the limit"
            )
        return data

    def _line_too_long(self, line: int) -> InputError:
        limit = self.limits.max_line_bytes
        return InputError(f"line {line}: the line is longer than {size_text(limit)}, the limit")

    def readline(self, line: int) -> bytes:
        """Line number ``line`` (1-based), with its newline; b'' at the end of the input."""
        limit = self.limits.max_line_bytes
        raw = self._guard(lambda: self.stream.readline(limit + 1), line)
        if not self._started:
            self._started = True
            raw = raw.removeprefix(UTF8_BOM)  # Excel and Notepad write one; it is not content
        if len(raw) > limit and not (len(raw) == limit + 1 and raw.endswith(b"\n")):
            raise self._line_too_long(line)
        return raw

    def block(self, line: int) -> bytes:
        """Whole lines, about BLOCK_BYTES of them, starting at line number ``line``."""
        data = self._guard(lambda: self.stream.read(BLOCK_BYTES), line)
        if not data:
            return data
        limit = self.limits.max_line_bytes
        if not data.endswith(b"\n"):
            # Complete the last line, reading no further than the limit allows.
            partial = len(data) - data.rfind(b"\n") - 1
            tail_line = line + data.count(b"\n")
            room = limit - partial
            tail = self._guard(lambda: self.stream.readline(max(room, 0) + 1), tail_line)
            if partial + len(tail) > limit + tail.endswith(b"\n"):
                raise self._line_too_long(tail_line)
            data += tail
        if limit < BLOCK_BYTES:
            # A line inside the first read is shorter than BLOCK_BYTES: only a limit below that
            # (never by default) can be exceeded there.
            ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
            lengths = np.diff(ends, prepend=-1)
            over = np.flatnonzero(lengths > limit + 1)
            if len(over):
                raise self._line_too_long(line + int(over[0]))
        return data
