"""`gas download --filter/--saved/--preset` and `gas filters` against the in-process web app:
a filtered download holds exactly the rows the API counts for the same filter, saved filters
and presets apply by name, unknown keys are a one-line usage error (exit 2) before any
request, and no file is overwritten without --force."""

from __future__ import annotations

import gzip
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from gas_cli import client as cli_client
from gas_cli.main import cli
from gas_core.jobs import Job
from tests.services.web.conftest import bearer

Gas = Callable[..., Result]


@pytest.fixture
def gas(client: TestClient, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Gas:
    """Run `gas ARGS` as `user` against the app (as in test_cli_client), signed in with a
    development token."""
    transport = client._transport  # the TestClient's in-process ASGI transport
    real_client = httpx.Client
    monkeypatch.setattr(httpx, "Client",
                        lambda **kwargs: real_client(transport=transport, **kwargs))
    config = tmp_path / "config"

    def run(user: str, *args: str) -> Result:
        cli_client.Credentials(api_url="http://testserver", kind="dev",
                               access_token=f"dev:{user}").save(config)
        return CliRunner().invoke(cli, [*args, "--config-dir", str(config)])

    return run


def api_total(client: TestClient, job: Job, **params: str) -> int:
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants",
                          params={**params, "limit": 1}, headers=bearer(job.user_id))
    assert response.status_code == 200, response.text
    total: int = response.json()["total"]
    return total


def tsv_rows(path: Path) -> list[list[str]]:
    lines = path.read_text().splitlines()
    return [line.split("\t") for line in lines[1:]]


def header(path: Path) -> list[str]:
    return path.read_text().splitlines()[0].split("\t")


def test_a_filtered_download_has_exactly_the_rows_the_api_counts(
    gas: Gas, client: TestClient, shared_completed_job: Job, tmp_path: Path
) -> None:
    job = shared_completed_job
    everything = api_total(client, job, view="transcript")
    high = api_total(client, job, impact="HIGH,MODERATE", view="transcript")
    assert 0 < high < everything  # the filter keeps some rows, not all
    target = tmp_path / "high.tsv"
    result = gas(job.user_id, "download", job.job_id, "--filter", "impact=HIGH",
                 "--filter", "impact=MODERATE", "--view", "transcript", "-o", str(target))
    assert result.exit_code == 0, result.output
    rows = tsv_rows(target)
    assert len(rows) == high
    impact = header(target).index("impact")
    assert {row[impact] for row in rows} <= {"HIGH", "MODERATE"}
    assert f"Saved {target} ({high:,} rows)" in result.stdout
    assert not target.with_name("high.tsv.part").exists()


def test_a_filtered_vcf_download_is_bgzipped_vcf_with_one_record_per_variant(
    gas: Gas, client: TestClient, shared_completed_job: Job, tmp_path: Path
) -> None:
    job = shared_completed_job
    variants = api_total(client, job, impact="HIGH,MODERATE")
    out = tmp_path / "out"
    out.mkdir()
    result = gas(job.user_id, "download", job.job_id, "--filter", "impact=HIGH,MODERATE",
                 "--format", "vcf", "--out", str(out))
    assert result.exit_code == 0, result.output
    [written] = out.iterdir()
    assert written.name.endswith(".vcf.gz")
    text = gzip.decompress(written.read_bytes()).decode()
    assert text.startswith("##fileformat=VCF")
    records = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert len(records) == variants > 0


def test_saved_filters_and_presets_apply_by_name(
    gas: Gas, client: TestClient, shared_completed_job: Job, tmp_path: Path
) -> None:
    job = shared_completed_job
    saved = gas(job.user_id, "filters", "--save", "Coding  changes", "--filter",
                "impact=HIGH,MODERATE", "--filter", "view=transcript")
    assert saved.exit_code == 0, saved.output
    expected = api_total(client, job, impact="HIGH,MODERATE", view="transcript")

    by_option = tmp_path / "saved.tsv"
    result = gas(job.user_id, "download", job.job_id, "--saved", "coding changes",
                 "-o", str(by_option))
    assert result.exit_code == 0, result.output
    assert len(tsv_rows(by_option)) == expected
    by_filter = tmp_path / "by-name.tsv"
    result = gas(job.user_id, "download", job.job_id, "--filter", "Coding changes",
                 "-o", str(by_filter))
    assert result.exit_code == 0, result.output
    assert by_filter.read_bytes() == by_option.read_bytes()
    # Explicit parameters win over the saved filter's own.
    narrower = tmp_path / "narrower.tsv"
    result = gas(job.user_id, "download", job.job_id, "--saved", "Coding changes",
                 "--filter", "impact=HIGH", "-o", str(narrower))
    assert result.exit_code == 0, result.output
    assert len(tsv_rows(narrower)) == api_total(client, job, impact="HIGH", view="transcript")

    preset = tmp_path / "lof.tsv"
    result = gas(job.user_id, "download", job.job_id, "--preset", "lof", "-o", str(preset))
    assert result.exit_code == 0, result.output
    assert len(tsv_rows(preset)) == api_total(client, job, preset="lof")


