"""The annotator's local scratch: one private directory per deployment, one per job in it.

Inputs and results are users' data: the root is 0700 and the process umask makes every file
the engine writes 0600. Each job works in `{root}/{job_id}-{worker_id}`; a killed annotator
leaves its job directory behind, so start-up removes the stale ones (only names of that
pattern, and never one a live worker is using).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from gas_core.logging import get_logger

if TYPE_CHECKING:
    from gas_annotator.settings import AnnotatorSettings

log = get_logger("gas.annotator")

# `{job_id}-{worker_id}`: a ULID (Crockford base32, 26 characters), a dash, the worker id.
_JOB_DIR = re.compile(r"^(?P<job>[0-9A-HJKMNP-TV-Z]{26})-(?P<worker>.+)$")
# Job directories of jobs running in this process (never removed as stale).
_live: set[Path] = set()
_live_lock = threading.Lock()


def prepare_scratch(settings: AnnotatorSettings, worker_id: str) -> Path:
    """At start-up: private umask, the root created 0700, stale job directories removed."""
    os.umask(0o077)
    root = _ensure_root(settings)
    removed = remove_stale_scratch(root, worker_id)
    if removed:
        log.info("stale_scratch_removed", directories=removed)
    return root


def job_scratch(settings: AnnotatorSettings, job_id: str, worker_id: str) -> Path:
    """A fresh private directory for one job's run (marked live until released)."""
    path = _ensure_root(settings) / f"{job_id}-{worker_id}"
    with _live_lock:
        _live.add(path)
    shutil.rmtree(path, ignore_errors=True)  # a previous attempt's leftovers
    path.mkdir(mode=0o700)
    return path


def release_scratch(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    with _live_lock:
        _live.discard(path)


def remove_stale_scratch(root: Path, worker_id: str) -> int:
    """Remove job directories no live worker uses; the number removed.

    Stale: our own worker id's directories that no job of this process is using (a previous
    process with the same id, e.g. the container restarted as the same pid), and those of a
    worker on this host whose process is gone. Anything else (another name, another host's or
    a live process's directory) is left alone.
    """
    removed = 0
    for entry in root.iterdir():
        match = _JOB_DIR.match(entry.name)
        if match is None or entry.is_symlink() or not entry.is_dir():
            continue
        with _live_lock:
            if entry in _live:
                continue
        owner = match["worker"]
        if owner != worker_id and not _is_dead_local_worker(owner):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    return removed


def _ensure_root(settings: AnnotatorSettings) -> Path:
    root = settings.scratch_root
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = root.lstat()
    if root.is_symlink() or info.st_uid != os.getuid():
        raise RuntimeError(f"scratch directory {root} is not this user's own directory")
    if info.st_mode & 0o077:
        root.chmod(0o700)
    return root


def _is_dead_local_worker(worker_id: str) -> bool:
    """True for `{this host}:{pid}` when no such process exists (worker ids: host:pid)."""
    host, _, pid = worker_id.rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, another user's
        return False
    return False
