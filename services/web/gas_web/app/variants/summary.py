"""Counts over the filtered set for the charts: DuckDB aggregates over the job's Parquet.

Counts are of the rows the filter shows: in the variant view (the default) that is one row,
its picked transcript, per variant, so every count is a count of variants; in the transcript
view consequences, impacts and genes count rows, and the totals still count variants.
No term is cut: a rare stop_gained is listed next to thousands of intron variants.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import duckdb

from gas_web.app.variants.query import (
    PATHOGENIC_SQL,
    VARIANT_HASH_SQL,
    VARIANT_KEY_SQL,
    Compiled,
    VariantQuery,
)
from gas_web.app.variants.scan import Scan

TOP_GENES = 50
# ClinVar P/LP variants listed (the total is always counted).
PLP_LISTED = 500


def summarize(
    cursor: duckdb.DuckDBPyConnection, scan: Scan, query: VariantQuery, compiled: Compiled
) -> dict[str, Any]:
    source, where, params = scan.source_for(compiled), compiled.where, compiled.params
    # Variants: in the variant view each has exactly one row; else distinct (chrom, pos, ref,
    # alt), hashed (a 64-bit hash: cheaper than the key string; a collision is ~never).
    if query.view == "variant":
        variants, high, plp = ("count(*)", "count(*) FILTER (WHERE impact = 'HIGH')",
                               f"count(*) FILTER (WHERE {PATHOGENIC_SQL})")
    else:
        distinct = f"count(DISTINCT {VARIANT_HASH_SQL})"
        variants, high, plp = (distinct, f"{distinct} FILTER (WHERE impact = 'HIGH')",
                               f"{distinct} FILTER (WHERE {PATHOGENIC_SQL})")
    # SQL only from our fragments, user values as parameters.
    totals_sql = f"SELECT count(*), {variants}, {high}, {plp} FROM {source}{where}"  # noqa: S608
    counted = cursor.execute(totals_sql, params).fetchone() or (0, 0, 0, 0)
    rows, variant_count, high_count, plp_count = (int(value or 0) for value in counted)
    # Grouped by the whole consequence string first (few distinct values), then split here:
    # a row with `a&b` counts once for each term, as unnesting every row would.
    terms: Counter[str] = Counter()
    for consequence, n in cursor.execute(
        f"SELECT consequence, count(*) FROM {source}{where} GROUP BY consequence",  # noqa: S608
        params,
    ).fetchall():
        for term in set((consequence or "").split("&")):
            if term:
                terms[term] += int(n)
    impacts = cursor.execute(
        f"SELECT impact, count(*) AS n FROM {source}{where} GROUP BY impact "  # noqa: S608
        "ORDER BY n DESC, impact NULLS LAST", params,
    ).fetchall()
    gene_filter = "gene IS NOT NULL AND gene <> ''"
    and_gene = f"{where} AND {gene_filter}" if where else f" WHERE {gene_filter}"
    per_gene = "count(*)" if query.view == "variant" else f"count(DISTINCT {VARIANT_HASH_SQL})"
    genes = cursor.execute(
        f"SELECT gene, {per_gene} AS n FROM {source}{and_gene} "  # noqa: S608
        "GROUP BY gene ORDER BY n DESC, gene LIMIT ?", [*params, TOP_GENES],
    ).fetchall()
    and_plp = f"{where} AND {PATHOGENIC_SQL}" if where else f" WHERE {PATHOGENIC_SQL}"
    # One row per variant: its picked row when the view shows it, else its first matching row.
    plp_rows = cursor.execute(
        f"SELECT {VARIANT_KEY_SQL} AS variant_key, chrom, pos, ref, alt, gene, transcript, "  # noqa: S608
        f"consequence, protein_change, known_id, clinvar FROM {source}{and_plp} "
        f"QUALIFY row_number() OVER (PARTITION BY {VARIANT_HASH_SQL} "
        "ORDER BY picked DESC, file_row_number) = 1 ORDER BY file_row_number LIMIT ?",
        [*params, PLP_LISTED],
    )
    names = [d[0] for d in plp_rows.description or []]
    clinvar_plp = [dict(zip(names, row, strict=True)) for row in plp_rows.fetchall()]
    return {
        "view": query.view,
        "totals": {"variants": variant_count, "rows": rows, "high_impact": high_count,
                   "clinvar_plp": plp_count},
        "consequences": [{"term": term, "count": n} for term, n in
                         sorted(terms.items(), key=lambda item: (-item[1], item[0]))],
        "impacts": [{"impact": impact, "count": int(n)} for impact, n in impacts],
        "genes": [{"gene": gene, "count": int(n)} for gene, n in genes],
        "clinvar_plp": clinvar_plp,
        "clinvar_plp_truncated": plp_count > len(clinvar_plp),
    }
