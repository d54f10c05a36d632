"""The output VCF lines: each chunk's annotated text with our INFO fields spliced into its INFO
column, sample columns untouched and never parsed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pysam.libcbgzf import BGZFile

from gas_annotator.engine.annotated import AnnotatedText
from gas_annotator.engine.arrowkit import nonempty, whole
from gas_annotator.engine.chunk_models import ChunkResult

OUR_INFO = (
    ("GAS_CSQ", "1", "String", "Most severe Sequence Ontology consequence of the variant over all "
     "transcripts; upstream_gene_variant/downstream_gene_variant (within the context distance) "
     "or intergenic_variant when it hits no transcript"),
    ("GAS_IMPACT", "1", "String", "Impact of GAS_CSQ: HIGH, MODERATE, LOW or MODIFIER"),
    ("GAS_GENE", "1", "String", "Gene of the most severe consequence (empty when no transcript "
     "is hit)"),
    ("GAS_NEAREST_GENE", "1", "String", "For variants hitting no transcript: the nearest gene"),
    ("GAS_DISTANCE", "1", "Integer", "For variants hitting no transcript: distance in bp to "
     "GAS_NEAREST_GENE"),
    ("GAS_MANE", "1", "String", "Consequence on the MANE Select transcript: "
     "transcript|consequence|protein_change"),
)  # fmt: skip


# Level 1: several times faster than the default 6 on VCF text, ~20 % larger output. htslib's
# mode string takes the level; pysam's type stub lists only the plain modes.
BGZF_MODE = "wb1"


def our_info(per_variant: pa.Table) -> pa.Array:
    """Per variant, our INFO fields as ``KEY=value;...`` (null when there is none to add)."""
    parts = [
        pc.binary_join_element_wise(
            f"{name}=",
            _info_escape(per_variant.column(name))
            if typ == "String"
            else pc.cast(per_variant.column(name), pa.string()),
            "",
        )
        for name, _num, typ, _desc in OUR_INFO
    ]
    if per_variant.num_rows == 0:
        return pa.array([], pa.string())
    joined = whole(pc.binary_join_element_wise(*parts, ";", null_handling="skip"))
    return nonempty(joined)


def _info_escape(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Percent-encode '=' and ';' in an INFO string value, as bcftools annotate does
    (``p.Lys315=`` is written ``p.Lys315%3D``)."""
    text = whole(pc.cast(values, pa.string()))
    for char, code in (("=", "%3D"), (";", "%3B")):
        # The check is cheaper than the rewrite, and only protein changes carry an '='.
        if pc.any(pc.match_substring(text, char)).as_py():
            text = whole(pc.replace_substring(text, char, code))
    return text


def write_splice(text: AnnotatedText, ours: pa.Array, out: Path) -> None:
    """Per record of the annotated text: the span of its line to replace and what goes there:
    the old INFO with our fields appended (ours alone when it was '.'), after the new ID and the
    columns up to INFO when duplicates.py changed the ID."""
    if text.extra_info is not None:
        # Known-variant fields annotate gave only one copy of a duplicate come before ours.
        both = pc.binary_join_element_wise(text.extra_info, ours, ";")
        ours = whole(pc.coalesce(both, text.extra_info, ours))
    if len(text.info):
        joined = pc.binary_join_element_wise(text.info, ours, ";")
        new_info = whole(pc.coalesce(pc.if_else(pc.equal(text.info, "."), ours, joined), text.info))
    else:
        new_info = pa.array([], pa.string())
    if text.prefix is not None:
        new_info = whole(
            pc.coalesce(pc.binary_join_element_wise(text.prefix, new_info, ""), new_info)
        )
    table = pa.table(
        {
            "edit_start": pa.array(text.edit_start, pa.int64()),
            "edit_len": pa.array(text.edit_len, pa.int64()),
            "text": new_info.cast(pa.large_binary()),
        }
    )
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _splice_block(
    block: bytes,
    info_start: np.ndarray[Any, np.dtype[np.int64]],
    info_len: np.ndarray[Any, np.dtype[np.int64]],
    new_info: pa.Array,
    first: int,
) -> tuple[int, bytes]:
    """Whole lines of VCF text with each record's span (its INFO column, see AnnotatedText)
    replaced: (number of lines, new bytes)."""
    arr = np.frombuffer(block, dtype=np.uint8)
    line_end = np.flatnonzero(arr == 10) + 1
    k = len(line_end)
    starts = np.concatenate([[0], line_end[:-1]])
    info_at = starts + info_start[:k]
    offsets = np.empty(3 * k + 1, dtype=np.int64)
    offsets[0:-1:3] = starts
    offsets[1::3] = info_at
    offsets[2::3] = info_at + info_len[:k]
    offsets[-1] = line_end[-1]
    pieces = pa.Array.from_buffers(
        pa.large_binary(), 3 * k, [None, pa.py_buffer(offsets), pa.py_buffer(block)]
    )
    every3 = np.arange(0, 3 * k, 3, dtype=np.int64)
    lines = pc.binary_join_element_wise(
        pc.take(pieces, every3),
        new_info.slice(first, k),
        pc.take(pieces, every3 + 2),
        pa.scalar(b"", pa.large_binary()),
    )
    size = int(np.frombuffer(lines.buffers()[1], dtype=np.int64)[k])
    return k, lines.buffers()[2].slice(0, size).to_pybytes()


def finish_vcf(result: ChunkResult, handle: BGZFile, *, header: bool) -> float:
    """Append the chunk's records (and the header when ``header``; every chunk's is the same)
    to the final VCF.gz from its annotated text and splice table; returns seconds.

    The body is streamed in blocks; per block the lines are cut (zero-copy, Arrow offsets into
    the block) into before-INFO / INFO / after-INFO pieces and rejoined with the new INFO, so
    sample columns are never parsed, and held one block at a time.
    """
    if result.text is None or result.splice is None:
        return 0.0
    started = time.perf_counter()
    with pa.memory_map(str(result.splice)) as source:
        table = pa.ipc.open_file(source).read_all()
    info_start = table.column("edit_start").to_numpy()
    info_len = table.column("edit_len").to_numpy()
    new_info = whole(table.column("text"))
    n = table.num_rows
    done = 0
    with result.text.open("rb") as src:
        for line in iter(src.readline, b""):
            if header:
                handle.write(line)
            if line.startswith(b"#CHROM"):
                break
        carry = b""
        while True:
            data = src.read(16 << 20)
            block = carry + data
            cut = block.rfind(b"\n") + 1
            if not data and cut == 0:
                break
            carry = block[cut:]
            block = block[:cut]
            if not block:
                continue
            k, spliced = _splice_block(block, info_start[done:], info_len[done:], new_info, done)
            handle.write(spliced)
            done += k
    if done != n:
        raise RuntimeError(f"chunk {result.index}: {done} VCF lines but {n} records")
    result.text.unlink(missing_ok=True)
    result.splice.unlink(missing_ok=True)
    result.text = result.splice = None
    return time.perf_counter() - started
