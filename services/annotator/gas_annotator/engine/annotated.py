"""Reading the last bcftools pass's VCF text: the fixed columns (pyarrow's CSV reader, in
C++) and the INFO fields our pass needs, without a separate `bcftools query`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gas_annotator.engine.arrowkit import scatter, whole

# What our pass reads per record (from the annotated VCF text, see read_annotated).
QUERY_COLUMNS = ("chrom", "pos", "ref", "alt", "id", "bcsq", "known_id", "clnsig", "af")


# INFO fields our pass reads from the annotated VCF text (query column -> INFO key).
_INFO_KEYS = {"bcsq": "BCSQ", "known_id": "GAS_KNOWN_ID", "clnsig": "GAS_CLNSIG", "af": "GAS_AF"}


_FIXED = [f"f{i}" for i in range(8)]  # CHROM .. INFO; sample columns are never materialised


@dataclass
class AnnotatedText:
    """The last bcftools pass's VCF text: header bytes, where the body starts, the query columns
    our pass needs and, per record, where its INFO column sits inside the line.

    The VCF edit replaces, per record, the span ``[edit_start, edit_start + edit_len)`` of its
    line: the INFO column, or from the ID column on when the ID changes (duplicates.py).
    """

    path: Path
    header: bytes
    body_offset: int
    table: pa.Table  # QUERY_COLUMNS
    info: pa.Array
    edit_start: np.ndarray[Any, np.dtype[np.int64]]  # offset of the replaced span in the line
    edit_len: np.ndarray[Any, np.dtype[np.int64]]
    fixed: pa.Table | None = None  # the text of CHROM .. FILTER (f0 .. f6)
    # GAS_KNOWN_ID, GAS_AF, GAS_CLNSIG as written ('.' kept; null where absent).
    known_raw: pa.Table | None = None
    # Per record, null for most: known-variant INFO fields to add, and the text that goes
    # before the new INFO when the span starts at the ID (duplicates.py).
    extra_info: pa.Array | None = None
    prefix: pa.Array | None = None


def _empty_query() -> pa.Table:
    types = {n: pa.string() for n in QUERY_COLUMNS} | {"pos": pa.int64(), "af": pa.float64()}
    return pa.table({n: pa.array([], t) for n, t in types.items()})


def info_values(info: pa.Array, keys: list[str]) -> dict[str, pa.Array]:
    """Per record, the value of each INFO key as written (null when absent; the first when a
    key is repeated): one split on ';' for all keys, 4-5x cheaper than a regex per key."""
    n = len(info)
    fields = pc.split_pattern(info, ";")
    flat = whole(pc.list_flatten(fields))
    parent = pc.list_parent_indices(fields).to_numpy()
    out: dict[str, pa.Array] = {}
    for key in keys:
        idx = np.flatnonzero(pc.starts_with(flat, f"{key}=").to_numpy(zero_copy_only=False))
        owners = parent[idx]
        first = np.r_[True, owners[1:] != owners[:-1]] if len(idx) else np.zeros(0, np.bool_)
        values = pc.utf8_slice_codeunits(pc.take(flat, pa.array(idx[first])), len(key) + 1)
        out[key] = scatter(values, owners[first], n)
    return out


def missing_dot(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """'.' (a missing value) as null."""
    return whole(pc.if_else(pc.equal(values, "."), pa.scalar(None, pa.string()), values))


def read_annotated(path: Path) -> AnnotatedText:
    """Parse the fixed columns of a VCF text file in C++ (pyarrow) and pull the INFO fields we
    need out of INFO: what ``bcftools query`` printed, without a separate pass."""
    with path.open("rb") as handle:
        header = bytearray()
        for line in iter(handle.readline, b""):
            header += line
            if line.startswith(b"#CHROM"):
                break
        offset = len(header)
        if offset >= path.stat().st_size:
            none = np.zeros(0, dtype=np.int64)
            return AnnotatedText(
                path, bytes(header), offset, _empty_query(), pa.array([], pa.string()), none, none
            )
        handle.seek(offset)
        raw = pacsv.read_csv(
            handle,
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=_FIXED,
                column_types=dict.fromkeys(_FIXED, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        ).combine_chunks()
    lengths = [pc.binary_length(raw.column(c)).to_numpy().astype(np.int64) for c in _FIXED]
    info_start = np.sum(lengths[:7], axis=0) + 7
    info = whole(raw.column("f7"))
    dot = pa.scalar(".", pa.string())
    values = info_values(info, list(_INFO_KEYS.values()))

    def value(column: str) -> pa.Array:
        return missing_dot(values[_INFO_KEYS[column]])

    ident = whole(raw.column("f2"))
    table = pa.table(
        {
            "chrom": raw.column("f0"),
            "pos": pc.cast(raw.column("f1"), pa.int64()),
            "ref": raw.column("f3"),
            "alt": pc.if_else(pc.equal(raw.column("f4"), dot), pa.scalar(None, pa.string()),
                              raw.column("f4")),
            "id": pc.if_else(pc.equal(ident, dot), pa.scalar(None, pa.string()), ident),
            "bcsq": value("bcsq"),
            "known_id": value("known_id"),
            "clnsig": value("clnsig"),
            "af": pc.cast(value("af"), pa.float64()),
        }
    )  # fmt: skip
    return AnnotatedText(
        path,
        bytes(header),
        offset,
        table,
        info,
        info_start,
        lengths[7],
        fixed=raw.drop_columns(["f7"]),
        known_raw=pa.table({key: values[key] for key in ("GAS_KNOWN_ID", "GAS_AF", "GAS_CLNSIG")}),
    )
