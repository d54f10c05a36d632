"""The output VCF lines: each chunk's annotated text with our INFO fields spliced into its INFO
column, sample columns untouched and never parsed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pysam.libcbgzf import BGZFile

from gas_annotator.engine.annotated import AnnotatedText
from gas_annotator.engine.arrowkit import has_byte, nonempty, whole
from gas_annotator.engine.tabix_build import build_index
from gas_annotator.engine.tabix_merge import index_member, write_tbi

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
        if has_byte(text, char):
            text = whole(pc.replace_substring(text, char, code))
    return text


def new_texts(text: AnnotatedText, ours: pa.Array) -> pa.Array:
    """Per record of the annotated text, what replaces its span (see AnnotatedText): the old
    INFO with our fields appended (ours alone when it was '.'), after the new ID and the columns
    up to INFO when duplicates.py changed the ID."""
    if text.extra_info is not None:
        # Known-variant fields annotate gave only one copy of a duplicate come before ours.
        ours = _prepend_where_valid(text.extra_info, ours, ";")
    if not len(text.info):
        return pa.array([], pa.large_binary())
    joined = pc.binary_join_element_wise(text.info, ours, ";")
    new_info = whole(pc.coalesce(pc.if_else(pc.equal(text.info, "."), ours, joined), text.info))
    if text.prefix is not None:
        new_info = _prepend_where_valid(text.prefix, new_info, "")
    return new_info.cast(pa.large_binary())


def _prepend_where_valid(head: pa.Array, tail: pa.Array, separator: str) -> pa.Array:
    """``head + separator + tail`` where ``head`` is valid (``head`` alone where ``tail`` is
    null), ``tail`` elsewhere. ``head`` is valid on a few records (copies of a duplicate):
    joined on those alone, as joining every record cost ~0.25 CPU-s per 1M."""
    valid = pc.is_valid(head)
    rows = np.flatnonzero(valid.to_numpy(zero_copy_only=False))
    if not len(rows):
        return tail
    at = pa.array(rows)
    first, second = pc.take(head, at), pc.take(tail, at)
    joined = pc.coalesce(pc.binary_join_element_wise(first, second, separator), first)
    return whole(pc.replace_with_mask(tail, valid, joined))


def _splice_block(
    block: bytes,
    info_start: np.ndarray[Any, np.dtype[np.int64]],
    info_len: np.ndarray[Any, np.dtype[np.int64]],
    new_info: pa.Array,
    first: int,
) -> tuple[int, bytes, np.ndarray[Any, np.dtype[np.int64]]]:
    """Whole lines of VCF text with each record's span (its INFO column, see AnnotatedText)
    replaced: (number of lines, new bytes, where each new line starts in them and where the
    last ends)."""
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
    starts = np.frombuffer(lines.buffers()[1], dtype=np.int64)[: k + 1]
    return k, lines.buffers()[2].slice(0, int(starts[k])).to_pybytes(), starts


# The empty block that ends a BGZF file. Each chunk's member is written without it, so the
# job process can concatenate members (valid BGZF) and add it once at the end.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")


def bgzf_member(path: Path, data: bytes | None = None) -> None:
    """Strip the EOF block BGZFile wrote at close (after writing ``data`` when given)."""
    if data is not None:
        handle = BGZFile(str(path), BGZF_MODE, None)  # type: ignore[arg-type]
        handle.write(data)
        handle.close()
    size = path.stat().st_size
    with path.open("r+b") as raw:
        raw.seek(size - len(BGZF_EOF))
        if raw.read() != BGZF_EOF:
            raise RuntimeError(f"{path} does not end with a BGZF EOF block")
        raw.truncate(size - len(BGZF_EOF))


def write_vcf_member(
    text: AnnotatedText, replacements: pa.Array, out: Path, index: Path | None = None
) -> bool:
    """The chunk's records, spliced, as BGZF blocks (level 1) without the EOF block: written in
    the worker, so the job process only concatenates. With `index`, the member's own tabix
    index is written there too (see tabix_build; htslib's when that cannot, and none when
    htslib cannot either: see tabix_merge); returns whether it was.

    The body is streamed in blocks; per block the lines are cut (zero-copy, Arrow offsets into
    the block) into before-span / span / after-span pieces and rejoined with the new text, so
    sample columns are never parsed, and held one block at a time.
    """
    n = len(replacements)
    done = written = 0
    # Where each line starts in the member's text, for its index; and whether the text holds
    # what makes htslib take a record's end from elsewhere than REF (see tabix_build).
    line_starts = [np.zeros(1, np.int64)]
    plain = index is not None and not has_byte(whole(text.table.column("alt")), "<")
    handle = BGZFile(str(out), BGZF_MODE, None)  # type: ignore[arg-type]
    try:
        with text.path.open("rb") as src:
            src.seek(text.body_offset)
            carry = b""
            while True:
                # 4 MB at a time: each block is copied a few times (carry, cut, spliced
                # bytes); 16 MB raised a gene-dense chunk's peak RSS by ~15 MB, for no speed.
                data = src.read(4 << 20)
                block = carry + data
                cut = block.rfind(b"\n") + 1
                if not data and cut == 0:
                    break
                carry = block[cut:]
                block = block[:cut]
                if not block:
                    continue
                k, spliced, starts = _splice_block(
                    block, text.edit_start[done:], text.edit_len[done:], replacements, done
                )
                handle.write(spliced)
                line_starts.append(starts[1:] + written)
                plain = plain and b"END=" not in spliced
                written += len(spliced)
                done += k
    finally:
        handle.close()
    if done != n:
        raise RuntimeError(f"{text.path}: {done} VCF lines but {n} records")
    indexed = False
    if index is not None:
        built = None
        if plain:
            table = text.table
            built = build_index(
                whole(table.column("chrom")),
                table.column("pos").to_numpy(),
                pc.binary_length(table.column("ref")).to_numpy(),
                np.concatenate(line_starts),
                out,
            )
        if built is not None:
            write_tbi(built, index)
            indexed = True
        else:
            # Indexed while the EOF block is still there (htslib warns on a file without one).
            indexed = index_member(out, index)
    bgzf_member(out)
    return indexed
