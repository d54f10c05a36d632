"""Fixtures for the web service: the app against the session's emulator, clients per user,
and real annotation results (one engine run per session)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from gas_annotator.engine import AnnotationResult
from gas_core.aws import AwsClients
from gas_core.jobs import Job, JobRepository
from gas_core.settings import GasSettings
from gas_web.app.main import create_app
from gas_web.settings import WebSettings
from tests.services.web import variants_parquet as vp
from tests.services.web.web_helpers import (
    demo_sample_vcf,
    finish_job,
    run_engine,
    upload,
)
from tests.support import emulator_settings

# Small caps so oversize uploads are cheap to test.
FREE_MAX = 64 * 1024
PREMIUM_MAX = 512 * 1024


@pytest.fixture(scope="session")
def demo_annotation(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, AnnotationResult]:
    """(input VCF, the real engine's result on it) on the synthetic demo bundle."""
    from gas_annotator.reference import build_demo_bundle

    root = tmp_path_factory.mktemp("annotation")
    build_demo_bundle(root / "demo")
    vcf = demo_sample_vcf(root / "demo", root / "demo_sample.vcf")
    return vcf, run_engine(vcf, root / "demo", root / "out")


# One app per test module (tests isolate themselves by user id, like the rest of the suite).
@pytest.fixture(scope="module")
def web_settings(
    provisioned: GasSettings, moto_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> WebSettings:
    settings: WebSettings = emulator_settings(
        moto_endpoint, cls=WebSettings, name_prefix=provisioned.name_prefix, auth_mode="dev",
        free_max_upload_bytes=FREE_MAX, premium_max_upload_bytes=PREMIUM_MAX,
        web_cache_dir=tmp_path_factory.mktemp("cache"),
    )
    return settings


@pytest.fixture(scope="module")
def web_aws(web_settings: WebSettings) -> AwsClients:
    return AwsClients(web_settings)


@pytest.fixture(scope="module")
def repository(web_aws: AwsClients, web_settings: WebSettings) -> JobRepository:
    return JobRepository(web_aws.dynamodb, web_settings.names.table)


@pytest.fixture(scope="module")
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture(scope="module")
def client(
    web_settings: WebSettings, web_aws: AwsClients, registry: CollectorRegistry
) -> Iterator[TestClient]:
    app = create_app(web_settings, aws=web_aws, registry=registry)
    with TestClient(app, follow_redirects=False) as test_client:
        yield test_client


def bearer(user_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer dev:{user_id}"}


@pytest.fixture
def other_user() -> str:
    import uuid

    return "other-" + uuid.uuid4().hex[:10]


SubmitJob = Callable[..., Job]


@pytest.fixture(scope="module")
def submit_job(
    client: TestClient, repository: JobRepository, demo_annotation: tuple[Path, AnnotationResult]
) -> SubmitJob:
    """Create, upload and submit a job through the API; returns the stored job."""

    def submit(user_id: str, *, content: bytes | None = None,
               file_name: str = "demo_sample.vcf") -> Job:
        created = client.post("/api/v1/jobs", json={"file_name": file_name},
                              headers=bearer(user_id))
        assert created.status_code == 201, created.text
        body = created.json()
        data = content if content is not None else demo_annotation[0].read_bytes()
        assert upload(body["upload"], data).status_code in (200, 201, 204)
        response = client.post(f"/api/v1/jobs/{body['job_id']}/submit", headers=bearer(user_id))
        assert response.status_code == 202, response.text
        return repository.get_job(user_id, body["job_id"])

    return submit


@pytest.fixture(scope="module")
def complete(
    submit_job: SubmitJob,
    repository: JobRepository,
    web_aws: AwsClients,
    web_settings: WebSettings,
    demo_annotation: tuple[Path, AnnotationResult],
) -> Callable[[str], Job]:
    def run(user_id: str) -> Job:
        job = submit_job(user_id)
        return finish_job(repository=repository, aws=web_aws, settings=web_settings, job=job,
                          result=demo_annotation[1])

    return run


@pytest.fixture
def completed_job(complete: Callable[[str], Job], user_id: str) -> Job:
    """A COMPLETED job with real results, of its own user: tests may change it."""
    return complete(user_id)


@pytest.fixture(scope="module")
def shared_completed_job(complete: Callable[[str], Job]) -> Job:
    """One COMPLETED job per module for tests that only read it."""
    import uuid

    return complete("reader-" + uuid.uuid4().hex[:10])


MakeJob = Callable[..., tuple[Job, list["vp.Variant"]]]


@pytest.fixture(scope="module")
def make_job(
    submit_job: SubmitJob, repository: JobRepository, web_aws: AwsClients,
    web_settings: WebSettings, tmp_path_factory: pytest.TempPathFactory,
) -> MakeJob:
    """A COMPLETED job whose result Parquet is one written by variants_parquet (``summary`` is
    the job's stored summary; the other options go to ``vp.write_result``)."""

    def make(user_id: str, *, summary: dict[str, Any] | None = None,
             **options: Any) -> tuple[Job, list[vp.Variant]]:
        job = submit_job(user_id)
        path = tmp_path_factory.mktemp("result") / "result.annot.parquet"
        data = vp.write_result(path, **options)
        key = f"results/{user_id}/{job.job_id}/{path.name}"
        web_aws.s3.upload_file(str(path), web_settings.names.results_bucket, key)
        leased = repository.claim_lease(job, owner="test", ttl_seconds=60)
        done = repository.complete_job(user_id, leased.job_id, owner="test",
                                       summary=summary or {}, result_keys={"parquet": key})
        return done, data

    return make
