"""Start-up of a worker service: logging, clients, metrics/health server, the queue loop.

Each worker's `__main__` supplies only its settings class, queue, parser and handler.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, NoReturn, TypeVar

from prometheus_client import REGISTRY, CollectorRegistry
from pydantic import ValidationError
from pydantic_settings import BaseSettings, SettingsError

from gas_core.aws import AwsClients
from gas_core.jobs import JobRepository
from gas_core.k8s import marker_from_settings
from gas_core.logging import configure_logging, get_logger
from gas_core.metrics import MetricsServer, WorkerMetrics
from gas_core.outbox import Outbox, OutboxReconciler
from gas_core.resources import Queue
from gas_core.settings import WorkerSettings
from gas_core.worker import MessageContext, QueueWorker, WorkerConfig

M = TypeVar("M")
S = TypeVar("S", bound=BaseSettings)
log = get_logger("gas.service")
# Exit status of a process whose settings are invalid (a deployment error, not a crash).
BAD_SETTINGS_EXIT = 78  # EX_CONFIG


def load_settings(settings_cls: type[S], *, service: str) -> S:
    """The service's settings from the environment; on an error, one line per problem (the
    setting's name and what is wrong, never its value: it may be a secret) and exit.

    pydantic's own error text shows each input value; a traceback would add more. Neither
    may reach a pod's log, where a secret's tail would stay.
    """
    try:
        return settings_cls()
    except ValidationError as error:
        _exit_with_settings_errors(service, [
            f"{_setting_name(problem['loc'])}: {problem['msg']}"
            for problem in error.errors(include_input=False, include_url=False,
                                        include_context=False)
        ])
    except SettingsError as error:  # a value pydantic-settings could not even decode
        # Its message names the field and source; its cause may quote the value: drop it.
        _exit_with_settings_errors(service, [str(error).split(":", 1)[0]])


def _setting_name(location: tuple[int | str, ...]) -> str:
    if not location:
        return "settings"
    return "GAS_" + "__".join(str(part) for part in location).upper()


def _exit_with_settings_errors(service: str, problems: list[str]) -> NoReturn:
    for problem in problems:
        print(f"{service}: invalid settings: {problem}", file=sys.stderr)
    raise SystemExit(BAD_SETTINGS_EXIT)


def build_worker(
    *,
    service: str,
    settings: WorkerSettings,
    aws: AwsClients,
    queue: Queue,
    parse: Callable[[str], M],
    handle: Callable[[M, MessageContext], None],
    registry: CollectorRegistry = REGISTRY,
    visibility_seconds: int | None = None,
    on_busy_change: Callable[[bool], None] | None = None,
) -> QueueWorker[M]:
    """The service's queue worker; in a pod it marks itself busy while handling a message.

    `on_busy_change` defaults to the pod-deletion-cost marker when running in Kubernetes with
    GAS_POD_NAME/GAS_POD_NAMESPACE set (gas_core.k8s), and to nothing elsewhere.
    """
    config = WorkerConfig(
        service=service,
        queue_name=settings.names.queue(queue),
        queue_url=aws.queue_url(queue),
        dlq_url=aws.dlq_url(queue),
        concurrency=settings.worker_concurrency,
        wait_seconds=settings.worker_wait_seconds,
        visibility_seconds=visibility_seconds or settings.worker_visibility_seconds,
        receive_visibility_seconds=settings.worker_receive_visibility_seconds,
        retry_base_seconds=settings.worker_retry_base_seconds,
        retry_max_seconds=settings.worker_retry_max_seconds,
        shutdown_grace_seconds=settings.worker_shutdown_grace_seconds,
        max_messages=settings.worker_max_messages,
        exit_when_idle=settings.worker_exit_when_idle,
    )
    if on_busy_change is None:
        on_busy_change = marker_from_settings(settings)
    return QueueWorker(sqs=aws.sqs, config=config, parse=parse, handle=handle,
                       metrics=WorkerMetrics(registry), on_busy_change=on_busy_change)


def serve_worker(
    worker: QueueWorker[Any],
    *,
    settings: WorkerSettings,
    aws: AwsClients,
    registry: CollectorRegistry = REGISTRY,
) -> None:
    """Run the worker with its metrics/health server until SIGTERM; blocks."""
    # A receive finishes at least every wait_seconds; allow generous slack before "dead".
    stale_after = settings.worker_wait_seconds + 60

    def liveness() -> tuple[bool, str]:
        age = time.time() - worker.last_poll
        return (age < stale_after, f"last receive {age:.0f}s ago")

    def readiness() -> tuple[bool, str]:
        try:
            aws.sqs.get_queue_attributes(
                QueueUrl=worker.config.queue_url, AttributeNames=["QueueArn"]
            )
        except Exception as error:
            return False, f"queue unreachable: {error}"
        return True, "ok"

    server = MetricsServer(
        port=settings.metrics_port, registry=registry, liveness=liveness, readiness=readiness
    ).start()
    log.info("metrics_listening", port=server.port)
    worker.install_signal_handlers()
    # Every worker service republishes events a crashed writer left pending (web's too):
    # some worker always runs, in pods and in `gas dev` (gas_core.outbox).
    reconciler = OutboxReconciler(
        Outbox(JobRepository(aws.dynamodb, settings.names.table), aws.sns, aws.topic_arn)
    ).start()
    try:
        worker.run()
    finally:
        reconciler.stop()
        server.stop()


def start_logging(service: str, settings: WorkerSettings) -> None:
    configure_logging(service=service, log_format=settings.log_format, level=settings.log_level)
