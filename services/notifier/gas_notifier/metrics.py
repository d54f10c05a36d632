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
