"""Settings of the restorer service."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from gas_core.settings import WorkerSettings


class RestorerSettings(WorkerSettings):
    # How long a restored copy stays readable in the archive bucket. The thawer copies it back
    # within minutes of the restore; the rest is slack for a thawer outage.
    restore_days: int = Field(default=3, ge=1, le=30)
    # DEEP_ARCHIVE has no Expedited tier: Standard (~12 h) or Bulk (~48 h, cheapest).
    deep_archive_restore_tier: Literal["Standard", "Bulk"] = "Standard"
