"""The chunk's TSV rows: every value verbatim, whichever of the two writers writes them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from gas_annotator.engine.rows import TSV_SCHEMA, write_rows


def _rows(ids: list[str | None], gene: list[str | None] | None = None) -> pa.Table:
    """TSV_SCHEMA rows with nulls, floats, booleans and negative ints, in two record batches."""
    n = len(ids)
    columns: dict[str, pa.Array] = {}
    for index, field in enumerate(TSV_SCHEMA):
        if field.name == "id":
            values: list[object] = list(ids)
        elif field.name == "gene" and gene is not None:
            values = list(gene)
        elif pa.types.is_string(field.type):
            values = [None if i % 3 == 0 else f"{field.name}{i},x;y=z'w\\b" for i in range(n)]
        elif pa.types.is_boolean(field.type):
            values = [None if i % 4 == 0 else i % 2 == 0 for i in range(n)]
        elif pa.types.is_floating(field.type):
            values = [[None, 0.1, 1e-7, 3.0, 0.000123, 1.0 / 3][(i + index) % 6] for i in range(n)]
        else:
            values = [None if i % 5 == 0 else (i - 2) * 1000 + index for i in range(n)]
        columns[field.name] = pa.array(values, field.type)
    table = pa.table(columns, schema=TSV_SCHEMA)
    return pa.Table.from_batches(table.to_batches(max_chunksize=max(n // 2, 1)))


def _expected(rows: pa.Table) -> bytes:
    def text(value: object) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return {0.1: "0.1", 1e-7: "1e-7", 3.0: "3", 0.000123: "0.000123",
                    1.0 / 3: "0.3333333333333333"}[value]
        return str(value)

    return "".join("\t".join(text(v) for v in row.values()) + "\n"
                   for row in rows.to_pylist()).encode()


def _written(tmp_path: Path, rows: pa.Table) -> bytes:
    tsv, arrow = tmp_path / "rows.tsv", tmp_path / "rows.arrow"
    write_rows(rows, tsv, arrow)
    return tsv.read_bytes()


def test_tsv_rows_hold_every_value_as_text_with_nulls_empty(tmp_path: Path) -> None:
    rows = _rows([f"rs{i}" if i % 2 else None for i in range(12)])
    assert _written(tmp_path, rows) == _expected(rows)


def test_a_quote_in_any_string_is_written_verbatim_not_quoted(tmp_path: Path) -> None:
    # pyarrow's CSV writer quotes (or, with quoting off, refuses) a value holding '"': a quote
    # in the second batch of a column other than the first must still reach the TSV as is.
    ids = [f"rs{i}" for i in range(12)]
    gene = [None, *(f"G{i}" for i in range(1, 11)), 'say "hi"']
    for rows in (_rows(['rs1"x', *ids[1:]]), _rows(ids, gene)):
        assert _written(tmp_path, rows) == _expected(rows)
