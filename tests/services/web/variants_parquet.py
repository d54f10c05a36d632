"""Result Parquet files in the issue-13 layout (picked rows, af_* columns, genotypes), written
with pyarrow for the variant data-layer tests, with the same rows as plain Python records so
each test computes its expectation without SQL.

Layout (the annotator's contract): the TSV columns, then `picked`, `gene_first` (a variant's
first row in each gene), `af_*`, and with samples `carriers`, `genotypes` (list of {gt,
zygosity, depth, gq}) and, for one sample, flat `genotype`, `zygosity`, `depth`, `gq`;
key-value metadata `gas.af_fields`, `gas.af_default`, `gas.samples`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

AF_FIELDS = [
    {"column": "af_gnomade", "field": "gnomADe_AF", "label": "gnomAD exomes"},
    {"column": "af_kg_global", "field": "AF", "label": "1000 Genomes global"},
]
SAMPLES = ["S1", "S2", "S3"]
GENOTYPE = pa.struct([("gt", pa.string()), ("zygosity", pa.string()), ("depth", pa.int32()),
                      ("gq", pa.int32())])
ZYGOSITY = {"0/0": "hom_ref", "0/1": "het", "1/1": "hom_alt", "./.": "missing", "0|1": "het",
            "1|1": "hom_alt", "0|0": "hom_ref"}


@dataclass
class Variant:
    chrom: str
    pos: int
    ref: str
    alt: str
    rows: list[dict[str, Any]]  # transcript rows: gene, transcript, consequence, impact...
    known_id: str | None = None
    clinvar: str | None = None
    af_gnomade: float | None = None
    af_kg_global: float | None = None
    gts: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.chrom}-{self.pos}-{self.ref}-{self.alt}"

    @property
    def carriers(self) -> int:
        return sum(ZYGOSITY[gt] in ("het", "hom_alt") for gt in self.gts)


def _row(gene: str | None, transcript: str | None, consequence: str, impact: str, *,
         mane: bool = False, protein: str | None = None, picked: bool = False,
         biotype: str | None = "protein_coding") -> dict[str, Any]:
    return {"gene": gene, "transcript": transcript, "consequence": consequence, "impact": impact,
            "mane_select": mane, "protein_change": protein, "picked": picked,
            "biotype": biotype if transcript else None}


def variants(samples: int = 3) -> list[Variant]:
    """A fixed set: a few hand-made variants, then fillers with two transcripts each."""
    def gts(*items: str) -> list[str]:
        return list(items[:samples]) if samples else []

    out = [
        Variant("1", 100, "A", "G", [
            _row("GENEA", "TA1", "missense_variant", "MODERATE", mane=True, protein="p.Arg5Gly",
                 picked=True),
            _row("GENEA", "TA2", "stop_gained", "HIGH", protein="p.Arg5Ter")],
            known_id="rs100", clinvar="pathogenic", af_gnomade=0.001, af_kg_global=0.002,
            gts=gts("0/1", "0/0", "./.")),
        Variant("1", 200, "C", "T", [_row("GENEA", "TA1", "intron_variant", "MODIFIER",
                                          mane=True, picked=True)],
                gts=gts("0/0", "0/0", "0/0")),
        Variant("1", 300, "G", "A", [
            _row("GENEB", "TB1", "splice_donor_variant", "HIGH", mane=True, picked=True),
            _row("GENEB", "TB2", "synonymous_variant", "LOW", protein="p.Leu9="),
            _row("GENEB", "TB3", "intron_variant&non_coding_transcript_variant", "MODIFIER",
                 biotype="lncRNA")],
            known_id="rs300", clinvar="not_provided,likely_pathogenic", af_gnomade=0.2,
            af_kg_global=None, gts=gts("1/1", "0/1", "0/0")),
        Variant("1", 400, "T", "C", [_row(None, None, "upstream_gene_variant", "MODIFIER",
                                          picked=True)],
                clinvar="benign", af_kg_global=0.3, gts=gts("0/0", "0/0", "0/1")),
        Variant("2", 50, "A", "AT", [_row("GENEC", "TC1", "frameshift_variant", "HIGH",
                                          mane=True, protein="p.Lys3fs", picked=True)],
                known_id="rs50", af_gnomade=0.005, af_kg_global=0.004,
                gts=gts("0/0", "0/1", "0/0")),
    ]
    for i in range(120):
        pos = 1000 + 10 * i
        out.insert(-1, Variant("1", pos, "C", "G", [
            _row("GENEF", "TF1", "intron_variant", "MODIFIER", mane=True, picked=True),
            _row("GENEF", "TF2", "missense_variant", "MODERATE", protein=f"p.Ala{i}Gly")],
            known_id=f"rs{pos}" if i % 4 == 0 else None,
            af_gnomade=None if i % 3 == 0 else round(0.0005 * i, 6),
            af_kg_global=round(0.001 * i, 6) if i % 2 == 0 else None,
            gts=gts(["0/1", "0/0", "1/1"][i % 3], "0/0", ["0/0", "./.", "0/1"][i % 2])))
    return out


def rows(data: list[Variant]) -> list[dict[str, Any]]:
    """The Parquet rows, in file order (variants in genomic order, their transcripts next)."""
    out: list[dict[str, Any]] = []
    for v in data:
        genes_seen: set[str] = set()
        for row in v.rows:
            gene_first = row["gene"] is not None and row["gene"] not in genes_seen
            genes_seen.add(row["gene"])
            out.append({
                "chrom": v.chrom, "pos": v.pos, "id": v.known_id, "ref": v.ref, "alt": v.alt,
                **{k: row[k] for k in ("gene", "transcript", "biotype", "consequence", "impact",
                                       "protein_change", "mane_select")},
                "known_id": v.known_id, "clinvar": v.clinvar,
                "allele_frequency": v.af_gnomade,
                "nearest_gene": "GENEB" if row["transcript"] is None else None,
                "distance": 1200 if row["transcript"] is None else None,
                "picked": row["picked"], "gene_first": gene_first, "af_gnomade": v.af_gnomade,
                "af_kg_global": v.af_kg_global, "variant": v,
            })
    return out


def write_result(path: Path, *, samples: int = 3, picked: bool = True,
                 data: list[Variant] | None = None) -> list[Variant]:
    """Write the Parquet (row groups of 64 rows, as a big file has many); returns its variants."""
    data = data if data is not None else variants(samples)
    table_rows = rows(data)
    columns: dict[str, Any] = {
        name: [r[name] for r in table_rows]
        for name in ("chrom", "pos", "id", "ref", "alt", "gene", "transcript", "biotype",
                     "consequence", "impact", "protein_change", "mane_select", "known_id",
                     "clinvar", "allele_frequency", "nearest_gene", "distance")}
    fields = [pa.field(name, pa.int64() if name in ("pos", "distance") else
                       pa.bool_() if name == "mane_select" else
                       pa.float64() if name == "allele_frequency" else pa.string())
              for name in columns]
    if picked:
        columns["picked"] = [r["picked"] for r in table_rows]
        fields.append(pa.field("picked", pa.bool_(), nullable=False))
        columns["gene_first"] = [r["gene_first"] for r in table_rows]
        fields.append(pa.field("gene_first", pa.bool_(), nullable=False))
    for af in AF_FIELDS:
        columns[af["column"]] = [r[af["column"]] for r in table_rows]
        fields.append(pa.field(af["column"], pa.float64()))
    metadata = {"gas.af_fields": json.dumps(AF_FIELDS), "gas.af_default": "af_gnomade"}
    if samples:
        names = SAMPLES[:samples] if samples > 1 else ["HG00096"]
        metadata["gas.samples"] = json.dumps(names)
        columns["carriers"] = [r["variant"].carriers for r in table_rows]
        fields.append(pa.field("carriers", pa.int32()))
        columns["genotypes"] = [
            [{"gt": gt, "zygosity": ZYGOSITY[gt], "depth": 30 + i, "gq": 99 - i}
             for i, gt in enumerate(r["variant"].gts)] for r in table_rows]
        fields.append(pa.field("genotypes", pa.list_(GENOTYPE)))
        if samples == 1:
            columns["genotype"] = [r["variant"].gts[0] for r in table_rows]
            columns["zygosity"] = [ZYGOSITY[r["variant"].gts[0]] for r in table_rows]
            columns["depth"] = [30 for _ in table_rows]
            columns["gq"] = [99 for _ in table_rows]
            fields += [pa.field("genotype", pa.string()), pa.field("zygosity", pa.string()),
                       pa.field("depth", pa.int32()), pa.field("gq", pa.int32())]
    schema = pa.schema(fields, metadata=metadata)
    table = pa.table(columns, schema=schema)
    pq.write_table(table, path, row_group_size=64, compression="zstd")
    return data
