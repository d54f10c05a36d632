"""The joined VCF.gz's tabix index, merged from the chunks' own indexes.

Each worker indexes its chunk's BGZF member with htslib (`pysam.tabix_index`, the VCF preset,
the same code `bcftools index -t` runs) while the other chunks are still annotating; the job
process then only shifts and merges those small indexes, instead of decompressing and parsing
every line of the joined file again at the end (0.4-0.5 s per million records, on the
critical path: nothing else runs then).

Why a merge is exact. A virtual offset is `block offset << 16 | offset in block`; a chunk's
member starts at byte S of the joined file, so each of its offsets moves by `S << 16`. Bins hold
lists of offset ranges: the merged bin is the chunks' lists one after the other (file order).
The per-reference pseudo-bin holds (first, last) offsets and the mapped/unmapped counts: the
outer offsets and the sums. The linear index holds, per 16 kb window, the offset of the first
record overlapping it, an empty window taking its next window's value: as chunks are in file
order, the merged window is the smallest of the chunks' values for it (a chunk's windows before
its first record carry its first record's offset, never less than an earlier chunk's), which is
what htslib computes for the joined file. Only htslib's optional compaction (merging small
bins into their parents, adjacent ranges into one) is not redone, so the file is not
byte-identical to a fresh index; every query returns the same records (tested).

The TBI layout (htslib `hts.c` `idx_save_core`, SAM/BAM spec "TBI"): magic, n_ref, the tabix
configuration (format, col_seq, col_beg, col_end, meta, skip), the names, then per reference
its bins (bin, n_chunk, chunk offset pairs) and its linear index, then the no-coordinate count.
"""

from __future__ import annotations

import gzip
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pysam
from pysam.libcbgzf import BGZFile

TBI_MAGIC = b"TBI\x01"
# The pseudo-bin holding a reference's offsets and record counts: one past the last real bin
# of TBI's 5-level, 14-bit binning (((1 << 18) - 1) // 7 bins).
META_BIN = 37450


@dataclass
class Reference:
    bins: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    linear: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))


@dataclass
class TabixIndex:
    conf: tuple[int, int, int, int, int, int]  # format, col_seq, col_beg, col_end, meta, skip
    names: list[str]
    references: list[Reference]
    no_coordinate: int = 0


def read_tbi(path: Path) -> TabixIndex:
    data = gzip.decompress(path.read_bytes())
    if data[:4] != TBI_MAGIC:
        raise ValueError(f"{path} is not a tabix index")
    n_ref, *conf_and_len = struct.unpack_from("<8i", data, 4)
    conf, names_len = tuple(conf_and_len[:6]), conf_and_len[6]
    at = 36
    names = [n.decode() for n in data[at : at + names_len].split(b"\0")[:n_ref]]
    at += names_len
    references = []
    for _ in range(n_ref):
        (n_bin,) = struct.unpack_from("<i", data, at)
        at += 4
        bins: dict[int, list[tuple[int, int]]] = {}
        for _ in range(n_bin):
            bin_id, n_chunk = struct.unpack_from("<Ii", data, at)
            at += 8
            pairs = struct.unpack_from(f"<{2 * n_chunk}Q", data, at)
            at += 16 * n_chunk
            bins[bin_id] = list(zip(pairs[0::2], pairs[1::2], strict=True))
        (n_intv,) = struct.unpack_from("<i", data, at)
        at += 4
        linear = np.frombuffer(data, dtype="<u8", count=n_intv, offset=at).astype(np.uint64)
        at += 8 * n_intv
        references.append(Reference(bins, linear))
    no_coordinate = struct.unpack_from("<Q", data, at)[0] if at + 8 <= len(data) else 0
    return TabixIndex(conf, names, references, no_coordinate)


