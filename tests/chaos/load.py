"""The chaos test's load: inputs, their calm reference results, and users driving the REST API.

Valid inputs are seeded subsets of the demo sample (plain and BGZF-compressed); bad ones pass
the web's checks (they look like VCF files) and must be FAILED by the annotator with the
engine's reason. Users go through the API exactly as the CLI does (dev login token, presigned
POST, submit) and retry what a killed web interrupted.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pysam

from gas_annotator.engine import annotate
from tests.services.web.web_helpers import demo_sample_vcf

# Result kinds whose bytes the engine makes deterministically (the summary and the log carry
# timestamps and timings: the summary is compared without them, the log not at all).
EXACT_KINDS = ("vcf", "vcf_index", "tsv", "parquet")
# Each bad input and the words its FAILED job's reason must contain.
BAD_KINDS: dict[str, str] = {
    "ref-mismatch": "REF does not match",
    "garbage-record": "wrong column count",
    "unknown-contig": "is not in the reference",
    "gzip-not-vcf": "missing #CHROM header",
}
API_RETRY_SECONDS = 90


@dataclass(frozen=True)
class Input:
    name: str  # the file name uploaded (also the stem of the result file names)
    path: Path
    bad_reason: str | None = None  # expected fragment of the FAILED reason, for bad inputs


@dataclass(frozen=True)
class CalmResult:
    sha256: dict[str, str]  # kind -> hex SHA-256 of the file
    sha256_b64: dict[str, str]  # kind -> base64 SHA-256 (as S3's ChecksumSHA256)
    summary: dict[str, Any]


def comparable_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary without what differs between two runs of the same input."""
    copy = json.loads(json.dumps(summary))
    copy.pop("created_at", None)
    copy.get("engine", {}).pop("seconds", None)
    return copy


