"""Links from a variant to the public databases, built from its IDs and coordinates.

The URL templates are settings (GAS_LINK_*), so a mirror or another release can be used; they
take `{rsid}` or `{chrom}`, `{pos}`, `{ref}`, `{alt}` (chromosome without a `chr` prefix).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

RSID = re.compile(r"^rs[0-9]+$")
DEFAULTS = {
    "dbsnp": "https://www.ncbi.nlm.nih.gov/snp/{rsid}",
    "clinvar": "https://www.ncbi.nlm.nih.gov/clinvar/?term={rsid}",
    "gnomad": "https://gnomad.broadinstitute.org/variant/{chrom}-{pos}-{ref}-{alt}"
              "?dataset=gnomad_r4",
    "ensembl_variant": "https://www.ensembl.org/Homo_sapiens/Variation/Explore?v={rsid}",
    "ensembl_location": "https://www.ensembl.org/Homo_sapiens/Location/View?r={chrom}:{pos}-{pos}",
}
# gnomAD r4 and the Ensembl main site are GRCh38.
LINKED_ASSEMBLIES = frozenset({"GRCh38"})


@dataclass(frozen=True)
class LinkTemplates:
    dbsnp: str = DEFAULTS["dbsnp"]
    clinvar: str = DEFAULTS["clinvar"]
    gnomad: str = DEFAULTS["gnomad"]
    ensembl_variant: str = DEFAULTS["ensembl_variant"]
    ensembl_location: str = DEFAULTS["ensembl_location"]


def rsids(known_id: str | None, record_id: str | None = None) -> list[str]:
    """The dbSNP ids among a row's known ids and its VCF ID, in order, once each."""
    found: list[str] = []
    for text in (known_id, record_id):
        for raw in re.split(r"[;,|]", text or ""):
            item = raw.strip()
            if RSID.match(item) and item not in found:
                found.append(item)
    return found


def variant_links(
    templates: LinkTemplates, *, assembly: str, chrom: str, pos: int, ref: str, alt: str,
    ids: list[str],
) -> list[dict[str, Any]]:
    """[{name, label, url}]: dbSNP, ClinVar and Ensembl per rsID; gnomAD and (without an
    rsID) Ensembl's location view from the coordinates, for GRCh38 only."""
    links: list[dict[str, Any]] = []
    for rsid in ids:
        value = quote(rsid)
        links.append({"name": "dbsnp", "label": f"dbSNP {rsid}",
                      "url": templates.dbsnp.format(rsid=value)})
        links.append({"name": "clinvar", "label": f"ClinVar {rsid}",
                      "url": templates.clinvar.format(rsid=value)})
        links.append({"name": "ensembl", "label": f"Ensembl {rsid}",
                      "url": templates.ensembl_variant.format(rsid=value)})
    if assembly in LINKED_ASSEMBLIES:
        coords = {"chrom": quote(chrom.removeprefix("chr")), "pos": pos, "ref": quote(ref),
                  "alt": quote(alt)}
        if ref.isalpha() and alt.isalpha():  # gnomAD has no page for symbolic alleles
            links.append({"name": "gnomad", "label": "gnomAD v4",
                          "url": templates.gnomad.format(**coords)})
        if not ids:
            links.append({"name": "ensembl", "label": "Ensembl (location)",
                          "url": templates.ensembl_location.format(**coords)})
    return links
