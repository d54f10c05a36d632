"""The notifier: one email (text and HTML, via SES) per job end and per finished restore.

Duplicate events send one email. Before sending, the notifier claims a marker item
(`NOTIFIED#{kind}#{job_id}`, plus the restore's request time for restores, which can recur:
the one the event names, as it may arrive after the job's next restore was requested)
under the user's partition with a conditional put; after SES accepted the email the marker
is marked sent. A duplicate finds it sent and stops; one arriving while another consumer is
mid-send is retried later; a sender that died mid-send leaves a claim that expires, so the
email is sent by the retry (at least once, and exactly once unless a sender dies between
SES accepting and the marker write). The marker counts its claims; a retry that takes over a
dead sender's claim says so (`email_claim_taken_over`, `gas_notifier_claims_taken_over_total`):
only then can a user get a second copy.

The profile's `notify_email` is honoured at the time of sending.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from gas_core.events import JobCompleted, JobFailed, JobRestored
from gas_core.jobs import (
    Job,
    JobNotFound,
    JobRepository,
    NotificationClaim,
    UserProfile,
    notified_sk,
)
from gas_core.logging import bind_message_fields, get_logger
from gas_core.settings import Tier

if TYPE_CHECKING:
    from mypy_boto3_ses import SESClient

    from gas_core.worker import MessageContext
    from gas_notifier.metrics import NotifierMetrics
    from gas_notifier.settings import NotifierSettings

log = get_logger("gas.notifier")

NotifyEvent = JobCompleted | JobFailed | JobRestored

SUBJECTS = {
    "job.completed": "Your GAS job for {file} has completed",
    "job.failed": "Your GAS job for {file} failed",
    "job.restored": "Your GAS results for {file} are available again",
}
# The completion email's figures: summary `counts` key -> label, in this order.
COUNT_LABELS = (
    ("variants", "Variants annotated"),
    ("high_impact_variants", "HIGH-impact variants"),
    ("clinvar_plp_variants", "ClinVar pathogenic or likely pathogenic variants"),
    ("carrier_variants", "Variants carried by the sample(s)"),
)


class EmailInProgress(Exception):
    """Another consumer is sending this email right now (transient: look again later)."""


@dataclass(frozen=True)
class Email:
    subject: str
    text: str
    html: str


def email_templates() -> Environment:
    return Environment(
        loader=PackageLoader("gas_notifier", "templates"),
        autoescape=select_autoescape(enabled_extensions=("html", "html.j2"),
                                     default_for_string=False),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


@dataclass
class Notifier:
    """Everything the handler needs, passed in (`__main__` builds it)."""

    settings: NotifierSettings
    repository: JobRepository
    ses: SESClient
    metrics: NotifierMetrics
    templates: Environment

    def __call__(self, event: NotifyEvent, context: MessageContext) -> None:
        handle_notification(event, notifier=self)


def handle_notification(event: NotifyEvent, *, notifier: Notifier) -> str:
    """Email the job's owner about `event`; returns the outcome (also the metric label)."""
    outcome = _notify(event, notifier=notifier)
    bind_message_fields(event_type=event.type, email_outcome=outcome)
    notifier.metrics.emails.labels(kind=event.type, outcome=outcome).inc()
    return outcome


def _notify(event: NotifyEvent, *, notifier: Notifier) -> str:
    repo = notifier.repository
    try:
        job = repo.get_job(event.user_id, event.job_id)
    except JobNotFound:
        log.info("email_skipped", reason="job not found")
        return "skipped"
    profile = repo.get_profile(event.user_id)
    if profile is None or not profile.email:
        log.info("email_skipped", reason="no email address in the profile")
        return "no_address"
    if not profile.notify_email:
        log.info("email_skipped", reason="the user turned notifications off")
        return "opted_out"
    occurrence = _restore_occurrence(event, job) if isinstance(event, JobRestored) else None
    marker = notified_sk(event.type, job.job_id, occurrence)
    owner = uuid.uuid4().hex
    claim = repo.claim_notification(
        profile.user_id, marker, owner=owner, ttl_seconds=notifier.settings.notifier_claim_seconds
    )
    if claim is NotificationClaim.ALREADY_SENT:
        log.info("email_skipped", reason="already sent for this event")
        return "duplicate"
    if claim is NotificationClaim.IN_PROGRESS:
        raise EmailInProgress(f"{marker} is being sent by another consumer")
    if claim is NotificationClaim.TAKEN_OVER:
        # SES has no idempotency key: whether the dead sender's email went out is unknowable,
        # and sending is the side that never loses one.
        log.warning("email_claim_taken_over", marker=marker,
                    reason="an earlier sender died before recording its send; "
                           "if SES had accepted it, this is a second copy")
        notifier.metrics.claims_taken_over.labels(kind=event.type).inc()
    keep_seconds = notifier.settings.notifier_marker_days * 24 * 3600
    try:
        email = render_email(event, job=job, profile=profile, settings=notifier.settings,
                             templates=notifier.templates)
        message_id = _send(email, to=profile.email, notifier=notifier)
    except Exception:
        repo.finish_notification(profile.user_id, marker, owner=owner, sent=False,
                                 keep_seconds=keep_seconds)
        raise
    repo.finish_notification(profile.user_id, marker, owner=owner, sent=True,
                             keep_seconds=keep_seconds)
    # One line per email: in `gas dev` this is the outbox in the log stream.
    log.info("email_sent", kind=event.type, to=_recipient_for_log(profile.email, notifier),
             subject=email.subject, ses_message_id=message_id)
    return "sent"


