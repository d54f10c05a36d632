"""Per-sample genotypes from the annotated VCF text: carriers per record, and for files with at
most MAX_LISTED_SAMPLES samples each sample's GT, zygosity, depth and GQ.

Columnar like the rest of our pass. Files with many samples (1000 Genomes has 2,504) only get
the carrier count, from a numpy scan of the first characters of each sample field in blocks of
the text: the sample columns are never materialised, so memory stays one block's whatever the
number of samples.

GT after ``bcftools norm -m -any``: a split multiallelic's other ALT alleles become 0 (norm's
default ``--multi-overlaps 0``), so a ``1/2`` sample is ``1/0`` on the first ALT's record and
``0/1`` on the second's: a carrier (het) of each. Alleles are therefore 0, 1 or ``.``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gas_annotator.engine.arrowkit import map_distinct, whole

# Above this many samples only the carrier count is kept (a list per row would be huge).
MAX_LISTED_SAMPLES = 100

# Records x listed samples per chunk, so a chunk's genotype lists stay a few hundred MB at most
# (validate cuts chunks smaller for files with many listed samples).
GENOTYPE_CHUNK_BUDGET = 1_000_000

ZYGOSITIES = ("hom_ref", "het", "hom_alt", "missing")

GENOTYPE_STRUCT = pa.struct(
    [("gt", pa.string()), ("zygosity", pa.string()), ("depth", pa.int32()), ("gq", pa.int32())]
)

# The block size of the carrier scan: a line (at most the line limit, 4 MB) must fit.
_SCAN_BLOCK = 8 << 20


def sample_names(header: bytes) -> list[str]:
    """The sample names of the #CHROM line (nothing for a sites-only file)."""
    last = header.rstrip(b"\n").rsplit(b"\n", 1)[-1]
    columns = last.decode("utf-8", errors="replace").split("\t")
    return columns[9:] if columns and columns[0].startswith("#CHROM") else []


def listed(samples: int) -> bool:
    return 0 < samples <= MAX_LISTED_SAMPLES


