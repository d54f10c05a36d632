"""Settings of the web service."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Literal, Self

from pydantic import Field, SecretStr, model_validator

from gas_core.settings import (
    DEVELOPMENT_SECRET_PREFIX,
    KEY_GENERATION_ADVICE,
    GasSettings,
    weak_secret_reason,
)
from gas_web.app.variants.links import DEFAULTS as LINK_DEFAULTS
from gas_web.app.variants.links import LinkTemplates


class WebSettings(GasSettings):
    web_host: str = "127.0.0.1"
    web_port: int = Field(default=8000, ge=1, le=65535)
    # `dev` accepts a user name at a login form and `Bearer dev:<user_id>` tokens: never in
    # production (refused below).
    auth_mode: Literal["globus", "dev"] = "globus"
    session_secret: SecretStr = SecretStr(DEVELOPMENT_SECRET_PREFIX + "session-secret")
    # A signed-in browser session lasts at most this long after its login, however active
    # (server-side, gas_web.app.sessions); logout ends it at once.
    session_max_age_seconds: int = Field(default=12 * 3600, ge=60, le=7 * 24 * 3600)

    # Globus Auth: the confidential client of this web app (authorization-code flow and token
    # introspection) and the public native-app client the `gas` CLI logs in with.
    globus_client_id: str | None = None
    globus_client_secret: SecretStr | None = None
    globus_native_client_id: str | None = None
    # The scope API tokens must carry (what `gas login` requests); default: this app's `all`.
    globus_api_scope: str | None = None
    # Introspection answers are cached this long (never past the token's own expiry).
    globus_introspection_cache_seconds: int = Field(default=60, ge=0, le=3600)

    # Presigned URLs. An upload URL can replace its object until it expires, so it is kept
    # short (the submit records exactly which object was checked, and the annotator reads only
    # that one); downloads start at once.
    upload_url_seconds: int = Field(default=15 * 60, ge=60, le=7 * 24 * 3600)
    # How long after `POST /jobs` its job id can still be submitted (the upload reservation).
    upload_reservation_seconds: int = Field(default=2 * 3600, ge=60, le=7 * 24 * 3600)
    download_url_seconds: int = Field(default=300, ge=10, le=3600)
    # Reference assemblies jobs may name (a JSON list in GAS_SUPPORTED_ASSEMBLIES).
    supported_assemblies: tuple[str, ...] = ("GRCh38",)
    # The annotator runs on the synthetic demo bundle (`gas dev` without --reference sets it):
    # every page says SYNTHETIC and the annotate page offers the demo example VCF.
    reference_synthetic: bool = False
    # Results (Parquet) downloaded for the variant browser are kept here, per user and job, up
    # to a size. Default: a private directory of this OS user and deployment under the temp
    # dir (see `cache_dir`), never shared by two stacks on one host.
    web_cache_dir: Path | None = None
    web_cache_max_bytes: int = Field(default=2 * 1024**3, gt=0)
    # Jobs the annotators run at once at full scale (the chart: autoscaling maxReplicas x
    # worker concurrency): a PENDING job's estimated start assumes the jobs ahead of it drain
    # this many at a time (gas_core.jobs.queue).
    annotator_slots: int = Field(default=1, ge=1, le=10_000)
    # Links from a variant's detail to the public databases (GAS_LINK_*): URL templates with
    # {rsid}, or {chrom} {pos} {ref} {alt} (gnomAD, Ensembl location), e.g. for a mirror.
    link_dbsnp: str = LINK_DEFAULTS["dbsnp"]
    link_clinvar: str = LINK_DEFAULTS["clinvar"]
    link_gnomad: str = LINK_DEFAULTS["gnomad"]
    link_ensembl_variant: str = LINK_DEFAULTS["ensembl_variant"]
    link_ensembl_location: str = LINK_DEFAULTS["ensembl_location"]

    @model_validator(mode="after")
    def _production_refuses_dev_login(self) -> Self:
        if self.is_production and self.auth_mode == "dev":
            raise ValueError("GAS_AUTH_MODE=dev is refused when GAS_ENV=production")
        if self.auth_mode == "globus" and not (self.globus_client_id and self.globus_client_secret):
            raise ValueError(
                "GAS_AUTH_MODE=globus needs GAS_GLOBUS_CLIENT_ID and GAS_GLOBUS_CLIENT_SECRET "
                "(register a confidential client at app.globus.org), or GAS_AUTH_MODE=dev locally"
            )
        if self.is_production:
            reason = weak_secret_reason(self.session_secret.get_secret_value())
            if reason:
                raise ValueError(f"GAS_SESSION_SECRET is {reason}; {KEY_GENERATION_ADVICE}")
        for name in LINK_DEFAULTS:
            template = getattr(self, f"link_{name}")
            try:
                url = template.format(rsid="rs1", chrom="1", pos=1, ref="A", alt="C")
            except (KeyError, IndexError, ValueError):
                raise ValueError(f"GAS_LINK_{name.upper()} may use only {{rsid}}, {{chrom}}, "
                                 "{pos}, {ref} and {alt}") from None
            if not url.startswith(("https://", "http://")):
                raise ValueError(f"GAS_LINK_{name.upper()} must be an http(s) URL")
        if self.upload_reservation_seconds < self.upload_url_seconds:
            raise ValueError("GAS_UPLOAD_RESERVATION_SECONDS must be at least "
                             "GAS_UPLOAD_URL_SECONDS (an upload must stay submittable)")
        return self

    @property
    def link_templates(self) -> LinkTemplates:
        return LinkTemplates(dbsnp=self.link_dbsnp, clinvar=self.link_clinvar,
                             gnomad=self.link_gnomad, ensembl_variant=self.link_ensembl_variant,
                             ensembl_location=self.link_ensembl_location)

    @property
    def cache_dir(self) -> Path:
        if self.web_cache_dir is not None:
            return self.web_cache_dir
        return Path(tempfile.gettempdir()) / f"gas-web-cache-{os.getuid()}-{self.name_prefix}"

    @property
    def api_scope(self) -> str:
        if self.globus_api_scope:
            return self.globus_api_scope
        return f"https://auth.globus.org/scopes/{self.globus_client_id}/all"

    @property
    def dev_tools_enabled(self) -> bool:
        """Development-only pages (the emulator's outbox) exist only against an emulator."""
        return not self.is_production and self.aws_endpoint_url is not None
