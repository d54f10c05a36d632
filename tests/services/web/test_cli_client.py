"""The `gas` client commands against the in-process web app (results from the emulator's S3):
failures look like failures, job ids are never cut, no progress bars off a terminal, no file
overwritten without --force, and tier changes with a confirmed downgrade."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from fastapi.testclient import TestClient

from gas_cli import client as cli_client
from gas_cli.main import cli
from gas_core.jobs import Job, JobRepository
from tests.services.web.conftest import SubmitJob, bearer


@pytest.fixture
def gas(client: TestClient, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> Callable[..., Result]:
    """Run `gas ARGS` as `user` against the app; signed in with a development token."""
    import httpx

    transport = client._transport  # the TestClient's in-process ASGI transport
    real_client = httpx.Client
    monkeypatch.setattr(cli_client.httpx, "Client",
                        lambda **kwargs: real_client(transport=transport, **kwargs))
    config = tmp_path / "config"

    def run(user: str, *args: str, input: str | None = None) -> Result:
        cli_client.Credentials(api_url="http://testserver", kind="dev",
                               access_token=f"dev:{user}").save(config)
        return CliRunner().invoke(cli, [*args, "--config-dir", str(config)], input=input)

    return run


@pytest.fixture
def failed_job(submit_job: SubmitJob, repository: JobRepository, user_id: str) -> Job:
    job = submit_job(user_id)
    return repository.fail_job(user_id, job.job_id, reason="line 3: not a VCF record")


def test_status_of_a_failed_job_shows_the_reason_and_exits_non_zero(
    gas: Callable[..., Result], failed_job: Job, user_id: str
) -> None:
    result = gas(user_id, "status", failed_job.job_id)
    assert result.exit_code == 1, result.output
    assert "FAILED" in result.stdout
    assert "line 3: not a VCF record" in result.stdout

    as_json = gas(user_id, "status", failed_job.job_id, "--json")
    assert as_json.exit_code == 1
    assert '"status": "FAILED"' in as_json.stdout


def test_jobs_lists_a_failed_job_with_its_reason(
    gas: Callable[..., Result], failed_job: Job, user_id: str
) -> None:
    result = gas(user_id, "jobs")
    assert result.exit_code == 0, result.output
    # (the in-process app's own log lines share stdout here)
    [line] = [row for row in result.stdout.splitlines() if row.startswith(failed_job.job_id)]
    assert line.split("\t")[0] == failed_job.job_id
    assert line.split("\t")[1] == "FAILED"
    assert line.endswith("\tline 3: not a VCF record")


def test_jobs_table_on_a_narrow_terminal_keeps_full_job_ids(
    gas: Callable[..., Result], failed_job: Job, user_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # rich: draw the table as on a terminal
    monkeypatch.setenv("COLUMNS", "80")
    result = gas(user_id, "jobs")
    assert result.exit_code == 0, result.output
    assert "┃" in result.stdout  # the table, not the piped form
    assert any(failed_job.job_id in line for line in result.stdout.splitlines())
    assert "reason" in result.stdout


def test_download_refuses_to_overwrite_a_file_without_force(
    gas: Callable[..., Result], completed_job: Job, user_id: str, tmp_path: Path
) -> None:
    target = tmp_path / "mine.tsv"
    target.write_text("precious")
    refused = gas(user_id, "download", completed_job.job_id, "--kind", "tsv",
                  "--out", str(target))
    assert refused.exit_code == 1
    assert refused.stderr.strip() == f"Error: {target} exists; use --force to replace it."
    assert target.read_text() == "precious"
    assert not target.with_name("mine.tsv.part").exists()

    forced = gas(user_id, "download", completed_job.job_id, "--kind", "tsv",
                 "--out", str(target), "--force")
    assert forced.exit_code == 0, forced.output
    assert target.read_text() != "precious"


def test_download_off_a_terminal_draws_no_progress_bar(
    gas: Callable[..., Result], completed_job: Job, user_id: str, tmp_path: Path
) -> None:
    result = gas(user_id, "download", completed_job.job_id, "--kind", "tsv",
                 "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert result.stderr == ""  # rich would print the bar's last frame here
    assert "\nSaved " in "\n" + result.stdout


def test_upgrade_then_downgrade_with_yes_changes_the_tier(
    gas: Callable[..., Result], client: TestClient, user_id: str
) -> None:
    def tier() -> str:
        me = client.get("/api/v1/me", headers={"Authorization": f"Bearer dev:{user_id}"})
        return str(me.json()["tier"])

    up = gas(user_id, "upgrade")
    assert up.exit_code == 0, up.output
    assert "premium tier" in up.stdout
    assert tier() == "premium"

    down = gas(user_id, "downgrade", "--yes")
    assert down.exit_code == 0, down.output
    assert "archived after the retention window" in down.stdout
    assert tier() == "free"


def test_downgrade_off_a_terminal_without_yes_refuses(
    gas: Callable[..., Result], client: TestClient, user_id: str
) -> None:
    assert gas(user_id, "upgrade").exit_code == 0
    result = gas(user_id, "downgrade")
    assert result.exit_code == 1
    assert "--yes" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer dev:{user_id}"})
    assert me.json()["tier"] == "premium"


def test_downgrade_at_a_terminal_asks_and_no_keeps_premium(
    gas: Callable[..., Result], client: TestClient, user_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert gas(user_id, "upgrade").exit_code == 0
    monkeypatch.setattr(cli_client, "_interactive", lambda: True)
    declined = gas(user_id, "downgrade", input="n\n")
    assert declined.exit_code == 1
    assert "archived after the retention" in declined.stdout
    assert "Move to the free tier?" in declined.stdout
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer dev:{user_id}"})
    assert me.json()["tier"] == "premium"

    accepted = gas(user_id, "downgrade", input="y\n")
    assert accepted.exit_code == 0, accepted.output
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer dev:{user_id}"})
    assert me.json()["tier"] == "free"


def test_status_of_a_pending_job_shows_its_place_in_the_queue(
    gas: Callable[..., Result], client: TestClient, submit_job: SubmitJob, user_id: str
) -> None:
    job = submit_job(user_id)
    position = client.get(f"/api/v1/jobs/{job.job_id}", headers=bearer(user_id)).json()[
        "queue_position"]
    assert isinstance(position, int)

    result = gas(user_id, "status", job.job_id)
    assert result.exit_code == 0, result.output
    expected = "next in the queue" if position == 0 else f"{position:,} job"
    lines = result.stdout.splitlines()
    assert any(line.strip().startswith("queue") and expected in line for line in lines)
