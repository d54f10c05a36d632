"""The results browser, variant detail page and filtered export as HTML (no browser), on result
files in the issue-13 layout (picked rows, AF fields, genotypes) written by variants_parquet;
expectations are computed from the Python records the files were made of."""

from __future__ import annotations

import functools
import gzip
import html
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from gas_core.jobs import Job, JobRepository, StorageState
from tests.services.web import variants_parquet as vp
from tests.services.web.conftest import MakeJob
from tests.services.web.test_isolation import dev_login

PLP_SUMMARY = {"clinvar_pathogenic_count": 1, "clinvar_pathogenic": [
    {"chrom": "1", "pos": 100, "id": "rs100", "ref": "A", "alt": "G", "gene": "GENEA",
     "transcript": "TA1", "consequence": "missense_variant", "protein_change": "p.Arg5Gly",
     "clinvar": "pathogenic"}]}


@pytest.fixture(scope="module")
def make_job(make_job: MakeJob) -> MakeJob:
    """Jobs whose stored summary lists one ClinVar P/LP variant."""
    return functools.partial(make_job, summary=PLP_SUMMARY)


@pytest.fixture(scope="module")
def single(make_job: MakeJob) -> tuple[Job, list[vp.Variant]]:
    return make_job("pages-single", samples=1)


@pytest.fixture(scope="module")
def multi(make_job: MakeJob) -> tuple[Job, list[vp.Variant]]:
    return make_job("pages-multi")


@pytest.fixture
def as_owner(client: TestClient) -> Iterator[Callable[[Job], TestClient]]:
    def sign_in(job: Job) -> TestClient:
        dev_login(client, job.user_id)
        return client

    yield sign_in
    client.cookies.clear()


def page(client: TestClient, job: Job, path: str = "/results", **params: Any) -> str:
    response = client.get(f"/jobs/{job.job_id}{path}", params=params,
                          headers={"Accept": "text/html"})
    assert response.status_code == 200, response.text[:2000]
    return response.text


def total(text: str) -> int:
    return int(re.search(r'id="row-count" data-total="(\d+)"', text).group(1))  # type: ignore[union-attr]


def carriers_of(data: list[vp.Variant]) -> list[vp.Variant]:
    return [v for v in data if v.carriers > 0]


