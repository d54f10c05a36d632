"""The variant browser's data layer: queries, pages, summaries, details and exports over a
job's result Parquet (see store.py). Importers use this package's names."""

from gas_web.app.variants.info import AfField, ResultInfo
from gas_web.app.variants.links import LinkTemplates
from gas_web.app.variants.presets import PRESETS, Preset
from gas_web.app.variants.query import (
    CARRIERS,
    COLUMNS,
    IMPACTS,
    MAX_OFFSET,
    MAX_PAGE,
    SORTS,
    VIEWS,
    ZYGOSITIES,
    VariantQuery,
    decode_cursor,
    encode_cursor,
    parse_variant_key,
    query_from_params,
    query_params,
    variant_key,
)
from gas_web.app.variants.store import ExportFormat, VariantPage, VariantStore

__all__ = [
    "CARRIERS", "COLUMNS", "IMPACTS", "MAX_OFFSET", "MAX_PAGE", "PRESETS", "SORTS", "VIEWS",
    "ZYGOSITIES", "AfField", "ExportFormat", "LinkTemplates", "Preset", "ResultInfo",
    "VariantPage", "VariantQuery", "VariantStore", "decode_cursor", "encode_cursor",
    "parse_variant_key", "query_from_params", "query_params", "variant_key",
]
