"""Two adjacent chunk members put back in order when an indel crossed the boundary between them.

`bcftools norm` left-aligns an indel in a repeat to the repeat's start. When the chunk cut
falls inside the repeat, the second chunk's first records can move before the first chunk's
last ones: each member is sorted, their concatenation is not. Sorting the whole joined file at
the end took 8.1 s of a 23 s job (4M dense records), on one core with nothing else running.

Only the records on both sides of the cut are out of order, so only they are moved: the first
member's trailing records that lie after the second member's first POS, and the second
member's leading records that lie before the first member's last POS, merged by POS (the first
member's first on equal POS, as a stable sort of the joined file would order them). BGZF
blocks away from the cut are kept byte for byte; only the blocks holding moved records are
decompressed and written again (a few 64 KB blocks, not two whole chunks).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gas_annotator.engine.tabix_build import block_map
from gas_annotator.engine.tabix_merge import Span
from gas_annotator.engine.vcf_splice import bgzf_member

Stays = Callable[[bytes, int], bool]  # whether a record (contig, POS) keeps its place


@dataclass(frozen=True)
class Rejoined:
    member: bytes  # BGZF blocks, no EOF block
    span: Span


def rejoin(earlier: bytes, later: bytes, spans: tuple[Span, Span], scratch: Path) -> Rejoined:
    """One member holding the records of two adjacent members (BGZF, no EOF block, each sorted
    on its own, `tabix_merge.crosses(*spans)`) in order. `scratch` is a directory for the
    rewritten blocks."""
    first_span, later_span = spans
    contig, later_first, earlier_last = later_span[0], later_span[1], first_span[3]
    name = contig.encode()
    earlier_blocks, later_blocks = _blocks(earlier), _blocks(later)

    # The first member's tail: walk back a block at a time until a whole line stays.
    b = len(earlier_blocks)
    text = b""
    while True:
        b -= 1
        text = _inflate(earlier, earlier_blocks[b]) + text
        # Before the first newline: the end of a line begun in an earlier block (kept).
        head = 0 if b == 0 else text.index(b"\n") + 1
        cut = _last_in_order(text, head, lambda c, p: c != name or p <= later_first)
        if cut > head or b == 0:
            break
    earlier_keep, earlier_moved = text[:cut], text[cut:]

    # The second member's head: walk forward a block at a time until a whole line stays.
    e = -1
    text = b""
    while True:
        e += 1
        text += _inflate(later, later_blocks[e])
        last = e == len(later_blocks) - 1
        # After the last newline: the start of a line ending in a later block (kept; a line of
        # many samples can span several blocks, so there may be no newline yet).
        tail = len(text) if last else text.rfind(b"\n") + 1
        cut = _first_in_order(text, tail, lambda c, p: c != name or p >= earlier_last)
        if cut < tail or last:
            break
    later_moved, later_keep = text[:cut], text[cut:]

    moved = sorted(_lines(earlier_moved) + _lines(later_moved), key=_pos)  # stable
    middle = earlier_keep + b"".join(moved) + later_keep
    member = (
        earlier[: earlier_blocks[b][0]]
        + _compress(middle, scratch / "rejoin.bgz")
        + later[later_blocks[e][1] :]
    )
    start = first_span[:2]
    if first_span[0] == contig and later_first < first_span[1]:
        start = (contig, later_first)
    end = later_span[2:]
    if later_span[2] == contig and later_span[3] < earlier_last:
        end = (contig, earlier_last)
    return Rejoined(member, (start[0], start[1], end[0], end[1]))


def _last_in_order(text: bytes, head: int, stays: Stays) -> int:
    """Where the trailing lines that must move start (len(text) when none; `head` when every
    whole line after `head` moves)."""
    cut = len(text)
    while cut > head:
        begin = text.rfind(b"\n", head, cut - 1) + 1
        begin = max(begin, head)
        if stays(*_key(text, begin)):
            break
        cut = begin
    return cut


def _first_in_order(text: bytes, tail: int, stays: Stays) -> int:
    """Where the leading lines that must move end (0 when none; `tail` when every whole line
    before `tail` moves)."""
    cut = 0
    while cut < tail:
        if stays(*_key(text, cut)):
            break
        cut = text.index(b"\n", cut) + 1
    return cut


def _key(text: bytes, at: int) -> tuple[bytes, int]:
    tab = text.index(b"\t", at)
    return text[at:tab], int(text[tab + 1 : text.index(b"\t", tab + 1)])


def _lines(text: bytes) -> list[bytes]:
    return text.splitlines(keepends=True)


def _pos(line: bytes) -> int:
    return _key(line, 0)[1]


def _blocks(member: bytes) -> list[tuple[int, int]]:
    """Each BGZF block's (start, end) byte offsets."""
    starts = block_map(member)[0].tolist()
    return list(zip(starts, [*starts[1:], len(member)], strict=True))


def _inflate(member: bytes, block: tuple[int, int]) -> bytes:
    return zlib.decompress(member[block[0] : block[1]], wbits=31)


def _compress(text: bytes, path: Path) -> bytes:
    """`text` as BGZF blocks at the members' level, without the EOF block."""
    bgzf_member(path, text)
    data = path.read_bytes()
    path.unlink()
    return data
