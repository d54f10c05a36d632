"""Demo honesty: on the synthetic demo reference every page with an assembly or a result says
SYNTHETIC, the annotate page offers the demo example VCF, `gas dev` tells the web which bundle
it runs; and the dev outbox shows HTML mail as HTML, sandboxed."""

from __future__ import annotations

import json
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from gas_core.aws import AwsClients
from gas_core.jobs import Job, JobRepository
from gas_web.app.main import create_app
from gas_web.settings import WebSettings
from tests.services.web.test_isolation import dev_login

EXAMPLE = Path(__file__).resolve().parents[3] / "services/web/gas_web/static/demo/example.vcf"


@pytest.fixture(scope="module")
def demo_client(web_settings: WebSettings, web_aws: AwsClients) -> Iterator[TestClient]:
    """The web of a deployment whose annotator runs on the synthetic demo bundle."""
    settings = web_settings.model_copy(update={"reference_synthetic": True})
    app = create_app(settings, aws=web_aws, registry=CollectorRegistry())
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def _banner(html: str) -> bool:
    return 'id="synthetic-banner"' in html and "SYNTHETIC" in html and "not for research" in html


def _real(repository: JobRepository, job: Job) -> Job:
    """The job as if annotated on a real bundle (its summary says so)."""
    assert job.summary is not None
    summary = dict(job.summary, reference=dict(job.summary["reference"], synthetic=False))
    return repository.update_job(repository.get_job(job.user_id, job.job_id), summary=summary)


def _variant_page(client: TestClient, job: Job) -> str:
    """The detail page of the job's first variant."""
    page = client.get(f"/api/v1/jobs/{job.job_id}/variants", params={"carriers": "all"},
                      headers={"Authorization": f"Bearer dev:{job.user_id}"})
    assert page.status_code == 200, page.text
    return f"/jobs/{job.job_id}/variants/{page.json()['items'][0]['variant_key']}"


def test_on_the_demo_reference_every_page_with_an_assembly_or_a_result_says_synthetic(
    demo_client: TestClient, complete: Callable[[str], Job], user_id: str
) -> None:
    job = complete(user_id)
    dev_login(demo_client, user_id)
    annotate = demo_client.get("/annotate").text
    assert _banner(annotate)
    assert "GRCh38 (SYNTHETIC demo reference)" in annotate
    for path in ("/jobs", f"/jobs/{job.job_id}", f"/jobs/{job.job_id}/results",
                 _variant_page(demo_client, job), f"/jobs/{job.job_id}/log", "/profile"):
        page = demo_client.get(path)
        assert page.status_code == 200, path
        assert _banner(page.text), path
    assert 'id="assembly-synthetic"' in demo_client.get(f"/jobs/{job.job_id}").text
    demo_client.cookies.clear()


def test_the_annotate_page_offers_the_demo_example_only_on_the_demo_reference(
    client: TestClient, demo_client: TestClient, user_id: str
) -> None:
    dev_login(demo_client, user_id)
    page = demo_client.get("/annotate").text
    assert "Try the demo example VCF" in page and 'href="/demo/example.vcf"' in page
    demo_client.cookies.clear()

    dev_login(client, user_id)
    page = client.get("/annotate").text
    assert "demo example" not in page and "SYNTHETIC" not in page
    client.cookies.clear()


def test_the_demo_example_vcf_is_served_as_a_text_download(client: TestClient) -> None:
    response = client.get("/demo/example.vcf")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert 'attachment; filename="gas-demo-example.vcf"' in response.headers[
        "content-disposition"]
    assert response.content == EXAMPLE.read_bytes()
    assert response.text.startswith("##fileformat=VCFv4.2")


