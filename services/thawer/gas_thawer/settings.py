"""Settings of the thawer service."""

from __future__ import annotations

from pydantic import Field

from gas_core.settings import WorkerSettings


class ThawerSettings(WorkerSettings):
    # A message copies a job's result files back: give the heartbeat room.
    worker_visibility_seconds: int = Field(default=300, ge=30, le=43200)
