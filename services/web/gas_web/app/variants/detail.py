"""One variant of a job: every transcript row, every population AF, ClinVar, known ids,
genotypes, and links to the public databases."""

from __future__ import annotations

import re
from typing import Any

import duckdb

from gas_web.app.core.errors import Problem
from gas_web.app.variants.links import LinkTemplates, rsids, variant_links
from gas_web.app.variants.query import (
    PATHOGENIC_REGEX,
    SINGLE_SAMPLE_COLUMNS,
    parse_variant_key,
    variant_key,
)
from gas_web.app.variants.scan import Scan, sample_genotypes

TRANSCRIPT_COLUMNS = ("gene", "transcript", "biotype", "consequence", "impact",
                      "protein_change", "mane_select", "picked")
VARIANT_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "known_id", "clinvar",
                   "allele_frequency", "nearest_gene", "distance")


def variant_detail(
    cursor: duckdb.DuckDBPyConnection, scan: Scan, key: str, *, assembly: str,
    links: LinkTemplates,
) -> dict[str, Any]:
    chrom, pos, ref, alt = parse_variant_key(key)
    info = scan.info
    af_columns = [af for af in info.af_fields if af.column in info.columns]
    select = [scan.column(name) for name in (*VARIANT_COLUMNS, *TRANSCRIPT_COLUMNS)
              if name != "picked"]
    select.append("picked")
    select += [f'"{af.column}"' for af in af_columns]
    if info.single_sample:
        select += list(SINGLE_SAMPLE_COLUMNS)
    if info.has_samples:
        select.append("carriers")
    if info.has_genotypes:
        select.append("genotypes")
    # pos first: row groups are pruned on its min/max; every value is a parameter.
    result = cursor.execute(
        f"SELECT {', '.join(select)} FROM {scan.source} "  # noqa: S608
        "WHERE pos = ? AND chrom = ? AND ref = ? AND alt = ? ORDER BY file_row_number",
        [pos, chrom, ref, alt],
    )
    names = [d[0] for d in result.description or []]
    rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    if not rows:
        raise Problem(404, "No such variant in this job.")
    first = next((row for row in rows if row["picked"]), rows[0])
    known_ids = _ids(first["known_id"])
    ids = rsids(first["known_id"], first["id"])
    clinvar = first["clinvar"]
    genotypes: list[dict[str, Any]] | None = None
    if info.has_genotypes:
        genotypes = sample_genotypes(info.samples, first["genotypes"])
    elif info.single_sample:
        genotypes = [{"sample": info.samples[0] if info.samples else "sample",
                      "gt": first["genotype"], "zygosity": first["zygosity"],
                      "depth": first["depth"], "gq": first["gq"]}]
    return {
        "variant_key": variant_key(chrom, pos, ref, alt),
        "chrom": chrom, "pos": pos, "ref": ref, "alt": alt, "id": first["id"],
        "known_ids": known_ids,
        "clinvar": clinvar,
        "clinvar_terms": [t for t in re.split(r"\s*[,/|&;]\s*", clinvar or "") if t],
        "clinvar_plp": bool(clinvar and re.search(PATHOGENIC_REGEX, clinvar, re.IGNORECASE)),
        "allele_frequency": first["allele_frequency"],
        "af_default": info.af_default,
        "frequencies": [{"column": af.column, "field": af.field, "label": af.label,
                         "value": first[af.column]} for af in af_columns],
        "nearest_gene": first["nearest_gene"],
        "distance": first["distance"],
        "transcripts": [{name: row[name] for name in TRANSCRIPT_COLUMNS} for row in rows],
        "carriers": first.get("carriers"),
        "samples_truncated": info.samples_truncated,
        "genotypes": genotypes,
        "links": variant_links(links, assembly=assembly, chrom=chrom, pos=pos, ref=ref, alt=alt,
                               ids=ids),
    }


def _ids(text: str | None) -> list[str]:
    return [item.strip() for item in re.split(r"[;,|]", text or "") if item.strip()]
