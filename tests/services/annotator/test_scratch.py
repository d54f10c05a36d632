"""The annotator's local scratch: private, per deployment, and cleaned of killed workers'."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gas_annotator.scratch import job_scratch, prepare_scratch, release_scratch
from gas_annotator.settings import AnnotatorSettings
from gas_core.jobs import new_job_id


@pytest.fixture(autouse=True)
def _keep_umask() -> Iterator[None]:
    previous = os.umask(0o022)
    os.umask(previous)
    yield
    os.umask(previous)


def _settings(tmp_path: Path, **overrides: object) -> AnnotatorSettings:
    return AnnotatorSettings(reference_dir=str(tmp_path), **overrides)  # type: ignore[arg-type]


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_each_deployment_gets_its_own_private_scratch(tmp_path: Path) -> None:
    one = _settings(tmp_path, name_prefix="gas-one")
    two = _settings(tmp_path, name_prefix="gas-two")
    assert one.scratch_root != two.scratch_root
    assert "gas-one" in one.scratch_root.name
    root = prepare_scratch(_settings(tmp_path, annotator_scratch_dir=str(tmp_path / "s")), "w")
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert os.umask(0o077) == 0o077  # the process now writes private files


def test_start_up_removes_only_the_scratch_left_by_workers_that_are_gone(tmp_path: Path) -> None:
    settings = _settings(tmp_path, annotator_scratch_dir=str(tmp_path / "scratch"))
    host = socket.gethostname()
    ours = f"{host}:{os.getpid()}"
    root = tmp_path / "scratch"
    root.mkdir()
    live_other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        names = {
            "ours_from_before": f"{new_job_id()}-{ours}",
            "dead_worker": f"{new_job_id()}-{host}:{_dead_pid()}",
            "live_worker": f"{new_job_id()}-{host}:{live_other.pid}",
            "other_host": f"{new_job_id()}-elsewhere:123",
            "not_our_pattern": "some-other-tool",
        }
        for name in names.values():
            (root / name).mkdir()
            (root / name / "data").write_text("x")
        (root / f"{new_job_id()}-{host}:1").write_text("a file, not a job directory")
        running = job_scratch(settings, new_job_id(), ours)  # a job of this process
        prepare_scratch(settings, ours)
        left = {path.name for path in root.iterdir()}
    finally:
        live_other.kill()
        live_other.wait()
    assert names["ours_from_before"] not in left
    assert names["dead_worker"] not in left
    assert {names["live_worker"], names["other_host"], names["not_our_pattern"],
            running.name} <= left
    release_scratch(running)
    assert not running.exists()
