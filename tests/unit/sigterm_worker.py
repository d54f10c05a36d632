"""A worker process for the SIGTERM test: handles Ping messages slowly, writing a marker file.

Run as `python tests/unit/sigterm_worker.py QUEUE_URL DLQ_URL ENDPOINT MARKER_DIR`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from gas_core.aws import AwsClients
from gas_core.logging import configure_logging
from gas_core.metrics import WorkerMetrics
from gas_core.settings import GasSettings
from gas_core.worker import MessageContext, QueueWorker, WorkerConfig


class Ping(BaseModel):
    job_id: str


def main() -> None:
    queue_url, dlq_url, endpoint, marker_dir = sys.argv[1:5]
    configure_logging(service="sigterm-test", log_format="json")
    aws = AwsClients(GasSettings(aws_endpoint_url=endpoint, aws_access_key_id="t",
                                 aws_secret_access_key="t"))  # type: ignore[arg-type]
    markers = Path(marker_dir)

    def handle(message: Ping, context: MessageContext) -> None:
        (markers / f"{message.job_id}.started").touch()
        time.sleep(3)
        (markers / f"{message.job_id}.finished").touch()

    worker = QueueWorker(
        sqs=aws.sqs,
        config=WorkerConfig(service="sigterm-test", queue_name="q", queue_url=queue_url,
                            dlq_url=dlq_url, concurrency=1, wait_seconds=1,
                            visibility_seconds=30, shutdown_grace_seconds=20),
        parse=Ping.model_validate_json, handle=handle, metrics=WorkerMetrics(CollectorRegistry()),
    )
    worker.install_signal_handlers()
    worker.run()


if __name__ == "__main__":
    main()
