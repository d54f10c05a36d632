"""Application factory: settings, clients and routes wired once per process."""

from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import REGISTRY, CollectorRegistry

from gas_core.aws import AwsClients
from gas_core.jobs import JobRepository
from gas_web.app.api.routes import health
from gas_web.settings import WebSettings


def create_app(
    settings: WebSettings | None = None,
    *,
    aws: AwsClients | None = None,
    registry: CollectorRegistry = REGISTRY,
) -> FastAPI:
    settings = settings or WebSettings()
    aws = aws or AwsClients(settings)
    app = FastAPI(
        title="GAS — Genomics Annotation Service",
        version="0.1.0",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
    )
    app.state.settings = settings
    app.state.aws = aws
    app.state.registry = registry
    app.state.jobs = JobRepository(aws.dynamodb, settings.names.table)
    app.include_router(health.router)
    return app
