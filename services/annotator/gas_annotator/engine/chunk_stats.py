"""Per-chunk summary figures: consequence and impact counts, variants per gene, Ts/Tv and the
ClinVar-pathogenic hits (merged over chunks by outputs.Joiner)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from gas_annotator.engine import consequences as cq
from gas_annotator.engine.arrowkit import whole

_TRANSITIONS = pa.array(["AG", "GA", "CT", "TC"])


def chunk_stats(
    q: pa.Table,
    *,
    per_variant: pa.Table,
    rows: pa.Table,
    detail: pa.Table,
    chrom: str,
    variant_of_row: np.ndarray[Any, np.dtype[np.int64]],
    carriers: pa.Array | None = None,
) -> dict[str, Any]:
    def counts(array: pa.Array | pa.ChunkedArray) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in pc.value_counts(array).to_pylist():
            if item["values"] is not None:
                out[item["values"]] = int(item["counts"])
        return out

    ref = q.column("ref")
    alt = q.column("alt")
    snv = pc.and_(
        pc.equal(pc.utf8_length(ref), 1), pc.equal(pc.utf8_length(pc.fill_null(alt, "")), 1)
    )
    pair = pc.binary_join_element_wise(pc.utf8_upper(ref), pc.utf8_upper(pc.fill_null(alt, "")), "")
    transitions = int(pc.sum(pc.and_(snv, pc.is_in(pair, value_set=_TRANSITIONS))).as_py() or 0)
    snvs = int(pc.sum(snv).as_py() or 0)
    known = pc.is_valid(q.column("known_id"))
    clnsig = q.column("clnsig")
    patho = pc.fill_null(
        pc.match_substring_regex(clnsig, cq.PATHOGENIC_REGEX, ignore_case=True), False
    )
    hits: list[dict[str, Any]] = []
    patho_idx = np.nonzero(patho.to_numpy(zero_copy_only=False))[0]
    if len(patho_idx):
        hits = _pathogenic_hits(q, per_variant, detail, patho_idx[:500], chrom)
    # Variants per gene: distinct (variant, gene) pairs from the transcript rows.
    gene_counter: Counter[str] = Counter()
    if len(variant_of_row):
        genes_col = whole(pc.dictionary_encode(rows.column("gene")))
        width = len(genes_col.dictionary) + 1
        # Null genes (context rows) become code -1; distinct (variant, gene) pairs via one sort.
        codes = pc.fill_null(genes_col.indices, -1).to_numpy(zero_copy_only=False)
        keys = variant_of_row * width + codes + 1
        # Rows are grouped by variant (variant_of_row is sorted): a variant with one row is one
        # distinct pair already; only the rows of variants with several need the sort.
        same = variant_of_row[1:] == variant_of_row[:-1]
        shared = np.zeros(len(keys), dtype=np.bool_)
        shared[1:] |= same
        shared[:-1] |= same
        pairs = np.concatenate([keys[~shared], np.unique(keys[shared])])
        gene_codes = pairs % width - 1
        per_gene = np.bincount(gene_codes[gene_codes >= 0], minlength=len(genes_col.dictionary))
        names = genes_col.dictionary.to_pylist()
        gene_counter.update({names[i]: int(c) for i, c in enumerate(per_gene) if c})
    return {
        "consequences": counts(per_variant.column("GAS_CSQ")),
        "impacts": counts(per_variant.column("GAS_IMPACT")),
        "genes": dict(gene_counter),
        "known": int(pc.sum(known).as_py() or 0),
        "snvs": snvs,
        "transitions": transitions,
        "transversions": snvs - transitions,
        "pathogenic_count": len(patho_idx),
        "carrier_variants": int(pc.sum(pc.greater(carriers, 0)).as_py() or 0)
        if carriers is not None
        else 0,
        "pathogenic": hits,
    }


def _pathogenic_hits(
    q: pa.Table,
    per_variant: pa.Table,
    detail: pa.Table,
    idx: np.ndarray[Any, np.dtype[np.int64]],
    chrom: str,
) -> list[dict[str, Any]]:
    """Pathogenic variants with gene and protein change: the MANE Select transcript's when the
    variant hits one, else those of its most severe consequence."""
    take = pa.array(idx)
    out: list[dict[str, Any]] = []
    for rec, var, most in zip(
        q.take(take).to_pylist(),
        per_variant.take(take).to_pylist(),
        detail.take(take).to_pylist(),
        strict=True,
    ):
        transcript, protein = most["transcript"], most["protein"]
        if var["GAS_MANE"]:
            transcript, _, rest = var["GAS_MANE"].partition("|")
            protein = rest.partition("|")[2] or protein
        out.append(
            {
                "chrom": chrom,
                "pos": rec["pos"],
                "id": rec["id"],
                "ref": rec["ref"],
                "alt": rec["alt"],
                "gene": var["GAS_GENE"],
                "transcript": transcript,
                "consequence": var["GAS_CSQ"],
                "protein_change": protein,
                "clinvar": rec["clnsig"],
            }
        )
    return out
