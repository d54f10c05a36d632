"""A chunk member's tabix index, built from where its writer put each record.

The worker knows every record's place in the uncompressed text (it splices the lines) and its
interval (CHROM, POS, REF length); the member's BGZF block headers give each block's place in
both the compressed and the uncompressed stream. So the index htslib would compute by reading
the member back (`tabix_merge.index_member`: decompress and parse every line again, 0.55 CPU-s
per million records) is computed here with a few array operations per chunk.

What it computes is what htslib's `tbx_index` + `hts_idx_push` + `hts_idx_finish` compute for
the VCF preset (htslib `tbx.c`, `hts.c`), field for field (tested against htslib):
- a record's interval: [POS - 1, POS - 1 + len(REF)); its virtual offsets: where its line
  starts and where the next one does (`bgzf_tell` before and after reading it);
- bins: TBI's 5-level binning of that interval (`hts_reg2bin`); each run of consecutive records
  in one bin is a chunk (first record's start, next run's start);
- the per-reference pseudo-bin: the reference's first and last offsets and its record count;
- the linear index: per 16 kb window, the start of the first record overlapping it, an empty
  window taking its next window's value;
- htslib's compaction (`compress_binning`): a bin whose chunks span less than 64 KB of
  compressed file moves into its parent; chunks that meet in one BGZF block join.

Only plain records are indexed here: htslib takes the interval's end from INFO/END, SVLEN or a
gVCF's LEN when a record has them (symbolic alleles), so a member holding any such text (or
records out of order) gets None and is indexed by htslib instead.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gas_annotator.engine.tabix_merge import META_BIN, Reference, TabixIndex

# htslib's TBI for the VCF preset: format TBX_VCF, CHROM column 1, POS column 2, no end
# column, '#' starts a meta line, no lines skipped.
VCF_CONF = (2, 1, 2, 0, ord("#"), 0)
MIN_SHIFT, LEVELS = 14, 5  # 16 kb windows; bins of 2^14 .. 2^29 bases
N_BINS = ((1 << (3 * LEVELS + 3)) - 1) // 7
MIN_MARKER_DIST = 0x10000  # htslib's HTS_MIN_MARKER_DIST (compressed bytes)
_NONE = np.iinfo(np.uint64).max
_BGZF_MAGIC = b"\x1f\x8b\x08\x04"


def block_map(member: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(compressed offset, uncompressed start) of each BGZF block, the EOF block included;
    ValueError for anything that is not BGZF."""
    offsets: list[int] = []
    starts: list[int] = []
    at = uncompressed = 0
    while at < len(member):
        if member[at : at + 4] != _BGZF_MAGIC or member[at + 12 : at + 14] != b"BC":
            raise ValueError(f"no BGZF block at byte {at}")
        size = struct.unpack_from("<H", member, at + 16)[0] + 1
        offsets.append(at)
        starts.append(uncompressed)
        uncompressed += struct.unpack_from("<I", member, at + size - 4)[0]
        at += size
    return np.array(offsets, np.int64), np.array(starts, np.int64)


def virtual_offsets(
    positions: np.ndarray, block_offsets: np.ndarray, block_starts: np.ndarray
) -> np.ndarray:
    """Virtual offsets (block offset << 16 | offset in block) of uncompressed positions. A
    position at a block's end is the next block's offset 0, as htslib's reader tells it."""
    block = np.searchsorted(block_starts, positions, side="right") - 1
    within = (positions - block_starts[block]).astype(np.uint64)
    shifted = block_offsets[block].astype(np.uint64) << np.uint64(16)
    return np.asarray(shifted | within, np.uint64)


def reg2bin(beg: np.ndarray, end: np.ndarray) -> np.ndarray:
    """htslib's hts_reg2bin for TBI (min_shift 14, 5 levels), per interval [beg, end)."""
    last = end - 1
    bins = np.zeros(len(beg), np.int64)
    found = np.zeros(len(beg), bool)
    shift, first = MIN_SHIFT, N_BINS - (1 << (3 * LEVELS))  # level 5's first bin: 4681
    for level in range(LEVELS, 0, -1):
        same = ~found & ((beg >> shift) == (last >> shift))
        bins[same] = first + (beg[same] >> shift)
        found |= same
        shift += 3
        first -= 1 << (3 * (level - 1))
    return bins


