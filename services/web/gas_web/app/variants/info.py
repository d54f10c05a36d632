"""What a job's result Parquet holds: its columns and the annotator's key-value metadata.

Read from the file's footer with DuckDB (`parquet_kv_metadata`, the web image has no pyarrow).
Column names used in SQL come only from here, never from a request: a request names an AF field,
and only a name found in this file's own columns is ever put into a query.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from gas_core.logging import get_logger

log = get_logger(__name__)

DEFAULT_AF = "allele_frequency"
# The annotator's AF columns: `af_` and a lower-case name (checked again before any SQL use).
AF_COLUMN = re.compile(r"^af_[a-z0-9_]{1,60}$")


@dataclass(frozen=True)
class AfField:
    """One population allele-frequency column: `af_gnomade` holds `gnomADe_AF`, "gnomAD exomes"."""

    column: str
    field: str
    label: str


@dataclass(frozen=True)
class ResultInfo:
    columns: frozenset[str]
    af_fields: tuple[AfField, ...] = ()
    af_default: str | None = None
    samples: tuple[str, ...] = ()
    samples_truncated: bool = False
    row_count: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def has_picked(self) -> bool:
        return "picked" in self.columns

    @property
    def has_samples(self) -> bool:
        return "carriers" in self.columns

    @property
    def single_sample(self) -> bool:
        """One sample: flat genotype/zygosity/depth/gq columns."""
        return "zygosity" in self.columns

    @property
    def has_genotypes(self) -> bool:
        """Per-sample genotypes are stored (at most 100 samples)."""
        return "genotypes" in self.columns

    def af_columns(self) -> dict[str, AfField]:
        """AF fields a query may name: the default column and every af_* column in the file."""
        fields = {DEFAULT_AF: AfField(DEFAULT_AF, self._default_field(), self._default_label())}
        for af in self.af_fields:
            fields[af.column] = af
        return fields

    def _default_source(self) -> AfField | None:
        return next((af for af in self.af_fields if af.column == self.af_default), None)

    def _default_field(self) -> str:
        source = self._default_source()
        return source.field if source else DEFAULT_AF

    def _default_label(self) -> str:
        source = self._default_source()
        return f"{source.label} (default)" if source else "Allele frequency (default)"

    def to_api(self) -> dict[str, Any]:
        return {
            "af_fields": [{"column": af.column, "field": af.field, "label": af.label}
                          for af in self.af_columns().values()],
            "af_default": self.af_default,
            "samples": list(self.samples),
            "samples_truncated": self.samples_truncated,
            "has_samples": self.has_samples,
            "single_sample": self.single_sample,
            "has_genotypes": self.has_genotypes,
            "has_picked": self.has_picked,
            "rows": self.row_count,
        }


def read_info(db: duckdb.DuckDBPyConnection, path: Path) -> ResultInfo:
    quoted = str(path).replace("'", "''")
    cursor = db.cursor()
    try:
        columns = frozenset(cursor.sql(f"SELECT * FROM read_parquet('{quoted}') LIMIT 0").columns)  # noqa: S608
        metadata: dict[str, str] = {}
        for key, value in cursor.execute(
            "SELECT decode(key), decode(value) FROM parquet_kv_metadata(?)", [str(path)]
        ).fetchall():
            if isinstance(key, str) and key.startswith("gas.") and isinstance(value, str):
                metadata[key] = value
        counted = cursor.execute(
            "SELECT coalesce(sum(num_rows), 0) FROM parquet_file_metadata(?)", [str(path)]
        ).fetchone()
    finally:
        cursor.close()
    af_fields = tuple(af for af in _json_list(metadata.get("gas.af_fields"), _af_field)
                      if af.column in columns)
    default = metadata.get("gas.af_default")
    return ResultInfo(
        columns=columns,
        af_fields=af_fields,
        af_default=default if default in {af.column for af in af_fields} else None,
        samples=tuple(_json_list(metadata.get("gas.samples"), _sample)),
        samples_truncated=metadata.get("gas.samples_truncated") == "true",
        row_count=int(counted[0]) if counted else 0,
        extra=metadata,
    )


def _json_list(text: str | None, convert: Any) -> list[Any]:
    if not text:
        return []
    try:
        items = json.loads(text)
    except ValueError:
        log.warning("result metadata is not JSON; ignored", value=text[:80])
        return []
    if not isinstance(items, list):
        return []
    return [converted for item in items if (converted := convert(item)) is not None]


def _af_field(item: Any) -> AfField | None:
    if not isinstance(item, dict):
        return None
    column, name, label = item.get("column"), item.get("field"), item.get("label")
    if not isinstance(column, str) or not AF_COLUMN.match(column):
        return None
    return AfField(column, str(name or column), str(label or name or column))


def _sample(item: Any) -> str | None:
    return item if isinstance(item, str) else None
