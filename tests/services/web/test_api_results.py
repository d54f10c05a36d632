"""Results and variants: downloads by short-lived redirect, 409 while archived or restoring,
filtered and sorted variant rows from the annotator's Parquet output."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from gas_annotator.engine import AnnotationResult
from gas_core.jobs import Job, JobRepository, StorageState, utc_now
from tests.services.web.conftest import SubmitJob, bearer

CONTRACT = ["chrom", "pos", "id", "ref", "alt", "gene", "transcript", "consequence", "impact",
            "protein_change", "known_id", "clinvar", "allele_frequency"]


@pytest.mark.parametrize("kind", ["vcf", "tsv", "summary", "log"])
def test_a_result_downloads_through_a_short_lived_redirect_with_its_file_name(
    client: TestClient, shared_completed_job: Job, demo_annotation: tuple[Path, AnnotationResult],
    kind: str,
) -> None:
    response = client.get(f"/api/v1/jobs/{shared_completed_job.job_id}/results/{kind}",
                          headers=bearer(shared_completed_job.user_id))
    assert response.status_code == 302
    location = response.headers["location"]
    query = parse_qs(urlsplit(location).query)
    assert int(query["X-Amz-Expires"][0]) <= 300
    file = httpx.get(location)
    assert file.status_code == 200
    expected: Path = getattr(demo_annotation[1], kind)
    assert file.content == expected.read_bytes()
    assert file.headers["content-disposition"] == f'attachment; filename="{expected.name}"'


def test_results_of_an_unfinished_job_are_a_conflict(
    client: TestClient, submit_job: SubmitJob, user_id: str
) -> None:
    job = submit_job(user_id)
    response = client.get(f"/api/v1/jobs/{job.job_id}/results/tsv", headers=bearer(user_id))
    assert response.status_code == 409
    assert "pending" in response.json()["detail"]


def test_archived_results_answer_409_with_the_upgrade_hint(
    client: TestClient, completed_job: Job, repository: JobRepository
) -> None:
    archiving = repository.transition_storage(completed_job, StorageState.ARCHIVING)
    repository.transition_storage(archiving, StorageState.ARCHIVED, archive_key="a/b")
    for path in ("results/tsv", "variants"):
        response = client.get(f"/api/v1/jobs/{completed_job.job_id}/{path}",
                              headers=bearer(completed_job.user_id))
        assert response.status_code == 409
        assert response.headers["content-type"] == "application/problem+json"
        assert "upgrade to premium" in response.json()["detail"]
        assert response.json()["state"] == "archived"


def test_an_archived_jobs_summary_and_log_stay_downloadable(
    client: TestClient, completed_job: Job, repository: JobRepository,
    demo_annotation: tuple[Path, AnnotationResult],
) -> None:
    # Only the big files are archived; the summary and log stay hot (docs/lifecycle.md).
    archiving = repository.transition_storage(completed_job, StorageState.ARCHIVING)
    repository.transition_storage(archiving, StorageState.ARCHIVED, archive_key="a/b")
    headers = bearer(completed_job.user_id)
    for kind in ("summary", "log"):
        response = client.get(f"/api/v1/jobs/{completed_job.job_id}/results/{kind}",
                              headers=headers)
        assert response.status_code == 302, response.text
        expected: Path = getattr(demo_annotation[1], kind)
        assert httpx.get(response.headers["location"]).content == expected.read_bytes()
    for kind in ("vcf", "tsv"):
        response = client.get(f"/api/v1/jobs/{completed_job.job_id}/results/{kind}",
                              headers=headers)
        assert response.status_code == 409
        assert response.json()["state"] == "archived"


def test_a_failed_jobs_log_is_downloadable(
    client: TestClient, submit_job: SubmitJob, repository: JobRepository, user_id: str
) -> None:
    # It failed before the engine wrote a log: the log is the job's record of the failure.
    job = submit_job(user_id)
    repository.fail_job(user_id, job.job_id, reason="Line 3: REF is not a nucleotide string.")
    response = client.get(f"/api/v1/jobs/{job.job_id}/results/log", headers=bearer(user_id))
    assert response.status_code == 200, response.text
    assert "Line 3: REF is not a nucleotide string." in response.text
    assert job.job_id in response.text
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert response.headers["content-disposition"].endswith('.log"')
    for kind in ("vcf", "summary"):
        response = client.get(f"/api/v1/jobs/{job.job_id}/results/{kind}",
                              headers=bearer(user_id))
        assert response.status_code == 409
        assert response.json()["state"] == "failed"


def test_someone_elses_failed_jobs_log_is_not_found(
    client: TestClient, submit_job: SubmitJob, repository: JobRepository, user_id: str,
    other_user: str,
) -> None:
    job = submit_job(user_id)
    repository.fail_job(user_id, job.job_id, reason="bad input")
    response = client.get(f"/api/v1/jobs/{job.job_id}/results/log", headers=bearer(other_user))
    assert response.status_code == 404
    assert "bad input" not in response.text


def test_restoring_results_answer_409_with_the_expected_time(
    client: TestClient, completed_job: Job, repository: JobRepository
) -> None:
    job = repository.transition_storage(completed_job, StorageState.ARCHIVING)
    job = repository.transition_storage(job, StorageState.ARCHIVED, archive_key="a/b")
    repository.transition_storage(job, StorageState.RESTORING, restore_tier="Standard",
                                  restore_requested_at=utc_now() - timedelta(hours=1))
    response = client.get(f"/api/v1/jobs/{completed_job.job_id}/results/vcf",
                          headers=bearer(completed_job.user_id))
    assert response.status_code == 409
    assert "expected in 2\N{EN DASH}4 hours" in response.json()["detail"]


def test_results_stay_downloadable_while_archiving(
    client: TestClient, completed_job: Job, repository: JobRepository
) -> None:
    repository.transition_storage(completed_job, StorageState.ARCHIVING)
    response = client.get(f"/api/v1/jobs/{completed_job.job_id}/results/tsv",
                          headers=bearer(completed_job.user_id))
    assert response.status_code == 302


def test_an_unknown_result_kind_is_refused(client: TestClient, shared_completed_job: Job) -> None:
    response = client.get(f"/api/v1/jobs/{shared_completed_job.job_id}/results/parquet",
                          headers=bearer(shared_completed_job.user_id))
    assert response.status_code == 422


# -- variants --------------------------------------------------------------------------------


def _variants(client: TestClient, job: Job, **params: object) -> dict[str, object]:
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants", params=params,
                          headers=bearer(job.user_id))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def _tsv_rows(result: AnnotationResult) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(result.tsv.read_text()), delimiter="\t"))


def test_variant_rows_have_the_tsv_columns_in_file_order(
    client: TestClient, shared_completed_job: Job, demo_annotation: tuple[Path, AnnotationResult]
) -> None:
    body = _variants(client, shared_completed_job, limit=500)
    rows = _tsv_rows(demo_annotation[1])
    assert body["total"] == len(rows)
    items = body["items"]
    # The TSV columns first, in order; newer keys (variant_key, picked...) follow them.
    assert isinstance(items, list) and list(items[0])[:len(CONTRACT)] == CONTRACT
    assert [(r["pos"], r["transcript"] or None) for r in items] == [
        (int(r["pos"]), r["transcript"] or None) for r in rows[:500]]


def test_variants_page_through_with_a_cursor(client: TestClient, shared_completed_job: Job) -> None:
    everything = _variants(client, shared_completed_job, limit=500)["items"]
    collected: list[object] = []
    cursor = None
    while True:
        extra = {"cursor": cursor} if cursor else {}
        page = _variants(client, shared_completed_job, limit=7, **extra)
        collected += page["items"]  # type: ignore[operator]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert collected == everything


@pytest.mark.parametrize(("params", "expected"), [
    ({"gene": "DEMOPLUS"}, lambda t: pc.equal(t["gene"], "DEMOPLUS")),
    ({"gene": "demoplus"}, lambda t: pc.equal(t["gene"], "DEMOPLUS")),
    ({"impact": "MODERATE"}, lambda t: pc.equal(t["impact"], "MODERATE")),
    ({"consequence": "missense_variant"},
     lambda t: pc.match_substring_regex(t["consequence"], r"(^|&)missense_variant(&|$)")),
    ({"clinvar": "pathogenic"},
     lambda t: pc.match_substring_regex(pc.utf8_lower(t["clinvar"]), r"(^|,)pathogenic(,|$)")),
    ({"known": "true"}, lambda t: pc.invert(pc.is_null(t["known_id"]))),
    ({"known": "false"}, lambda t: pc.is_null(t["known_id"])),
    ({"max_af": 0.02}, lambda t: pc.less_equal(t["allele_frequency"], 0.02)),
    ({"max_af": 0.02, "keep_no_af": "true"},
     lambda t: pc.or_kleene(pc.is_null(t["allele_frequency"]),
                            pc.less_equal(t["allele_frequency"], 0.02))),
])
def test_variant_filters_select_exactly_the_matching_rows(
    client: TestClient, shared_completed_job: Job, demo_annotation: tuple[Path, AnnotationResult],
    params: dict[str, object], expected: object,
) -> None:
    table = pq.read_table(demo_annotation[1].parquet)
    mask = expected(table)  # type: ignore[operator]
    want = table.filter(pc.fill_null(mask, False))
    body = _variants(client, shared_completed_job, limit=500, **params)
    assert body["total"] == want.num_rows > 0
    assert [r["pos"] for r in body["items"]] == want["pos"].to_pylist()


def test_filters_combine(client: TestClient, shared_completed_job: Job) -> None:
    body = _variants(client, shared_completed_job, gene="DEMOPLUS", impact="MODERATE",
                     known="false")
    items = body["items"]
    assert items and all(r["gene"] == "DEMOPLUS" and r["impact"] == "MODERATE"
                         and r["known_id"] is None for r in items)


def test_variants_sort_by_impact_severity_and_by_allele_frequency(
    client: TestClient, shared_completed_job: Job
) -> None:
    rank = {"HIGH": 0, "MODERATE": 1, "LOW": 2, "MODIFIER": 3}
    by_impact = _variants(client, shared_completed_job, sort="impact", limit=500)["items"]
    ranks = [rank.get(r["impact"], 4) for r in by_impact]
    assert ranks == sorted(ranks)
    by_af = _variants(client, shared_completed_job, sort="allele_frequency", order="desc",
                      limit=500)
    values = [r["allele_frequency"] for r in by_af["items"] if r["allele_frequency"] is not None]
    assert values == sorted(values, reverse=True) and values
    assert by_af["items"][-1]["allele_frequency"] is None  # unknown frequencies last


@pytest.mark.parametrize("params", [{"sort": "id; DROP TABLE x"}, {"impact": "SEVERE"},
                                    {"max_af": 2}, {"cursor": "!!"}, {"limit": 0}])
def test_bad_variant_queries_are_problems(
    client: TestClient, shared_completed_job: Job, params: dict[str, object]
) -> None:
    response = client.get(f"/api/v1/jobs/{shared_completed_job.job_id}/variants", params=params,
                          headers=bearer(shared_completed_job.user_id))
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"


def test_the_result_file_is_downloaded_once_and_cached(
    client: TestClient, shared_completed_job: Job
) -> None:
    _variants(client, shared_completed_job, gene="DEMOPLUS")
    cached = client.app.state.variants.cache_path(shared_completed_job)  # type: ignore[attr-defined]
    assert cached.exists()
    before = cached.stat().st_mtime_ns
    _variants(client, shared_completed_job, gene="DEMOMINUS")
    assert cached.stat().st_size > 0 and list(cached.parent.glob("*.part")) == []
    assert cached.stat().st_mtime_ns >= before
