"""Settings of the archiver service."""

from __future__ import annotations

from pydantic import Field

from gas_core.settings import WorkerSettings


class ArchiverSettings(WorkerSettings):
    # A message copies a job's result files (up to a few hundred MB for free users): give the
    # heartbeat room, and keep few copies in flight per pod.
    worker_visibility_seconds: int = Field(default=300, ge=30, le=43200)
    worker_concurrency: int = Field(default=4, ge=1, le=16)
