"""Which rows a page shows: their row numbers, found without sorting the whole filtered set.

A page at offset k of a sorted view would otherwise be a top-N of k rows (2M at the middle of
a 4M-row transcript view). Instead, when the sort key has few values (gene, consequence,
ClinVar, impact) or is the file order itself (bucketed by row-number ranges), the rows per key
value are counted (one GROUP BY), the page's values are found from the running counts, and
only those values' rows are read, in file order. AF (continuous) keeps a top-N, read from the
end past the middle. Every order here is exactly `VariantQuery.order_by`'s: the key (NULLs
last, ascending or descending), then file order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import duckdb

from gas_web.app.variants.info import ResultInfo
from gas_web.app.variants.query import IMPACT_RANK, Compiled, VariantQuery, af_column

# Row-number ranges for the file order: the engine's Parquet row group.
BUCKET_ROWS = 65_536
# A page this near the start is a plain top-N (one scan, a small heap).
TOP_N_ROWS = 20_000
# A deep page spanning more key values than this is a top-N too.
MAX_BUCKETS_READ = 4
_CATEGORICAL = {"gene": "gene", "consequence": "consequence", "clinvar": "clinvar",
                "impact": f"({IMPACT_RANK})"}


@dataclass(frozen=True)
class _Bucket:
    value: Any
    rows: int


def page_row_numbers(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, query: VariantQuery,
    info: ResultInfo, *, offset: int, limit: int, total: int,
    count: Callable[[Compiled], int],
) -> list[int]:
    """Row numbers of the page's rows, in the page's order. `count`: rows matching a
    compiled filter (the store's, which keeps recent counts for the next pages)."""
    if offset >= total:
        return []
    key = "file_row_number" if query.sort == "position" else _CATEGORICAL.get(query.sort)
    # Near the start a top-N is one scan with a small heap.
    if offset + limit > TOP_N_ROWS:
        if query.sort == "allele_frequency":
            return _by_frequency(cursor, source, compiled, query, info, offset=offset,
                                 limit=limit, total=total, count=count)
        if key is not None:
            return _bucketed(cursor, source, compiled, query, info, key=key, offset=offset,
                             limit=limit, total=total)
    return _top_n(cursor, source, compiled, query, info, offset=offset, limit=limit,
                  total=total)


def _bucketed(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, query: VariantQuery,
    info: ResultInfo, *, key: str, offset: int, limit: int, total: int,
) -> list[int]:
    expression = f"file_row_number // {BUCKET_ROWS}" if key == "file_row_number" else key
    # SQL only from our fragments; user values are the compiled parameters.
    counts = cursor.execute(
        f"SELECT {expression} AS bucket, count(*) FROM {source}{compiled.where} "  # noqa: S608
        "GROUP BY bucket", compiled.params,
    ).fetchall()
    buckets = _ordered([_Bucket(value, int(n)) for value, n in counts], query.descending)
    start = 0
    spanned: list[tuple[_Bucket, int]] = []  # the page's buckets, each with rows to skip
    for bucket in buckets:
        if start + bucket.rows > offset and start < offset + limit:
            spanned.append((bucket, max(0, offset - start)))
        start += bucket.rows
    if key == "file_row_number":
        # File order: the page is the rows from its first bucket on, in one read.
        first, skip = spanned[0]
        return _from_row(cursor, source, compiled, first.value, skip=skip, take=limit,
                         descending=query.descending)
    if len(spanned) > MAX_BUCKETS_READ:
        # Many tiny groups: one read per group would cost more than the top-N.
        return _top_n(cursor, source, compiled, query, info, offset=offset, limit=limit,
                      total=total)
    found: list[int] = []
    for bucket, skip in spanned:
        take = min(limit - len(found), bucket.rows - skip)
        found += _in_bucket(cursor, source, compiled, key, bucket, skip=skip, take=take)
    return found


def _ordered(buckets: list[_Bucket], descending: bool) -> list[_Bucket]:
    """Key order as DuckDB sorts it: values (byte order for text), NULL last either way."""
    values = sorted((b for b in buckets if b.value is not None), key=lambda b: _sort_key(b.value),
                    reverse=descending)
    return values + [b for b in buckets if b.value is None]


def _sort_key(value: Any) -> Any:
    return value.encode() if isinstance(value, str) else value


def _in_bucket(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, key: str,
    bucket: _Bucket, *, skip: int, take: int,
) -> list[int]:
    """Rows of one key value, in file order (the sort's tie-break)."""
    condition, params = (f"{key} IS NULL", []) if bucket.value is None else (
        f"{key} = ?", [bucket.value])
    where = f"{compiled.where} AND {condition}" if compiled.where else f" WHERE {condition}"
    # Past the group's middle, read from its end (a smaller top-N), then flip.
    reverse = skip > bucket.rows // 2
    if reverse:
        skip = bucket.rows - skip - take
    rows = cursor.execute(
        f"SELECT file_row_number FROM {source}{where} "  # noqa: S608
        f"ORDER BY file_row_number {'DESC' if reverse else 'ASC'} LIMIT ? OFFSET ?",
        [*compiled.params, *params, take, skip],
    ).fetchall()
    numbers = [row[0] for row in rows]
    return numbers[::-1] if reverse else numbers


def _from_row(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, bucket: int, *,
    skip: int, take: int, descending: bool,
) -> list[int]:
    """File order from a row-number bucket on (backwards for descending): row groups before
    it are skipped by their row numbers, and the read stops after the page."""
    condition, bound = ("file_row_number <= ?", (bucket + 1) * BUCKET_ROWS - 1) if (
        descending) else ("file_row_number >= ?", bucket * BUCKET_ROWS)
    where = f"{compiled.where} AND {condition}" if compiled.where else f" WHERE {condition}"
    rows = cursor.execute(
        f"SELECT file_row_number FROM {source}{where} "  # noqa: S608
        f"ORDER BY file_row_number {'DESC' if descending else 'ASC'} LIMIT ? OFFSET ?",
        [*compiled.params, bound, take, skip],
    ).fetchall()
    return [row[0] for row in rows]


def _by_frequency(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, query: VariantQuery,
    info: ResultInfo, *, offset: int, limit: int, total: int,
    count: Callable[[Compiled], int],
) -> list[int]:
    """AF order: the rows with a frequency (sorted; usually the few), then those without (in
    file order, like any other NULL group: most rows of a real result have no AF)."""
    af = af_column(query, info)
    known_where = f"{compiled.where} AND {af} IS NOT NULL" if compiled.where else (
        f" WHERE {af} IS NOT NULL")
    known_compiled = Compiled(known_where, compiled.params, compiled.sample_index)
    known = count(known_compiled)
    found: list[int] = []
    if offset < known:
        found = _top_n(cursor, source, known_compiled, query, info, offset=offset,
                       limit=min(limit, known - offset), total=known)
    if len(found) < limit and total > known:
        unknown = _Bucket(None, total - known)
        skip = max(0, offset - known)
        found += _in_bucket(cursor, source, compiled, af, unknown, skip=skip,
                            take=min(limit - len(found), unknown.rows - skip))
    return found


def _top_n(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, query: VariantQuery,
    info: ResultInfo, *, offset: int, limit: int, total: int,
) -> list[int]:
    # Past the middle, the page is read from the end in the opposite order: the top-N then
    # holds the rows after the page, not every row before it.
    reverse = total // 2 < offset < total
    skip, take = (max(0, total - offset - limit), min(limit, total - offset)) if reverse else (
        offset, limit)
    # Always ORDER BY: LIMIT over file_row_number alone without it hits a DuckDB binder bug
    # when every row group is pruned (2.0.1: "Failed to bind column reference file_index").
    rows = cursor.execute(
        f"SELECT file_row_number FROM {source}{compiled.where}"  # noqa: S608
        f"{query.order_by(info, reverse=reverse)} LIMIT ? OFFSET ?",
        [*compiled.params, take, skip],
    ).fetchall()
    numbers = [row[0] for row in rows]
    return numbers[::-1] if reverse else numbers
