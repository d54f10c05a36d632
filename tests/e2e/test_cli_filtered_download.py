"""`gas download --filter` end to end, as a user runs it, against the real local stack: the
filtered TSV holds exactly the rows of the engine's own TSV that the filter selects, and the
row count the API reports; a saved filter applies by name."""

from __future__ import annotations

import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

from tests.browser.local_stack import LocalStack
from tests.services.web.web_helpers import run_engine
from tests.support import REPO_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
KEY = ("chrom", "pos", "ref", "alt", "transcript")


def gas(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "gas_cli.main", *args, "--config-dir",
                             str(config)], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=180, check=False)
    assert result.returncode == 0, f"{args}: {result.stdout}\n{result.stderr}"
    return result


def rows(path: Path) -> list[dict[str, str]]:
    header, *lines = path.read_text().splitlines()
    names = header.split("\t")
    return [dict(zip(names, line.split("\t"), strict=False)) for line in lines]


def test_a_filtered_download_is_the_engines_rows_the_filter_selects(
    local_stack: LocalStack, stack_reference: tuple[Path, Path], tmp_path: Path
) -> None:
    config = tmp_path / "config"
    user = "fran-" + uuid.uuid4().hex[:6]
    gas("login", "--dev-user", user, "--api-url", local_stack.web_url, config=config)
    sample = stack_reference[1]
    submitted = gas("submit", str(sample), "--wait", config=config)
    match = re.search(r"Submitted job (\w+)", submitted.stdout)
    assert match, submitted.stdout
    job_id = match.group(1)

    target = tmp_path / "coding.tsv"
    downloaded = gas("download", job_id, "--filter", "impact=HIGH", "--filter",
                     "impact=MODERATE", "--view", "transcript", "--carriers", "all",
                     "-o", str(target), config=config)
    expected = run_engine(sample, stack_reference[0], tmp_path / "local")
    wanted = [row for row in rows(expected.tsv) if row["impact"] in ("HIGH", "MODERATE")]
    got = rows(target)
    assert wanted, "the sample has no HIGH or MODERATE rows: the test would prove nothing"
    assert sorted(tuple(r[k] for k in KEY) for r in got) == \
        sorted(tuple(r[k] for k in KEY) for r in wanted)
    api = httpx.get(f"{local_stack.web_url}/api/v1/jobs/{job_id}/variants",
                    params={"impact": "HIGH,MODERATE", "view": "transcript",
                            "carriers": "all", "limit": 1},
                    headers={"Authorization": f"Bearer dev:{user}"}, timeout=60)
    assert api.status_code == 200, api.text
    assert api.json()["total"] == len(got)
    assert f"({len(got):,} row" in downloaded.stdout

    gas("filters", "--save", "Coding", "--filter", "impact=HIGH,MODERATE", "--filter",
        "view=transcript", "--filter", "carriers=all", config=config)
    assert "Coding\timpact=HIGH%2CMODERATE&view=transcript&carriers=all\t" in \
        gas("filters", config=config).stdout
    by_name = tmp_path / "by-name.tsv"
    gas("download", job_id, "--saved", "coding", "-o", str(by_name), config=config)
    assert by_name.read_bytes() == target.read_bytes()
