"""`python -m gas_archiver`: the archiver worker service."""

from __future__ import annotations

from gas_archiver.handler import Archiver
from gas_archiver.metrics import ArchiverMetrics
from gas_archiver.settings import ArchiverSettings
from gas_core.aws import AwsClients
from gas_core.events import ArchiveRequested, JobCompleted, event_parser
from gas_core.jobs import JobRepository
from gas_core.resources import Queue
from gas_core.service import build_worker, load_settings, serve_worker, start_logging


def main() -> None:
    settings = load_settings(ArchiverSettings, service="archiver")
    start_logging("archiver", settings)
    aws = AwsClients(settings)
    archiver = Archiver(
        settings=settings,
        repository=JobRepository(aws.dynamodb, settings.names.table),
        s3=aws.s3,
        sqs=aws.sqs,
        queue_url=aws.queue_url(Queue.ARCHIVER),
        metrics=ArchiverMetrics(),
    )
    worker = build_worker(
        service="archiver",
        settings=settings,
        aws=aws,
        queue=Queue.ARCHIVER,
        parse=event_parser(JobCompleted, ArchiveRequested).validate_json,
        handle=archiver,
    )
    serve_worker(worker, settings=settings, aws=aws)


if __name__ == "__main__":
    main()
