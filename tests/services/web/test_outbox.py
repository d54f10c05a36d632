"""The development outbox: mail about the signed-in user's own jobs from the emulator's SES,
nobody else's (whatever address a profile names); read without touching S3; absent unless
running against an emulator in development."""

from __future__ import annotations

import io
import json
import uuid

from fastapi.testclient import TestClient

from gas_core.aws import AwsClients
from gas_core.jobs import JobRepository, new_job_id
from gas_core.resources import Queue
from gas_web.app.outbox import read_outbox
from gas_web.settings import WebSettings
from tests.services.web.conftest import SubmitJob
from tests.services.web.test_isolation import dev_login


def _send(aws: AwsClients, sender: str, to: str, subject: str, job_id: str) -> None:
    # What the notifier sends: every mail links to its job.
    aws.ses.send_email(
        Source=sender, Destination={"ToAddresses": [to]},
        Message={"Subject": {"Data": subject},
                 "Body": {"Text": {"Data": f"Body of {subject}: "
                                           f"http://127.0.0.1:8000/jobs/{job_id}"}}})


def _sender(aws: AwsClients) -> str:
    sender = f"{uuid.uuid4().hex[:8]}@example.org"
    aws.ses.verify_email_identity(EmailAddress=sender)
    return sender


def test_the_outbox_shows_only_mail_about_the_signed_in_users_jobs(
    client: TestClient, web_aws: AwsClients, submit_job: SubmitJob
) -> None:
    me, other = "me-" + uuid.uuid4().hex[:8], "them-" + uuid.uuid4().hex[:8]
    mine, theirs = submit_job(me), submit_job(other)
    sender = _sender(web_aws)
    _send(web_aws, sender, f"{me}@example.org", f"Your job finished {me}", mine.job_id)
    _send(web_aws, sender, f"{other}@example.org", f"Their job finished {other}", theirs.job_id)
    web_aws.ses.send_raw_email(
        Source=sender, Destinations=[f"{me}@example.org"],
        RawMessage={"Data": f"Subject: Restored {me}\nTo: {me}@example.org\n\nBack again: "
                            f"http://127.0.0.1:8000/jobs/{mine.job_id}\n"})
    dev_login(client, me)
    page = client.get("/dev/outbox")
    assert page.status_code == 200
    assert f"Your job finished {me}" in page.text and f"Restored {me}" in page.text
    assert f"Body of Your job finished {me}" in page.text and "Back again" in page.text
    assert other not in page.text
    assert page.text.index(f"Restored {me}") < page.text.index(f"Your job finished {me}")
    client.cookies.clear()


def test_a_profile_naming_someone_elses_address_does_not_show_their_mail(
    client: TestClient, web_aws: AwsClients, repository: JobRepository, submit_job: SubmitJob
) -> None:
    victim, attacker = "victim-" + uuid.uuid4().hex[:8], "attacker-" + uuid.uuid4().hex[:8]
    job = submit_job(victim)
    _send(web_aws, _sender(web_aws), f"{victim}@example.org", f"Results of {victim}", job.job_id)
    dev_login(client, attacker)
    profile = repository.get_profile(attacker)
    assert profile is not None
    repository.update_profile(profile, email=f"{victim}@example.org")
    page = client.get("/dev/outbox")
    assert page.status_code == 200
    assert f"Results of {victim}" not in page.text
    client.cookies.clear()


def test_the_outbox_reads_the_emulators_documented_shape(
    web_aws: AwsClients, web_settings: WebSettings
) -> None:
    sender = _sender(web_aws)
    to = f"{uuid.uuid4().hex[:8]}@example.org"
    job_id = new_job_id()
    _send(web_aws, sender, to, "Hello", job_id)
    assert web_settings.aws_endpoint_url
    [mail] = read_outbox(endpoint=web_settings.aws_endpoint_url, job_ids={job_id})
    assert (mail.sender, mail.to, mail.subject) == (sender, [to], "Hello")
    assert mail.body == f"Body of Hello: http://127.0.0.1:8000/jobs/{job_id}"
    assert read_outbox(endpoint=web_settings.aws_endpoint_url, job_ids={new_job_id()}) == []


def _restore_completions(aws: AwsClients, job_id: str) -> int:
    """ObjectRestore:Completed events for a key of `job_id` on the thawer's queue (others' are
    put back). The event URL-encodes the key; a job id reads the same either way."""
    found = 0
    url = aws.queue_url(Queue.THAWER)
    others = []  # kept invisible until the queue is read to its end, then put back
    while messages := aws.sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                              WaitTimeSeconds=1,
                                              VisibilityTimeout=60).get("Messages", []):
        for message in messages:
            if job_id not in message["Body"]:
                others.append(message)
                continue
            found += sum(record.get("eventName", "").startswith("ObjectRestore:Completed")
                         for record in json.loads(message["Body"]).get("Records", []))
            aws.sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    for message in others:
        aws.sqs.change_message_visibility(
            QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    return found


def test_reading_the_outbox_completes_no_restore(
    client: TestClient, web_aws: AwsClients, web_settings: WebSettings, user_id: str
) -> None:
    # An archived object whose restore the emulator has not yet been asked about: reading
    # moto's whole-state dump reads its status, which completes the restore and fires the
    # event the thawer acts on.
    job_id = new_job_id()
    key = f"results/{user_id}/{job_id}/out.tsv"
    bucket = web_settings.names.archive_bucket
    web_aws.s3.put_object(Bucket=bucket, Key=key, Body=b"rows", StorageClass="GLACIER")
    web_aws.s3.restore_object(Bucket=bucket, Key=key, RestoreRequest={"Days": 1})
    dev_login(client, user_id)
    assert client.get("/dev/outbox").status_code == 200
    client.cookies.clear()
    assert _restore_completions(web_aws, job_id) == 0
    # Control: the emulator does complete it (and the event arrives) once S3 is asked.
    web_aws.s3.head_object(Bucket=bucket, Key=key)
    assert _restore_completions(web_aws, job_id) == 1


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
    sender = _sender(web_aws)
    job_id = new_job_id()
    web_aws.s3.upload_fileobj(
        io.BytesIO(b"\0" * (11 * 1024**2)), web_settings.names.results_bucket,
        f"results/{uuid.uuid4().hex}/big.tsv",
        Config=TransferConfig(multipart_threshold=5 * 1024**2, multipart_chunksize=5 * 1024**2))
    _send(web_aws, sender, to, "After a big upload", job_id)

    endpoint = str(web_settings.aws_endpoint_url)
    assert [m.subject for m in read_outbox(endpoint=endpoint, job_ids={job_id})] == [
        "After a big upload"]
