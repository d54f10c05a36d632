"""Application factory: settings, clients and routes wired once per process."""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

import xstatic.pkg.bootstrap
from botocore.exceptions import BotoCoreError, ClientError
from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from prometheus_client import REGISTRY, CollectorRegistry
from starlette.middleware.sessions import SessionMiddleware

from gas_core.aws import AwsClients
from gas_core.jobs import JobRepository, SavedFilterStore
from gas_core.logging import get_logger
from gas_web.app.api.openapi import install_openapi, operation_id
from gas_web.app.api.routes import auth_config, filters, health, jobs, me, variants
from gas_web.app.core.auth import GLOBUS_LOGOUT_URL, GlobusAuth
from gas_web.app.core.errors import install_error_handlers
from gas_web.app.core.metrics import WebMetrics
from gas_web.app.core.middleware import RequestContextMiddleware, security_headers_for
from gas_web.app.core.security import TokenSealer
from gas_web.app.sessions import SessionStore
from gas_web.app.uploads import UploadReservations
from gas_web.app.variants import VariantStore
from gas_web.app.web.routes import auth, dev, docs, pages, profile, saved_filters
from gas_web.app.web.routes import demo as demo_routes
from gas_web.app.web.templating import make_templates
from gas_web.settings import WebSettings

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"
# Swagger UI 5's bundle and stylesheet, as shipped inside the fastapi-offline package.
SWAGGER_DIR = Path(str(resources.files("fastapi_offline") / "static"))
SESSION_COOKIE = "gas_session"
log = get_logger(__name__)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def create_app(
    settings: WebSettings | None = None,
    *,
    aws: AwsClients | None = None,
    registry: CollectorRegistry = REGISTRY,
    globus: GlobusAuth | None = None,
) -> FastAPI:
    settings = settings or WebSettings()
    aws = aws or AwsClients(settings)
    app = FastAPI(
        title="GAS — Genomics Annotation Service",
        version="0.1.0",
        description="Annotate VCF files: upload, follow, browse and download results. "
                    "Authenticate with `Authorization: Bearer <Globus access token>` "
                    "(`gas login` gets one).",
        docs_url=None,  # served by our own page: offline assets, no inline script (CSP)
        redoc_url=None,
        openapi_url="/api/openapi.json",
        generate_unique_id_function=operation_id,
    )
    install_openapi(app)
    if globus is None and settings.auth_mode == "globus":
        assert settings.globus_client_id and settings.globus_client_secret  # settings checked
        globus = GlobusAuth(
            client_id=settings.globus_client_id,
            client_secret=settings.globus_client_secret.get_secret_value(),
            redirect_uri=settings.web_base_url.rstrip("/") + "/auth/callback",
            cache_seconds=settings.globus_introspection_cache_seconds,
        )
    templates = make_templates()
    app.state.settings = settings
    app.state.aws = aws
    app.state.registry = registry
    app.state.jobs = JobRepository(aws.dynamodb, settings.names.table)
    app.state.sessions = SessionStore(aws.dynamodb, settings.names.table,
                                      lifetime_seconds=settings.session_max_age_seconds)
    app.state.uploads = UploadReservations(aws.dynamodb, settings.names.table)
    app.state.saved_filters = SavedFilterStore(aws.dynamodb, settings.names.table)
    app.state.globus = globus
    app.state.templates = templates
    app.state.sealer = TokenSealer(settings.session_secret.get_secret_value())
    app.state.variants = VariantStore(
        s3=aws.s3, bucket=settings.names.results_bucket,
        cache_dir=settings.cache_dir, max_bytes=settings.web_cache_max_bytes,
    )

    upload_origin: list[str] = []

    def upload_origins() -> list[str]:
        # Browsers POST uploads straight to S3: allow exactly the origin presigned POSTs use
        # (found once by presigning locally; no request is made).
        if not upload_origin:
            try:
                post = aws.s3.generate_presigned_post(settings.names.inputs_bucket, "probe",
                                                      ExpiresIn=60)
            except (BotoCoreError, ClientError) as error:
                log.warning("cannot presign yet; CSP allows no upload origin", error=str(error))
                return []
            upload_origin.append(_origin(post["url"]))
        return upload_origin

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret.get_secret_value(),
        session_cookie=SESSION_COOKIE,
        max_age=settings.session_max_age_seconds,
        same_site="lax",
        https_only=settings.is_production,
    )
    # Added last, so it runs first: it sees every response, including the session's.
    app.add_middleware(
        RequestContextMiddleware,
        metrics=WebMetrics(registry),
        security_headers=security_headers_for(
            production=settings.is_production,
            connect_origins=upload_origins,
            form_origins=[_origin(GLOBUS_LOGOUT_URL)] if settings.auth_mode == "globus" else [],
        ),
    )
    install_error_handlers(app, templates)

    app.mount("/static/bootstrap", StaticFiles(directory=xstatic.pkg.bootstrap.BASE_DIR),
              name="bootstrap")
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_DIR),
              name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    for router in (health.router, auth_config.router, me.router, filters.router, jobs.router,
                   variants.router, docs.router, auth.router, pages.router, saved_filters.router,
                   profile.router, dev.router):
        app.include_router(router)
    app.include_router(demo_routes.router)
    return app
