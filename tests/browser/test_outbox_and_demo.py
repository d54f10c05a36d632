"""The dev outbox and the demo reference in real headless Chromium: the notifier's completion
email renders as HTML (its inline styles applied) inside a sandboxed frame, a mail's script
never runs, and on the synthetic demo reference the annotate page says SYNTHETIC and its demo
example link downloads the example VCF.

The app is served by a real uvicorn on a free local port against the session's emulator; the
mail is the notifier's own rendering, sent through the emulator's SES. Screenshots go to
test-artifacts/browser-outbox/.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gas_core.aws import AwsClients
from gas_core.events import JobCompleted
from gas_core.jobs import Job, JobRepository, UserProfile, new_job_id
from gas_core.settings import GasSettings, Tier
from gas_notifier.handler import email_templates, render_email
from gas_notifier.settings import NotifierSettings
from gas_web.app.main import create_app
from gas_web.settings import WebSettings
from tests.browser.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.browser.web_server import serving
from tests.support import REPO_ROOT, emulator_settings

pytestmark = [pytest.mark.browser]

ARTIFACTS = REPO_ROOT / "test-artifacts" / "browser-outbox"
EXAMPLE = REPO_ROOT / "services/web/gas_web/static/demo/example.vcf"
SUMMARY = {
    "variants": {"annotated": 39, "tsv_rows": 41},
    "reference": {"name": "gas-demo", "assembly": "demo", "synthetic": True},
    "counts": {"variants": 39, "high_impact_variants": 4, "clinvar_plp_variants": 2,
               "carrier_variants": 30},
}


@pytest.fixture(scope="module")
def web(provisioned: GasSettings, moto_endpoint: str) -> Iterator[tuple[str, WebSettings]]:
    """The web of a deployment on the synthetic demo reference, on a real uvicorn."""
    settings = emulator_settings(moto_endpoint, cls=WebSettings,
                                 name_prefix=provisioned.name_prefix, auth_mode="dev",
                                 reference_synthetic=True)
    with serving(create_app(settings, registry=CollectorRegistry())) as url:
        yield url, settings


def _send(aws: AwsClients, to: str, subject: str, text: str, html: str) -> None:
    sender = f"gas-{uuid.uuid4().hex[:6]}@example.org"
    aws.ses.verify_email_identity(EmailAddress=sender)
    aws.ses.send_email(Source=sender, Destination={"ToAddresses": [to]}, Message={
        "Subject": {"Data": subject},
        "Body": {"Text": {"Data": text}, "Html": {"Data": html}}})


def _mails_for(settings: WebSettings, user: str, web_url: str) -> Job:
    """A job of `user`, its completion email as the notifier renders it, and a hostile mail
    about the same job."""
    aws = AwsClients(settings)
    repository = JobRepository(aws.dynamodb, settings.names.table)
    job_id = new_job_id()
    job = repository.create_job(Job(user_id=user, job_id=job_id, input_file_name="demo.vcf",
                                    input_key=f"inputs/{user}/{job_id}/demo.vcf",
                                    summary=SUMMARY))
    email = render_email(
        JobCompleted(user_id=user, job_id=job_id, user_tier=Tier.FREE,
                     completed_at=datetime.now(UTC)),
        job=job, profile=UserProfile(user_id=user, name="Ada", email=f"{user}@example.org"),
        settings=NotifierSettings(web_base_url=web_url), templates=email_templates())
    _send(aws, f"{user}@example.org", email.subject, email.text, email.html)
    hostile = (f'<p id="hostile">Hostile mail about {web_url}/jobs/{job_id}</p>'
               "<script>document.write('SCRIPT RAN')</script>"
               "<img src=x onerror=\"document.body.append('HANDLER RAN')\">")
    _send(aws, f"{user}@example.org", "Hostile", "hostile", hostile)
    return job


def test_the_outbox_renders_the_notifiers_html_email_sandboxed_and_runs_no_mail_script(
    playwright_api: Any, web: tuple[str, WebSettings]
) -> None:
    web_url, settings = web
    user = "ada-" + uuid.uuid4().hex[:6]
    _mails_for(settings, user, web_url)
    page_errors: list[str] = []
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with playwright_api() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=CHROMIUM_ARGS)
        try:
            context = chromium.new_context(base_url=web_url, accept_downloads=True)
            page = context.new_page()
            page.set_default_timeout(15_000)
            page.on("pageerror", lambda e: page_errors.append(str(e)))
            page.goto("/login")
            page.fill("#username", user)
            page.click("button[type=submit]")
            page.wait_for_selector("#signed-in-as")

            page.goto("/dev/outbox")
            page.wait_for_selector("iframe.mail-html")
            assert page.locator("iframe.mail-html").count() == 2
            # Newest first: the hostile mail, then the completion email.
            hostile = page.frame_locator("iframe.mail-html").nth(0)
            completed = page.frame_locator("iframe.mail-html").nth(1)
            completed.locator("text=Variants annotated").wait_for()
            completed_text = completed.locator("body").inner_text()
            button = completed.locator("a", has_text="View the results")
            background = button.evaluate("e => getComputedStyle(e).backgroundColor")
            hostile.locator("#hostile").wait_for()
            hostile_text = hostile.locator("body").inner_text()
            page.screenshot(path=str(ARTIFACTS / "outbox.png"), full_page=True)
            # Framed mail below the fold is painted once scrolled to (not in a full-page shot).
            page.locator("article.mail").nth(1).screenshot(path=str(ARTIFACTS / "email.png"))

            page.goto("/annotate")
            banner = page.inner_text("#synthetic-banner")
            assembly = page.inner_text("#assembly option[selected]")
            with page.expect_download() as download_info:
                page.click("#demo-example-link")
            downloaded = Path(download_info.value.path()).read_bytes()
            suggested = download_info.value.suggested_filename
            page.screenshot(path=str(ARTIFACTS / "annotate.png"), full_page=True)
        finally:
            chromium.close()

    for line in ("Variants annotated\t39", "HIGH-impact variants\t4",
                 "ClinVar pathogenic or likely pathogenic variants\t2"):
        assert line in completed_text, completed_text
    assert "SYNTHETIC" in completed_text and "tsv_rows" not in completed_text
    assert background == "rgb(13, 110, 253)"  # the email's inline style, applied
    assert "Hostile mail" in hostile_text
    assert "SCRIPT RAN" not in hostile_text and "HANDLER RAN" not in hostile_text
    assert page_errors == []
    assert "SYNTHETIC" in banner and "not for research" in banner
    assert "SYNTHETIC" in assembly
    assert downloaded == EXAMPLE.read_bytes() and suggested == "gas-demo-example.vcf"
