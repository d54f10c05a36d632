"""The `gas` client commands end to end, as a user runs them, against the real local stack:
log in, submit with --wait, list, status, download (never over an existing file) — and the
downloaded results are exactly what the annotation engine produces for the same input."""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.browser.local_stack import LocalStack
from tests.services.web.web_helpers import run_engine
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def reference(stack_reference: tuple[Path, Path]) -> tuple[Path, Path]:
    return stack_reference


@pytest.fixture(scope="module")
def stack(local_stack: LocalStack) -> LocalStack:
    return local_stack


def gas(*args: str, config: Path, api_url: str | None = None,
        check: bool = True) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "gas_cli.main", *args, "--config-dir", str(config)]
    if api_url:
        command += ["--api-url", api_url]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180,
                            check=False)
    if check:
        assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def test_login_submit_wait_list_status_and_download(
    stack: LocalStack, reference: tuple[Path, Path], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    user = "carol-" + uuid.uuid4().hex[:6]
    login = gas("login", "--dev-user", user, config=config, api_url=stack.web_url)
    assert f"as {user} (free tier)" in login.stdout
    credentials = config / "credentials.json"
    assert credentials.stat().st_mode & 0o077 == 0  # readable by the owner only
    assert json.loads(credentials.read_text())["access_token"] == f"dev:{user}"

    # Later commands use the server logged in to.
    sample = reference[1]
    submitted = gas("submit", str(sample), "--wait", config=config)
    match = re.search(r"Submitted job (\w+)", submitted.stdout)
    assert match, submitted.stdout
    job_id = match.group(1)
    assert f"Job {job_id} completed" in submitted.stdout
    assert "variants annotated" in submitted.stdout
    # Not a terminal (captured): no progress bars, not even their last frame.
    assert "Uploading" not in submitted.stderr and "━" not in submitted.stderr

    listed = gas("jobs", "--json", config=config)
    jobs = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [j["job_id"] for j in jobs] == [job_id] and jobs[0]["status"] == "COMPLETED"
    assert job_id in gas("jobs", config=config).stdout

    status = gas("status", job_id, config=config)
    assert "COMPLETED" in status.stdout and sample.name in status.stdout

    out = tmp_path / "out"
    out.mkdir()
    for kind in ("tsv", "vcf", "summary"):
        gas("download", job_id, "--kind", kind, "--out", str(out), config=config)
    again = gas("download", job_id, "--kind", "tsv", "--out", str(out), config=config,
                check=False)
    assert again.returncode == 1 and "--force" in again.stderr  # never overwritten silently
    expected = run_engine(sample, reference[0], tmp_path / "local")
    downloaded_tsv = out / expected.tsv.name
    assert downloaded_tsv.read_text() == expected.tsv.read_text()
    with gzip.open(out / expected.vcf.name, "rt") as got, gzip.open(expected.vcf, "rt") as want:
        assert [line for line in got if not line.startswith("##")] == \
            [line for line in want if not line.startswith("##")]
    summary = json.loads((out / expected.summary.name).read_text())
    assert summary["variants"] == expected.summary_data["variants"]
    assert summary["consequences"] == expected.summary_data["consequences"]


def test_errors_are_one_line_and_exit_non_zero(stack: LocalStack, tmp_path: Path) -> None:
    # In-process (click's runner) for speed; the same commands as above.
    from click.testing import CliRunner

    from gas_cli.main import cli

    runner = CliRunner()

    def run(*args: str, api_url: str | None = None) -> Any:
        extra = ["--config-dir", str(tmp_path / "config")]
        if api_url:
            extra += ["--api-url", api_url]
        return runner.invoke(cli, [*args, *extra])

    not_signed_in = run("jobs", api_url=stack.web_url)
    assert not_signed_in.exit_code == 1 and "gas login" in not_signed_in.stderr
    assert run("login", "--dev-user", "Bad/Name", api_url=stack.web_url).exit_code == 2
    assert run("login", "--dev-user", "dave-" + uuid.uuid4().hex[:6],
               api_url=stack.web_url).exit_code == 0
    missing = run("status", "01JAAAAAAAAAAAAAAAAAAAAAAA")
    assert missing.exit_code == 1 and "No such job." in missing.stderr
    assert len(missing.stderr.strip().splitlines()) == 1
    not_vcf = tmp_path / "notes.txt"
    not_vcf.write_text("hello")
    refused = run("submit", str(not_vcf))
    assert refused.exit_code == 1 and "VCF" in refused.stderr
    elsewhere = run("jobs", api_url="http://127.0.0.1:9")
    assert elsewhere.exit_code == 1 and "signed in to" in elsewhere.stderr
