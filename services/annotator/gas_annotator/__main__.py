"""`python -m gas_annotator`: the annotator worker service."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from gas_annotator.bundle_store import pull_bundle
from gas_annotator.handler import Annotator
from gas_annotator.metrics import AnnotatorMetrics
from gas_annotator.reference import load_bundle
from gas_annotator.scratch import prepare_scratch
from gas_annotator.settings import AnnotatorSettings
from gas_core.aws import AwsClients
from gas_core.events import JobRequested, event_parser
from gas_core.jobs import JobRepository
from gas_core.logging import get_logger
from gas_core.resources import Queue, Topic
from gas_core.service import build_worker, load_settings, serve_worker, start_logging

log = get_logger("gas.annotator")


def main() -> None:
    settings = load_settings(AnnotatorSettings, service="annotator")
    start_logging("annotator", settings)
    # Unique per process: the pod name (hostname) plus pid.
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    # First, before anything can start the engine's process server: every process forked
    # from then on inherits the private umask.
    prepare_scratch(settings, worker_id)
    aws = AwsClients(settings)
    if settings.annotator_reference_uri:
        bundle = pull_bundle(
            aws.s3, settings.annotator_reference_uri, Path(settings.annotator_reference_cache_dir)
        )
    else:
        assert settings.reference_dir is not None  # the settings validator guarantees one
        bundle = load_bundle(Path(settings.reference_dir))
    log.info("reference_bundle", bundle=bundle.label)
    annotator = Annotator(
        settings=settings,
        repository=JobRepository(aws.dynamodb, settings.names.table),
        s3=aws.s3,
        sns=aws.sns,
        results_topic_arn=aws.topic_arn(Topic.JOB_RESULTS),
        reference_dir=bundle.root,
        metrics=AnnotatorMetrics(),
        worker_id=worker_id,
    )
    worker = build_worker(
        service="annotator",
        settings=settings,
        aws=aws,
        queue=Queue.ANNOTATOR,
        parse=event_parser(JobRequested).validate_json,
        handle=annotator,
    )
    serve_worker(worker, settings=settings, aws=aws)


if __name__ == "__main__":
    main()
