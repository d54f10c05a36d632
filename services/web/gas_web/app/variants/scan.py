"""One job's Parquet as a SQL source, and the row shape the API and pages show."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gas_web.app.variants.info import ResultInfo
from gas_web.app.variants.query import (
    COLUMNS,
    EXTRA_COLUMNS,
    IMPACT_RANK,
    SINGLE_SAMPLE_COLUMNS,
    VARIANT_KEY_SQL,
    ZYGOSITY_PREFIX,
    Compiled,
    VariantQuery,
    af_column,
)


@dataclass(frozen=True)
class Scan:
    """A job's Parquet file, what it holds, and the SQL that reads it.

    `zygosity`: the job's by-sample copy, made on the first query naming a sample of a
    multi-sample result: every column but `genotypes`, plus one flat zygosity column per
    sample, in the result's row order, so its own row numbers are the result's. Reading one
    element of every row's `genotypes` list costs ~40x a flat column; the copy (~2.5 s per
    million rows, once) lets such queries read flat columns and prune row groups.
    """

    path: Path
    info: ResultInfo
    zygosity: Path | None = None

    @property
    def source(self) -> str:
        return self._source(by_sample=False)

    def source_for(self, compiled: Compiled) -> str:
        """The source a compiled query needs: the by-sample copy when it names a sample of a
        multi-sample result."""
        return self._source(by_sample=compiled.sample_index is not None)

    def source_with_genotypes(self, compiled: Compiled) -> str:
        """As source_for, with the `genotypes` column (the VCF export writes them)."""
        if compiled.sample_index is None:
            return self.source
        # Row i of one file is row i of the other (DuckDB pushes no filter below a
        # positional join).
        return (f"(SELECT * FROM (SELECT genotypes FROM read_parquet('{_quoted(self.path)}')) "  # noqa: S608
                f"POSITIONAL JOIN {self._source(by_sample=True)})")

    def _source(self, *, by_sample: bool) -> str:
        # Paths are ours (cache dir + a hash), never user text; quotes escaped anyway.
        scan = f"read_parquet('{_quoted(self.path)}', file_row_number = true)"
        if by_sample:
            if self.zygosity is None:
                raise RuntimeError("the by-sample copy is made before a sample query runs")
            scan = f"read_parquet('{_quoted(self.zygosity)}', file_row_number = true)"
        if self.info.has_picked:
            return scan
        # A result written before `picked` existed: pick each variant's row here, by the
        # annotator's rule with impact standing in for consequence severity (over the
        # columns the file has; without variant coordinates every row is its own).
        if not self.has_coordinates:
            return f"(SELECT *, true AS picked FROM {scan})"  # noqa: S608 - our fragments only
        present = self.info.columns
        ranks = [rank for column, rank in (
            ("mane_select", "coalesce(mane_select, false) DESC"),
            ("biotype", "coalesce(biotype = 'protein_coding', false) DESC"),
            ("impact", IMPACT_RANK), ("transcript", "transcript NULLS LAST")) if column in present]
        pick = (f"row_number() OVER (PARTITION BY chrom, pos, ref, alt ORDER BY "
                f"{', '.join([*ranks, 'file_row_number'])}) = 1")
        return f"(SELECT *, {pick} AS picked FROM {scan})"  # noqa: S608 - our fragments only

    @property
    def has_coordinates(self) -> bool:
        return {"chrom", "pos", "ref", "alt"} <= self.info.columns

    def column(self, name: str) -> str:
        return name if name in self.info.columns else f"NULL AS {name}"

    def order(self, query: VariantQuery) -> str:
        """ORDER BY, or nothing when the file's own order is the requested one (DuckDB keeps
        insertion order, so an export in file order streams without sorting everything)."""
        if query.in_file_order and self.info.has_picked:
            return ""
        return query.order_by(self.info)

    def row_select(self, query: VariantQuery, *, genotypes: bool = True) -> str:
        """The API row: the TSV columns first (as before), then what this file adds (without
        `genotypes`: not the per-sample list, the widest column)."""
        parts = [self.column(name) for name in (*COLUMNS, *EXTRA_COLUMNS)]
        key = VARIANT_KEY_SQL if self.has_coordinates else "NULL"
        parts += ["picked", f"{key} AS variant_key",
                  f"{af_column(query, self.info)} AS af"]
        if self.info.single_sample:
            parts += list(SINGLE_SAMPLE_COLUMNS)
        if self.info.has_samples:
            parts.append("carriers")
        if self.info.has_genotypes and genotypes:
            parts.append("genotypes")
        return ", ".join(parts)

    def rows(self, names: list[str], values: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """Rows as dicts; per-sample genotypes named after their samples."""
        samples = self.info.samples
        out = []
        for value in values:
            row = dict(zip(names, value, strict=True))
            if "genotypes" in row:
                row["genotypes"] = sample_genotypes(samples, row["genotypes"])
            out.append(row)
        return out


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def zygosity_sql(path: Path, info: ResultInfo, out: Path) -> str:
    """COPY the by-sample copy (see Scan) of the result at `path` to `out`.

    Run on one thread: DuckDB then keeps insertion order, so row i of the copy is row i of
    the result (its row numbers need not be stored: 16 MB per 4M rows, read by every scan).
    Row groups as the engine's (65,536 rows): at 16,384 every 4M-row scan paid ~2x for
    the per-group overhead of ~40 columns (a sample filter's count 46 vs 85 ms), for ~40 MB
    less while the copy is written."""
    columns = ", ".join(f"genotypes[{i}].zygosity AS {ZYGOSITY_PREFIX}{i}"
                        for i in range(1, len(info.samples) + 1))
    return (f"COPY (SELECT * EXCLUDE (genotypes), {columns} FROM "  # noqa: S608
            f"read_parquet('{_quoted(path)}')) "
            f"TO '{_quoted(out)}' (FORMAT parquet, ROW_GROUP_SIZE 65536)")


def sample_genotypes(samples: tuple[str, ...], structs: Any) -> list[dict[str, Any]] | None:
    if structs is None:
        return None
    return [{"sample": samples[i] if i < len(samples) else f"sample{i + 1}",
             "gt": item.get("gt"), "zygosity": item.get("zygosity"),
             "depth": item.get("depth"), "gq": item.get("gq")}
            for i, item in enumerate(structs) if isinstance(item, dict)]


__all__ = ["Compiled", "Scan", "sample_genotypes"]
