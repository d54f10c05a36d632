"""The results browser in real headless Chromium against the real local stack, on one job
annotated from the stack's sample (the real HG00096 chr21 sample when GAS_TEST_REFERENCE is
set): one-row vs transcript view, the variant detail page and its outbound links, a filtered
export whose row count equals the page's total, a preset, filtered charts whose labels fit,
the genotype toggle (chr21 only), and the jobs table on a 390 px wide phone screen.

Each test checks several things on the one job, so the module annotates once.
Screenshots go to test-artifacts/browser-results/ (gitignored).
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.browser.local_stack import LocalStack
from tests.browser.test_web_flow import Visit
from tests.services.web.web_helpers import CHR21_SAMPLE, shared_reference
from tests.support import REPO_ROOT, require_or_skip

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser-results"
# HG00096 on the chr21 slice (issue 13): 132 sites, 2 of them carried by the sample.
HG00096_SITES = 132
HG00096_CARRIED = 2
PHONE = {"width": 390, "height": 844}



@dataclass
class Finished:
    visit: Visit
    user: str
    job_id: str
    sample: Path

    @property
    def results(self) -> str:
        return f"/jobs/{self.job_id}/results"


@pytest.fixture(scope="module")
def finished(stack: LocalStack, browser: Any, reference: tuple[Path, Path],
             artifacts: Path) -> Iterator[Finished]:
    visit = Visit(browser, stack, artifacts, "results")
    user = visit.sign_in_new("erin")
    job_id = visit.annotate(reference[1])
    yield Finished(visit, user, job_id, reference[1])
    assert visit.problems == [], visit.problems  # no CSP violations, no script errors
    visit.context.close()


def row_total(page: Any) -> int:
    return int(page.get_attribute("#row-count", "data-total"))


def api(stack: LocalStack, finished: Finished, path: str, **params: str) -> Any:
    response = httpx.get(f"{stack.web_url}/api/v1/jobs/{finished.job_id}/variants{path}",
                         params=params, headers={"Authorization": f"Bearer dev:{finished.user}"},
                         timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def chart_labels(page: Any, index: int) -> list[str]:
    """The bar labels of the results page's index-th chart (SVG text has no innerText)."""
    labels = page.locator("#charts svg.chart").nth(index).locator("text.chart-label")
    return list(labels.evaluate_all("texts => texts.map(t => t.textContent)"))


def download(page: Any, selector: str, tmp_path: Path) -> Path:
    with page.expect_download() as info:
        page.click(selector)
    saved = tmp_path / info.value.suggested_filename
    info.value.save_as(saved)
    return saved


def test_views_detail_links_filtered_export_and_a_preset(
    stack: LocalStack, finished: Finished, tmp_path: Path
) -> None:
    visit, page = finished.visit, finished.visit.page
    page.goto(f"{finished.results}?carriers=all")
    variants = row_total(page)
    assert variants == api(stack, finished, "/summary", carriers="all")["totals"]["variants"]
    assert "one row per variant" in page.inner_text("#row-count")

    # Every transcript: the same variants, one row per transcript.
    page.click("label[for=view-transcript]")  # a button-styled radio
    page.click("#apply-filters")
    page.wait_for_url("**view=transcript**")
    rows = row_total(page)
    assert rows == api(stack, finished, "", carriers="all", view="transcript", limit="1")["total"]
    assert rows >= variants
    if finished.sample.name == CHR21_SAMPLE:
        assert rows > variants  # APP and its neighbours have several transcripts
    visit.shot("transcript-view")

    # A known variant's detail page: every transcript, and links out in a new tab.
    page.goto(f"{finished.results}?carriers=all&known=true")
    link = page.locator("#variants a.known-id").first
    known_id = link.inner_text()
    link.click()
    page.wait_for_selector("#transcript-table")
    assert page.locator("tr.transcript-row").count() >= 1
    outbound = page.locator("a.outbound-link")
    names = set(outbound.evaluate_all("links => links.map(a => a.dataset.link)"))
    assert {"dbsnp", "clinvar", "ensembl", "gnomad"} <= names, names
    for anchor in outbound.all():
        assert anchor.get_attribute("target") == "_blank"
        assert anchor.get_attribute("rel") == "noopener noreferrer"
    dbsnp = page.locator("a.outbound-link[data-link=dbsnp]").first.get_attribute("href")
    assert known_id.split(";")[0] in dbsnp
    visit.shot("detail")
    page.click("#back-to-results")
    assert parse_qs(urlsplit(page.url).query) == {"carriers": ["all"], "known": ["true"]}

    # Export the filtered, sorted view: as many rows as the page says, in its order.
    # Filter on the commonest impact (MODIFIER on the demo, MODERATE on HG00096's sites).
    impact = api(stack, finished, "/summary", carriers="all")["impacts"][0]["impact"]
    page.goto(f"{finished.results}?carriers=all&impact={impact}&sort=gene")
    shown = row_total(page)
    assert 0 < shown < variants
    tsv = download(page, "#download-tsv", tmp_path)
    assert tsv.name.endswith(".filtered.tsv")
    records = list(csv.DictReader(io.StringIO(tsv.read_text()), delimiter="\t"))
    assert len(records) == shown and {r["impact"] for r in records} == {impact}
    genes = [r["gene"] for r in records if r["gene"]]
    assert genes == sorted(genes)
    vcf = download(page, "#download-vcf", tmp_path)
    lines = gzip.decompress(vcf.read_bytes()).decode().splitlines()
    assert sum(1 for line in lines if line and not line.startswith("#")) == shown

    # A preset: the same rows as the API's answer for it.
    page.goto(f"{finished.results}?carriers=all")
    page.click("#preset-lof")
    page.wait_for_url("**preset=lof**")
    assert page.get_attribute("#preset-lof", "aria-current") == "true"
    assert row_total(page) == api(stack, finished, "", preset="lof", carriers="all",
                                  limit="1")["total"]
    visit.shot("preset-lof")


