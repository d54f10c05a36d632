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

from gas_annotator.engine.arrowkit import whole
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


def info_values(info: pa.Array, keys: list[str]) -> dict[str, pa.Array]:
    """Per record, the value of each INFO key as written (null when absent; the first when a
    key is repeated).

    All keys at once: one split on ';'; each piece is cut at its first '=' into name and value
    (zero-copy views, see _name_value_views); the names are matched against the wanted keys
    with one hash lookup; the first piece per (record, key) is kept; one take gathers every
    value. With a bundle's dozen GAS_AF_<NAME> keys, a prefix test + take + slice per key cost
    several times more.
    """
    n = len(info)
    wanted = list(dict.fromkeys(keys))
    fields = pc.split_pattern(info, ";")
    flat = whole(pc.list_flatten(fields))
    if len(flat) == 0:
        return {key: pa.nulls(n, pa.string()) for key in wanted}
    parent = pc.list_parent_indices(fields).to_numpy()
    views, named = _name_value_views(flat)
    every = np.arange(len(flat), dtype=np.int64) * 3
    # A piece without '=' (an INFO flag, '.') names no key.
    names = pc.take(views, pa.array(every, mask=~named))
    code = pc.index_in(names, value_set=pa.array(wanted, pa.string()))
    piece = np.flatnonzero(pc.is_valid(code).to_numpy(zero_copy_only=False))
    # Small ints: numpy's stable sort of 16-bit keys is a radix sort.
    key = pc.take(code, pa.array(piece)).to_numpy().astype(np.int16)
    # Key-major, pieces in record order within a key (a stable sort): a key repeated in a
    # record comes right after its first occurrence, and is dropped.
    order = np.argsort(key, kind="stable")
    piece, key = piece[order], key[order]
    owner = parent[piece]
    first = np.ones(len(piece), dtype=np.bool_)
    first[1:] = (key[1:] != key[:-1]) | (owner[1:] != owner[:-1])
    piece, slot = piece[first], key[first].astype(np.int64) * n + owner[first]
    # Slot key * n + record holds that record's value of that key (its piece's value view).
    at = np.full(len(wanted) * n, -1, dtype=np.int64)
    at[slot] = every[piece] + 2
    values = whole(pc.take(views, pa.array(at, mask=at < 0)))
    return {name: values.slice(i * n, n) for i, name in enumerate(wanted)}


def _name_value_views(pieces: pa.Array) -> tuple[pa.Array, np.ndarray[Any, np.dtype[np.bool_]]]:
    """Each string of ``pieces`` as three consecutive strings over the same data (no copy): the
    part before its first '=', the '=', the part after (the last two empty without one); and
    whether it has one."""
    k = len(pieces)
    bounds = np.frombuffer(pieces.buffers()[1], dtype=np.int32)[pieces.offset :][: k + 1]
    at = pc.find_substring(pieces, "=").to_numpy()
    named = at >= 0
    cut = np.where(named, bounds[:-1] + at, bounds[1:])
    offsets = np.empty(3 * k + 1, dtype=np.int32)
    offsets[0:-1:3] = bounds[:-1]
    offsets[1::3] = cut
    offsets[2::3] = np.minimum(cut + 1, bounds[1:])
    offsets[-1] = bounds[-1]
    views = pa.Array.from_buffers(
        pa.string(), 3 * k, [None, pa.py_buffer(offsets), pieces.buffers()[2]]
    )
    return views, named


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
