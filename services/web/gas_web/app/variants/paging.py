"""Which rows a page in file order (sort by position) shows: their row numbers, found without
sorting the filtered set. (A key sort's page comes from the job's sorted row order instead:
gas_web.app.variants.orders.)

A page at offset k would otherwise be a top-N of k rows (2M at the middle of a 4M-row
transcript view). Instead rows are counted per row-number range (the Parquet row group), and
the page is read from the range holding its first row on; row groups before it are skipped by
their row numbers. Near the start (of the view, or from the end for the opposite direction),
the page is a plain top-N, whose scan skips row groups by row number too.
"""

from __future__ import annotations

import duckdb

from gas_web.app.variants.query import Compiled, VariantQuery

# Row-number ranges: the engine's Parquet row group.
BUCKET_ROWS = 65_536
# A page this near the start is a plain top-N: one scan with a small heap, led by a count.
TOP_N_ROWS = 20_000


def page_row_numbers(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, query: VariantQuery,
    *, offset: int, limit: int, total: int | None,
) -> tuple[list[int], int]:
    """Row numbers of the page's rows, in the page's order, and the filtered set's row count.
    An unknown `total` (None) is counted by the scan that finds a deep page, not by a scan of
    its own."""
    if offset + limit <= TOP_N_ROWS:
        total = count_rows(cursor, source, compiled) if total is None else total
        if offset >= total:
            return [], total
        return _top_n(cursor, source, compiled, query, offset=offset, limit=limit,
                      total=total), total
    return _file_order(cursor, source, compiled, offset=offset, limit=limit,
                       descending=query.descending)


def count_rows(cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled) -> int:
    counted = cursor.execute(
        f"SELECT count(*) FROM {source}{compiled.where}", compiled.params).fetchone()  # noqa: S608
    return int(counted[0]) if counted else 0


def _file_order(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, *, offset: int,
    limit: int, descending: bool,
) -> tuple[list[int], int]:
    """File order (backwards for descending) from the row-number range holding the page's
    first row on; and the rows in all."""
    counts = cursor.execute(
        f"SELECT file_row_number // {BUCKET_ROWS} AS bucket, count(*) "  # noqa: S608
        f"FROM {source}{compiled.where} GROUP BY bucket", compiled.params,
    ).fetchall()
    total = sum(int(n) for _, n in counts)
    if offset >= total:
        return [], total
    return _read_from_bucket(cursor, source, compiled, counts, skip=offset, take=limit,
                             descending=descending), total


def _read_from_bucket(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled,
    counts: list[tuple[int, int]], *, skip: int, take: int, descending: bool,
) -> list[int]:
    """`take` rows of a set after its first `skip`, in file order (backwards: descending),
    given the set's rows per row-number range: only the ranges holding those rows are read
    (the others' row groups skipped by their row numbers), so the top-N holds at most a
    range's rows plus the page."""
    ordered = sorted(counts, reverse=descending)
    ahead, first = 0, 0  # the rows in ranges before the first range read are skipped
    while first < len(ordered) - 1 and ahead + ordered[first][1] <= skip:
        ahead += ordered[first][1]
        first += 1
    seen, last = ahead + ordered[first][1], first
    while last < len(ordered) - 1 and seen < skip + take:
        last += 1
        seen += ordered[last][1]
    low, high = sorted((ordered[first][0], ordered[last][0]))
    rows_found = cursor.execute(
        f"SELECT file_row_number FROM {source}"  # noqa: S608
        f"{compiled.where_also('file_row_number BETWEEN ? AND ?')} "
        f"ORDER BY file_row_number {'DESC' if descending else 'ASC'} LIMIT ? OFFSET ?",
        [*compiled.params, low * BUCKET_ROWS, (high + 1) * BUCKET_ROWS - 1, take, skip - ahead],
    ).fetchall()
    return [row[0] for row in rows_found]


def _top_n(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, query: VariantQuery,
    *, offset: int, limit: int, total: int,
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
        f"{query.order_by(reverse=reverse)} LIMIT ? OFFSET ?",
        [*compiled.params, take, skip],
    ).fetchall()
    numbers = [row[0] for row in rows]
    return numbers[::-1] if reverse else numbers