def _restore_occurrence(event: JobRestored, job: Job) -> str | None:
    """Which restore the event is about: the one it names, since it may arrive after the next
    restore began (so the job's current one would be the wrong marker). Events published
    before they named it fall back to the job's current restore."""
    requested_at = event.restore_requested_at or job.restore_requested_at
    # In UTC, so the event's and the job's copies of one instant give one marker.
    return requested_at.astimezone(UTC).isoformat() if requested_at is not None else None


def _send(email: Email, *, to: str, notifier: Notifier) -> str:
    response = notifier.ses.send_email(
        Source=notifier.settings.email_sender,
        Destination={"ToAddresses": [to]},
        Message={
            "Subject": {"Data": email.subject, "Charset": "UTF-8"},
            "Body": {
                "Text": {"Data": email.text, "Charset": "UTF-8"},
                "Html": {"Data": email.html, "Charset": "UTF-8"},
            },
        },
    )
    return response["MessageId"]


def render_email(
    event: NotifyEvent,
    *,
    job: Job,
    profile: UserProfile,
    settings: NotifierSettings,
    templates: Environment,
) -> Email:
    kind = event.type
    subject = SUBJECTS[kind].format(file=job.input_file_name)
    context: dict[str, Any] = {
        "subject": subject,
        "name": profile.name or "there",
        "job": job,
        "job_url": f"{settings.web_base_url.rstrip('/')}/jobs/{job.job_id}",
        "counts": result_counts(job.summary),
        "synthetic": is_synthetic(job.summary),
        "error": job.error or getattr(event, "error", "") or "The job failed.",
        "retention": (
            _duration(settings.free_retention_seconds) if profile.tier is Tier.FREE else None
        ),
    }
    stem = kind.replace(".", "_")
    return Email(
        subject=subject,
        text=templates.get_template(f"{stem}.txt.j2").render(context),
        html=templates.get_template(f"{stem}.html.j2").render(context),
    )


def result_counts(summary: dict[str, Any] | None) -> list[tuple[str, str]]:
    """The figures a researcher looks for first, labelled for people: variants annotated,
    HIGH-impact and ClinVar P/LP variants (and carriers when the file has samples). From the
    summary's `counts` (per variant); summaries written before it existed give the same
    figures from their per-variant tallies (`variants.annotated`, `impacts`,
    `clinvar_pathogenic_count`). Nothing else: the summary's other keys are for machines."""
    if not summary:
        return []
    counts = summary.get("counts")
    if not isinstance(counts, dict):
        variants = summary.get("variants")
        impacts = summary.get("impacts")
        counts = {
            "variants": variants.get("annotated") if isinstance(variants, dict) else None,
            "high_impact_variants": impacts.get("HIGH") if isinstance(impacts, dict) else None,
            "clinvar_plp_variants": summary.get("clinvar_pathogenic_count"),
        }
    rows = []
    for key, label in COUNT_LABELS:
        value = counts.get(key)
        if isinstance(value, int) and not isinstance(value, bool):
            rows.append((label, f"{value:,}"))
    return rows


def is_synthetic(summary: dict[str, Any] | None) -> bool:
    """Annotated on the synthetic demo reference (the engine records it in the summary)."""
    reference = (summary or {}).get("reference")
    return isinstance(reference, dict) and reference.get("synthetic") is True


def _duration(seconds: int) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            count = seconds // size
            return f"{count} {unit}{'s' if count != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _recipient_for_log(address: str, notifier: Notifier) -> str:
    """Full address locally (the development outbox); masked in production logs."""
    if not notifier.settings.is_production:
        return address
    local, _, domain = address.partition("@")
    return f"{local[:1]}***@{domain}"