def test_an_unknown_filter_key_is_a_one_line_usage_error_before_any_request(
    gas: Gas, shared_completed_job: Job, tmp_path: Path
) -> None:
    job = shared_completed_job
    target = tmp_path / "never.tsv"
    result = gas(job.user_id, "download", job.job_id, "--filter", "colour=red",
                 "-o", str(target))
    assert result.exit_code == 2
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("Error: unknown filter key 'colour' in --filter 'colour=red'; "
                           "use one of: preset, gene,")
    assert not target.exists()
    for args in (["--filter", "gene="], ["--kind", "tsv", "--filter", "gene=APP"],
                 ["--saved", "no such filter"]):
        refused = gas(job.user_id, "download", job.job_id, *args, "-o", str(target))
        assert refused.exit_code == 2, (args, refused.output)
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert not target.exists()


def test_a_filtered_download_refuses_to_overwrite_a_file_without_force(
    gas: Gas, shared_completed_job: Job, tmp_path: Path
) -> None:
    job = shared_completed_job
    target = tmp_path / "mine.tsv"
    target.write_text("precious")
    refused = gas(job.user_id, "download", job.job_id, "--filter", "impact=HIGH",
                  "-o", str(target))
    assert refused.exit_code == 1
    assert refused.stderr.strip() == f"Error: {target} exists; use --force to replace it."
    assert target.read_text() == "precious"
    assert not target.with_name("mine.tsv.part").exists()

    forced = gas(job.user_id, "download", job.job_id, "--filter", "impact=HIGH",
                 "-o", str(target), "--force")
    assert forced.exit_code == 0, forced.output
    assert target.read_text().startswith("chrom\t")


def test_a_filter_the_job_cannot_answer_is_the_servers_one_line_error(
    gas: Gas, shared_completed_job: Job, tmp_path: Path
) -> None:
    job = shared_completed_job
    result = gas(job.user_id, "download", job.job_id, "--filter", "af_field=af_nowhere",
                 "-o", str(tmp_path / "x.tsv"))
    assert result.exit_code == 1
    [line] = result.stderr.strip().splitlines()
    assert "af_nowhere" in line
    assert not (tmp_path / "x.tsv").exists()


def test_filters_lists_saves_and_deletes_the_users_filters(
    gas: Gas, client: TestClient, user_id: str, other_user: str
) -> None:
    empty = gas(user_id, "filters")
    assert empty.exit_code == 0
    assert "No saved filters yet" in empty.stdout
    assert gas(user_id, "filters", "--save", "High", "--filter", "impact=HIGH").exit_code == 0
    assert gas(user_id, "filters", "--save", "APP", "--filter", "gene=APP",
               "--filter", "view=transcript").exit_code == 0
    assert gas(other_user, "filters", "--save", "Theirs", "--filter", "gene=SOD1").exit_code == 0

    listed = gas(user_id, "filters")
    lines = [line.split("\t") for line in listed.stdout.splitlines() if "\t" in line]
    assert [(name, params) for name, params, _ in lines] == [
        ("APP", "gene=APP&view=transcript"), ("High", "impact=HIGH")]
    taken = gas(user_id, "filters", "--save", "high", "--filter", "impact=LOW")
    assert taken.exit_code == 1
    assert taken.stderr.strip() == "Error: You already have a saved filter named 'high'."

    assert gas(user_id, "filters", "--delete", "app").exit_code == 0
    items: list[dict[str, Any]] = client.get("/api/v1/me/filters",
                                             headers=bearer(user_id)).json()["items"]
    assert [item["name"] for item in items] == ["High"]
    missing = gas(user_id, "filters", "--delete", "Theirs")  # another user's name
    assert missing.exit_code == 2
    theirs = client.get("/api/v1/me/filters", headers=bearer(other_user)).json()["items"]
    assert [item["name"] for item in theirs] == ["Theirs"]
