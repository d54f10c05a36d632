"""Which rows a page shows: their row numbers, found without sorting the whole filtered set.

A page at offset k of a sorted view would otherwise be a top-N of k rows (2M at the middle of
a 4M-row transcript view). Instead:
- file order (sort by position): rows are counted per row-number range (the Parquet row
  group), and the page is read from the range holding its first row on; row groups before it
  are skipped by their row numbers;
- any other sort (gene, consequence, ClinVar, impact, AF): the rows per sort-key value are
  counted and the page's values found from their running counts, all in one SQL statement
  (so values order exactly as ORDER BY orders them); the page is then read from those values'
  rows only. When the page starts deep inside one value's rows (the MODIFIER rows of a gene,
  the rows without AF), that value's rows are counted per row-number range too, and its part
  of the page is read from the range holding the page's first row.
Every read is then a top-N of at most a row group plus a page. Every order here is exactly
`VariantQuery.order_by`'s: the key (NULLs last, ascending or descending), then file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb

from gas_web.app.variants.info import ResultInfo
from gas_web.app.variants.query import Compiled, VariantQuery

# Row-number ranges: the engine's Parquet row group.
BUCKET_ROWS = 65_536
# A page this near the start (of the view, or of one key value's rows) is a plain top-N: one
# scan with a small heap (for a key sort, led by a scan that counts a new filter's rows).
TOP_N_ROWS = 20_000
# Sorts on a key (VariantQuery.sort_expression), not on file order.
_KEYED = {"gene", "consequence", "clinvar", "impact", "allele_frequency"}


@dataclass(frozen=True)
class _Value:
    """One sort-key value on the page: its rows in the view, and how many come before it."""

    value: Any
    rows: int
    before: int
    ranges: list[tuple[int, int]]  # (row-number range, rows of this value in it)


def page_row_numbers(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, query: VariantQuery,
    info: ResultInfo, *, offset: int, limit: int, total: int | None,
) -> tuple[list[int], int]:
    """Row numbers of the page's rows, in the page's order, and the filtered set's row count.
    An unknown `total` (None) is counted by the scan that finds a deep page (its counts add
    up to it), not by a scan of its own."""
    keyed = query.sort in _KEYED
    if offset + limit <= TOP_N_ROWS:
        if total is None and keyed:
            return _counted_top_n(cursor, source, compiled, query, info, offset=offset,
                                  limit=limit)
        total = count_rows(cursor, source, compiled) if total is None else total
        if offset >= total:
            return [], total
        return _top_n(cursor, source, compiled, query, info, offset=offset, limit=limit,
                      total=total), total
    if not keyed:
        return _file_order(cursor, source, compiled, offset=offset, limit=limit,
                           descending=query.descending)
    found, counted = _by_key(cursor, source, compiled, query.sort_expression(info),
                             offset=offset, limit=limit, descending=query.descending)
    if counted is None:  # no value spans the page: past the end
        counted = count_rows(cursor, source, compiled) if total is None else total
    return found, counted


def count_rows(cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled) -> int:
    counted = cursor.execute(
        f"SELECT count(*) FROM {source}{compiled.where}", compiled.params).fetchone()  # noqa: S608
    return int(counted[0]) if counted else 0


def _where(compiled: Compiled, *conditions: str) -> str:
    parts = [compiled.where.removeprefix(" WHERE ")] if compiled.where else []
    return " WHERE " + " AND ".join([*(f"({p})" for p in parts), *conditions])


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
    return _read_from_bucket(cursor, source, compiled, [], counts, skip=offset, take=limit,
                             descending=descending), total


def _read_from_bucket(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled,
    condition: list[tuple[str, list[Any]]], counts: list[tuple[int, int]], *, skip: int,
    take: int, descending: bool = False,
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
    bounds = ("file_row_number BETWEEN ? AND ?", [low * BUCKET_ROWS, (high + 1) * BUCKET_ROWS - 1])
    conditions = [*condition, bounds]
    rows_found = cursor.execute(
        f"SELECT file_row_number FROM {source}"  # noqa: S608
        f"{_where(compiled, *(c for c, _ in conditions))} "
        f"ORDER BY file_row_number {'DESC' if descending else 'ASC'} LIMIT ? OFFSET ?",
        [*compiled.params, *(p for _, ps in conditions for p in ps), take, skip - ahead],
    ).fetchall()
    return [row[0] for row in rows_found]


def _by_key(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, key: str, *,
    offset: int, limit: int, descending: bool,
) -> tuple[list[int], int | None]:
    """The page's row numbers, and the rows in all (None when no value spans the page)."""
    direction = "DESC" if descending else "ASC"
    # One scan counts the rows per (value, row-number range); the values the page spans are
    # found from their running counts in the sort's own order, each with its ranges' counts.
    counted = cursor.execute(
        f"WITH counted AS (SELECT {key} AS value, file_row_number // {BUCKET_ROWS} AS bucket, "  # noqa: S608
        f"count(*) AS n FROM {source}{compiled.where} GROUP BY ALL), "
        "per_value AS (SELECT value, sum(n) AS n, list([bucket, n]) AS ranges FROM counted "
        "GROUP BY value), "
        "running AS (SELECT value, n, ranges, sum(n) OVER (ORDER BY value "
        f"{direction} NULLS LAST ROWS UNBOUNDED PRECEDING) - n AS ahead, sum(n) OVER () AS total "
        "FROM per_value) "
        "SELECT value, n, ahead, ranges, total FROM running WHERE ahead < ? AND ahead + n > ? "
        "ORDER BY ahead", [*compiled.params, offset + limit, offset],
    ).fetchall()
    if not counted:
        return [], None
    total = int(counted[0][4])
    spanned = [_Value(value, int(rows), int(before), [(int(b), int(n)) for b, n in ranges])
               for value, rows, before, ranges, _ in counted]
    first = spanned[0]
    found: list[int] = []
    skip = offset - first.before
    if skip + limit > TOP_N_ROWS:
        # Deep inside the first value's rows: read its part from the range holding its row
        # `skip` on.
        found = _read_from_bucket(cursor, source, compiled, [_equal(key, first.value)],
                                  first.ranges, skip=skip, take=min(limit, first.rows - skip))
        spanned, skip = spanned[1:], 0
    if len(found) < limit and spanned:
        # The rest (or all) of the page: a top-N over the spanned values' rows only.
        within = _between(key, spanned[0].value, spanned[-1].value, descending)
        rows = cursor.execute(
            f"SELECT file_row_number FROM {source}{_where(compiled, within[0])} "  # noqa: S608
            f"ORDER BY {key} {direction} NULLS LAST, file_row_number LIMIT ? OFFSET ?",
            [*compiled.params, *within[1], limit - len(found), skip],
        ).fetchall()
        found += [row[0] for row in rows]
    return found, total


