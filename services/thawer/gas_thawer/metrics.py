"""Thawer metrics (base units; few fixed labels)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

# From seconds (the local emulator, GLACIER_IR) through Expedited (1-5 min) and Standard
# (3-5 h) to DEEP_ARCHIVE Bulk (up to 48 h).
RESTORE_SECONDS_BUCKETS = (1, 10, 60, 300, 900, 3600, 3 * 3600, 6 * 3600, 12 * 3600,
                           24 * 3600, 48 * 3600)


class ThawerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.jobs = Counter(
            "gas_thawer_jobs_total",
            "Restore notifications by outcome per job (thawed, waiting, skipped).",
            ["outcome"],
            registry=registry,
        )
        self.objects = Counter(
            "gas_thawer_objects_thawed_total",
            "Restored objects copied back to the results bucket and verified.",
            registry=registry,
        )
        self.bytes = Counter(
            "gas_thawer_thawed_bytes_total",
            "Bytes copied back to the results bucket and verified.",
            registry=registry,
        )
        self.restores_requested_again = Counter(
            "gas_thawer_restores_requested_again_total",
            "Archive objects whose restored copy had expired before the thaw (a thawer outage "
            "longer than GAS_RESTORE_DAYS): their restore was requested again.",
            registry=registry,
        )
        self.restore_seconds = Histogram(
            "gas_thawer_restore_seconds",
            "Time from the restore request to the job being hot again.",
            buckets=RESTORE_SECONDS_BUCKETS,
            registry=registry,
        )
