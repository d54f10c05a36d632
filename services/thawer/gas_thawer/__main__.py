"""`python -m gas_thawer`: the thawer worker service."""

from __future__ import annotations

from gas_core.aws import AwsClients
from gas_core.events import S3RestoreNotification
from gas_core.jobs import JobRepository
from gas_core.resources import Queue, Topic
from gas_core.service import build_worker, load_settings, serve_worker, start_logging
from gas_thawer.handler import Thawer
from gas_thawer.metrics import ThawerMetrics
from gas_thawer.settings import ThawerSettings


def main() -> None:
    settings = load_settings(ThawerSettings, service="thawer")
    start_logging("thawer", settings)
    aws = AwsClients(settings)
    thawer = Thawer(
        settings=settings,
        repository=JobRepository(aws.dynamodb, settings.names.table),
        s3=aws.s3,
        sns=aws.sns,
        results_topic_arn=aws.topic_arn(Topic.JOB_RESULTS),
        metrics=ThawerMetrics(),
    )
    worker = build_worker(
        service="thawer",
        settings=settings,
        aws=aws,
        queue=Queue.THAWER,
        parse=S3RestoreNotification.parse,
        handle=thawer,
    )
    serve_worker(worker, settings=settings, aws=aws)


if __name__ == "__main__":
    main()
