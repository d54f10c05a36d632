"""`python -m gas_restorer`: the restorer worker service."""

from __future__ import annotations

from gas_core.aws import AwsClients
from gas_core.events import UserTierChanged, event_parser
from gas_core.jobs import JobRepository
from gas_core.resources import Queue, Topic
from gas_core.service import build_worker, load_settings, serve_worker, start_logging
from gas_restorer.handler import Restorer
from gas_restorer.metrics import RestorerMetrics
from gas_restorer.settings import RestorerSettings


def main() -> None:
    settings = load_settings(RestorerSettings, service="restorer")
    start_logging("restorer", settings)
    aws = AwsClients(settings)
    restorer = Restorer(
        settings=settings,
        repository=JobRepository(aws.dynamodb, settings.names.table),
        s3=aws.s3,
        sns=aws.sns,
        sqs=aws.sqs,
        results_topic_arn=aws.topic_arn(Topic.JOB_RESULTS),
        thawer_queue_url=aws.queue_url(Queue.THAWER),
        metrics=RestorerMetrics(),
    )
    worker = build_worker(
        service="restorer",
        settings=settings,
        aws=aws,
        queue=Queue.RESTORER,
        parse=event_parser(UserTierChanged).validate_json,
        handle=restorer,
    )
    serve_worker(worker, settings=settings, aws=aws)


if __name__ == "__main__":
    main()