def build_index(
    chrom: pa.Array, pos: np.ndarray, ref_len: np.ndarray, line_starts: np.ndarray, member: Path
) -> TabixIndex | None:
    """The member's index from its records (file order) and where their lines start in its
    uncompressed text (`line_starts`: one more entry, the text's end); None when htslib's
    answer may differ from this one's (records out of order or a reference split, see the
    module docstring for the text that needs htslib)."""
    n = len(pos)
    try:
        block_offsets, block_starts = block_map(member.read_bytes())
    except ValueError:
        return None
    if n == 0 or len(line_starts) != n + 1 or block_starts[-1] != line_starts[-1]:
        return None
    offsets = virtual_offsets(np.asarray(line_starts, np.int64), block_offsets, block_starts)
    encoded = pc.dictionary_encode(chrom)  # names in order of first appearance
    tid = np.asarray(encoded.indices, np.int64)
    names = [str(name) for name in encoded.dictionary.to_pylist()]
    beg = np.maximum(np.asarray(pos, np.int64) - 1, 0)
    end = np.maximum(beg + np.asarray(ref_len, np.int64), beg + 1)
    changes = np.flatnonzero(np.diff(tid)) + 1
    if len(changes) != len(names) - 1:
        return None  # a reference's records are not contiguous
    if (np.diff(beg)[np.diff(tid) == 0] < 0).any():
        return None  # out of order: htslib refuses it
    bins = reg2bin(beg, end)
    # A chunk per run of records in one bin; it ends where the next run starts (the last one
    # at the member's end: htslib's final offset, where its reader stops).
    run_start = np.flatnonzero(np.r_[True, (np.diff(bins) != 0) | (np.diff(tid) != 0)])
    run_end = np.r_[run_start[1:], n]
    references = []
    bounds = np.r_[0, changes, n]
    for t in range(len(names)):
        low, high = int(bounds[t]), int(bounds[t + 1])
        reference = Reference()
        runs = (run_start >= low) & (run_start < high)
        for first, after in zip(run_start[runs].tolist(), run_end[runs].tolist(), strict=True):
            reference.bins.setdefault(int(bins[first]), []).append(
                (int(offsets[first]), int(offsets[after])))
        reference.bins[META_BIN] = [(int(offsets[low]), int(offsets[high])), (high - low, 0)]
        reference.linear = _linear(beg[low:high], end[low:high], offsets[low:high])
        _compress(reference)
        references.append(reference)
    return TabixIndex(VCF_CONF, names, references)


def _linear(beg: np.ndarray, end: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per 16 kb window, the start of the first record overlapping it (an empty window: its
    next window's value). Records are in order, so the first is the smallest start."""
    first, last = beg >> MIN_SHIFT, (end - 1) >> MIN_SHIFT
    span = last - first + 1
    record = np.repeat(np.arange(len(beg)), span)
    window = first[record] + (np.arange(len(record)) - np.repeat(np.cumsum(span) - span, span))
    linear = np.full(int(last.max()) + 1, _NONE, np.uint64)
    np.minimum.at(linear, window, starts[record])
    # Filled from the right; the last window always holds a record.
    return np.minimum.accumulate(linear[::-1])[::-1]


def _compress(reference: Reference) -> None:
    """htslib's compress_binning: level by level from the leaves up, a bin whose chunks span
    under MIN_MARKER_DIST compressed bytes joins its parent (when the parent exists); then
    chunks of a bin that meet in one BGZF block join."""
    bins = reference.bins
    for level in range(LEVELS, 0, -1):
        first = ((1 << (3 * level)) - 1) // 7
        for bin_id in [b for b in bins if first <= b < N_BINS]:
            pairs = bins[bin_id]
            if level < LEVELS:
                pairs.sort()
            if (pairs[-1][1] >> 16) - (pairs[0][0] >> 16) < MIN_MARKER_DIST:
                parent = (bin_id - 1) >> 3
                if parent in bins:
                    bins[parent].extend(bins.pop(bin_id))
    if 0 in bins:
        bins[0].sort()
    for bin_id, pairs in bins.items():
        if bin_id >= N_BINS:
            continue
        joined = [pairs[0]]
        for u, v in pairs[1:]:
            if joined[-1][1] >> 16 >= u >> 16:
                joined[-1] = (joined[-1][0], max(joined[-1][1], v))
            else:
                joined.append((u, v))
        bins[bin_id] = joined
