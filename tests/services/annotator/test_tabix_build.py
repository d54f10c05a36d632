"""A chunk member's tabix index built from its records' offsets must be the index htslib
builds by reading the member back: every bin's chunks, the pseudo-bin and the linear index."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pyarrow as pa
import pysam
from pysam.libcbgzf import BGZFile

from gas_annotator.engine.tabix_build import build_index
from gas_annotator.engine.tabix_merge import META_BIN, TabixIndex, read_tbi, write_tbi
from gas_annotator.engine.vcf_splice import BGZF_MODE

Record = tuple[str, int, int]  # contig, POS, REF length


def _records(rng: random.Random) -> list[Record]:
    """Two contigs; stretches dense (BGZF blocks per 16 kb window: bins that stay) and sparse
    (bins that join their parents); same-POS records; deletions spanning several windows and
    bins of the levels above the 16 kb one."""
    records: list[Record] = []
    for contig, length in (("chrA", 5_000_000), ("chrB", 700_000)):
        pos = 1
        while pos < length:
            dense = pos % 200_000 < 4_000
            pos += rng.choice([0, 1, 3, 8]) if dense else rng.randrange(1, 40_000)
            ref = 1
            roll = rng.random()
            if roll < 0.0004:
                ref = rng.choice([20_000, 140_000, 300_000])
            elif roll < 0.1:
                ref = rng.randrange(2, 40)
            records.append((contig, pos, ref))
    return records


def _write_member(path: Path, records: list[Record], rng: random.Random) -> np.ndarray:
    """The records as VCF lines in one BGZF member, as a worker writes it; where each line
    starts in the text, and where the last ends."""
    lines = []
    for contig, pos, ref in records:
        # Incompressible padding, so the member has many blocks.
        pad = "".join(rng.choices("ACGTNacgtn0123456789", k=rng.randrange(20, 300)))
        lines.append(f"{contig}\t{pos}\t.\t{'A' * ref}\tG\t.\t.\tX={pad}\n".encode())
    handle = BGZFile(str(path), BGZF_MODE, None)  # type: ignore[arg-type]
    handle.write(b"".join(lines))
    handle.close()
    return np.cumsum([0, *(len(line) for line in lines)])


def _build(records: list[Record], starts: np.ndarray, member: Path) -> TabixIndex | None:
    return build_index(
        pa.array([r[0] for r in records]),
        np.array([r[1] for r in records]),
        np.array([r[2] for r in records]),
        starts,
        member,
    )


def test_a_members_own_index_is_the_index_htslib_builds(tmp_path: Path) -> None:
    rng = random.Random(5)
    records = _records(rng)
    member = tmp_path / "member.vcf.gz"
    starts = _write_member(member, records, rng)
    ours = _build(records, starts, member)
    assert ours is not None
    pysam.tabix_index(str(member), preset="vcf", force=True, index=str(tmp_path / "htslib.tbi"))
    theirs = read_tbi(tmp_path / "htslib.tbi")
    assert (ours.names, ours.conf) == (theirs.names, theirs.conf)
    for got, want in zip(ours.references, theirs.references, strict=True):
        assert got.bins == want.bins
        assert got.linear.tolist() == want.linear.tolist()
    # A member where compaction matters both ways (16 kb bins kept for spanning 64 KB or more
    # of compressed file, and chunks in the larger bins) and long records do.
    bins = theirs.references[0].bins
    leaves = [pairs for b, pairs in bins.items() if 4681 <= b < META_BIN]
    assert any((pairs[-1][1] >> 16) - (pairs[0][0] >> 16) >= 0x10000 for pairs in leaves)
    assert any(0 < b < 4681 for b in bins)


def test_a_written_own_index_answers_region_queries(tmp_path: Path) -> None:
    rng = random.Random(9)
    records = [(c, p, r) for c, p, r in _records(rng) if r < 1000]
    member = tmp_path / "member.vcf.gz"
    starts = _write_member(member, records, rng)
    ours = _build(records, starts, member)
    assert ours is not None
    write_tbi(ours, Path(f"{member}.tbi"))
    expected: dict[str, list[tuple[int, int]]] = {}
    for contig, pos, ref in records:
        expected.setdefault(contig, []).append((pos, ref))
    with pysam.TabixFile(str(member)) as indexed:
        for _ in range(300):
            contig = rng.choice(sorted(expected))
            start = rng.randrange(0, expected[contig][-1][0])
            end = start + rng.choice([1, 100, 20_000, 500_000])
            got = [int(line.split("\t")[1]) for line in indexed.fetch(contig, start, end)]
            assert got == [p for p, r in expected[contig] if p - 1 < end and p - 1 + r > start]


def test_records_htslib_would_refuse_get_no_own_index(tmp_path: Path) -> None:
    rng = random.Random(2)
    member = tmp_path / "member.vcf.gz"
    unsorted = [("chrA", 500, 1), ("chrA", 400, 1)]
    assert _build(unsorted, _write_member(member, unsorted, rng), member) is None
    split = [("chrA", 1, 1), ("chrB", 1, 1), ("chrA", 9, 1)]
    assert _build(split, _write_member(member, split, rng), member) is None
