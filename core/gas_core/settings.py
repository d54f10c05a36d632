"""Settings: the one place configuration enters a process.

Every service subclasses `GasSettings`; values come only from environment variables with the
`GAS_` prefix. Settings are validated when a service starts, so a bad deployment fails at once
with a clear message instead of half-working. Production refuses secrets that are missing or
still at a development default.
"""

from __future__ import annotations

import math
import re
import string
from enum import StrEnum
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from gas_core.resources import ResourceNames

# Values that exist only so development works out of the box; production must replace them.
DEVELOPMENT_SECRET_PREFIX = "dev-insecure-"  # noqa: S105 - a marker, not a secret

_NAME_PREFIX_PATTERN = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Tier(StrEnum):
    FREE = "free"
    PREMIUM = "premium"


class GasSettings(BaseSettings):
    """Settings every GAS process reads. Subclass per service; add only that service's fields."""

    # Errors name the setting but never echo the input (it holds the secrets).
    model_config = SettingsConfigDict(env_prefix="GAS_", extra="ignore", frozen=True,
                                      hide_input_in_errors=True)

    env: Environment = Environment.DEVELOPMENT
    # Only for an emulator (moto) or a VPC endpoint; unset in AWS.
    aws_endpoint_url: str | None = None
    aws_region: str = "us-east-1"
    aws_max_attempts: int = Field(default=5, ge=1, le=20)
    # Explicit keys are for the local emulator only; in AWS the default chain (IRSA) is used.
    aws_access_key_id: SecretStr | None = None
    aws_secret_access_key: SecretStr | None = None
    name_prefix: str = "gas"

    log_format: Literal["auto", "json", "console"] = "auto"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    metrics_port: int = Field(default=9100, ge=0, le=65535)

    # One week hot for free users, then Glacier; `gas dev` shortens it to seconds.
    free_retention_seconds: int = Field(default=7 * 24 * 3600, ge=0)
    free_max_upload_bytes: int = Field(default=50 * 1024**2, gt=0)
    premium_max_upload_bytes: int = Field(default=5 * 1024**3, gt=0)
    archive_storage_class: Literal["GLACIER", "DEEP_ARCHIVE", "GLACIER_IR"] = "GLACIER"
    # How long a restored copy stays readable in the archive bucket (RestoreObject Days). The
    # thawer copies it back within minutes of the restore; the rest is slack for a thawer
    # outage, after which the thawer requests the restore again (docs/lifecycle.md).
    restore_days: int = Field(default=3, ge=1, le=30)
    reference_dir: str | None = None
    # The public address of the web app, used in emails and CORS for browser uploads.
    web_base_url: str = "http://127.0.0.1:8000"
    email_sender: str = "gas-noreply@example.org"

    # Set from the Kubernetes downward API in pods (the chart does): with both present and a
    # service-account token mounted, workers mark their pod busy while they handle a message
    # (gas_core.k8s). Unset outside Kubernetes, where no marking happens.
    pod_name: str | None = None
    pod_namespace: str | None = None
    # The in-cluster API server address (the `kubernetes` Service every cluster has).
    kubernetes_api_url: str = "https://kubernetes.default.svc"

    @field_validator("name_prefix")
    @classmethod
    def _valid_name_prefix(cls, value: str) -> str:
        if not _NAME_PREFIX_PATTERN.match(value):
            raise ValueError(
                "must be 2-32 lowercase letters, digits or '-', starting with a letter "
                "(it becomes part of bucket, queue and table names)"
            )
        return value

    @model_validator(mode="after")
    def _production_refuses_unsafe_values(self) -> Self:
        if self.env is not Environment.PRODUCTION:
            return self
        problems = [
            f"GAS_{name.upper()} is {why}"
            for name, why in self._unsafe_secrets()
        ]
        if self.aws_access_key_id is not None or self.aws_secret_access_key is not None:
            problems.append(
                "GAS_AWS_ACCESS_KEY_ID/GAS_AWS_SECRET_ACCESS_KEY are for the local emulator; "
                "production uses the pod's IAM role"
            )
        if problems:
            raise ValueError("unsafe production settings: " + "; ".join(problems))
        return self

    def _unsafe_secrets(self) -> list[tuple[str, str]]:
        """SecretStr fields (of any subclass) that are missing or still dev defaults."""
        unsafe = []
        for name, field in type(self).model_fields.items():
            if name.startswith("aws_"):
                continue
            if not _is_secret_field(field.annotation):
                continue
            value = getattr(self, name)
            if value is None or not value.get_secret_value():
                unsafe.append((name, "missing"))
            elif value.get_secret_value().startswith(DEVELOPMENT_SECRET_PREFIX):
                unsafe.append((name, "a development default"))
        return unsafe

    @property
    def is_production(self) -> bool:
        return self.env is Environment.PRODUCTION

    @property
    def names(self) -> ResourceNames:
        return ResourceNames(self.name_prefix)

    def max_upload_bytes(self, tier: Tier | str) -> int:
        return self.premium_max_upload_bytes if tier == Tier.PREMIUM else self.free_max_upload_bytes


