"""Where a variant that hits no transcript lies relative to the genes: upstream, downstream,
intergenic, and the nearest gene (from the bundle's gene spans); and the MANE Select list."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from gas_annotator.engine import consequences as cq


@dataclass(frozen=True)
class Genes:
    starts: np.ndarray[Any, np.dtype[np.int64]]
    ends: np.ndarray[Any, np.dtype[np.int64]]
    strands: np.ndarray[Any, np.dtype[np.bool_]]  # True = '+'
    names: pa.Array
    by_end: np.ndarray[Any, np.dtype[np.int64]]  # gene indices sorted by end
    ends_sorted: np.ndarray[Any, np.dtype[np.int64]]
    prefix_max_end: np.ndarray[Any, np.dtype[np.int64]]  # over genes in start order
    prefix_arg: np.ndarray[Any, np.dtype[np.int64]]


@lru_cache(maxsize=8)
def load_genes(path: str, contig: str) -> Genes:
    starts: list[int] = []
    ends: list[int] = []
    strands: list[bool] = []
    names: list[str] = []
    with open(path) as handle:  # noqa: PTH123 - a str path from a picklable context
        next(handle)
        for line in handle:
            c, s, e, strand, _gid, name, _bt = line.rstrip("\n").split("\t")
            if c != contig:
                continue
            starts.append(int(s))
            ends.append(int(e))
            strands.append(strand != "-")
            names.append(name)
    order = sorted(range(len(starts)), key=lambda i: (starts[i], ends[i]))
    st = np.array([starts[i] for i in order], dtype=np.int64)
    en = np.array([ends[i] for i in order], dtype=np.int64)
    sd = np.array([strands[i] for i in order], dtype=np.bool_)
    nm = pa.array([names[i] for i in order], pa.string())
    by_end = np.argsort(en, kind="stable").astype(np.int64)
    prefix_max = np.maximum.accumulate(en) if len(en) else en
    # Index of the gene that attains the running maximum end (the one that may cover a position).
    prefix_arg = np.zeros(len(en), dtype=np.int64)
    best = -1
    for i in range(len(en)):
        if best < 0 or en[i] >= en[best]:
            best = i
        prefix_arg[i] = best
    return Genes(st, en, sd, nm, by_end, en[by_end], prefix_max, prefix_arg)


@lru_cache(maxsize=2)
def load_mane(path: str | None) -> pa.Array:
    if path is None:
        return pa.array([], pa.string())
    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types={"transcript_id": pa.string()}),
    )
    return table.column("transcript_id").combine_chunks()


CONTEXT_TERMS = pa.array([cq.GENE_BODY, cq.UPSTREAM, cq.DOWNSTREAM, cq.INTERGENIC])


def gene_context(
    positions: np.ndarray[Any, np.dtype[np.int64]], genes: Genes, distance: int
) -> tuple[
    np.ndarray[Any, np.dtype[np.int64]],
    np.ndarray[Any, np.dtype[np.int64]],
    np.ndarray[Any, np.dtype[np.int64]],
]:
    """Per position: context term code (index into CONTEXT_TERMS), nearest gene index and
    distance (-1 when the contig has no genes). Upstream/downstream within ``distance``."""
    m = len(positions)
    if len(genes.starts) == 0:
        none = np.full(m, -1, dtype=np.int64)
        return np.full(m, 3, dtype=np.int64), none, none.copy()
    big = np.int64(1) << 62
    # Covering gene: among genes starting at or before pos, the one reaching furthest.
    k = np.searchsorted(genes.starts, positions, side="right") - 1
    kc = np.clip(k, 0, None)
    covered = (k >= 0) & (genes.prefix_max_end[kc] >= positions)
    cover_gene = genes.prefix_arg[kc]
    # Nearest gene ending before pos, and nearest gene starting after pos.
    e = np.searchsorted(genes.ends_sorted, positions, side="left") - 1
    left_gene = genes.by_end[np.clip(e, 0, None)]
    left_dist = np.where(e >= 0, positions - genes.ends[left_gene], big)
    s = np.searchsorted(genes.starts, positions, side="right")
    right_gene = np.clip(s, 0, len(genes.starts) - 1)
    right_dist = np.where(s < len(genes.starts), genes.starts[right_gene] - positions, big)
    use_right = right_dist < left_dist
    chosen = np.where(covered, cover_gene, np.where(use_right, right_gene, left_gene))
    dist = np.where(covered, 0, np.minimum(left_dist, right_dist))
    plus = genes.strands[chosen]
    # A gene to the right of the variant on the + strand means the variant is upstream of it;
    # mirrored on the - strand.
    upstream = np.where(use_right, plus, ~plus)
    code = np.where(covered, 0, np.where(dist <= distance, np.where(upstream, 1, 2), 3))
    return code.astype(np.int64), chosen.astype(np.int64), dist.astype(np.int64)
