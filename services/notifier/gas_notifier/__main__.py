"""`python -m gas_notifier`: the notifier worker service."""

from __future__ import annotations

from gas_core.aws import AwsClients
from gas_core.events import JobCompleted, JobFailed, JobRestored, event_parser
from gas_core.jobs import JobRepository
from gas_core.resources import Queue
from gas_core.service import build_worker, load_settings, serve_worker, start_logging
from gas_notifier.handler import Notifier, email_templates
from gas_notifier.metrics import NotifierMetrics
from gas_notifier.settings import NotifierSettings


def main() -> None:
    settings = load_settings(NotifierSettings, service="notifier")
    start_logging("notifier", settings)
    aws = AwsClients(settings)
    notifier = Notifier(
        settings=settings,
        repository=JobRepository(aws.dynamodb, settings.names.table),
        ses=aws.ses,
        metrics=NotifierMetrics(),
        templates=email_templates(),
    )
    worker = build_worker(
        service="notifier",
        settings=settings,
        aws=aws,
        queue=Queue.NOTIFIER,
        parse=event_parser(JobCompleted, JobFailed, JobRestored).validate_json,
        handle=notifier,
    )
    serve_worker(worker, settings=settings, aws=aws)


if __name__ == "__main__":
    main()
