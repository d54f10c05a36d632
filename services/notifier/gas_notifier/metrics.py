"""Notifier metrics (base units; few fixed labels)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter


class NotifierMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.emails = Counter(
            "gas_notifier_emails_total",
            "Notification events by kind (job.completed, job.failed, job.restored) and outcome "
            "(sent, duplicate, opted_out, no_address, skipped).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.claims_taken_over = Counter(
            "gas_notifier_claims_taken_over_total",
            "Emails sent after taking over the expired claim of a sender that died mid-send "
            "(each may be a second copy of an email SES had already accepted).",
            ["kind"],
            registry=registry,
        )
