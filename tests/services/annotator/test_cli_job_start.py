"""`gas annotate` forks its job process from itself instead of starting a forkserver."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pysam

from gas_annotator.reference import Bundle
from tests.services.annotator.annotator_helpers import write_vcf

# A fresh interpreter, single-threaded like the `gas` command: run the command, then report
# whether this process ever started a forkserver.
_RUN_COMMAND = """
import json, sys
from multiprocessing import forkserver
from gas_annotator.commands import annotate_command
try:
    annotate_command.main(sys.argv[1:], standalone_mode=False)
finally:
    print(json.dumps({"forkserver_pid": forkserver._forkserver._forkserver_pid}))
"""


def test_cli_annotate_starts_no_forkserver(tmp_path: Path, demo_bundle: Bundle) -> None:
    seq = pysam.FastaFile(str(demo_bundle.fasta)).fetch("1").upper()
    records = [
        ("1", pos, ".", seq[pos - 1], "A" if seq[pos - 1] != "A" else "G")
        for pos in range(100, 2100, 100)
    ]
    path = write_vcf(tmp_path / "small.vcf", records)
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, "-c", _RUN_COMMAND, str(path), "--reference", str(demo_bundle.root),
         "--out", str(out), "--workers", "2", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert "20 variants annotated" in lines[0]
    assert json.loads(lines[-1]) == {"forkserver_pid": None}
    assert (out / "small.annot.vcf.gz").is_file() and (out / "small.annot.parquet").is_file()
