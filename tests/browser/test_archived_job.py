"""Archived and failed jobs in real headless Chromium against the real local stack: an
archived job's page keeps its summary charts, summary download and log (they are never
archived, docs/lifecycle.md), and a job that failed on bad input offers a log explaining why.

Screenshots go to test-artifacts/browser-archived/ (gitignored).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gas_core.jobs import StorageState
from tests.browser.local_stack import LocalStack
from tests.browser.test_web_flow import JOB_TIMEOUT_MS, Visit
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser-archived"



def test_an_archived_jobs_page_keeps_its_summary_charts_and_log(
    stack: LocalStack, browser: Any, reference: tuple[Path, Path], artifacts: Path,
    tmp_path: Path,
) -> None:
    sample = reference[1]
    visit = Visit(browser, stack, artifacts, "archived")
    page = visit.page
    user = visit.sign_in_new("carol")
    job_id = visit.annotate(sample)

    # Archive it as the archiver does: the state moves to archived and only the big files
    # leave the results bucket, so the summary and log objects are still there.
    job = stack.repository.get_job(user, job_id)
    job = stack.repository.transition_storage(job, StorageState.ARCHIVING)
    job = stack.repository.transition_storage(job, StorageState.ARCHIVED,
                                              archive_key=f"results/{user}/{job_id}/")
    results = stack.settings.names.results_bucket
    for kind in ("vcf", "vcf_index", "tsv", "parquet"):
        stack.aws.s3.delete_object(Bucket=results, Key=job.result_keys[kind])

    page.reload()
    page.wait_for_selector("#archived-note")
    assert page.inner_text("#job-storage") == "archived"
    assert page.locator("svg.chart").count() == 3
    assert page.query_selector("#browse-link") is None
    assert page.query_selector("#download-tsv") is None
    # The whole file's ClinVar P/LP panel stays too, without links to the (archived) table.
    assert page.locator("#clinvar-plp").count() == 1
    assert page.locator("#clinvar-plp a.plp-link").count() == 0
    visit.shot("archived")

    # The variant table is archived: its page says so, names the user, and leads to the job.
    response = page.goto(f"/jobs/{job_id}/results?gene=APP")
    assert response is not None and response.status == 409
    assert page.locator("#signed-in-as").count() == 1 and user in page.content()
    assert page.get_attribute("a.back-link", "href") == f"/jobs/{job_id}"
    # Chromium logs the expected 409 as a console error; nothing else may be there.
    visit.problems[:] = [p for p in visit.problems if "status of 409" not in p]
    page.goto(f"/jobs/{job_id}")

    with page.expect_download() as download_info:
        page.click("#download-summary")
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert job.summary is not None
    assert json.loads(saved.read_text())["variants"] == job.summary["variants"]

    page.click("#log-link")
    page.wait_for_selector("#log-text")
    assert page.inner_text("#log-text").strip()
    visit.shot("archived-log")
    assert visit.problems == [], visit.problems
    visit.context.close()


def test_a_job_that_failed_on_bad_input_offers_its_log(
    stack: LocalStack, browser: Any, artifacts: Path, tmp_path: Path,
) -> None:
    visit = Visit(browser, stack, artifacts, "failed")
    page = visit.page
    visit.sign_in_new("dave")
    bad = tmp_path / "broken.vcf"
    bad.write_text("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
                   "chr21\tnot-a-position\t.\tA\tG\t.\t.\t.\n")
    visit.annotate(bad, wait_for_results=False)
    page.wait_for_selector("#job-error", timeout=JOB_TIMEOUT_MS)
    reason = page.inner_text("#job-error p")
    visit.shot("failed")

    page.click("#log-link")
    page.wait_for_selector("#log-text")
    assert reason in page.inner_text("#log-text")
    visit.shot("failed-log")
    with page.expect_download() as download_info:
        page.click("a[href$='/download/log']")
    saved = tmp_path / download_info.value.suggested_filename
    download_info.value.save_as(saved)
    assert saved.name == "broken.log"
    assert reason in saved.read_text()
    assert visit.problems == [], visit.problems
    visit.context.close()
