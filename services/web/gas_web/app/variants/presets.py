"""Built-in filter presets: named sets of query parameters (the same names as the URL's)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gas_web.app.core.errors import Problem

LOSS_OF_FUNCTION = ("stop_gained", "frameshift_variant", "splice_acceptor_variant",
                    "splice_donor_variant", "start_lost", "stop_lost")


@dataclass(frozen=True)
class Preset:
    id: str
    label: str
    description: str
    params: dict[str, str]

    def to_api(self) -> dict[str, Any]:
        return {"id": self.id, "label": self.label, "description": self.description,
                "params": dict(self.params)}


PRESETS: dict[str, Preset] = {preset.id: preset for preset in (
    Preset("clinvar-plp", "ClinVar P/LP",
           "Variants ClinVar classifies as pathogenic or likely pathogenic.",
           {"clinvar": "pathogenic,likely_pathogenic"}),
    Preset("rare-coding", "Rare coding",
           "HIGH or MODERATE impact with an allele frequency of at most 1 % (variants without "
           "a known frequency are left out).",
           {"impact": "HIGH,MODERATE", "max_af": "0.01"}),
    Preset("lof", "Loss of function",
           "Stop gained, frameshift, splice acceptor/donor, start lost or stop lost.",
           {"consequence": ",".join(LOSS_OF_FUNCTION)}),
)}


def preset_params(preset_id: str) -> dict[str, str]:
    preset = PRESETS.get(preset_id)
    if preset is None:
        raise Problem(400, f"Unknown preset {preset_id!r}; the presets are "
                           f"{', '.join(PRESETS)}.", title="Unknown preset",
                      errors=[{"field": "preset", "message": "is not a preset"}])
    return dict(preset.params)
