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
    # One scan for the totals and the three breakdowns (GROUPING SETS); SQL only from our
    # fragments, user values as parameters. The consequence is grouped by the whole string
    # (few distinct values) and split here: a row with `a&b` counts once for each term.
    counted = cursor.execute(
        f"SELECT grouping(consequence, impact, gene) AS level, consequence, impact, gene, "  # noqa: S608
        f"count(*), {variants}, {high}, {plp} FROM {source}{where} "
        "GROUP BY GROUPING SETS ((consequence), (impact), (gene), ())", params,
    ).fetchall()
    rows = variant_count = high_count = plp_count = 0
    terms: Counter[str] = Counter()
    impact_counts: list[tuple[str | None, int]] = []
    gene_counts: list[tuple[str, int]] = []
    for level, consequence, impact, gene, n, n_variants, n_high, n_plp in counted:
        if level == 0b111:  # () : the totals
            rows, variant_count, high_count, plp_count = (
                int(value or 0) for value in (n, n_variants, n_high, n_plp))
        elif level == 0b011:  # (consequence)
            for term in set((consequence or "").split("&")):
                if term:
                    terms[term] += int(n)
        elif level == 0b101:  # (impact)
            impact_counts.append((impact, int(n)))
        elif gene:  # (gene): a gene's variants (rows in the variant view are variants)
            gene_counts.append((gene, int(n_variants)))
    impacts = sorted(impact_counts, key=lambda item: (-item[1], item[0] is None, item[0] or ""))
    genes = sorted(gene_counts, key=lambda item: (-item[1], item[0]))[:TOP_GENES]
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
