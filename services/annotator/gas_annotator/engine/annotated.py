"""Reading the last bcftools pass's VCF text: the fixed columns (pyarrow's CSV reader, in
C++) and the INFO fields our pass needs, without a separate `bcftools query`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from gas_annotator.engine.arrowkit import scatter, whole
from gas_annotator.engine.genotypes import listed, listed_genotypes, sample_names, scan_carriers

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
    samples: list[str] = field(default_factory=list)
    # Per record: carriers (and the listed genotypes); None for a sites-only file.
    genotypes: pa.Table | None = None
    # INFO key of each extra population-AF column (af_<name> -> GAS_AF_<NAME>).
    af_keys: dict[str, str] = field(default_factory=dict)


def _empty_query(af_keys: dict[str, str]) -> pa.Table:
    types = {n: pa.string() for n in QUERY_COLUMNS} | {"pos": pa.int64(), "af": pa.float64()}
    types |= dict.fromkeys(af_keys, pa.float64())
    return pa.table({n: pa.array([], t) for n, t in types.items()})


# Our extra population-AF keys share this prefix (population_af.info_key).
_AF_PREFIX = "GAS_AF_"


def info_values(info: pa.Array, keys: list[str]) -> dict[str, pa.Array]:
    """Per record, the value of each INFO key as written (null when absent; the first when a
    key is repeated): one split on ';' for all keys, 4-5x cheaper than a regex per key.

    A bundle with every population AF field adds a dozen GAS_AF_<NAME> keys: one prefix test
    over every piece finds theirs, and each such key is then looked for among those only.
    """
    n = len(info)
    fields = pc.split_pattern(info, ";")
    flat = whole(pc.list_flatten(fields))
    parent = pc.list_parent_indices(fields).to_numpy()
    out: dict[str, pa.Array] = {}

    def gather(pieces: pa.Array, owners_of: np.ndarray[Any, np.dtype[Any]],
               idx: np.ndarray[Any, np.dtype[Any]], key: str) -> pa.Array:  # fmt: skip
        owners = owners_of[idx]
        first = np.r_[True, owners[1:] != owners[:-1]] if len(idx) else np.zeros(0, np.bool_)
        values = pc.utf8_slice_codeunits(pc.take(pieces, pa.array(idx[first])), len(key) + 1)
        return scatter(values, owners[first], n)

    grouped = [k for k in keys if k.startswith(_AF_PREFIX)]
    for key in keys:
        if key not in grouped:
            idx = np.flatnonzero(pc.starts_with(flat, f"{key}=").to_numpy(zero_copy_only=False))
            out[key] = gather(flat, parent, idx, key)
    if grouped:
        sub = np.flatnonzero(pc.starts_with(flat, _AF_PREFIX).to_numpy(zero_copy_only=False))
        pieces = whole(pc.take(flat, pa.array(sub)))
        for key in grouped:
            idx = np.flatnonzero(pc.starts_with(pieces, f"{key}=").to_numpy(zero_copy_only=False))
            out[key] = gather(pieces, parent[sub], idx, key)
    return out


def missing_dot(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """'.' (a missing value) as null."""
    return whole(pc.if_else(pc.equal(values, "."), pa.scalar(None, pa.string()), values))


def read_annotated(path: Path, af_keys: dict[str, str] | None = None) -> AnnotatedText:
    """Parse the fixed columns of a VCF text file in C++ (pyarrow) and pull the INFO fields we
    need out of INFO: what ``bcftools query`` printed, without a separate pass.

    ``af_keys``: the extra population-AF columns to read (column -> INFO key). Sample columns
    are read only for files with at most genotypes.MAX_LISTED_SAMPLES samples; larger files
    get their carrier count from a scan of the text (genotypes.scan_carriers).
    """
    af_keys = dict(af_keys or {})
    with path.open("rb") as handle:
        header = bytearray()
        for line in iter(handle.readline, b""):
            header += line
            if line.startswith(b"#CHROM"):
                break
        offset = len(header)
        samples = sample_names(bytes(header))
        if offset >= path.stat().st_size:
            none = np.zeros(0, dtype=np.int64)
            return AnnotatedText(
                path, bytes(header), offset, _empty_query(af_keys), pa.array([], pa.string()),
                none, none, samples=samples, af_keys=af_keys,
            )  # fmt: skip
        handle.seek(offset)
        columns = list(_FIXED)
        if samples:
            columns.append("f8")
        if listed(len(samples)):
            columns += [f"f{9 + i}" for i in range(len(samples))]
        raw = pacsv.read_csv(
            handle,
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=columns,
                column_types=dict.fromkeys(columns, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        ).combine_chunks()
    lengths = [pc.binary_length(raw.column(c)).to_numpy().astype(np.int64) for c in _FIXED]
    info_start = np.sum(lengths[:7], axis=0) + 7
    info = whole(raw.column("f7"))
    dot = pa.scalar(".", pa.string())
    values = info_values(info, [*_INFO_KEYS.values(), *af_keys.values()])

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
            **{name: _frequency(values[key]) for name, key in af_keys.items()},
        }
    )  # fmt: skip
    genotypes = None
    if samples:
        fmt = whole(raw.column("f8"))
        if listed(len(samples)):
            genotypes = listed_genotypes(
                fmt, [whole(raw.column(f"f{9 + i}")) for i in range(len(samples))]
            )
        else:
            has_gt = pc.or_(pc.equal(fmt, "GT"), pc.starts_with(fmt, "GT:"))
            carriers = scan_carriers(
                path, offset, info_start + lengths[7] + 1,
                has_gt.to_numpy(zero_copy_only=False),
            )  # fmt: skip
            genotypes = pa.table({"carriers": pa.array(carriers, pa.int32())})
    return AnnotatedText(
        path,
        bytes(header),
        offset,
        table,
        info,
        info_start,
        lengths[7],
        fixed=raw.select([f"f{i}" for i in range(7)]),
        known_raw=pa.table(
            {
                key: values[key]
                for key in ("GAS_KNOWN_ID", "GAS_AF", "GAS_CLNSIG", *af_keys.values())
            }
        ),
        samples=samples,
        genotypes=genotypes,
        af_keys=af_keys,
    )


def _frequency(values: pa.Array) -> pa.Array:
    """An AF value as annotate wrote it (a float htslib parsed, one per ALT after the split, or
    '.') as float64."""
    return whole(pc.cast(missing_dot(values), pa.float64()))