def test_the_charts_follow_the_filter_and_no_label_is_cut(
    stack: LocalStack, finished: Finished
) -> None:
    visit, page = finished.visit, finished.visit.page
    page.goto(f"{finished.results}?carriers=all")
    # A new filter's rows come first; app.js then puts the summary fragment in its slot.
    assert page.get_attribute("#charts", "data-scope") == "filtered"
    assert page.query_selector("[data-summary-src]") is None
    everything = int(page.inner_text("#total-variants").replace(",", ""))
    labels = chart_labels(page, 0)
    summary = api(stack, finished, "/summary", carriers="all")
    assert set(labels) >= {c["term"] for c in summary["consequences"]
                           if c["term"] in ("stop_gained", "missense_variant",
                                            "frameshift_variant", "splice_donor_variant")}
    # Every label starts inside its chart and ends before the bars begin.
    overflow = page.evaluate("""() => [...document.querySelectorAll('svg.chart')].flatMap(svg =>
        [...svg.querySelectorAll('text.chart-label')].map(t => {
          const box = t.getBBox();
          return {label: t.textContent, left: box.x,
                  right: box.x + box.width - Number(svg.dataset.labelWidth)};
        })).filter(b => b.left < 0 || b.right > 0)""")
    assert overflow == [], overflow
    visit.shot("charts")

    gene = summary["genes"][0]["gene"]
    page.fill("#gene", gene)
    page.click("#apply-filters")
    page.wait_for_url(f"**gene={gene}**")
    narrowed = int(page.inner_text("#total-variants").replace(",", ""))
    assert narrowed == summary["genes"][0]["count"] and narrowed < everything
    assert chart_labels(page, 2) == [gene]
    visit.shot("charts-filtered")


def test_the_genotype_toggle_on_the_hg00096_sample(finished: Finished) -> None:
    require_or_skip(shared_reference() is not None and finished.sample.name == CHR21_SAMPLE,
                    "the HG00096 sample needs the real chr21 data: set GAS_TEST_REFERENCE "
                    "(e.g. ../shared/refdata/grch38_chr21)")
    visit, page = finished.visit, finished.visit.page
    page.goto(finished.results)
    # By default only the sites the sample carries; its genotype is shown on each.
    assert row_total(page) == HG00096_CARRIED
    genotypes = page.locator("#variants td.genotype").all_inner_texts()
    assert len(genotypes) == HG00096_CARRIED
    assert all(("het" in g or "hom ALT" in g) for g in genotypes), genotypes
    visit.shot("carried-sites")
    page.check("#carriers")
    page.click("#apply-filters")
    page.wait_for_url("**carriers=all**")
    assert row_total(page) == HG00096_SITES
    assert page.locator("#variants .zygosity-hom_ref").count() > 0
    visit.shot("all-sites")


def test_the_jobs_table_fits_a_390px_wide_screen(
    browser: Any, stack: LocalStack, finished: Finished, artifacts: Path
) -> None:
    phone = Visit(browser, stack, artifacts, "phone", viewport=PHONE, is_mobile=True,
                  has_touch=True)
    # The menu (and its Sign in button) is collapsed on a phone: sign in on the form itself.
    phone.page.goto("/login")
    phone.page.fill("#username", finished.user)
    phone.page.click("button[type=submit]")
    phone.page.wait_for_selector("#signed-in-as", state="attached")
    phone.page.goto("/jobs")
    phone.page.wait_for_selector(f"tr[data-job-id='{finished.job_id}']")
    widths = phone.page.evaluate("""() => {
        const table = document.getElementById('jobs-table');
        return {page: document.documentElement.scrollWidth,
                table: table.scrollWidth, box: table.parentElement.clientWidth};
    }""")
    phone.shot("jobs")
    assert widths["page"] <= PHONE["width"], widths
    assert widths["table"] <= widths["box"], widths  # no sideways scroll inside the table
    assert finished.sample.name in phone.page.inner_text(f"tr[data-job-id='{finished.job_id}']")
    assert phone.problems == [], phone.problems
    phone.context.close()
