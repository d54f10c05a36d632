"""The notifier handler against moto's SES: one email per event, whatever the deliveries."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from gas_core.events import JobFailed, JobRestored
from gas_core.jobs import JobStatus, NotificationClaim, StorageState, notified_sk
from gas_core.settings import Tier
from gas_notifier.handler import EmailInProgress
from tests.services.archiver.lifecycle_support import (
    EMAIL,
    Intercept,
    Lifecycle,
    client_error,
    profile_of,
)


def _restored(job) -> JobRestored:  # type: ignore[no-untyped-def]
    return JobRestored(user_id=job.user_id, job_id=job.job_id, user_tier=Tier.PREMIUM)


def test_a_completed_job_sends_one_email_with_text_html_and_a_link_even_when_duplicated(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    event = life.completed_event(job)

    assert life.notify(event) == "sent"
    assert life.notify(event) == "duplicate"
    assert life.notify(event.model_copy(update={"event_id": "another-publish"})) == "duplicate"

    [email] = life.ses.sent
    assert email["Destination"] == {"ToAddresses": [EMAIL]}
    assert email["Source"] == life.notifier.settings.email_sender
    assert email["Message"]["Subject"]["Data"] == "Your GAS job for sample.vcf.gz has completed"
    link = f"{life.notifier.settings.web_base_url}/jobs/{job.job_id}"
    text, html = (email["Message"]["Body"][part]["Data"] for part in ("Text", "Html"))
    assert link in text and f'href="{link}"' in html
    assert "Hello Ada" in text
    assert "archived" in text  # free users are told about the retention window
    assert life.metric("notifier", "gas_notifier_emails_total",
                       kind="job.completed", outcome="sent") == 1


def test_a_failed_job_email_carries_the_reason(life: Lifecycle, user_id: str) -> None:
    job = life.completed_job(user_id)
    failed = life.repository.create_job(job.model_copy(update={
        "job_id": "01J00000000000000000000002", "status": JobStatus.FAILED,
        "error": "Line 12: REF allele does not match the reference", "summary": None}))
    event = JobFailed(user_id=user_id, job_id=failed.job_id, user_tier=Tier.FREE,
                      error="Line 12: REF allele does not match the reference")

    assert life.notify(event) == "sent"

    [email] = life.ses.sent
    assert email["Message"]["Subject"]["Data"] == "Your GAS job for sample.vcf.gz failed"
    assert "REF allele does not match" in email["Message"]["Body"]["Text"]["Data"]
    assert "REF allele does not match" in email["Message"]["Body"]["Html"]["Data"]


def test_each_restore_of_a_job_gets_its_own_email_but_duplicates_do_not(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    first = life.repository.update_job(
        life.job(job), restore_requested_at=datetime(2026, 1, 1, tzinfo=UTC))
    assert life.notify(_restored(job)) == "sent"
    assert life.notify(_restored(job)) == "duplicate"
    life.repository.update_job(first, restore_requested_at=datetime(2026, 2, 1, tzinfo=UTC))
    assert life.notify(_restored(job)) == "sent"

    subjects = [e["Message"]["Subject"]["Data"] for e in life.ses.sent]
    assert subjects == ["Your GAS results for sample.vcf.gz are available again"] * 2


def test_users_who_turned_emails_off_or_have_no_address_get_none(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    life.repository.update_profile(profile_of(life, user_id), notify_email=False)
    assert life.notify(life.completed_event(job)) == "opted_out"

    other = life.completed_job(user_id + "-x", email="")
    assert life.notify(life.completed_event(other)) == "no_address"
    assert life.ses.sent == []


def test_a_failed_send_releases_the_claim_so_the_retry_sends_exactly_one(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    event = life.completed_event(job)

    def throttle(**_kwargs: object) -> None:
        raise client_error("Throttling", 400)

    failing = Intercept(life.ses, "send_email", before=throttle)
    with pytest.raises(Exception, match="Throttling"):
        life.notify(event, notifier=replace(life.notifier, ses=failing))
    assert life.ses.sent == []

    assert life.notify(event) == "sent"
    assert life.notify(event) == "duplicate"
    assert len(life.ses.sent) == 1


def test_a_send_in_progress_elsewhere_is_retried_and_a_dead_senders_claim_expires(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    marker = notified_sk("job.completed", job.job_id)
    claim = life.repository.claim_notification(user_id, marker, owner="other-pod",
                                               ttl_seconds=120)
    assert claim is NotificationClaim.CLAIMED

    with pytest.raises(EmailInProgress):
        life.notify(life.completed_event(job))
    life.clock.advance(121)  # the other sender died mid-way
    assert life.notify(life.completed_event(job)) == "sent"
    assert len(life.ses.sent) == 1


def test_a_sender_dying_after_ses_accepted_leaves_a_counted_takeover_and_one_resend(
    life: Lifecycle, user_id: str
) -> None:
    """SES has no idempotency key: a sender killed between SES accepting and the marker
    write cannot be told from one killed before sending. The retry sends (never zero
    emails), and says it took the claim over: the marker's claim count bounds the copies."""
    job = life.completed_job(user_id)
    marker = notified_sk("job.completed", job.job_id)
    killed = Intercept(life.repository, "finish_notification",
                       before=lambda *a, **k: (_ for _ in ()).throw(SystemExit("SIGKILL")))
    with pytest.raises(SystemExit):
        life.notify(life.completed_event(job), notifier=replace(life.notifier, repository=killed))
    assert len(life.ses.sent) == 1
    assert life.metric("notifier", "gas_notifier_claims_taken_over_total",
                       kind="job.completed") == 0

    life.clock.advance(life.notifier.settings.notifier_claim_seconds + 1)
    assert life.notify(life.completed_event(job)) == "sent"
    assert life.notify(life.completed_event(job)) == "duplicate"

    assert len(life.ses.sent) == 2
    assert life.metric("notifier", "gas_notifier_claims_taken_over_total",
                       kind="job.completed") == 1
    item = life.aws.dynamodb.get_item(
        TableName=life.settings.names.table,
        Key={"pk": {"S": f"USER#{user_id}"}, "sk": {"S": marker}})["Item"]
    assert (item["state"]["S"], item["claims"]["N"]) == ("sent", "2")


def test_user_text_is_escaped_in_the_html_email(life: Lifecycle, user_id: str) -> None:
    job = life.completed_job(user_id, input_file_name="<script>alert(1)</script>.vcf")
    life.notify(life.completed_event(job))
    html = life.ses.sent[0]["Message"]["Body"]["Html"]["Data"]
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_events_for_unknown_jobs_send_nothing(life: Lifecycle, user_id: str) -> None:
    job = life.completed_job(user_id)
    ghost = life.completed_event(job).model_copy(update={"job_id": "01J00000000000000000000003"})
    assert life.notify(ghost) == "skipped"
    assert life.ses.sent == []
    assert life.job(job).storage is StorageState.HOT
