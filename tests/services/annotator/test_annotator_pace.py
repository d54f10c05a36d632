"""The annotator folds each completed job into the annotators' recent pace (the record a
PENDING job's estimated start and finish are computed from, gas_core.jobs.queue)."""

from __future__ import annotations

from collections.abc import Callable

from gas_annotator.handler import Annotator, handle_job_requested
from gas_core.aws import AwsClients
from gas_core.jobs import JobRepository, JobStatus
from gas_core.settings import GasSettings

# The annotator service tests' fixtures and helpers (a handler on the demo bundle).
from tests.services.annotator.test_annotator_service import (  # noqa: F401
    clock,
    context,
    good_vcf,
    make_annotator,
    repository,
    submit,
)


def test_a_completed_job_updates_the_annotators_pace(
    settings: GasSettings,
    aws: AwsClients,
    repository: JobRepository,  # noqa: F811
    user_id: str,
    make_annotator: Callable[..., Annotator],  # noqa: F811
    good_vcf: bytes,  # noqa: F811
) -> None:
    before = repository.throughput()
    job, event = submit(settings=settings, aws=aws, repository=repository, user_id=user_id,
                        body=good_vcf)
    handle_job_requested(event, context(), annotator=make_annotator())
    assert repository.get_job(user_id, job.job_id).status is JobStatus.COMPLETED
    after = repository.throughput()
    assert after is not None
    assert after.jobs == (before.jobs if before else 0) + 1
    assert after.job_seconds > 0 and after.variants > 0
