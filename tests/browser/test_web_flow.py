"""A user's whole visit in real headless Chromium against the real local stack:
sign in, upload a VCF (straight to storage, with a progress bar), watch the job complete,
browse and filter the variants, download the TSV, sign out; another user cannot open the job.

Screenshots of each step go to test-artifacts/browser/ (gitignored).
"""

from __future__ import annotations

import csv
import io
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.browser.local_stack import LocalStack
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser"
JOB_TIMEOUT_MS = 120_000


class Visit:
    """One browser context (one person), recording CSP violations and page errors."""

    def __init__(self, browser: Any, stack: LocalStack, artifacts: Path, name: str,
                 **context_options: Any) -> None:
        self.context = browser.new_context(accept_downloads=True, base_url=stack.web_url,
                                           **context_options)
        self.context.set_default_timeout(15_000)
        self.page = self.context.new_page()
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.problems.append(m.text)
                     if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.problems.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(f"{r.method} {r.url}"))
        self.artifacts = artifacts
        self.name = name
        self.shots = 0

    def shot(self, label: str) -> None:
        self.shots += 1
        self.page.screenshot(path=str(self.artifacts / f"{self.name}-{self.shots:02d}-{label}.png"),
                             full_page=True)

    def sign_in(self, user: str) -> None:
        self.page.goto("/")
        self.page.click("text=Sign in")
        self.page.fill("#username", user)
        self.shot("login")
        self.page.click("button[type=submit]")
        self.page.wait_for_selector("#signed-in-as")

    def sign_in_new(self, prefix: str) -> str:
        """Sign in as a user nobody has been yet (`prefix-` and six hex digits); the user id."""
        user = f"{prefix}-{uuid.uuid4().hex[:6]}"
        self.sign_in(user)
        return user

    def annotate(self, vcf: Path, *, wait_for_results: bool = True) -> str:
        """Submit `vcf` from the annotate page and return the new job's id, once its page
        shows the results (or as soon as it opens)."""
        self.page.goto("/annotate")
        self.page.set_input_files("#file", str(vcf))
        self.page.click("#submit-button")
        self.page.wait_for_url("**/jobs/*", timeout=30_000)
        if wait_for_results:
            self.page.wait_for_selector("#browse-link", timeout=JOB_TIMEOUT_MS)
        return str(urlsplit(self.page.url).path.rsplit("/", 1)[1])


def test_a_user_annotates_browses_downloads_and_others_cannot_see_it(
    stack: LocalStack, browser: Any, reference: tuple[Path, Path], artifacts: Path,
    tmp_path: Path,
) -> None:
    sample = reference[1]
    alice = Visit(browser, stack, artifacts, "alice")
    page = alice.page
    user = alice.sign_in_new("alice")

    # The annotate page shows the size cap and refuses a non-VCF file in place.
    page.goto("/annotate")
    assert "accepts files up to" in page.inner_text("#size-cap")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a vcf")
    page.set_input_files("#file", str(notes))
    page.wait_for_selector("#annotate-error:not(.d-none)")
    assert "VCF" in page.inner_text("#annotate-error")
    alice.shot("wrong-file-type")

    # Upload straight to storage (cross-origin to the emulator, allowed by the bucket's CORS).
    job_id = alice.annotate(sample, wait_for_results=False)
    emulator = urlsplit(stack.settings.aws_endpoint_url or "").netloc
    inputs = stack.settings.names.inputs_bucket
    assert any(r.startswith(f"POST http://{emulator}/{inputs}") for r in alice.requests), \
        alice.requests
    assert page.inner_text("#upload-bar") if page.query_selector("#upload-bar") else True
    alice.shot("submitted")

    # The job page follows the job by itself until the results appear.
    page.wait_for_selector("#browse-link", timeout=JOB_TIMEOUT_MS)
    assert page.inner_text("#job-status") == "COMPLETED"
    assert page.locator("svg.chart").count() == 3
    alice.shot("completed")
    job = stack.repository.get_job(user, job_id)
    assert job.status.value == "COMPLETED" and job.input_file_name == sample.name

    # The results browser: charts, a table, and a gene filter that narrows it.
    page.click("#browse-link")
    page.wait_for_selector("#variants")
    alice.shot("results")
    gene = max(job.summary["genes"].items(), key=lambda kv: kv[1])[0]  # type: ignore[index]
    page.fill("#gene", gene)
    if page.query_selector("#carriers"):  # a file with samples: every site, not only carried
        page.check("#carriers")
    page.click("#apply-filters")
    page.wait_for_url(f"**gene={gene}**")
    genes = set(page.locator("#variants td.gene").all_inner_texts())
    assert genes == {gene}
    alice.shot("filtered-by-gene")

    # Export the filtered view as TSV: exactly the rows the page counts, with its own name.
    with page.expect_download() as download_info:
        page.click("#download-tsv")
    download = download_info.value
    saved = tmp_path / download.suggested_filename
    download.save_as(saved)
    assert saved.name.endswith(".filtered.tsv")
    rows = list(csv.DictReader(io.StringIO(saved.read_text()), delimiter="\t"))
    assert rows and {"chrom", "pos", "gene", "consequence", "impact", "clinvar"} <= set(rows[0])
    assert {r["gene"] for r in rows} == {gene}
    assert len(rows) == int(page.inner_text("#row-count").split()[0].replace(",", ""))

    # The jobs list shows it completed.
    page.goto("/jobs")
    assert "COMPLETED" in page.inner_text(f"tr[data-job-id='{job_id}']")
    alice.shot("jobs")

    # Sign out.
    page.click("#logout")
    page.wait_for_selector("text=Sign in")
    assert page.query_selector("#signed-in-as") is None
    alice.shot("signed-out")
    assert alice.problems == [], alice.problems  # no CSP violations, no script errors

    # Another user cannot open the job, its results or downloads.
    bob = Visit(browser, stack, artifacts, "bob")
    bob.sign_in_new("bob")
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/results", f"/jobs/{job_id}/download/tsv"):
        response = bob.page.goto(path)
        assert response is not None and response.status == 404, path
        assert "No such job." in bob.page.inner_text("#error-detail")
        assert sample.name not in bob.page.content()
    bob.shot("not-found")
    for visit in (alice, bob):
        visit.context.close()
