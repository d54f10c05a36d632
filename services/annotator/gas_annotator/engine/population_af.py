"""Every population allele frequency of the bundle, as INFO fields and result columns.

The bundle lists each known-variant file's AF fields with a result column and a label
(reference/bundle.py). The default one (the manifest's ``af_field``) keeps its INFO key GAS_AF
and fills ``allele_frequency`` as before; every other one is copied by the same annotate pass
into ``GAS_AF_<NAME>`` (``af_kg_afr`` -> GAS_AF_KG_AFR) and becomes an ``af_<name>`` column.
The Parquet metadata ``gas.af_fields`` lists them in display order, ``gas.af_default`` names the
column ``allele_frequency`` copies.
"""

from __future__ import annotations

import json

from gas_annotator.engine.chunk_models import DEFAULT_AF_KEY, KnownFile
from gas_annotator.reference import Bundle


def info_key(column: str) -> str:
    return "GAS_AF_" + column.removeprefix("af_").upper()


def known_files(bundle: Bundle) -> list[KnownFile]:
    """What annotate copies from each known file of the bundle."""
    default = bundle.af_default()
    extra: dict[int, list[tuple[str, str]]] = {}
    for i, entry in bundle.af_fields():
        if default is not None and (i, entry["column"]) == (default[0], default[1]["column"]):
            continue
        extra.setdefault(i, []).append((entry["field"], info_key(entry["column"])))
    return [
        KnownFile(
            path=str(path),
            id_is_rsid=k.id_is_rsid,
            af=k.af_field,
            clnsig=k.clnsig_field,
            extra_af=tuple(extra.get(i, [])),
        )
        for i, (k, path) in enumerate(bundle.known_paths())
    ]


def af_columns(bundle: Bundle) -> tuple[tuple[str, str], ...]:
    """(column, INFO key) per AF field, display order; the default's key is GAS_AF."""
    default = bundle.af_default()
    out = []
    for i, entry in bundle.af_fields():
        is_default = default is not None and (i, entry["column"]) == (
            default[0],
            default[1]["column"],
        )
        out.append((entry["column"], DEFAULT_AF_KEY if is_default else info_key(entry["column"])))
    return tuple(out)


def af_metadata(bundle: Bundle) -> dict[str, str]:
    """The Parquet key-value metadata the web reads: gas.af_fields and gas.af_default."""
    default = bundle.af_default()
    fields = [
        {"column": e["column"], "field": e["field"], "label": e["label"]}
        for _i, e in bundle.af_fields()
    ]
    return {
        "gas.af_fields": json.dumps(fields),
        "gas.af_default": default[1]["column"] if default is not None else "",
    }
