"""Links from a variant to the public databases: built from its ids and coordinates, with URL
templates from the web settings (GAS_LINK_*)."""

from __future__ import annotations

import pytest

from gas_web.app.variants.links import LinkTemplates, rsids, variant_links
from gas_web.settings import WebSettings


def test_link_templates_come_from_the_gas_link_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAS_LINK_DBSNP", "https://mirror.example.org/snp/{rsid}")
    monkeypatch.setenv("GAS_LINK_GNOMAD",
                       "https://gnomad.example.org/v/{chrom}-{pos}-{ref}-{alt}?dataset=gnomad_r3")
    templates = WebSettings(auth_mode="dev").link_templates
    links = {link["name"]: link["url"] for link in variant_links(
        templates, assembly="GRCh38", chrom="chr21", pos=10, ref="A", alt="G", ids=["rs7"])}
    assert links["dbsnp"] == "https://mirror.example.org/snp/rs7"
    assert links["gnomad"] == "https://gnomad.example.org/v/21-10-A-G?dataset=gnomad_r3"
    assert links["clinvar"] == "https://www.ncbi.nlm.nih.gov/clinvar/?term=rs7"  # default


@pytest.mark.parametrize("template", ["https://x.example.org/{user}", "javascript:{rsid}"])
def test_a_link_template_with_an_unknown_field_or_scheme_is_refused(
    monkeypatch: pytest.MonkeyPatch, template: str
) -> None:
    monkeypatch.setenv("GAS_LINK_ENSEMBL_VARIANT", template)
    with pytest.raises(ValueError, match="GAS_LINK_ENSEMBL_VARIANT"):
        WebSettings(auth_mode="dev")


def test_only_dbsnp_ids_get_dbsnp_links_and_other_assemblies_get_no_gnomad_link() -> None:
    assert rsids("rs1;COSV123,rs2", "rs1") == ["rs1", "rs2"]
    links = variant_links(LinkTemplates(), assembly="GRCh37", chrom="1", pos=5, ref="C",
                          alt="T", ids=[])
    assert links == []  # no rsID, and gnomAD r4 / Ensembl's main site are GRCh38
    symbolic = variant_links(LinkTemplates(), assembly="GRCh38", chrom="1", pos=5, ref="C",
                             alt="<DEL>", ids=[])
    assert [link["name"] for link in symbolic] == ["ensembl"]
