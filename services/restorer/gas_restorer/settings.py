"""Settings of the restorer service."""

from __future__ import annotations

from typing import Literal

from gas_core.settings import WorkerSettings


class RestorerSettings(WorkerSettings):
    # DEEP_ARCHIVE has no Expedited tier: Standard (~12 h) or Bulk (~48 h, cheapest).
    deep_archive_restore_tier: Literal["Standard", "Bulk"] = "Standard"