def make_inputs(bundle: Path, workdir: Path, rng: random.Random, *, valid: int,
                bad: int) -> tuple[list[Input], list[Input]]:
    """`valid` distinct valid inputs and `bad` bad ones (cycling through BAD_KINDS)."""
    workdir.mkdir(parents=True, exist_ok=True)
    sample = demo_sample_vcf(bundle, workdir / "demo_sample.vcf")
    lines = sample.read_text().splitlines()
    header = [line for line in lines if line.startswith("#")]
    body = [line for line in lines if not line.startswith("#")]
    valid_inputs = []
    for number in range(valid):
        keep = sorted(rng.sample(range(len(body)), rng.randint(len(body) // 2, len(body))))
        text = "\n".join([*header, *(body[i] for i in keep)]) + "\n"
        plain = workdir / f"valid-{number}.vcf"
        plain.write_text(text)
        if number % 2:
            pysam.tabix_compress(str(plain), str(plain) + ".gz", force=True)
            plain.unlink()
            plain = Path(str(plain) + ".gz")
        valid_inputs.append(Input(plain.name, plain))
    swap = {"A": "C", "C": "G", "G": "T", "T": "A"}
    bodies = {
        "ref-mismatch": ["\t".join(swap.get(f, f) if i == 3 else f
                                   for i, f in enumerate(line.split("\t"))) for line in body],
        "garbage-record": [*body[:5], "this is not a record", *body[5:]],
        "unknown-contig": ["2\t100\t.\tA\tG\t.\t.\t."],
    }
    bad_inputs = []
    kinds = list(BAD_KINDS)
    for number in range(bad):
        kind = kinds[number % len(kinds)]
        if kind == "gzip-not-vcf":
            path = workdir / f"bad-{number}-{kind}.vcf.gz"
            path.write_bytes(gzip.compress(b"just some text, not a VCF\n" * 20))
        else:
            path = workdir / f"bad-{number}-{kind}.vcf"
            path.write_text("\n".join([*header, *bodies[kind]]) + "\n")
        bad_inputs.append(Input(path.name, path, bad_reason=BAD_KINDS[kind]))
    return valid_inputs, bad_inputs


def calm_results(inputs: list[Input], bundle: Path, workdir: Path) -> dict[str, CalmResult]:
    """The engine's results for each valid input, run once without any fault."""
    results = {}
    for item in inputs:
        out = workdir / "calm" / item.name
        result = annotate(item.path, reference_dir=bundle, out_dir=out / "out",
                          scratch_dir=out / "tmp")
        digests = {kind: hashlib.sha256(Path(getattr(result, kind)).read_bytes()).digest()
                   for kind in EXACT_KINDS}
        results[item.name] = CalmResult(
            sha256={k: d.hex() for k, d in digests.items()},
            sha256_b64={k: base64.b64encode(d).decode() for k, d in digests.items()},
            summary=comparable_summary(result.summary_data),
        )
    return results


# -- users -------------------------------------------------------------------------------------


@dataclass
class Submitted:
    user: str
    job_id: str
    input: Input


@dataclass
class ApiUser:
    """One user of the REST API (development login), retrying through web restarts."""

    name: str
    web_url: str
    retries: int = 0
    tier_changes: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.web_url, timeout=30,
                                 headers={"Authorization": f"Bearer dev:{self.name}"})

    def call(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 202),
             **kwargs: Any) -> Any:
        """The answer's JSON; connection errors, 5xx and 409 are retried (the web was killed,
        or restarting, or a concurrent write won), anything else fails the test."""
        deadline = time.monotonic() + API_RETRY_SECONDS
        while True:
            try:
                response = self.http.request(method, path, **kwargs)
                if response.status_code in ok:
                    return response.json()
                if response.status_code < 500 and response.status_code != 409:
                    raise AssertionError(f"{method} {path}: {response.status_code} "
                                         f"{response.text[:300]}")
                problem = f"HTTP {response.status_code}"
            except httpx.TransportError as error:
                problem = repr(error)
            if time.monotonic() > deadline:
                raise AssertionError(f"{method} {path} kept failing: {problem}")
            self.retries += 1
            time.sleep(0.5)

    def submit(self, item: Input) -> Submitted:
        created = self.call("POST", "/api/v1/jobs",
                            json={"file_name": item.name, "assembly": "GRCh38"})
        target = created["upload"]
        response = httpx.post(target["url"], data=target["fields"],
                              files={"file": (created["file_name"], item.path.read_bytes())},
                              timeout=30)
        assert response.status_code < 300, f"upload refused: {response.status_code}"
        job = self.call("POST", f"/api/v1/jobs/{created['job_id']}/submit")
        return Submitted(self.name, job["job_id"], item)

    def job(self, job_id: str) -> dict[str, Any]:
        return dict(self.call("GET", f"/api/v1/jobs/{job_id}"))

    def set_tier(self, tier: str, at: float) -> None:
        self.call("POST", "/api/v1/me/tier", json={"tier": tier})
        self.tier_changes.append((at, tier))

    def close(self) -> None:
        self.http.close()


def flip_tiers_at_retention_edges(
    user: ApiUser, completions: Callable[[], list[float]], *, tiers: list[str],
    retention_seconds: int, rng: random.Random, clock: Callable[[], float],
    say: Callable[[str], None], stop: threading.Event, spread_seconds: float,
    edge_wait_seconds: float = 20,
) -> None:
    """Change `user`'s tier through `tiers` at the moments the services race hardest.

    An upgrade comes from a second before to two seconds after a retention edge: the end of
    the free window of one of the user's completed jobs (`completions`: their completion
    times) or of the last downgrade, while the archiver is about to archive or archiving.
    A downgrade comes one to three seconds after the upgrade, while the restorer and the
    thawer bring results back. With no edge ahead for `edge_wait_seconds` (no job finishing)
    the upgrade goes ahead anyway, and says so. Upgrades are spread over `spread_seconds`, so
    jobs finishing late meet tier changes too.
    """
    begun = time.time()
    last_change = begun
    last_downgrade: float | None = None
    upgrades = max(tiers.count("premium"), 1)
    done = 0  # upgrades made so far
    for tier in tiers:
        if tier == "free":
            target, label = last_change + rng.uniform(1.0, 3.0), "after the upgrade"
        else:
            # The n-th upgrade falls in the n-th slice of the spread.
            not_before = begun + spread_seconds * (done + rng.uniform(0.1, 0.9)) / upgrades
            done += 1
            if stop.wait(max(not_before - time.time(), 0)):
                return
            target, label = _next_edge(completions, last_downgrade, retention_seconds, rng,
                                       stop, edge_wait_seconds)
        if stop.wait(max(target - time.time(), 0)):
            return
        user.set_tier(tier, clock())
        last_change = time.time()
        if tier == "free":
            last_downgrade = last_change
        say(f"{user.name} -> {tier} ({label})")


def _next_edge(completions: Callable[[], list[float]], last_downgrade: float | None,
               retention_seconds: int, rng: random.Random, stop: threading.Event,
               wait_seconds: float) -> tuple[float, str]:
    offset = rng.uniform(-1.0, 2.0)
    give_up = time.time() + wait_seconds
    while not stop.is_set() and time.time() < give_up:
        starts = [*completions(), *([last_downgrade] if last_downgrade else [])]
        edges = [t + retention_seconds for t in starts]
        ahead = [edge for edge in edges if edge + offset > time.time()]
        if ahead:
            return min(ahead) + offset, f"{offset:+.2f}s from a retention edge"
        stop.wait(0.3)
    return time.time(), "no retention edge ahead"
