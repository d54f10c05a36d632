"""The browser's ClinVar menu offers terms split exactly as the ClinVar filter splits them, so
every offered term finds rows."""

from __future__ import annotations

from dataclasses import replace

import pytest
from fastapi.testclient import TestClient

from gas_core.aws import AwsClients
from gas_core.jobs import Job, JobRepository
from gas_web.settings import WebSettings
from tests.services.web import variants_parquet as vp
from tests.services.web.conftest import SubmitJob, bearer

# ClinVar CLNSIG values as they come: '/' and '|' inside one assertion, ',' and ';' between them.
CLINVAR = ["Pathogenic/Likely_pathogenic", "benign|drug_response", "not_provided, risk_factor",
           "Uncertain_significance;association", "conflicting&other"]


@pytest.fixture(scope="module")
def mixed_clinvar_job(
    submit_job: SubmitJob, repository: JobRepository, web_aws: AwsClients,
    web_settings: WebSettings, tmp_path_factory: pytest.TempPathFactory,
) -> Job:
    user_id = "options-reader"
    job = submit_job(user_id)
    data = vp.variants(samples=0)
    for i, value in enumerate(CLINVAR):
        data[10 + i] = replace(data[10 + i], clinvar=value)
    path = tmp_path_factory.mktemp("options") / "r.annot.parquet"
    vp.write_result(path, samples=0, data=data)
    key = f"results/{user_id}/{job.job_id}/r.annot.parquet"
    web_aws.s3.upload_file(str(path), web_settings.names.results_bucket, key)
    leased = repository.claim_lease(job, owner="test", ttl_seconds=60)
    return repository.complete_job(user_id, leased.job_id, owner="test", summary={},
                                   result_keys={"parquet": key})


def test_every_offered_clinvar_term_filters_to_at_least_one_row(
    client: TestClient, mixed_clinvar_job: Job
) -> None:
    job = mixed_clinvar_job
    terms = client.app.state.variants.filter_options(job)["clinvar"]  # type: ignore[attr-defined]
    assert {"pathogenic", "likely_pathogenic", "drug_response", "risk_factor",
            "association", "other"} <= set(terms)
    for term in terms:
        response = client.get(f"/api/v1/jobs/{job.job_id}/variants",
                              params={"clinvar": term, "view": "transcript"},
                              headers=bearer(job.user_id))
        assert response.status_code == 200, response.text
        assert response.json()["total"] >= 1, term