def _equal(key: str, value: Any) -> tuple[str, list[Any]]:
    return (f"{key} IS NULL", []) if value is None else (f"{key} = ?", [value])


def _between(key: str, first: Any, last: Any, descending: bool) -> tuple[str, list[Any]]:
    """Rows whose key lies from `first` to `last` in the sort's order (NULL sorts last)."""
    if first is None:
        return f"{key} IS NULL", []
    if last is None:
        bound = f"{key} <= ?" if descending else f"{key} >= ?"
        return f"({bound} OR {key} IS NULL)", [first]
    low, high = (last, first) if descending else (first, last)
    return f"{key} BETWEEN ? AND ?", [low, high]


def _counted_top_n(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled, query: VariantQuery,
    info: ResultInfo, *, offset: int, limit: int,
) -> tuple[list[int], int]:
    """A page near the start of a key sort (AF, gene, ...) and the set's row count, from two
    cheap scans instead of a count and a sort: the first counts the rows and finds the key's
    (offset + limit)-th value in the sort's direction (max/min with n: a heap of values
    only); the second is the top-N over the rows whose key reaches that value, whose row
    groups are skipped by their key statistics when they hold none. (A file-order top-N
    needs no such help: its scan skips row groups by row number.)"""
    key, take = query.sort_expression(info), offset + limit
    found = cursor.execute(
        f"SELECT count(*), {'max' if query.descending else 'min'}({key}, ?) "  # noqa: S608
        f"FROM {source}{compiled.where}", [take, *compiled.params],
    ).fetchone()
    total, values = (int(found[0]), found[1] or []) if found else (0, [])
    if offset >= total:
        return [], total
    if len(values) < take:  # the page reaches the rows without a value (sorted last)
        return _top_n(cursor, source, compiled, query, info, offset=offset, limit=limit,
                      total=total), total
    reached = f"{key} >= ?" if query.descending else f"{key} <= ?"
    rows = cursor.execute(
        f"SELECT file_row_number FROM {source}{_where(compiled, reached)}"  # noqa: S608
        f"{query.order_by(info)} LIMIT ? OFFSET ?",
        [*compiled.params, values[-1], limit, offset],
    ).fetchall()
    return [row[0] for row in rows], total


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
