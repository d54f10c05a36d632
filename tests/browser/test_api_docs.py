"""/api/docs renders the API's operations in real headless Chromium, from the app's own static
files only (offline), under the app's Content-Security-Policy.

The app is served by a real uvicorn on a free local port; the docs need no AWS call, so the
emulator only backs the settings. A screenshot goes to test-artifacts/browser-api-docs/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from prometheus_client import CollectorRegistry

from gas_core.settings import GasSettings
from gas_web.app.main import create_app
from gas_web.settings import WebSettings
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.browser.web_server import serving
from tests.support import REPO_ROOT, emulator_settings

pytestmark = [pytest.mark.browser]

ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser-api-docs"


@pytest.fixture(scope="module")
def web_url(provisioned: GasSettings, moto_endpoint: str) -> Iterator[str]:
    settings = emulator_settings(moto_endpoint, cls=WebSettings,
                                 name_prefix=provisioned.name_prefix, auth_mode="dev")
    with serving(create_app(settings, registry=CollectorRegistry())) as url:
        yield url


def test_api_docs_render_the_operations_offline(playwright_api: Any, web_url: str) -> None:
    problems: list[str] = []
    hosts: set[str] = set()
    with playwright_api() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            page = chromium.new_page()
            page.set_default_timeout(15_000)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            page.on("request", lambda r: hosts.add(urlsplit(r.url).netloc))
            page.goto(f"{web_url}/api/docs")
            page.wait_for_selector(".opblock-summary", state="visible")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "api-docs.png"), full_page=True)
            paths = set(page.locator(".opblock-summary-path").all_inner_texts())
            rendered_error = page.locator(".errors-wrapper").count()
            authorize = page.locator("button.authorize").count()
        finally:
            chromium.close()
    assert {"/api/v1/me", "/api/v1/jobs", "/api/v1/jobs/{job_id}/variants"} <= {
        p.replace("\u200b", "").strip() for p in paths}
    assert rendered_error == 0
    assert authorize == 1  # the bearer securityScheme gives Swagger UI its Authorize button
    assert hosts == {urlsplit(web_url).netloc}  # nothing fetched from a CDN
    assert problems == []  # no CSP violation, no script error