def write_tbi(index: TabixIndex, path: Path) -> None:
    names = b"".join(name.encode() + b"\0" for name in index.names)
    parts = [TBI_MAGIC, struct.pack("<8i", len(index.names), *index.conf, len(names)), names]
    for reference in index.references:
        parts.append(struct.pack("<i", len(reference.bins)))
        for bin_id, pairs in reference.bins.items():
            parts.append(struct.pack("<Ii", bin_id, len(pairs)))
            parts.append(struct.pack(f"<{2 * len(pairs)}Q", *(v for pair in pairs for v in pair)))
        parts.append(struct.pack("<i", len(reference.linear)))
        parts.append(reference.linear.astype("<u8").tobytes())
    parts.append(struct.pack("<Q", index.no_coordinate))
    handle = BGZFile(str(path), "wb", None)
    try:
        handle.write(b"".join(parts))
    finally:
        handle.close()


def merge(parts: list[tuple[TabixIndex, int]]) -> TabixIndex:
    """One index for the concatenation of BGZF members: `parts` are (the member's own index,
    the member's byte offset in the joined file), in file order. Raises ValueError when the
    members do not join into one sorted file (a reference's records split by another's)."""
    if not parts:
        raise ValueError("no index to merge")
    conf = parts[0][0].conf
    names: list[str] = []
    merged: dict[str, Reference] = {}
    no_coordinate = 0
    for index, start in parts:
        if index.conf != conf:
            raise ValueError("chunk indexes differ in their tabix configuration")
        shift = start << 16
        no_coordinate += index.no_coordinate
        for name, reference in zip(index.names, index.references, strict=True):
            if name not in merged:
                names.append(name)
                merged[name] = Reference()
            elif names[-1] != name:
                raise ValueError(f"records of {name} are not contiguous")
            _add(merged[name], reference, shift)
    return TabixIndex(conf, names, [merged[name] for name in names], no_coordinate)


def _add(into: Reference, part: Reference, shift: int) -> None:
    for bin_id, pairs in part.bins.items():
        if bin_id == META_BIN:
            (first, last), (mapped, unmapped) = pairs
            if bin_id in into.bins:
                (first0, _), (mapped0, unmapped0) = into.bins[bin_id]
                into.bins[bin_id] = [
                    (first0, last + shift),
                    (mapped0 + mapped, unmapped0 + unmapped),
                ]
            else:
                into.bins[bin_id] = [(first + shift, last + shift), (mapped, unmapped)]
            continue
        into.bins.setdefault(bin_id, []).extend((u + shift, v + shift) for u, v in pairs)
    shifted = part.linear + np.uint64(shift)
    n = max(len(into.linear), len(shifted))
    linear = np.full(n, np.iinfo(np.uint64).max, np.uint64)
    linear[: len(into.linear)] = into.linear
    linear[: len(shifted)] = np.minimum(linear[: len(shifted)], shifted)
    into.linear = linear


def index_member(member: Path, out: Path) -> bool:
    """Tabix-index one chunk's BGZF member (records only, EOF block still on) into `out`;
    False when htslib refuses it (records out of order: the job then indexes the joined file,
    sorting it first if it must)."""
    try:
        pysam.tabix_index(str(member), preset="vcf", force=True, index=str(out))
    except (OSError, ValueError):
        out.unlink(missing_ok=True)
        return False
    return True


def index_joined(index_out: Path, members: list[Member]) -> bool:
    """Write the joined file's index from its members' indexes; False (nothing written) when
    some member has none or the members do not join into one sorted file."""
    parts = []
    previous: Member | None = None
    for member in members:
        if member.span is None:  # no records
            continue
        if member.index is None:
            return False
        if previous is not None and crosses(previous.span, member.span):
            return False  # out of order across more members than the Joiner re-sorts
        parts.append((read_tbi(member.index), member.start))
        previous = member
    if not parts:
        return False
    try:
        merged = merge(parts)
    except ValueError:
        return False
    write_tbi(merged, index_out)
    return True


Span = tuple[str, int, str, int]  # first record's contig and POS, last record's


@dataclass(frozen=True)
class Member:
    """One chunk's member in the joined file: where it starts, its own index, and its first
    and last record, None when it holds no record."""

    start: int
    index: Path | None
    span: Span | None


def crosses(earlier: Span | None, later: Span | None) -> bool:
    """Whether `later`'s first record lies before `earlier`'s last one (same contig): an indel
    left-aligned across the boundary between two members (see member_rejoin)."""
    return (
        earlier is not None
        and later is not None
        and later[0] == earlier[2]
        and later[1] < earlier[3]
    )
