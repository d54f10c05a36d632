"""The development outbox: the signed-in user's own mail from the emulator's SES, nobody else's;
absent unless running against an emulator in development."""

from __future__ import annotations

import io
import uuid

from fastapi.testclient import TestClient

from gas_core.aws import AwsClients
from gas_web.app.outbox import read_outbox
from gas_web.settings import WebSettings
from tests.services.web.test_isolation import dev_login


def _send(aws: AwsClients, sender: str, to: str, subject: str) -> None:
    aws.ses.send_email(Source=sender, Destination={"ToAddresses": [to]},
                       Message={"Subject": {"Data": subject},
                                "Body": {"Text": {"Data": f"Body of {subject}"}}})


def test_the_outbox_shows_only_the_signed_in_users_mail(
    client: TestClient, web_aws: AwsClients, web_settings: WebSettings
) -> None:
    me, other = "me-" + uuid.uuid4().hex[:8], "them-" + uuid.uuid4().hex[:8]
    sender = f"{uuid.uuid4().hex[:8]}@example.org"
    web_aws.ses.verify_email_identity(EmailAddress=sender)
    _send(web_aws, sender, f"{me}@example.org", f"Your job finished {me}")
    _send(web_aws, sender, f"{other}@example.org", f"Their job finished {other}")
    web_aws.ses.send_raw_email(
        Source=sender, Destinations=[f"{me}@example.org"],
        RawMessage={"Data": f"Subject: Restored {me}\nTo: {me}@example.org\n\nBack again.\n"})
    dev_login(client, me)
    page = client.get("/dev/outbox")
    assert page.status_code == 200
    assert f"Your job finished {me}" in page.text and f"Restored {me}" in page.text
    assert f"Body of Your job finished {me}" in page.text and "Back again." in page.text
    assert other not in page.text
    assert page.text.index(f"Restored {me}") < page.text.index(f"Your job finished {me}")
    client.cookies.clear()


def test_the_outbox_reads_the_emulators_documented_shape(
    web_aws: AwsClients, web_settings: WebSettings
) -> None:
    sender = f"{uuid.uuid4().hex[:8]}@example.org"
    to = f"{uuid.uuid4().hex[:8]}@example.org"
    web_aws.ses.verify_email_identity(EmailAddress=sender)
    _send(web_aws, sender, to, "Hello")
    assert web_settings.aws_endpoint_url
    [mail] = read_outbox(endpoint=web_settings.aws_endpoint_url, recipient=to.upper())
    assert (mail.sender, mail.to, mail.subject, mail.body) == (sender, [to], "Hello",
                                                               "Body of Hello")


def test_there_is_no_outbox_without_an_emulator(
    web_settings: WebSettings, web_aws: AwsClients
) -> None:
    from prometheus_client import CollectorRegistry

    from gas_web.app.main import create_app

    settings = web_settings.model_copy(update={"aws_endpoint_url": None})
    app = create_app(settings, aws=web_aws, registry=CollectorRegistry())
    with TestClient(app) as client:
        dev_login(client, "someone")
        assert client.get("/dev/outbox").status_code == 404
        assert "/dev/outbox" not in client.get("/jobs").text


def test_the_outbox_still_reads_mail_after_multipart_uploads(
    web_aws: AwsClients, web_settings: WebSettings
) -> None:
    # The emulator's dump used to fail (HTTP 500) while parts of a multipart upload were
    # tracked, e.g. after the annotator uploaded a result over 8 MB (gas_cli.emulator).
    from boto3.s3.transfer import TransferConfig

    to = f"big-{uuid.uuid4().hex[:8]}@example.org"
    sender = f"{uuid.uuid4().hex[:8]}@example.org"
    web_aws.ses.verify_email_identity(EmailAddress=sender)
    web_aws.s3.upload_fileobj(
        io.BytesIO(b"\0" * (11 * 1024**2)), web_settings.names.results_bucket,
        f"results/{uuid.uuid4().hex}/big.tsv",
        Config=TransferConfig(multipart_threshold=5 * 1024**2, multipart_chunksize=5 * 1024**2))
    _send(web_aws, sender, to, "After a big upload")

    endpoint = str(web_settings.aws_endpoint_url)
    assert [m.subject for m in read_outbox(endpoint=endpoint, recipient=to)] == [
        "After a big upload"]
