"""Sorted row orders: a job's row numbers in a sort key's order, made once per job, key and
direction, so a page of a key sort (gene, consequence, ClinVar, impact, AF) needs no sort and
no top-N when it is asked for.

An order is every row number of the result, sorted exactly as `VariantQuery.order_by` sorts
(the key ascending or descending, NULLs last, then file order), as raw int32 (4 bytes a row:
16 MB at 4M rows) next to the cached result. A page is then:
- one scan of the filter's columns for the row numbers it keeps (marked in a bit per row);
- the order read from its start, a slice at a time, keeping the marked rows, until the page's
  last row (a deep page reads the whole order: ~10 ms at 4M rows).
The filter's row count comes with the scan. Making an order costs one scan of the key and a
stable sort of the rows by the key's rank (~1 s at 4M rows), once: the first page of that sort
on that job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gas_web.app.variants.query import Compiled

# Rows read at a time: of the order while a page is found, of a scan while marking its rows.
SLICE_ROWS = 65_536


def write_order(cursor: duckdb.DuckDBPyConnection, source: str, key: str, *, descending: bool,
                rows: int, out: Path) -> None:
    """Write the row numbers of `source` (`rows` of them) in the order of `key` to `out`.

    DuckDB orders the key's distinct values (so values order exactly as its ORDER BY orders
    them); each row gets its value's rank (NULL: after every value), and a stable sort of the
    rows by rank keeps file order among equal values."""
    direction = "DESC" if descending else "ASC"
    values = cursor.sql(
        f"SELECT DISTINCT {key} AS k FROM {source} WHERE ({key}) IS NOT NULL "  # noqa: S608
        f"ORDER BY k {direction}").to_arrow_table().column(0)
    rank_type = np.uint16 if len(values) < np.iinfo(np.uint16).max else np.int32
    ranks = np.full(rows, len(values), rank_type)
    scan = cursor.sql(f"SELECT file_row_number, {key} FROM {source}")  # noqa: S608
    for batch in scan.to_arrow_reader(SLICE_ROWS):
        numbers = batch.column(0).to_numpy()
        ranked = pc.fill_null(pc.index_in(batch.column(1), value_set=values), len(values))
        ranks[numbers] = ranked.to_numpy().astype(rank_type)
    # Stable: equal ranks keep file order (numpy sorts 16-bit keys by radix).
    np.argsort(ranks, kind="stable").astype(np.int32).tofile(out)


def page_in_order(cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled,
                  order: Path, *, rows: int, offset: int, limit: int) -> tuple[list[int], int]:
    """The row numbers of the page at `offset` of the filtered rows taken in `order`, and the
    filtered rows' count."""
    kept, total = _kept_rows(cursor, source, compiled, rows)
    found: list[int] = []
    if offset >= total:
        return found, total
    seen = 0  # kept rows before this slice of the order
    with order.open("rb") as handle:
        while len(found) < limit:
            numbers = np.fromfile(handle, np.int32, SLICE_ROWS)
            if not len(numbers):
                break
            hits = numbers if kept is None else numbers[kept[numbers]]
            if seen + len(hits) > offset:
                start = max(0, offset - seen)
                found += hits[start : start + limit - len(found)].tolist()
            seen += len(hits)
    return found, total


def _kept_rows(cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled,
               rows: int) -> tuple[np.ndarray[Any, np.dtype[np.bool_]] | None, int]:
    """Which rows the filter keeps (None: all) and how many."""
    if not compiled.where:
        return None, rows
    kept = np.zeros(rows, bool)
    total = 0
    scan = cursor.sql(f"SELECT file_row_number FROM {source}{compiled.where}",  # noqa: S608
                      params=compiled.params)
    for batch in scan.to_arrow_reader(SLICE_ROWS):
        numbers = batch.column(0)
        kept[_as_numpy(numbers)] = True
        total += len(numbers)
    return kept, total


def _as_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray[Any, Any]:
    return np.asarray(array.to_numpy(zero_copy_only=False), np.int64)
