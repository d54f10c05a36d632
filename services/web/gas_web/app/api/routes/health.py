"""Probes: /healthz (alive), /readyz (can reach its table and queue). /metrics is not here: the
web app serves it on its own port (gas_web.__main__), off the public one."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from gas_core.resources import Queue

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(request: Request) -> JSONResponse:
    aws = request.app.state.aws
    checks: dict[str, str] = {}
    try:
        aws.dynamodb.describe_table(TableName=request.app.state.settings.names.table)
        checks["table"] = "ok"
    except Exception as error:
        checks["table"] = f"unreachable: {type(error).__name__}"
    try:
        aws.sqs.get_queue_attributes(
            QueueUrl=aws.queue_url(Queue.ANNOTATOR), AttributeNames=["QueueArn"]
        )
        checks["queue"] = "ok"
    except Exception as error:
        checks["queue"] = f"unreachable: {type(error).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse({"ready": ready, "checks": checks}, status_code=200 if ready else 503)

