"""Saved filters in real headless Chromium against the real local stack: save the filtered view
from the results page, follow the saved filter's link (the same rows as the API counts for its
parameters), delete it; no CSP violation or script error on the way.

Screenshots go to test-artifacts/browser-saved-filters/ (gitignored).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest

from tests.browser.local_stack import LocalStack
from tests.browser.test_web_flow import Visit
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser-saved-filters"



def test_a_user_saves_follows_and_deletes_a_filter(
    stack: LocalStack, browser: Any, reference: tuple[Path, Path], artifacts: Path
) -> None:
    visit = Visit(browser, stack, artifacts, "saved")
    page = visit.page
    user = visit.sign_in_new("gail")
    job_id = visit.annotate(reference[1])
    results = f"/jobs/{job_id}/results"

    page.goto(f"{results}?impact=HIGH,MODERATE&view=transcript&carriers=all")
    assert "None yet." in page.inner_text("#saved-filters")
    page.fill("#saved-filter-name", "Coding, every transcript")
    visit.shot("before-save")
    page.click("#save-filter button[type=submit]")
    page.wait_for_selector("#saved-filter-note")
    assert page.inner_text("#saved-filter-note") == \
        "Saved this filter as “Coding, every transcript”."
    visit.shot("saved")

    # Its link is the results page with exactly the saved parameters.
    page.goto(results)
    link = page.locator("#saved-filter-list a.saved-filter", has_text="Coding, every transcript")
    href = link.get_attribute("href") or ""
    params = dict(parse_qsl(urlsplit(href).query))
    assert params == {"impact": "HIGH,MODERATE", "view": "transcript", "carriers": "all"}
    link.click()
    page.wait_for_url(f"**{results}?*")
    assert page.get_attribute("#saved-filter-list a.saved-filter", "aria-current") == "true"
    api = httpx.get(f"{stack.web_url}/api/v1/jobs/{job_id}/variants",
                    params={**params, "limit": 1},
                    headers={"Authorization": f"Bearer dev:{user}"}, timeout=30)
    assert api.status_code == 200, api.text
    assert int(page.get_attribute("#row-count", "data-total") or -1) == api.json()["total"]

    page.click("#saved-filter-list button.delete-saved-filter")
    page.wait_for_selector("#saved-filter-note")
    assert "Deleted the saved filter" in page.inner_text("#saved-filter-note")
    assert page.locator("#saved-filter-list").count() == 0
    assert dict(parse_qsl(urlsplit(page.url).query)) == params  # the same view
    visit.shot("deleted")
    listed = httpx.get(f"{stack.web_url}/api/v1/me/filters",
                       headers={"Authorization": f"Bearer dev:{user}"}, timeout=30)
    assert listed.json()["items"] == []
    assert visit.problems == [], visit.problems  # no CSP violations, no script errors
    visit.context.close()
