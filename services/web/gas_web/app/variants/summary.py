"""Counts over the filtered set for the charts: DuckDB aggregates over the job's Parquet.

Counts are of the rows the filter shows: in the variant view (the default) that is one row,
its picked transcript, per variant, so every count is a count of variants; in the transcript
view consequences and impacts count rows, while the totals and the genes count variants.
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
    # The transcript view's variants per gene, where the file marks each variant's first row in
    # each gene (`gene_first`) and the filter keeps a variant's rows in a gene all or none (no
    # consequence or impact filter): those rows, counted with the rest; else a distinct count.
    genes_by_first = (query.view != "variant" and "gene_first" in scan.info.columns
                      and not (query.consequence or query.impact))
    per_gene = "count(*) FILTER (WHERE gene_first)" if genes_by_first else "NULL"
    # Rows per consequence string, impact and gene, and in all: one scan (GROUPING SETS); SQL
    # only from our fragments, user values as parameters. The consequence is grouped by the
    # whole string (few distinct values) and split here: `a&b` counts once for each term.
    counted = cursor.execute(
        f"SELECT grouping(consequence, impact, gene) AS level, consequence, impact, gene, "  # noqa: S608
        f"count(*), count(*) FILTER (WHERE impact = 'HIGH'), {per_gene}, "
        f"count(*) FILTER (WHERE picked) FROM {source}{where} "
        "GROUP BY GROUPING SETS ((consequence), (impact), (gene), ())", params,
    ).fetchall()
    rows = high_rows = picked_rows = 0
    terms: Counter[str] = Counter()
    impact_counts: list[tuple[str | None, int]] = []
    gene_counts: list[tuple[str, int]] = []
    gene_variants: list[tuple[str, int]] = []
    for level, consequence, impact, gene, n, n_high, n_gene_first, n_picked in counted:
        if level == 0b111:  # () : the totals
            rows, high_rows, picked_rows = int(n or 0), int(n_high or 0), int(n_picked or 0)
        elif level == 0b011:  # (consequence)
            for term in set((consequence or "").split("&")):
                if term:
                    terms[term] += int(n)
        elif level == 0b101:  # (impact)
            impact_counts.append((impact, int(n)))
        elif gene:  # (gene)
            gene_counts.append((gene, int(n)))
            gene_variants.append((gene, int(n_gene_first or 0)))
    if query.view == "variant":  # one row per variant: every count is of variants
        variant_count, high_count = rows, high_rows
    else:
        variant_count, high_count, gene_counts = _variant_counts(
            cursor, source, query, compiled, picked_rows=picked_rows,
            gene_variants=gene_variants if genes_by_first else None)
    plp_count, clinvar_plp = _pathogenic(cursor, source, query, compiled)
    impacts = sorted(impact_counts, key=lambda item: (-item[1], item[0] is None, item[0] or ""))
    genes = sorted(gene_counts, key=lambda item: (-item[1], item[0]))[:TOP_GENES]
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


def _and(where: str, condition: str) -> str:
    return f"{where} AND {condition}" if where else f" WHERE {condition}"


def _variant_counts(
    cursor: duckdb.DuckDBPyConnection, source: str, query: VariantQuery, compiled: Compiled,
    *, picked_rows: int, gene_variants: list[tuple[str, int]] | None,
) -> tuple[int, int, list[tuple[str, int]]]:
    """The transcript view's variants, HIGH-impact variants and variants per gene: distinct
    (chrom, pos, ref, alt), hashed (a 64-bit hash: cheaper than the key string; a collision
    is ~never). A distinct count holds a hash table of every variant (~0.5 s per 2M), so
    where it can the count is of picked rows instead (`picked_rows`, from the charts' scan): a
    filter on the variant's own fields only (ClinVar, known, AF, genotypes; not gene,
    consequence or impact, which differ per transcript) keeps every row of a variant or none,
    so its variants are its picked rows. `gene_variants`: the per-gene counts when the charts'
    scan had them (see summarize), else counted here."""
    where, params = compiled.where, compiled.params
    if gene_variants is None:  # not in the charts' scan: every count is distinct
        return _distinct_counts(cursor, source, compiled)
    if not (query.gene or query.consequence or query.impact):  # counted in the charts' scan
        variants = picked_rows
        high_where = _and(where, "impact = 'HIGH'")
        high = cursor.execute(
            f"SELECT count(DISTINCT {VARIANT_HASH_SQL}) FROM {source}{high_where}",  # noqa: S608
            params).fetchone()
        high_variants = int(high[0]) if high else 0
    else:  # both distinct counts in one scan
        counted = cursor.execute(
            f"SELECT count(DISTINCT {VARIANT_HASH_SQL}), count(DISTINCT {VARIANT_HASH_SQL}) "  # noqa: S608
            f"FILTER (WHERE impact = 'HIGH') FROM {source}{where}", params).fetchone()
        variants, high_variants = (int(counted[0]), int(counted[1])) if counted else (0, 0)
    return variants, high_variants, gene_variants


def _distinct_counts(
    cursor: duckdb.DuckDBPyConnection, source: str, compiled: Compiled,
) -> tuple[int, int, list[tuple[str, int]]]:
    """Variants, HIGH-impact variants and variants per gene from one scan: the filtered rows
    grouped by (gene, variant) once (kept, MATERIALIZED, so the scan is not repeated), then
    counted per gene and, distinct over genes, in all. Two distinct scans cost ~2x (4M rows,
    HIGH/MODERATE transcripts: 350 -> 182 ms)."""
    counted = cursor.execute(
        f"WITH per AS MATERIALIZED (SELECT gene, {VARIANT_HASH_SQL} AS variant, "  # noqa: S608
        f"bool_or(impact = 'HIGH') AS high FROM {source}{compiled.where} GROUP BY ALL) "
        "SELECT false AS whole, gene, count(*), NULL FROM per WHERE gene IS NOT NULL "
        "GROUP BY gene UNION ALL SELECT true, NULL, count(DISTINCT variant), "
        "count(DISTINCT variant) FILTER (WHERE high) FROM per", compiled.params).fetchall()
    variants = high_variants = 0
    gene_variants: list[tuple[str, int]] = []
    for whole, gene, n, n_high in counted:
        if whole:
            variants, high_variants = int(n or 0), int(n_high or 0)
        else:
            gene_variants.append((gene, int(n)))
    return variants, high_variants, gene_variants


def _pathogenic(
    cursor: duckdb.DuckDBPyConnection, source: str, query: VariantQuery, compiled: Compiled
) -> tuple[int, list[dict[str, Any]]]:
    """ClinVar P/LP variants: how many, and the first PLP_LISTED in file order, one row per
    variant (its picked row when the view shows it, else its first matching row). Two steps,
    as a page: the matching row numbers from the filter columns alone, then the listed rows'
    columns (reading every column of the matching rows costs ~5x more)."""
    matching = (f"SELECT file_row_number FROM {source}"  # noqa: S608
                f"{_and(compiled.where, f'clinvar IS NOT NULL AND {PATHOGENIC_SQL}')}")
    if query.view != "variant":
        matching += (f" QUALIFY row_number() OVER (PARTITION BY {VARIANT_HASH_SQL} "
                     "ORDER BY picked DESC, file_row_number) = 1")
    numbers = sorted(row[0] for row in cursor.execute(matching, compiled.params).fetchall())
    listed_rows = numbers[:PLP_LISTED]
    if not listed_rows:
        return len(numbers), []
    result = cursor.execute(
        f"SELECT {VARIANT_KEY_SQL} AS variant_key, chrom, pos, ref, alt, gene, transcript, "  # noqa: S608
        f"consequence, protein_change, known_id, clinvar FROM {source} WHERE file_row_number "
        f"IN ({', '.join('?' * len(listed_rows))}) ORDER BY file_row_number", listed_rows)
    names = [d[0] for d in result.description or []]
    return len(numbers), [dict(zip(names, row, strict=True)) for row in result.fetchall()]
