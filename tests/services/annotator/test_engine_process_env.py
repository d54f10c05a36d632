"""The engine's processes keep freed memory mapped in small pages and start no OpenBLAS
threads.

Both are read once per process, when pyarrow's allocator and numpy's OpenBLAS load, so a fresh
interpreter (what the CLI, the service and the engine's forkserver each are) tells whether
importing the package sets them early enough.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

# Import the engine the way every entry point does (package first), then report what pyarrow's
# allocator was configured with and which threads the process has.
_REPORT = """
import json, os
import gas_annotator.engine
import pyarrow as pa
pa.array([1])
tasks = os.listdir("/proc/self/task")
threads = sorted(open(f"/proc/self/task/{t}/comm").read().strip() for t in tasks)
print(json.dumps({"pool": pa.default_memory_pool().backend_name, "threads": threads}))
"""


def _fresh_interpreter(**env: str) -> tuple[dict[str, object], str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("MIMALLOC_", "OPENBLAS_", "OMP_"))}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", _REPORT], capture_output=True, text=True, timeout=60, check=True,
        env={**clean, "MIMALLOC_VERBOSE": "1", **env},
    )  # fmt: skip
    return json.loads(done.stdout.strip().splitlines()[-1]), done.stderr


def test_engine_processes_keep_freed_memory_mapped() -> None:
    report, stderr = _fresh_interpreter()
    assert report["pool"] == "mimalloc"
    assert "option 'purge_delay': -1" in stderr
    assert "option 'allow_thp': 0" in stderr


def test_callers_allocator_setting_wins() -> None:
    _report, stderr = _fresh_interpreter(MIMALLOC_PURGE_DELAY="250")
    assert "option 'purge_delay': 250" in stderr


def test_engine_import_starts_no_openblas_threads() -> None:
    report, _stderr = _fresh_interpreter()
    # pyarrow's jemalloc starts one background thread of its own; OpenBLAS would add one
    # thread per core beyond the first.
    assert [t for t in report["threads"] if t != "jemalloc_bg_thd"] == ["python"]  # type: ignore[union-attr]
