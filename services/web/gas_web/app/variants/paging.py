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

from dataclasses import dataclass
from typing import Any

import duckdb

from gas_web.app.variants.info import ResultInfo
from gas_web.app.variants.query import IMPACT_RANK, Compiled, VariantQuery

# Row-number ranges for the file order: the engine's Parquet row group.
BUCKET_ROWS = 65_536
_CATEGORICAL = {"gene": "gene", "consequence": "consequence", "clinvar": "clinvar",
                "impact": f"({IMPACT_RANK})"}


@dataclass(frozen=True)
class _Bucket:
    value: Any
    rows: int


def page_row_numbers(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, query: VariantQuery,
    info: ResultInfo, *, offset: int, limit: int, total: int,
) -> list[int]:
    """Row numbers of the page's rows, in the page's order."""
    if offset >= total:
        return []
    key = "file_row_number" if query.sort == "position" else _CATEGORICAL.get(query.sort)
    if key is None:
        return _top_n(cursor, source, compiled, query, info, offset=offset, limit=limit,
                      total=total)
    expression = f"file_row_number // {BUCKET_ROWS}" if key == "file_row_number" else key
    # SQL only from our fragments; user values are the compiled parameters.
    counts = cursor.execute(
        f"SELECT {expression} AS bucket, count(*) FROM {source}{compiled.where} "  # noqa: S608
        "GROUP BY bucket", compiled.params,
    ).fetchall()
    buckets = _ordered([_Bucket(value, int(n)) for value, n in counts], query.descending)
    found: list[int] = []
    start = 0
    for bucket in buckets:
        end = start + bucket.rows
        if end > offset and len(found) < limit:
            skip = max(0, offset - start)
            take = min(limit - len(found), bucket.rows - skip)
            found += _in_bucket(cursor, source, compiled, key, bucket, skip=skip, take=take,
                                descending=query.descending and key == "file_row_number")
        start = end
        if len(found) >= limit:
            break
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
    bucket: _Bucket, *, skip: int, take: int, descending: bool,
) -> list[int]:
    if key == "file_row_number":
        # A row-number range: Parquet row groups outside it are skipped.
        condition, params = "file_row_number BETWEEN ? AND ?", [
            bucket.value * BUCKET_ROWS, (bucket.value + 1) * BUCKET_ROWS - 1]
    elif bucket.value is None:
        condition, params = f"{key} IS NULL", []
    else:
        condition, params = f"{key} = ?", [bucket.value]
    where = f"{compiled.where} AND {condition}" if compiled.where else f" WHERE {condition}"
    # Past the bucket's middle, read from its end (a smaller top-N), then flip.
    reverse = skip > bucket.rows // 2
    if reverse:
        skip = bucket.rows - skip - take
    ascending = descending == reverse
    rows = cursor.execute(
        f"SELECT file_row_number FROM {source}{where} "  # noqa: S608
        f"ORDER BY file_row_number {'ASC' if ascending else 'DESC'} LIMIT ? OFFSET ?",
        [*compiled.params, *params, take, skip],
    ).fetchall()
    numbers = [row[0] for row in rows]
    return numbers[::-1] if reverse else numbers


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
