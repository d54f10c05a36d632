"""Annotator metrics (base units; few fixed labels)."""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram

JOB_SECONDS_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400)


class AnnotatorMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.jobs = Counter(
            "gas_annotator_jobs_total",
            "Annotation jobs finished, by outcome (completed, failed, retried, skipped).",
            ["outcome"],
            registry=registry,
        )
        self.variants = Counter(
            "gas_annotator_variants_total", "Variant records annotated.", registry=registry
        )
        self.job_seconds = Histogram(
            "gas_annotator_job_seconds",
            "Wall time of one annotation job, from lease to completion.",
            buckets=JOB_SECONDS_BUCKETS,
            registry=registry,
        )
        self.end_to_end_seconds = Histogram(
            "gas_job_end_to_end_seconds",
            "From submit to a finished job (queueing, retries and annotation): what users wait.",
            ["outcome"],
            buckets=JOB_SECONDS_BUCKETS,
            registry=registry,
        )
        self.stage_seconds = Histogram(
            "gas_annotator_stage_seconds",
            "Wall time per stage of a job (download, annotate, upload).",
            ["stage"],
            buckets=JOB_SECONDS_BUCKETS,
            registry=registry,
        )
