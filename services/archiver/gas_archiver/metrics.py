"""Archiver metrics (base units; few fixed labels)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter


class ArchiverMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.jobs = Counter(
            "gas_archiver_jobs_total",
            "Archive messages by outcome (archived, abandoned, delayed, skipped).",
            ["outcome"],
            registry=registry,
        )
        self.objects = Counter(
            "gas_archiver_objects_archived_total",
            "Result objects copied to the archive bucket and verified.",
            registry=registry,
        )
        self.bytes = Counter(
            "gas_archiver_archived_bytes_total",
            "Bytes of result objects copied to the archive bucket and verified.",
            registry=registry,
        )
        self.hot_deleted = Counter(
            "gas_archiver_hot_objects_deleted_total",
            "Hot copies deleted after their job was recorded archived (a delete repeated "
            "after a crash counts again).",
            registry=registry,
        )