def chunk_records(chunk_records: int, samples: int) -> int:
    """Records per chunk for a file with ``samples`` samples (see GENOTYPE_CHUNK_BUDGET)."""
    if not listed(samples):
        return chunk_records
    return max(1_000, min(chunk_records, GENOTYPE_CHUNK_BUDGET // samples))


def genotype_fields(samples: list[str]) -> list[pa.Field]:
    """The genotype columns of the result rows for a file with these samples."""
    n = len(samples)
    if n == 0:
        return []
    fields = [pa.field("carriers", pa.int32())]
    if listed(n):
        fields.append(pa.field("genotypes", pa.list_(GENOTYPE_STRUCT)))
    if n == 1:
        fields += [
            pa.field("genotype", pa.string()),
            pa.field("zygosity", pa.string()),
            pa.field("depth", pa.int32()),
            pa.field("gq", pa.int32()),
        ]
    return fields


def tsv_genotype_columns(samples: list[str]) -> list[str]:
    """Genotype columns the TSV carries: the flat ones of a single sample, else carriers."""
    if not samples:
        return []
    return ["genotype", "zygosity", "depth", "gq"] if len(samples) == 1 else ["carriers"]


def samples_metadata(samples: list[str]) -> dict[str, str]:
    if not samples:
        return {}
    return {
        "gas.samples": json.dumps(samples),
        "gas.samples_truncated": "true" if len(samples) > MAX_LISTED_SAMPLES else "false",
    }


def _zygosity(gt: str | None) -> str:
    """Zygosity of one GT as written: no called allele -> missing; all 0 -> hom_ref; all >= 1
    -> hom_alt (haploid "1" too); a mix -> het."""
    if gt is None:
        return "missing"
    alleles = [a for a in gt.replace("|", "/").split("/") if a not in ("", ".")]
    if not alleles:
        return "missing"
    alt = [a != "0" for a in alleles]
    if all(alt):
        return "hom_alt"
    return "het" if any(alt) else "hom_ref"


def _format_indexes(fmt: str | None) -> dict[str, int]:
    keys = (fmt or "").split(":")
    return {key: keys.index(key) if key in keys else -1 for key in ("GT", "DP", "GQ")}


def _zygosities(gt: pa.Array) -> tuple[pa.Array, np.ndarray[Any, np.dtype[np.bool_]]]:
    """Zygosity and carrier flag per record, computed once per distinct GT."""
    if len(gt) == 0:
        return pa.array([], pa.string()), np.zeros(0, dtype=np.bool_)
    encoded = whole(pc.dictionary_encode(gt))
    names = [_zygosity(v) for v in encoded.dictionary.to_pylist()]
    codes = pc.fill_null(encoded.indices, len(names)).to_numpy(zero_copy_only=False)
    names.append("missing")  # a null GT (no GT key in FORMAT)
    carrier = np.array([z in ("het", "hom_alt") for z in names], dtype=np.bool_)[codes]
    return pc.take(pa.array(names, pa.string()), pa.array(codes)), carrier


def _subfield(parts: pa.ListArray, index: np.ndarray[Any, np.dtype[np.int64]]) -> pa.Array:
    """Per record, element ``index`` of its ':'-split sample field (null when absent)."""
    if len(index) and int(index.max()) < 0:
        return pa.nulls(len(index), pa.string())
    offsets = parts.offsets.to_numpy()
    lengths = np.diff(offsets)
    ok = (index >= 0) & (index < lengths)
    at = np.where(ok, offsets[:-1] + np.maximum(index, 0), 0)
    values = parts.flatten()
    return whole(pc.take(values, pa.array(at, mask=~ok)))


def _integer(values: pa.Array) -> pa.Array:
    """FORMAT integers as int32; '.', empty or malformed values are null."""
    if values.null_count == len(values):
        return pa.nulls(len(values), pa.int32())
    # Plain digits (nearly every DP/GQ) pass with two cheap kernels; the regex decides the rest.
    plain = pc.and_(pc.ascii_is_decimal(values), pc.less_equal(pc.utf8_length(values), 9))
    good = pc.fill_null(plain, False).to_numpy(zero_copy_only=False).copy()
    rest = np.flatnonzero(~good & pc.is_valid(values).to_numpy(zero_copy_only=False))
    if len(rest):
        matched = pc.match_substring_regex(pc.take(values, pa.array(rest)), r"^-?[0-9]{1,9}$")
        good[rest] = pc.fill_null(matched, False).to_numpy(zero_copy_only=False)
    clean = pc.if_else(good, values, pa.scalar(None, pa.string()))
    return whole(pc.cast(clean, pa.int32()))


def listed_genotypes(fmt: pa.Array, sample_columns: list[pa.Array]) -> pa.Table:
    """Per record: carriers, the genotypes list and, for one sample, the flat columns."""
    m = len(fmt)
    idx = map_distinct(
        fmt, _format_indexes,
        pa.struct([("GT", pa.int64()), ("DP", pa.int64()), ("GQ", pa.int64())]),
    )  # fmt: skip
    gt_i, dp_i, gq_i = (
        pc.fill_null(pc.struct_field(idx, k), -1).to_numpy(zero_copy_only=False).astype(np.int64)
        for k in ("GT", "DP", "GQ")
    )
    # FORMAT "GT" alone (1000 Genomes, most panels): the sample field is the GT.
    gt_only = bool(m) and pc.all(pc.equal(fmt, "GT")).as_py() is True
    per_sample: list[tuple[pa.Array, pa.Array, pa.Array, pa.Array]] = []
    carriers = np.zeros(m, dtype=np.int32)
    for column in sample_columns:
        if gt_only:
            gt, depth, gq = column, pa.nulls(m, pa.int32()), pa.nulls(m, pa.int32())
        else:
            parts = whole(pc.split_pattern(column, ":"))
            gt = _subfield(parts, gt_i)
            depth = _integer(_subfield(parts, dp_i))
            gq = _integer(_subfield(parts, gq_i))
        zygosity, carrier = _zygosities(gt)
        carriers += carrier
        per_sample.append((gt, zygosity, depth, gq))
    n = len(sample_columns)
    # Record-major order for the list: record i's samples are entries i*n .. i*n+n-1.
    order = pa.array((np.arange(n)[None, :] * m + np.arange(m)[:, None]).ravel())
    children = [
        whole(per_sample[0][k]) if n == 1  # one sample: already in record order
        else pc.take(pa.concat_arrays([s[k] for s in per_sample]), order) if n
        else pa.array([])
        for k in range(4)
    ]  # fmt: skip
    structs = pa.StructArray.from_arrays(children, fields=list(GENOTYPE_STRUCT))
    lists = pa.ListArray.from_arrays(pa.array(np.arange(m + 1, dtype=np.int32) * n), structs)
    columns: dict[str, pa.Array] = {
        "carriers": pa.array(carriers, pa.int32()),
        "genotypes": lists,
    }
    if n == 1:
        gt, zygosity, depth, gq = per_sample[0]
        columns |= {"genotype": gt, "zygosity": zygosity, "depth": depth, "gq": gq}
    return pa.table(columns)


def scan_carriers(
    path: Path,
    body_offset: int,
    format_start: np.ndarray[Any, np.dtype[np.int64]],
    has_gt: np.ndarray[Any, np.dtype[np.bool_]],
) -> np.ndarray[Any, np.dtype[np.int32]]:
    """Carriers per record of a VCF text body, without parsing the sample columns.

    ``format_start``: where each line's FORMAT column starts; ``has_gt``: whether FORMAT starts
    with GT (the VCF rule when GT is present). Per block of whole lines, every tab at or after
    a line's FORMAT column opens a sample field; its GT's alleles are one character each after
    the split (0, 1 or '.'), separated by '/' or '|', so a sample carries when an allele's
    first character is a digit 1-9 (a multi-digit index never starts with 0, and its first
    digit decides).
    """
    n = len(format_start)
    carriers = np.zeros(n, dtype=np.int32)
    done = 0
    with path.open("rb") as src:
        src.seek(body_offset)
        carry = b""
        while True:
            data = src.read(_SCAN_BLOCK)
            block = carry + data
            cut = block.rfind(b"\n") + 1
            if not data and cut == 0:
                break
            carry = block[cut:]
            if cut == 0:
                continue
            k = _scan_block(block[:cut], format_start[done:], has_gt[done:], carriers[done:])
            done += k
    if done != n:
        raise RuntimeError(f"{path}: {done} lines but {n} records")
    return carriers


# Alleles looked at per GT: diploid and polyploid calls up to this ploidy count fully.
_MAX_PLOIDY = 8


def _scan_block(
    block: bytes,
    format_start: np.ndarray[Any, np.dtype[np.int64]],
    has_gt: np.ndarray[Any, np.dtype[np.bool_]],
    out: np.ndarray[Any, np.dtype[np.int32]],
) -> int:
    """Add each line's carriers to ``out``; return the number of lines.

    Byte-wise, with shifted views instead of per-sample indexing: a tab followed by a nonzero
    digit (the first allele), or by alleles and separators ending in one (``0|1``, ``./1``,
    ``0/0/1``), marks a carrier. Only those tabs are then placed in their lines, and kept when
    they lie at or after the line's FORMAT column (a tab before POS ``123`` looks the same).
    """
    pad = 2 * _MAX_PLOIDY + 2
    arr = np.frombuffer(block + b"\n" * pad, dtype=np.uint8)
    size = len(block)
    line_end = np.flatnonzero(arr[:size] == 10)
    k = len(line_end)
    nonzero = (arr >= ord("1")) & (arr <= ord("9"))
    sep = (arr == ord("/")) | (arr == ord("|"))
    hit = nonzero[1 : size + 1].copy()
    chain = np.ones(size, dtype=np.bool_)
    for j in range(1, _MAX_PLOIDY):
        chain &= sep[2 * j : size + 2 * j]
        if not chain.any():
            break
        hit |= chain & nonzero[2 * j + 1 : size + 2 * j + 1]
    at = np.flatnonzero(hit & (arr[:size] == 9))
    line = np.searchsorted(line_end, at)
    starts = np.concatenate([[0], line_end[:-1] + 1])
    keep = (at > starts[line] + format_start[:k][line]) & has_gt[:k][line]
    out[:k] += np.bincount(line[keep], minlength=k).astype(np.int32)[:k]
    return k
