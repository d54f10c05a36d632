"""Progress moves in small steps, also for a job the engine cuts into only two chunks.

A 120k-variant job is one 100k-record chunk and one of 20k: reported only at milestones its
progress went 0 -> 5 % -> 80 % -> 95 % -> done. The engine's caller now sees an estimate
between milestones (gas_annotator.engine.progress) that moves at most 5 % at a time.
"""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pysam
import pytest

from gas_annotator.engine import annotate
from gas_annotator.engine.progress import HEADROOM, MAX_STEP, ChunkProgress, ProgressEstimate
from gas_annotator.handler import progress_write_due
from gas_annotator.reference import Bundle

# The chr21 bundle's real sequence (the rest of the contig is N).
SEQUENCED = (24_985_581, 26_000_306)


def synthetic_vcf(bundle: Bundle, path: Path, records: int, seed: int = 13) -> Path:
    """`records` SNVs with the reference's REF at random sequenced positions, sorted."""
    contig = "21" if "21" in bundle.manifest.contigs else next(iter(bundle.manifest.contigs))
    start, end = SEQUENCED
    sequence = pysam.FastaFile(str(bundle.fasta)).fetch(contig, start - 1, end).upper()
    rng = random.Random(seed)
    lines = [f"##fileformat=VCFv4.2\n##contig=<ID={contig},length="
             f"{bundle.manifest.contigs[contig]}>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"]
    offsets = [i for i in (rng.randrange(len(sequence)) for _ in range(2 * records))
               if sequence[i] in "ACGT"][:records]
    for offset in sorted(offsets):
        ref = sequence[offset]
        alt = rng.choice([base for base in "ACGT" if base != ref])
        lines.append(f"{contig}\t{start + offset}\t.\t{ref}\t{alt}\t.\t.\t.\n")
    path.write_text("".join(lines))
    return path


def test_a_120k_variant_job_reports_progress_in_steps_of_at_most_about_5_percent(
    chr21_bundle: Bundle, tmp_path: Path
) -> None:
    vcf = synthetic_vcf(chr21_bundle, tmp_path / "v120k.vcf", 120_000)
    values: list[float] = []
    result = annotate(vcf, reference_dir=chr21_bundle.root, out_dir=tmp_path / "out",
                      workers=1, progress=values.append, scratch_dir=tmp_path / "tmp")
    assert result.variant_count == 120_000
    assert values[-1] == 1.0
    steps = [b - a for a, b in zip([0.0, *values], values, strict=False)]
    assert all(step > 0 for step in steps), values  # never backwards, never repeated
    assert max(steps) <= 0.06, values


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_between_milestones_progress_moves_at_the_expected_pace_up_to_the_bound() -> None:
    clock = Clock()
    shown: list[float] = []
    estimate = ProgressEstimate(shown.append, clock=clock)
    # Input read (5 %); a chunk worth 75 % in flight, expected to take 1.5 s.
    estimate.milestone(0.05, 0.80, 0.5)
    assert shown == [0.05]
    for _ in range(5):  # ticks 0.1 s apart, as the caller's loop makes them
        clock.now += 0.1
        estimate.tick()
    assert shown[-1] == pytest.approx(0.30)
    # Long past its expected time, it still stops short of the unfinished chunk's end.
    for _ in range(100):
        clock.now += 0.1
        estimate.tick()
    assert shown[-1] == pytest.approx(0.05 + HEADROOM * 0.75)
    # The chunk finishes: the rest of it is shown in steps of at most MAX_STEP.
    estimate.milestone(0.80, 0.80)
    assert shown[-1] == pytest.approx(0.05 + HEADROOM * 0.75 + MAX_STEP)
    clock.now += 0.1
    estimate.tick()
    assert shown[-1] == pytest.approx(0.80)
    assert all(b - a <= MAX_STEP + 1e-9 for a, b in itertools.pairwise(shown))


def test_a_milestone_far_ahead_of_the_estimate_is_caught_up_in_small_steps() -> None:
    clock = Clock()
    shown: list[float] = []
    estimate = ProgressEstimate(shown.append, clock=clock)
    estimate.milestone(0.05, 0.80, 0.0)  # no idea of the pace
    estimate.milestone(0.80, 0.95, 0.0)  # the big chunk finished
    while shown[-1] < 0.80:
        clock.now += 0.1
        estimate.tick()
    estimate.finish()
    assert shown[-1] == 1.0
    steps = [b - a for a, b in zip([0.0, *shown], shown, strict=False)]
    assert max(steps) <= MAX_STEP + 1e-9
    assert min(steps) > 0


def test_progress_is_written_when_it_moved_a_visible_step_or_the_lease_is_due() -> None:
    """The estimate moves a little on every tick: the lease keeper writes it only once it
    moved a whole percent (what the page shows), or with the lease renewal it owes anyway."""
    lease = 120.0
    assert progress_write_due(0.0, -1.0, since_last=0.0, lease=lease)  # the first tick
    assert not progress_write_due(0.105, 0.10, since_last=3.0, lease=lease)
    assert progress_write_due(0.11, 0.10, since_last=3.0, lease=lease)
    assert progress_write_due(0.10, 0.10, since_last=lease / 3, lease=lease)


Report = tuple[float, float | None, float, float | None]


def chunk_progress(
    *, workers: int, records: int, prior: float
) -> tuple[ChunkProgress, list[Report], Clock]:
    """A ChunkProgress on a fake clock over a `records`-record input, with its reports."""
    clock = Clock()
    reports: list[Report] = []
    chunks = ChunkProgress(lambda *report: reports.append(report), workers=workers,
                           records_seen=lambda: records, prior_records_per_second=prior,
                           clock=clock)
    return chunks, reports, clock


def test_chunk_progress_credits_running_chunks_at_the_rate_of_finished_ones() -> None:
    """Two workers, a 100k and a 20k chunk of a 120k-record input read whole: when the small
    one finishes after 0.4 s (50k records/s on a worker), the big one, running as long, is
    credited with 20k records, and the rest is expected at 50k records/s."""
    chunks, reports, clock = chunk_progress(workers=2, records=120_000, prior=50_000.0)
    chunks.read(1.0)
    chunks.submitted(0, 100_000)
    chunks.submitted(1, 20_000)
    value, bound, pace, estimate = reports[-1]
    assert value == pytest.approx(0.05) and bound == pytest.approx(0.95)
    assert pace == pytest.approx(0.9 * 2 * 50_000 / 120_000)  # the prior, on both workers
    clock.now = 0.4
    chunks.finished(1, 20_000)
    value, bound, pace, estimate = reports[-1]
    assert value == pytest.approx(0.05 + 0.9 * 20_000 / 120_000)
    assert estimate == pytest.approx(0.05 + 0.9 * 40_000 / 120_000)
    assert pace == pytest.approx(0.9 * 50_000 / 120_000)  # one chunk left running


def test_chunk_progress_starts_queued_chunks_when_a_worker_frees_up() -> None:
    chunks, reports, clock = chunk_progress(workers=1, records=30_000, prior=10_000.0)
    chunks.read(1.0)
    for index in range(3):
        chunks.submitted(index, 10_000)
    clock.now = 1.0
    chunks.finished(0, 10_000)  # 10k records/s; chunk 1 starts now, chunk 2 still waits
    clock.now = 1.5
    chunks.read(1.0)
    _, _, pace, estimate = reports[-1]
    assert estimate == pytest.approx(0.05 + 0.9 * 15_000 / 30_000)
    assert pace == pytest.approx(0.9 * 10_000 / 30_000)