def test_results_annotated_on_the_demo_reference_stay_labelled_on_a_real_deployment(
    client: TestClient, complete: Callable[[str], Job], repository: JobRepository, user_id: str
) -> None:
    demo_job = complete(user_id)  # the engine's summary: reference.synthetic is true
    real_job = _real(repository, complete(user_id))
    dev_login(client, user_id)
    for path in (f"/jobs/{demo_job.job_id}", f"/jobs/{demo_job.job_id}/results",
                 _variant_page(client, demo_job)):
        assert _banner(client.get(path).text), path
    for path in (f"/jobs/{real_job.job_id}", f"/jobs/{real_job.job_id}/results",
                 _variant_page(client, real_job), "/annotate"):
        assert "SYNTHETIC" not in client.get(path).text, path
    jobs = client.get("/jobs").text
    rows = re.findall(r"<tr.*?</tr>", jobs, flags=re.S)
    [demo_row] = [r for r in rows if demo_job.job_id in r]
    [real_row] = [r for r in rows if real_job.job_id in r]
    assert "SYNTHETIC" in demo_row and "SYNTHETIC" not in real_row
    client.cookies.clear()


def test_gas_dev_tells_the_web_whether_its_bundle_is_synthetic(tmp_path: Path) -> None:
    from gas_annotator.reference import build_demo_bundle
    from gas_cli.dev import DevStack

    demo = tmp_path / "demo"
    build_demo_bundle(demo)
    real = tmp_path / "real"
    shutil.copytree(demo, real)
    manifest = json.loads((real / "manifest.json").read_text())
    (real / "manifest.json").write_text(json.dumps(dict(manifest, synthetic=False)))

    url = "http://127.0.0.1:1"
    on_demo = DevStack(reference=demo).environment(url, caller={})
    assert on_demo["GAS_REFERENCE_SYNTHETIC"] == "true"
    on_real = DevStack(reference=real).environment(url, caller={})
    assert on_real["GAS_REFERENCE_SYNTHETIC"] == "false"
    # The caller cannot claim otherwise: the stack knows its bundle.
    claimed = DevStack(reference=real).environment(url, caller={"GAS_REFERENCE_SYNTHETIC": "1"})
    assert claimed["GAS_REFERENCE_SYNTHETIC"] == "false"
    assert WebSettings(auth_mode="dev",
                       reference_synthetic=on_demo["GAS_REFERENCE_SYNTHETIC"]).reference_synthetic


# -- the dev outbox shows HTML mail as HTML -------------------------------------------------


def _send_html(aws: AwsClients, to: str, job_id: str, html: str) -> None:
    sender = f"{uuid.uuid4().hex[:8]}@example.org"
    aws.ses.verify_email_identity(EmailAddress=sender)
    aws.ses.send_email(
        Source=sender, Destination={"ToAddresses": [to]},
        Message={"Subject": {"Data": f"Completed {job_id}"},
                 "Body": {"Text": {"Data": "text part"}, "Html": {"Data": html}}})


def test_the_outbox_renders_html_mail_in_a_sandboxed_frame_that_runs_no_script(
    client: TestClient, web_aws: AwsClients, complete: Callable[[str], Job], user_id: str
) -> None:
    job = complete(user_id)
    link = f"http://127.0.0.1:8000/jobs/{job.job_id}"
    html = (f'<html><head><title>t</title></head><body><table><tr><td>Variants annotated</td>'
            f'<td>1,234</td></tr></table><a href="{link}">View</a>'
            '<script>document.title="pwned"</script></body></html>')
    _send_html(web_aws, f"{user_id}@example.org", job.job_id, html)
    dev_login(client, user_id)
    page = client.get("/dev/outbox").text
    frames = re.findall(r"<iframe[^>]*>", page)
    assert len(frames) == 1
    frame = frames[0]
    sandbox = re.search(r'sandbox="([^"]*)"', frame)
    assert sandbox is not None and "allow-scripts" not in sandbox.group(1)
    assert "allow-same-origin" not in sandbox.group(1)
    src = re.search(r'src="([^"]*)"', frame)
    assert src is not None
    assert "<script>" not in page and "<table>" not in page  # never inline in the outbox
    assert "Variants annotated" in page  # its text, readable and searchable

    body = client.get(src.group(1))
    assert body.status_code == 200 and body.headers["content-type"].startswith("text/html")
    assert "<td>Variants annotated</td>" in body.text
    csp = body.headers["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
    assert "frame-ancestors 'self'" in csp
    assert body.headers["x-frame-options"] == "SAMEORIGIN"
    client.cookies.clear()

    # Another user cannot read it by its address.
    dev_login(client, "other-" + uuid.uuid4().hex[:8])
    assert client.get(src.group(1)).status_code == 404
    client.cookies.clear()
