"""Identical records get identical known-variant annotation.

`bcftools annotate -a known.vcf.gz` pairs each known record with one input record: of two
records with the same position and alleles (a file with every record twice, or a split
multiallelic next to the same allele on its own line) only the first gets the rsID, the
frequency and ClinVar. Known-variant fields depend only on (position, REF, ALT), so each copy
gets the first value any copy of its group got, and the ID annotate would have set (`+ID`:
the known ID only where the record had none).

Records of one input position are always in one chunk (validate cuts only between
positions), and norm treats identical records alike, so a chunk holds every copy.
Only records sharing their position with a neighbour are looked at (sorted input: copies are
adjacent by position), so the common case costs one comparison per record.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gas_annotator.engine.annotated import AnnotatedText, missing_dot
from gas_annotator.engine.arrowkit import scatter, whole

# Query column and INFO key of the known-variant fields, in the order annotate writes them.
_KNOWN_KEYS = (("known_id", "GAS_KNOWN_ID"), ("af", "GAS_AF"), ("clnsig", "GAS_CLNSIG"))


def share_known(text: AnnotatedText) -> AnnotatedText:
    """The annotated text with every copy of a record carrying the known-variant fields any
    copy got: in the query table (TSV/Parquet rows) and as an edit of the VCF line."""
    q = text.table
    pos = q.column("pos").to_numpy()
    if len(pos) < 2 or text.fixed is None or text.known_raw is None:
        return text
    same = pos[1:] == pos[:-1]
    shared = np.zeros(len(pos), dtype=np.bool_)
    shared[1:] |= same
    shared[:-1] |= same
    # The extra population-AF fields are copied like GAS_AF (annotate writes them after ours).
    known_keys = (*_KNOWN_KEYS, *text.af_keys.items())
    rows = _with_known_neighbour(pos, shared, text.known_raw, [key for _, key in known_keys])
    if len(rows) == 0:
        return text
    take = pa.array(rows)
    group = pa.table(
        {
            "row": rows,
            "pos": pa.array(pos[rows]),
            "ref": pc.take(q.column("ref"), take),
            "alt": pc.fill_null(pc.take(q.column("alt"), take), ""),
            # As written: a copy that got "GAS_AF=." gives "." to the others.
            **{name: pc.take(text.known_raw.column(key), take) for name, key in known_keys},
        }
    )
    firsts = group.group_by(["pos", "ref", "alt"], use_threads=False).aggregate(
        [(name, "first") for name, _key in known_keys]
    )
    joined = group.join(firsts, ["pos", "ref", "alt"], use_threads=False).sort_by("row")
    missing = {
        name: pc.and_(pc.is_null(joined.column(name)), pc.is_valid(joined.column(f"{name}_first")))
        for name, _key in known_keys
    }
    needs = np.zeros(len(rows), dtype=np.bool_)
    for mask in missing.values():
        needs |= mask.to_numpy(zero_copy_only=False)
    if not needs.any():
        return text
    fix = joined.filter(pa.array(needs))
    fixed_rows = fix.column("row").to_numpy()
    n = len(pos)
    filled: dict[str, pa.Array] = {}
    # Fields no copy gains keep their column as it is (the patch would change nothing).
    gains: set[str] = set()
    extra_parts = []
    for name, key in known_keys:
        gained = pc.filter(missing[name], pa.array(needs))
        filled[name] = missing_dot(pc.coalesce(fix.column(name), fix.column(f"{name}_first")))
        if pc.any(gained).as_py():
            gains.add(name)
            value = pc.if_else(gained, fix.column(f"{name}_first"), pa.scalar(None, pa.string()))
            extra_parts.append(pc.binary_join_element_wise(f"{key}=", value, ""))
    extra = pc.binary_join_element_wise(*extra_parts, ";", null_handling="skip")

    def patched(column: pa.Array | pa.ChunkedArray, values: pa.Array | pa.ChunkedArray) -> pa.Array:
        return whole(pc.coalesce(scatter(values, fixed_rows, n), column))

    old_id = pc.take(q.column("id"), pa.array(fixed_rows))
    new_id = pc.if_else(pc.is_null(old_id), filled["known_id"], pa.scalar(None, pa.string()))
    table = q
    for name in gains:
        values = filled[name]
        if name not in ("known_id", "clnsig"):  # af and the af_<name> columns are floats
            values = pc.cast(values, pa.float64())
        index = table.schema.get_field_index(name)
        table = table.set_column(index, name, patched(table.column(name), values))
    if pc.any(pc.is_valid(new_id)).as_py():
        index = table.schema.get_field_index("id")
        table = table.set_column(index, "id", patched(table.column("id"), new_id))

    text.table = table
    text.extra_info = scatter(extra, fixed_rows, n)
    # The VCF line: a record whose ID changes is edited from its ID column on.
    _edit_from_id(text, fixed_rows[pc.is_valid(new_id).to_numpy(zero_copy_only=False)])
    return text


def _edit_from_id(text: AnnotatedText, rows: np.ndarray[Any, np.dtype[np.int64]]) -> None:
    """Make the VCF edit of ``rows`` start at the ID column: the new ID and the columns up to
    INFO (as they were) go before the new INFO."""
    if len(rows) == 0 or text.fixed is None:
        return
    at = pa.array(rows)
    cols = [pc.take(text.fixed.column(f"f{i}"), at) for i in range(7)]
    id_start = (
        pc.binary_length(cols[0]).to_numpy().astype(np.int64)
        + pc.binary_length(cols[1]).to_numpy().astype(np.int64)
        + 2
    )
    ids = pc.take(text.table.column("id"), at)
    middle = pc.binary_join_element_wise(ids, cols[3], cols[4], cols[5], cols[6], "", "\t")
    text.prefix = scatter(middle, rows, len(text.info))
    edit_start = text.edit_start.copy()
    edit_len = text.edit_len.copy()
    end = edit_start[rows] + edit_len[rows]
    edit_start[rows] = id_start
    edit_len[rows] = end - id_start
    text.edit_start = edit_start
    text.edit_len = edit_len


def _with_known_neighbour(
    pos: np.ndarray[Any, np.dtype[np.int64]],
    shared: np.ndarray[Any, np.dtype[np.bool_]],
    known_raw: pa.Table,
    keys: list[str],
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """The records sharing their position where at least one record of that position got a
    known-variant field: at the other positions no copy has anything to give (on dense input
    most shared positions are distinct alleles, none of them known)."""
    has = np.zeros(len(pos), dtype=np.bool_)
    for key in keys:
        has |= pc.is_valid(known_raw.column(key)).to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(shared)
    givers = np.unique(pos[rows][has[rows]])
    return rows[np.isin(pos[rows], givers)]
