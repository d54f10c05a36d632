"""Settings of the notifier service."""

from __future__ import annotations

from pydantic import Field

from gas_core.settings import WorkerSettings


class NotifierSettings(WorkerSettings):
    # How long a claim to send one email holds off duplicates; a sender that died mid-way
    # is replaced after this (SES calls take well under a second).
    notifier_claim_seconds: int = Field(default=120, ge=10, le=3600)
    # How long the "sent" marker is kept: longer than any redelivery (SQS keeps messages at
    # most 14 days). DynamoDB TTL on `expires_at` may delete it afterwards.
    notifier_marker_days: int = Field(default=30, ge=15, le=365)
