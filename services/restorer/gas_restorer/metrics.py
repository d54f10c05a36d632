"""Restorer metrics (base units; few fixed labels)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter


class RestorerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.jobs = Counter(
            "gas_restorer_jobs_total",
            "Jobs acted on after a tier change, by action (restore_requested, "
            "left_to_archiver, archive_scheduled, failed).",
            ["action"],
            registry=registry,
        )
        self.restores = Counter(
            "gas_restorer_restores_requested_total",
            "RestoreObject requests accepted, by retrieval tier (Instant: no restore needed).",
            ["tier"],
            registry=registry,
        )
        self.restore_bytes = Counter(
            "gas_restorer_restore_requested_bytes_total",
            "Bytes of archived objects whose restore was requested.",
            registry=registry,
        )
        self.expedited_refused = Counter(
            "gas_restorer_expedited_refused_total",
            "Expedited restores refused for lack of capacity (Standard used instead).",
            registry=registry,
        )