def test_results_show_one_row_per_carrier_site_with_its_genotype_and_toggles_widen_it(
    as_owner: Callable[[Job], TestClient], single: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = single
    client = as_owner(job)
    text = page(client, job)
    # Default: one row per variant, only the sites the sample carries.
    assert total(text) == len(carriers_of(data))
    assert "one row per variant" in text and 'id="view-variant" value="variant" checked' in text
    assert 'id="carriers" name="carriers" value="all" >' in text  # the toggle, off
    assert '<span class="font-monospace">0/1</span>' in text and "zygosity-het" in text
    # rsIDs link to the variant's detail page, keeping the view.
    assert f'href="/jobs/{job.job_id}/variants/1-100-A-G" class="known-id">rs100</a>' in text
    # Show all sites, then every transcript.
    everything = page(client, job, carriers="all")
    assert total(everything) == len(data)
    assert "zygosity-hom_ref" in everything
    every_row = page(client, job, carriers="all", view="transcript")
    assert total(every_row) == sum(len(v.rows) for v in data)
    assert "one per variant and transcript" in every_row
    # A context row (no transcript) names the nearest gene and its distance.
    assert "nearest GENEB, 1,200 bp" in everything
    het = page(client, job, zygosity="het")
    assert total(het) == sum(1 for v in data if vp.ZYGOSITY[v.gts[0]] == "het")


def test_a_multi_sample_file_offers_a_sample_selector_and_shows_carrier_counts(
    as_owner: Callable[[Job], TestClient], multi: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = multi
    client = as_owner(job)
    text = page(client, job)
    assert total(text) == len(carriers_of(data))
    assert '<option value="S2" >S2</option>' in text and '<td class="carriers">' in text
    s2 = page(client, job, sample="S2")
    assert total(s2) == sum(1 for v in data if vp.ZYGOSITY[v.gts[1]] in ("het", "hom_alt"))
    assert '<option value="S2" selected>S2</option>' in s2 and 'class="genotype' in s2


def test_the_af_field_in_use_and_the_keep_no_af_switch_are_stated_on_screen(
    as_owner: Callable[[Job], TestClient], single: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = single
    client = as_owner(job)
    text = page(client, job, carriers="all", max_af="0.01")
    # The bundle's default field is offered once, as the default.
    assert ">gnomAD exomes (default) (gnomADe_AF)</option>" in text
    assert '<option value="af_gnomade"' not in text
    assert ">1000 Genomes global (AF)</option>" in text
    note = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", text.split('id="af-note">', 1)[1]
                                      .split("</p>", 1)[0]))
    assert "Max AF filters on gnomAD exomes" in note and "are dropped" in note
    assert total(text) == sum(1 for v in data if v.af_gnomade is not None and v.af_gnomade <= 0.01)
    kept = page(client, job, carriers="all", max_af="0.01", keep_no_af="true")
    assert "are <strong>kept</strong>" in kept.split('id="af-note">', 1)[1].split("</p>", 1)[0]
    assert total(kept) == sum(1 for v in data if v.af_gnomade is None or v.af_gnomade <= 0.01)
    kg = page(client, job, carriers="all", max_af="0.01", af_field="af_kg_global")
    assert '<option value="af_kg_global" selected>' in kg
    assert "Max AF filters on <strong>1000 Genomes global</strong>" in kg
    assert total(kg) == sum(1 for v in data
                            if v.af_kg_global is not None and v.af_kg_global <= 0.01)


def test_presets_are_links_that_apply_their_filters(
    as_owner: Callable[[Job], TestClient], single: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = single
    client = as_owner(job)
    text = page(client, job, carriers="all")
    for preset in ("clinvar-plp", "rare-coding", "lof"):
        assert f'id="preset-{preset}"' in text
    link = html.unescape(re.search(r'href="([^"]+)" id="preset-lof"', text).group(1))  # type: ignore[union-attr]
    assert "preset=lof" in link and "carriers=all" in link  # keeps how rows are shown
    lof = client.get(link).text
    severe = {"stop_gained", "frameshift_variant", "splice_donor_variant",
              "splice_acceptor_variant", "start_lost", "stop_lost"}
    assert total(lof) == sum(1 for v in data if any(r["picked"] and r["consequence"] in severe
                                                    for r in v.rows))
    assert 'aria-current="true">Loss of function</a>' in lof


def test_the_filtered_summary_follows_the_filter(
    as_owner: Callable[[Job], TestClient], single: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = single
    client = as_owner(job)
    text = page(client, job, "/results/summary", carriers="all")
    assert f'id="total-variants">{len(data):,}<' in text
    assert 'data-scope="filtered"' in text and text.count('<svg class="chart"') == 3
    panel = text.split('id="clinvar-plp"', 1)[1].split("</table>", 1)[0]
    assert "GENEA" in panel and "p.Arg5Gly" in panel and "/variants/1-100-A-G" in panel
    assert ('href="https://www.ncbi.nlm.nih.gov/clinvar/?term=rs100" target="_blank" '
            'rel="noopener noreferrer"') in panel
    narrowed = page(client, job, "/results/summary", carriers="all", gene="GENEC")
    assert 'id="total-variants">1<' in narrowed and 'id="total-high">1<' in narrowed
    consequences = narrowed.split('aria-label="Variants by consequence term"', 1)[1]
    consequences = consequences.split("</svg>", 1)[0]
    assert "frameshift_variant" in consequences and "intron_variant" not in consequences
    assert "None in this filtered set" in narrowed


def test_a_new_filters_results_page_shows_its_rows_and_loads_its_summary_on_its_own(
    as_owner: Callable[[Job], TestClient], single: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = single
    client = as_owner(job)
    client.app.state.variants.forget_totals()  # type: ignore[attr-defined]
    text = page(client, job, carriers="all", gene="GENEA")
    assert 'id="row-count"' in text and 'id="total-variants"' not in text
    slot = html.unescape(re.search(r'data-summary-src="([^"]+)"', text).group(1))  # type: ignore[union-attr]
    assert slot == f"/jobs/{job.job_id}/results/summary?gene=GENEA&carriers=all"
    inline = html.unescape(re.search(r'href="([^"]+)" id="summary-inline"', text).group(1))  # type: ignore[union-attr]
    assert "summary=inline" in inline and "gene=GENEA" in inline
    genea = sum(1 for v in data if any(r["gene"] == "GENEA" for r in v.rows if r["picked"]))
    fragment = client.get(slot, headers={"Accept": "text/html"})
    assert fragment.status_code == 200 and "<html" not in fragment.text
    assert f'id="total-variants">{genea:,}<' in fragment.text
    # Made once, the summary is kept: the same filter's pages show it inline.
    again = page(client, job, carriers="all", gene="GENEA", page=1)
    assert f'id="total-variants">{genea:,}<' in again and "data-summary-src" not in again
    # Without script: the page asked for it inline computes it there.
    client.app.state.variants.forget_totals()  # type: ignore[attr-defined]
    asked = client.get(inline, headers={"Accept": "text/html"}).text
    assert f'id="total-variants">{genea:,}<' in asked and "data-summary-src" not in asked


def test_the_export_links_download_exactly_the_filtered_view(
    as_owner: Callable[[Job], TestClient], single: tuple[Job, list[vp.Variant]]
) -> None:
    job, _ = single
    client = as_owner(job)
    text = page(client, job, carriers="all", impact="HIGH,MODERATE", sort="gene")
    shown = total(text)
    tsv_href = html.unescape(re.search(r'href="([^"]+)" id="download-tsv"', text).group(1))  # type: ignore[union-attr]
    vcf_href = html.unescape(re.search(r'href="([^"]+)" id="download-vcf"', text).group(1))  # type: ignore[union-attr]
    assert tsv_href.startswith(f"/jobs/{job.job_id}/results/export?") and "format=tsv" in tsv_href
    tsv = client.get(tsv_href)
    assert tsv.status_code == 200 and "attachment" in tsv.headers["content-disposition"]
    lines = tsv.text.splitlines()
    assert lines[0].startswith("chrom\tpos") and len(lines) - 1 == shown
    assert {line.split("\t")[9] for line in lines[1:]} <= {"HIGH", "MODERATE"}
    vcf = client.get(vcf_href)
    assert vcf.status_code == 200
    records = [line for line in gzip.decompress(vcf.content).decode().splitlines()
               if line and not line.startswith("#")]
    assert len(records) == shown


def test_the_variant_page_lists_transcripts_frequencies_genotypes_and_outbound_links(
    as_owner: Callable[[Job], TestClient], single: tuple[Job, list[vp.Variant]]
) -> None:
    job, _ = single
    client = as_owner(job)
    text = page(client, job, "/variants/1-100-A-G", gene="GENEA", carriers="all")
    assert text.count('class="transcript-row') == 2
    assert "p.Arg5Gly" in text and "p.Arg5Ter" in text and "MANE Select" in text
    assert "gnomAD exomes" in text and "0.001" in text and "1000 Genomes global" in text
    assert "pathogenic" in text.split('id="clinvar">', 1)[1].split("</dd>", 1)[0]
    assert "HG00096" in text and "0/1" in text
    links = re.findall(r'<a href="([^"]+)" target="_blank" rel="noopener noreferrer" '
                       r'class="outbound-link" data-link="(\w+)"', text)
    names = {name for _, name in links}
    assert {"dbsnp", "clinvar", "gnomad", "ensembl"} <= names
    assert any("rs100" in url for url, name in links if name == "dbsnp")
    back = html.unescape(re.search(r'href="([^"]+)" id="back-to-results"', text).group(1))  # type: ignore[union-attr]
    assert back == f"/jobs/{job.job_id}/results?gene=GENEA&carriers=all"


def test_a_page_past_the_end_says_so_and_links_to_the_last_page(
    as_owner: Callable[[Job], TestClient], single: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = single
    client = as_owner(job)
    text = page(client, job, carriers="all", page="9")
    pages = -(-len(data) // 50)
    message = re.sub(r"\s+", " ", text.split('id="past-end"', 1)[1].split("</div>", 1)[0])
    assert f"No rows on page 9; the filtered set has {len(data)} rows." in message
    last = html.unescape(re.search(r'href="([^"]+)" id="last-page-link"', text).group(1))  # type: ignore[union-attr]
    assert f"page={pages}" in last and "carriers=all" in last
    assert total(client.get(last).text) == len(data)


def _signed_in_as(text: str) -> str:
    return re.sub(r"\s+", " ", text.split('id="signed-in-as">', 1)[1].split("<", 1)[0]).strip()


def _back_links(text: str) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'class="btn [^"]*back-link" href="([^"]+)"',
                                                 text)]


def test_error_pages_show_the_signed_in_user_and_lead_back_to_the_same_filters(
    as_owner: Callable[[Job], TestClient], single: tuple[Job, list[vp.Variant]],
    make_job: MakeJob, repository: JobRepository,
) -> None:
    job, _ = single
    client = as_owner(job)
    results = f"/jobs/{job.job_id}/results"
    html_only = {"Accept": "text/html"}
    # 400: a bad value; the way back keeps the other filters and drops the bad one.
    bad = client.get(results, params={"gene": "GENEA", "max_af": "lots"}, headers=html_only)
    assert bad.status_code == 400 and "between 0 and 1" in bad.text
    assert _signed_in_as(bad.text) == job.user_id
    assert _back_links(bad.text)[0] == f"{results}?gene=GENEA"
    unknown_af = client.get(results, params={"gene": "GENEA", "af_field": "af_nothing"},
                            headers=html_only)
    assert unknown_af.status_code == 400 and _back_links(unknown_af.text)[0] == \
        f"{results}?gene=GENEA"
    # 404: an unknown variant, back to the results with the same filters.
    missing = client.get(f"/jobs/{job.job_id}/variants/1-999-A-G", params={"gene": "GENEA"},
                         headers=html_only)
    assert missing.status_code == 404 and _signed_in_as(missing.text) == job.user_id
    assert _back_links(missing.text)[0] == f"{results}?gene=GENEA"
    # 404 for an unknown address and another user's job: the user is still shown.
    for path in ("/no/such/page", "/jobs/01ARZ3NDEKTSV4RRFFQ69G5FAV/results"):
        response = client.get(path, headers=html_only)
        assert response.status_code == 404 and _signed_in_as(response.text) == job.user_id
        assert _back_links(response.text) == []
    # 409: archived results; back to the job.
    archived, _ = make_job(job.user_id, samples=1)
    moved = repository.transition_storage(archived, StorageState.ARCHIVING)
    repository.transition_storage(moved, StorageState.ARCHIVED, archive_key="k")
    blocked = client.get(f"/jobs/{archived.job_id}/results", params={"gene": "GENEA"},
                         headers=html_only)
    assert blocked.status_code == 409 and _signed_in_as(blocked.text) == job.user_id
    assert _back_links(blocked.text) == [f"/jobs/{archived.job_id}"]


def test_the_job_page_lists_the_files_clinvar_pathogenic_variants_with_detail_links(
    as_owner: Callable[[Job], TestClient], single: tuple[Job, list[vp.Variant]]
) -> None:
    job, _ = single
    client = as_owner(job)
    text = page(client, job, "")
    panel = text.split('id="clinvar-plp"', 1)[1].split("</table>", 1)[0]
    assert "whole file" in panel and "GENEA" in panel and "p.Arg5Gly" in panel
    assert f'href="/jobs/{job.job_id}/variants/1-100-A-G" class="plp-link"' in panel
