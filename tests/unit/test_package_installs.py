"""Each deployable installed alone, the way its image installs it (`uv sync --frozen --no-dev
--no-editable --package P` into an empty environment), then imported from that environment
only: a dependency a package uses but does not declare fails here in seconds, instead of in a
pod at start-up. The workspace venv cannot show this, as it holds every member's dependencies.

The `gas` client gets the same treatment: a researcher installing it to submit jobs gets the
client commands, not the emulator, the annotator or pysam."""

from __future__ import annotations

import json
import os
import re
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support import REPO_ROOT, require_or_skip

SERVICES = sorted(p.parent.name for p in (REPO_ROOT / "services").glob("*/pyproject.toml"))
# What only an operator or developer needs; the client must install without any of it.
OPERATOR_ONLY = {"moto", "pysam", "gas-annotator", "gas-core", "boto3", "numpy", "pyarrow"}


def uv() -> str:
    import shutil

    found = shutil.which("uv")
    require_or_skip(found is not None, "uv is not on PATH")
    assert found is not None
    return found


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without the workspace venv's traces (so nothing leaks in)."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("UV_", "VIRTUAL_ENV", "PYTHON"))}
    return {**env, **extra}


def install_alone(package: str, venv: Path) -> Path:
    """`package` and exactly its locked dependencies, non-editable, in a new environment."""
    result = subprocess.run(
        [uv(), "sync", "--frozen", "--no-dev", "--no-editable", "--package", package],
        cwd=REPO_ROOT, env=clean_env(UV_PROJECT_ENVIRONMENT=str(venv)),
        capture_output=True, text=True, timeout=300, check=False,
    )
    assert result.returncode == 0, result.stderr
    return venv / "bin"


def run_in(bin_dir: Path, *command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # Run outside the repository, so only the installed copies can be imported.
    return subprocess.run([str(bin_dir / command[0]), *command[1:]], cwd=cwd,
                          env=clean_env(HOME=str(cwd)), capture_output=True, text=True,
                          timeout=180, check=False)


def distributions(bin_dir: Path, cwd: Path) -> set[str]:
    listing = run_in(bin_dir, "python", "-c",
                     "import importlib.metadata as m, json; "
                     "print(json.dumps([d.metadata['Name'] for d in m.distributions()]))",
                     cwd=cwd)
    assert listing.returncode == 0, listing.stderr
    return {re.sub(r"[-_.]+", "-", name).lower() for name in json.loads(listing.stdout)}


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_installed_alone_imports_its_entry_point(
    service: str, tmp_path: Path
) -> None:
    bin_dir = install_alone(f"gas-{service}", tmp_path / "venv")
    module = f"gas_{service}"
    result = run_in(bin_dir, "python", "-c",
                    f"import {module}.__main__ as m; print(m.__file__)", cwd=tmp_path)
    assert result.returncode == 0, f"gas-{service} alone cannot start:\n{result.stderr}"
    # The installed copy, not the repository's sources.
    assert str(tmp_path / "venv") in result.stdout and "site-packages" in result.stdout


def test_the_client_installs_without_operator_dependencies(tmp_path: Path) -> None:
    bin_dir = install_alone("gas-cli", tmp_path / "venv")
    installed = distributions(bin_dir, tmp_path)
    assert "gas-cli" in installed
    assert not installed & OPERATOR_ONLY, sorted(installed & OPERATOR_ONLY)
    helped = run_in(bin_dir, "gas", "--help", cwd=tmp_path)
    assert helped.returncode == 0, helped.stderr
    for command in ("login", "submit", "jobs", "status", "download", "dev", "infra"):
        assert re.search(rf"^\s+{command}\s", helped.stdout, flags=re.MULTILINE), helped.stdout
    # An operator command says, in one line, which extra it needs.
    for command, extra in (("dev", "dev"), ("infra", "ops"), ("annotate", "dev")):
        refused = run_in(bin_dir, "gas", command, "--help", cwd=tmp_path)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"gas-cli[{extra}]" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1, refused.stderr


@pytest.mark.slow
@pytest.mark.e2e
def test_the_client_installed_alone_submits_and_downloads_a_job(
    local_stack: object, stack_reference: tuple[Path, Path], tmp_path: Path
) -> None:
    """login, submit --wait, jobs, status and download with only gas-cli installed."""
    web_url: str = local_stack.web_url  # type: ignore[attr-defined]
    bin_dir = install_alone("gas-cli", tmp_path / "venv")
    config = ["--config-dir", str(tmp_path / "config")]

    def gas(*args: str) -> str:
        result = run_in(bin_dir, "gas", *args, *config, cwd=tmp_path)
        assert result.returncode == 0, f"gas {args}: {result.stdout}\n{result.stderr}"
        return result.stdout

    user = "client-" + uuid.uuid4().hex[:6]
    assert f"as {user}" in gas("login", "--dev-user", user, "--api-url", web_url)
    submitted = gas("submit", str(stack_reference[1]), "--wait")
    match = re.search(r"Submitted job (\w+)", submitted)
    assert match and f"Job {match.group(1)} completed" in submitted, submitted
    job_id = match.group(1)
    assert job_id in gas("jobs")
    assert "COMPLETED" in gas("status", job_id)
    out = tmp_path / "out"
    out.mkdir()
    gas("download", job_id, "--kind", "summary", "--out", str(out))
    (summary,) = out.glob("*.summary.json")
    assert json.loads(summary.read_text())["variants"]["annotated"] > 0


def test_every_operator_command_loads_in_the_full_install() -> None:
    """The lazy table names real commands (a typo would only show when someone runs it)."""
    import click

    from gas_cli.main import LAZY_COMMANDS, cli

    for name, lazy in LAZY_COMMANDS.items():
        assert not lazy.missing(), name
        command = cli.get_command(click.Context(cli), name)
        assert command is not None and command.callback is not None, name
        assert "needs the" not in (command.help or ""), name
        assert command.get_short_help_str(200).split()[0] == lazy.help.split()[0], name