# A signing or encryption secret must carry at least 256 bits (32 bytes) of entropy.
MIN_SECRET_BITS = 256
_MIN_BITS_PER_CHAR = 3.0
_BASE64_ALPHABET = frozenset(string.ascii_letters + string.digits + "+/-_")
KEY_GENERATION_ADVICE = (
    "generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
)


def weak_secret_reason(value: str) -> str | None:
    """Why `value` is too weak to sign or encrypt with, or None. Never includes the value.

    Entropy cannot be measured from one value, so this estimates it: the length times the bits
    per character of the smallest usual alphabet the value fits (hex 4, base64 6, any printable
    character 6.5), which random hex (64 characters), base64 or `token_urlsafe(32)` values
    pass; plus a minimum of per-character entropy, which catches repeated or patterned values.
    """
    if len(value.encode()) < MIN_SECRET_BITS // 8:
        return f"shorter than {MIN_SECRET_BITS // 8} bytes"
    symbols = value.rstrip("=")
    if all(ch in string.hexdigits for ch in symbols):
        alphabet = 16
    elif all(ch in _BASE64_ALPHABET for ch in symbols):
        alphabet = 64
    else:
        alphabet = 95
    counts = [symbols.count(ch) for ch in set(symbols)]
    per_char = -sum(c / len(symbols) * math.log2(c / len(symbols)) for c in counts)
    if len(symbols) * math.log2(alphabet) < MIN_SECRET_BITS or per_char < _MIN_BITS_PER_CHAR:
        return f"below {MIN_SECRET_BITS} bits of entropy (too short or too repetitive)"
    return None


def _is_secret_field(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return SecretStr in getattr(annotation, "__args__", ())


class WorkerSettings(GasSettings):
    """Settings of a service that consumes one SQS queue through `gas_core.worker`."""

    # How many messages one process handles at once.
    worker_concurrency: int = Field(default=4, ge=1, le=64)
    # Long-poll wait; 20 s is the SQS maximum and the cheapest (fewest empty receives).
    worker_wait_seconds: int = Field(default=20, ge=0, le=20)
    # Visibility while a handler works; the heartbeat renews it while a handler runs.
    worker_visibility_seconds: int = Field(default=60, ge=2, le=43200)
    # Visibility from the receive until the handler starts (then extended to the above): a
    # worker killed in between, e.g. during the long poll, holds its messages only this long.
    worker_receive_visibility_seconds: int = Field(default=30, ge=1, le=43200)
    # Back-off for transient failures: base * 2^(receive_count-1), capped.
    worker_retry_base_seconds: int = Field(default=5, ge=0)
    worker_retry_max_seconds: int = Field(default=900, ge=0, le=43200)
    # After SIGTERM, how long in-flight handlers may run before their messages are released.
    # Keep it below the pod's terminationGracePeriodSeconds.
    worker_shutdown_grace_seconds: float = Field(default=25.0, ge=0)
    # Run-to-completion mode (a KEDA ScaledJob pod): take at most this many messages and exit
    # once they are handled (0: no limit, the long-running Deployment mode) ...
    worker_max_messages: int = Field(default=0, ge=0)
    # ... and exit when a receive finds the queue empty while nothing is in flight.
    worker_exit_when_idle: bool = False
