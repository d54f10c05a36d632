"""The result Parquet's encodings: what the browser reads back often is dictionary-encoded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from gas_annotator.engine.outputs import DATA_PAGE_BYTES, parquet_writer

GENOTYPE = pa.struct([("gt", pa.string()), ("zygosity", pa.string()), ("depth", pa.int32()),
                      ("gq", pa.int32())])


def test_the_result_parquet_dictionary_encodes_alleles_and_every_genotype_field_not_ids(
    tmp_path: Path,
) -> None:
    n = 1000
    table = pa.table({
        "chrom": ["21"] * n, "pos": list(range(1, n + 1)),
        "id": [f"rs{i}" for i in range(n)], "ref": ["ACGT"[i % 4] for i in range(n)],
        "alt": ["TGCA"[i % 4] for i in range(n)],
        "genotypes": pa.array([[{"gt": "0/1", "zygosity": "het", "depth": 30, "gq": 99},
                                {"gt": "0/0", "zygosity": "hom_ref", "depth": 20, "gq": 50}]
                               for _ in range(n)], pa.list_(GENOTYPE)),
    })
    path = tmp_path / "rows.parquet"
    with parquet_writer(path, table.schema) as writer:
        writer.write_table(table)
    chunks = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {chunks.column(i).path_in_schema: set(chunks.column(i).encodings)
                 for i in range(chunks.num_columns)}
    dictionary = {path for path, used in encodings.items() if "RLE_DICTIONARY" in used}
    assert dictionary == {"chrom", "ref", "alt", "genotypes.list.element.gt",
                          "genotypes.list.element.zygosity", "genotypes.list.element.depth",
                          "genotypes.list.element.gq"}
    assert pq.read_table(path).equals(table)


def test_the_result_parquet_writes_small_data_pages_so_a_few_rows_read_little(
    tmp_path: Path,
) -> None:
    # One row group of 65,536 positions (512 KB as int64) and ids: with 1 MB pages each
    # column chunk is one page, decompressed whole to read any one row.
    n = 65_536
    table = pa.table({"pos": pa.array(range(n), pa.int64()), "id": [f"rs{i}" for i in range(n)]})
    path = tmp_path / "rows.parquet"
    with parquet_writer(path, table.schema) as writer:
        writer.write_table(table, row_group_size=n)
    for column in ("pos", "id"):
        sizes = data_page_sizes(path, column)
        assert len(sizes) >= 16, (column, len(sizes))
        # pyarrow closes a page after the batch that fills it: one batch (1,024 values) over.
        assert max(sizes) <= DATA_PAGE_BYTES + 1024 * 16, (column, max(sizes))
    assert pq.read_table(path).equals(table)


def data_page_sizes(path: Path, column: str) -> list[int]:
    """Uncompressed sizes of a column chunk's data pages, from the Parquet page headers
    (Thrift compact protocol; pyarrow does not expose pages)."""
    chunk = next(c for c in (pq.ParquetFile(path).metadata.row_group(0).column(i)
                             for i in range(2)) if c.path_in_schema == column)
    start = chunk.dictionary_page_offset or chunk.data_page_offset
    data = path.read_bytes()[start:start + chunk.total_compressed_size]
    sizes, at = [], 0
    while at < len(data):
        header, at = _thrift_struct(data, at)
        if header[1] in (0, 3):  # DATA_PAGE, DATA_PAGE_V2
            sizes.append(header[2])
        at += header[3]  # the page's compressed body
    return sizes


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def _thrift_value(data: bytes, at: int, kind: int) -> tuple[Any, int]:
    if kind in (1, 2):  # booleans: the value is the type
        return kind == 1, at
    if kind == 3:
        return data[at], at + 1
    if kind in (4, 5, 6):  # zigzag varints
        raw, at = _varint(data, at)
        return (raw >> 1) ^ -(raw & 1), at
    if kind == 7:
        return None, at + 8
    if kind == 8:
        length, at = _varint(data, at)
        return data[at:at + length], at + length
    if kind in (9, 10):  # list, set
        size, element = data[at] >> 4, data[at] & 0x0F
        at += 1
        if size == 15:
            size, at = _varint(data, at)
        items = []
        for _ in range(size):
            item, at = _thrift_value(data, at, element) if element not in (1, 2) else (
                data[at] == 1, at + 1)
            items.append(item)
        return items, at
    if kind == 12:
        return _thrift_struct(data, at)
    raise AssertionError(f"thrift type {kind} not expected in a page header")


def _thrift_struct(data: bytes, at: int) -> tuple[dict[int, Any], int]:
    fields: dict[int, Any] = {}
    field = 0
    while True:
        byte = data[at]
        at += 1
        if byte == 0:
            return fields, at
        delta, kind = byte >> 4, byte & 0x0F
        if delta:
            field += delta
        else:
            raw, at = _varint(data, at)
            field = (raw >> 1) ^ -(raw & 1)
        fields[field], at = _thrift_value(data, at, kind)
