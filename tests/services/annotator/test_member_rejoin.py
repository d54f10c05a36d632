"""Two adjacent members an indel crossed, put back in order (member_rejoin)."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest

from gas_annotator.engine import member_rejoin
from gas_annotator.engine.member_rejoin import rejoin
from gas_annotator.engine.tabix_merge import crosses
from gas_annotator.engine.vcf_splice import bgzf_member


def _member(lines: list[bytes], path: Path) -> bytes:
    bgzf_member(path, b"".join(lines))
    return path.read_bytes()


def _line(contig: str, pos: int, n: int) -> bytes:
    # Long INFO values so a few hundred lines fill several 64 KB BGZF blocks.
    return f"{contig}\t{pos}\t.\tA\tG\t.\tPASS\tN={n};X={'x' * 300}\n".encode()


def _blocks(member: bytes) -> list[bytes]:
    out, at = [], 0
    while at < len(member):
        size = int.from_bytes(member[at + 16 : at + 18], "little") + 1
        out.append(member[at : at + size])
        at += size
    return out


@pytest.mark.parametrize("seed", range(12))
def test_rejoined_members_hold_every_record_in_order_and_keep_far_blocks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    rng = random.Random(seed)
    # The first member: maybe another contig first; the second: maybe another contig after.
    head = [("0", p) for p in range(1, rng.choice([1, 200]))]
    earlier_pos = sorted(rng.sample(range(1_000, 3_000), rng.choice([1, 5, 400, 900])))
    cross = rng.randrange(earlier_pos[0] - 50, earlier_pos[-1])  # the moved indel's new POS
    later_pos = sorted([cross, *rng.sample(range(cross, earlier_pos[-1] + 400), 300)])
    tail = [("2", p) for p in range(1, rng.choice([1, 200]))]
    earlier_records = head + [("1", p) for p in earlier_pos]
    later_records = [("1", p) for p in later_pos] + tail
    n = iter(range(10**6))
    earlier_lines = [_line(c, p, next(n)) for c, p in earlier_records]
    later_lines = [_line(c, p, next(n)) for c, p in later_records]
    earlier = _member(earlier_lines, tmp_path / "a.bgz")
    later = _member(later_lines, tmp_path / "b.bgz")
    spans = ((*earlier_records[0], *earlier_records[-1]), (*later_records[0], *later_records[-1]))
    assert crosses(*spans)

    rewritten: list[int] = []
    compress = member_rejoin._compress
    monkeypatch.setattr(
        member_rejoin,
        "_compress",
        lambda text, path: rewritten.append(len(text)) or compress(text, path),
    )
    rejoined = rejoin(earlier, later, spans, tmp_path)

    got = gzip.decompress(rejoined.member).splitlines(keepends=True)
    order = {"0": 0, "1": 1, "2": 2}
    # A stable sort of the joined records: on equal POS the first member's come first.
    want = sorted(
        earlier_lines + later_lines,
        key=lambda line: (order[line[:1].decode()], int(line.split(b"\t")[1])),
    )
    assert got == want
    records = sorted(earlier_records + later_records, key=lambda r: (order[r[0]], r[1]))
    assert rejoined.span == (*records[0], *records[-1])
    # Blocks away from the boundary are the members' own, byte for byte: the first member's
    # that end before its last record that stays, the second's that start after its first.
    stays_at = sum(map(len, earlier_lines[: max(_count(earlier_records, cross, "le"), 1) - 1]))
    kept_head = [
        b for b, end in zip(_blocks(earlier), _ends(earlier), strict=True) if end < stays_at
    ]
    later_end = _ends(later)[-1]
    stays_from = sum(map(len, later_lines[: _count(later_records, earlier_pos[-1], "lt") + 1]))
    kept_tail = [
        b
        for b, end, size in zip(_blocks(later), _ends(later), _sizes(later), strict=True)
        if end - size > stays_from
    ]
    assert later_end == sum(map(len, later_lines))
    assert rejoined.member.startswith(b"".join(kept_head))
    assert rejoined.member.endswith(b"".join(kept_tail))
    # ... and what is compressed again is the moved records and at most two blocks around.
    moved = (sum(map(len, earlier_lines)) - stays_at) + stays_from
    assert sum(rewritten) <= moved + 4 * 65_536


def test_records_longer_than_a_block_are_moved_whole(tmp_path: Path) -> None:
    # A record of thousands of samples can be longer than a 64 KB BGZF block.
    samples = "0/1\t" * 40_000 + "0/0\n"

    def line(pos: int) -> bytes:
        return f"1\t{pos}\t.\tA\tG\t.\tPASS\t.\tGT\t{samples}".encode()

    earlier_lines = [line(p) for p in (10, 20, 30, 40)]
    later_lines = [line(p) for p in (25, 50, 60)]
    earlier = _member(earlier_lines, tmp_path / "a.bgz")
    later = _member(later_lines, tmp_path / "b.bgz")
    assert len(_blocks(later)) > len(later_lines)

    rejoined = rejoin(earlier, later, (("1", 10, "1", 40), ("1", 25, "1", 60)), tmp_path)

    got = gzip.decompress(rejoined.member).splitlines(keepends=True)
    assert [int(x.split(b"\t")[1]) for x in got] == [10, 20, 25, 30, 40, 50, 60]
    assert rejoined.span == ("1", 10, "1", 60)


def _count(records: list[tuple[str, int]], pos: int, how: str) -> int:
    """How many records are on contig 1 at POS <= pos ("le") or < pos ("lt"), or before it."""
    return sum(
        1 for c, p in records if c == "0" or (c == "1" and (p <= pos if how == "le" else p < pos))
    )


def _sizes(member: bytes) -> list[int]:
    return [len(gzip.decompress(block)) for block in _blocks(member)]


def _ends(member: bytes) -> list[int]:
    ends, total = [], 0
    for size in _sizes(member):
        total += size
        ends.append(total)
    return ends


@pytest.mark.parametrize(
    ("earlier", "later", "expected"),
    [
        (("1", 10, "1", 500), ("1", 499, "1", 900), True),
        (("1", 10, "1", 500), ("1", 500, "1", 900), False),  # equal POS is in order
        (("1", 10, "1", 500), ("2", 5, "2", 900), False),
        (("1", 10, "1", 500), None, False),
    ],
)
def test_crosses_only_when_the_second_starts_before_the_first_ends(
    earlier: tuple[str, int, str, int], later: tuple[str, int, str, int] | None, expected: bool
) -> None:
    assert crosses(earlier, later) is expected
