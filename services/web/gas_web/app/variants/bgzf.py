"""BGZF, the blocked gzip htslib reads and indexes (SAM/BAM specification, section 4.1):
a series of gzip members of at most 64 KiB of input each, whose extra field records the
member's size, and a fixed empty member at the end. Written with zlib alone (the web image
has no pysam), so a VCF export streams block by block."""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterable, Iterator

EOF_BLOCK = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
# Input per block: a little under 64 KiB, so even incompressible input fits one block.
BLOCK_INPUT = 0xFF00


def block(data: bytes, level: int = 6) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, -15)
    deflated = compressor.compress(data) + compressor.flush()
    size = len(deflated) + 25  # BSIZE: the whole block (18 header + 8 trailer) minus one
    header = struct.pack("<BBBBIBBHBBHH", 0x1F, 0x8B, 8, 4, 0, 0, 0xFF, 6, ord("B"), ord("C"),
                         2, size)
    return header + deflated + struct.pack("<II", zlib.crc32(data), len(data))


def compress(chunks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    """BGZF blocks of the concatenated chunks, then the EOF block; holds one block of input."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= BLOCK_INPUT:
            yield block(bytes(pending[:BLOCK_INPUT]), level)
            del pending[:BLOCK_INPUT]
    if pending:
        yield block(bytes(pending), level)
    yield EOF_BLOCK
