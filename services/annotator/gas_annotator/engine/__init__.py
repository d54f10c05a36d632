"""The annotation engine: one VCF in, annotated VCF + TSV + Parquet + summary + log out.

The heavy lifting is htslib/bcftools through pysam (norm, csq, annotate, index);
this package validates the input, cuts it into contig-bounded chunks, runs the chunks on
``workers`` processes, adds what bcftools does not know (Sequence Ontology names, impact, MANE
Select, upstream/downstream/intergenic context) and writes the outputs. See docs/annotation.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import pyarrow as pa

from gas_annotator.engine.chunk import NeedsSortError, bcftools_stages, python_stages, warm_up
from gas_annotator.engine.chunk_models import ChunkContext, ChunkResult
from gas_annotator.engine.errors import InputError, ReferenceMismatch
from gas_annotator.engine.limits import InputLimits
from gas_annotator.engine.outputs import Joiner, Outputs, finish_outputs, output_paths, stem_of
from gas_annotator.engine.population_af import af_columns, af_metadata, known_files
from gas_annotator.engine.progress import TICK_SECONDS, ChunkProgress, ProgressEstimate
from gas_annotator.engine.validate import ChunkPlan, ChunkSpec, Validator, check_mismatch_rate
from gas_annotator.reference import Bundle, BundleError, load_bundle
from gas_annotator.reference.demo_example import REAL_DATA_ON_DEMO

__all__ = [
    "AnnotationResult",
    "EngineOptions",
    "EngineStopped",
    "InputError",
    "InputLimits",
    "annotate",
    "stem_of",
]


@dataclass(frozen=True)
class EngineOptions:
    """Tunables; the service fills them from its settings, the defaults suit the CLI."""

    # Above this fraction of REF alleles disagreeing with the reference the file is rejected as
    # the wrong assembly; below it the mismatching records are dropped and reported.
    ref_mismatch_threshold: float = 0.05
    # Records per chunk: the unit of parallel work and of memory (the largest Arrow table held).
    chunk_records: int = 100_000
    # Upstream/downstream context distance, as in VEP.
    context_distance: int = 5_000
    # Target number of records inside bcftools norm's re-sorting window (see chunk.norm_window).
    norm_window_records: int = 50
    # Known variants are looked up only around the chunk's records: the chunk's span is cut
    # where consecutive records are further apart than this, and annotate jumps over the gaps
    # through the index instead of reading every known variant in them (see chunk.known_regions).
    known_region_gap_bp: int = 10_000
    # Parquet row group size: what the web reads at a time when filtering and paging.
    parquet_row_group: int = 65_536
    # Run the engine in a child process. bcftools inside pysam is C code written for one run
    # per process: after an error it can leave global state behind (the next csq call then
    # fails or crashes), and a crash on a hostile file would take the caller (the SQS worker)
    # down with it. Only tests that need a debugger turn this off.
    isolate: bool = True
    # How the isolated job process starts. "forkserver" (the service): forked by a clean,
    # single-threaded server that never holds the caller's threads (the SQS heartbeat). "fork":
    # forked from the caller itself, for a single-threaded caller that runs one job and exits
    # (the `gas annotate` command): it holds the engine's imports already, where a forkserver
    # would start a second interpreter that imports them again (~0.45 CPU-s and ~0.5 s of wall
    # per command here). A caller that has other threads when the job starts gets the
    # forkserver anyway: a fork copies no thread but every lock one of them held.
    job_start: Literal["forkserver", "fork"] = "forkserver"
    # Caps that make hostile input fail fast (see limits.py and docs/annotation.md).
    limits: InputLimits = dataclasses.field(default_factory=InputLimits)


@dataclass(frozen=True)
class AnnotationResult(Outputs):
    """The output files, with the parsed summary and the number of records annotated."""

    summary_data: dict[str, Any]
    variant_count: int


class EngineStopped(Exception):
    """The caller's `cancel` event was set: the job's processes were killed."""


# Chunk records per second per worker assumed while too little input has been read to tell
# (then the read rate, until the first chunk finishes; about what one worker does on the chr21
# bundle here); it only paces the progress estimate (progress.py).
_PRIOR_RECORDS_PER_SECOND = 50_000.0
# Records per second of writing the outputs after the last chunk (a prior, as above).
_FINISH_RECORDS_PER_SECOND = 400_000.0


class _Progress:
    """Monotonic milestones (value, bound, pace, estimate; see progress.py) for the caller."""

    def __init__(
        self, callback: Callable[[float, float | None, float, float | None], None]
    ) -> None:
        self.callback = callback
        self.value = 0.0

    def __call__(
        self, value: float, bound: float | None = None, pace: float = 0.0,
        estimate: float | None = None,
    ) -> None:
        value = min(max(value, self.value), 1.0)
        self.value = value
        self.callback(value, bound, pace, estimate)


def annotate(
    input_path: Path,
    *,
    reference_dir: Path,
    out_dir: Path,
    workers: int = 1,
    max_variants: int | None = None,
    progress: Callable[[float], None] | None = None,
    scratch_dir: Path | None = None,
    options: EngineOptions | None = None,
    cancel: threading.Event | None = None,
) -> AnnotationResult:
    """Annotate one VCF/VCF.gz/BCF. Raises InputError (one-line reason) for bad input.

    `cancel` (isolated runs only): once set, within a tick the job process and every process
    it started are killed and EngineStopped is raised, whether or not the engine still
    reports progress (a hung bcftools or worker reports none).
    """
    options = options or EngineOptions()
    estimate = ProgressEstimate(progress)
    kwargs: dict[str, Any] = {
        "input_path": Path(input_path),
        "reference_dir": Path(reference_dir),
        "out_dir": Path(out_dir),
        "workers": max(1, workers),
        "max_variants": max_variants,
        "scratch_dir": Path(scratch_dir) if scratch_dir else None,
        "options": options,
    }
    if not options.isolate:
        result = _annotate_here(progress=_Progress(estimate.milestone), **kwargs)
    else:
        result = _annotate_in_child(estimate, kwargs, cancel)
    estimate.finish()
    return result


def _process_context() -> multiprocessing.context.ForkServerContext:
    # forkserver: children fork from a clean, single-threaded server that has the engine's
    # modules preloaded, so a job starts in milliseconds and never inherits the caller's threads
    # (the SQS heartbeat) or any htslib state.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["gas_annotator.engine"])
    return ctx


def _annotate_in_child(
    estimate: ProgressEstimate, kwargs: dict[str, Any], cancel: threading.Event | None
) -> AnnotationResult:
    options: EngineOptions = kwargs["options"]
    ctx: Any = (
        multiprocessing.get_context("fork")
        if options.job_start == "fork" and threading.active_count() == 1
        else _process_context()
    )
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child_main, args=(sender, kwargs), name="gas-annotate")
    process.start()
    sender.close()
    outcome: tuple[str, Any] | None = None
    try:
        while outcome is None:
            if cancel is not None and cancel.is_set():
                raise EngineStopped("the annotation was stopped by its caller")
            if not receiver.poll(TICK_SECONDS):
                estimate.tick()  # between the engine's milestones (progress.py)
                continue
            try:
                kind, payload = receiver.recv()
            except EOFError:
                break
            if kind == "progress":
                estimate.milestone(*payload)
            else:
                outcome = (kind, payload)
        process.join()
    finally:
        if process.is_alive():
            _kill_job_processes(process)
        receiver.close()
    if outcome is None:
        raise RuntimeError(
            f"the annotation engine stopped unexpectedly (exit code {process.exitcode})"
        )
    kind, payload = outcome
    if kind == "result":
        return payload  # type: ignore[no-any-return]
    if kind == "input_error":
        raise InputError(str(payload))
    raise RuntimeError(str(payload))


def _kill_job_processes(process: Any) -> None:
    """Kill the job process and everything it started (chunk workers, their bcftools forks):
    they share its process group. The process first, so it can start no more; then the group,
    which lives on while any member does (nothing to kill: ProcessLookupError)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.join(5)


# True in the isolated job process: single-threaded, so chunk workers can be plain forks.
_IN_JOB_PROCESS = False


def _child_main(sender: Any, kwargs: dict[str, Any]) -> None:
    global _IN_JOB_PROCESS  # noqa: PLW0603 - a per-process fact, set once at process start
    _IN_JOB_PROCESS = True
    # Its own process group, before it starts any process: the caller can then stop the
    # whole job (workers and bcftools forks included) with one signal.
    os.setpgid(0, 0)

    def report(value: float, bound: float | None, pace: float, estimate: float | None) -> None:
        sender.send(("progress", (value, bound, pace, estimate)))

    try:
        result = _annotate_here(progress=_Progress(report), **kwargs)
        sender.send(("result", result))
    except InputError as exc:
        sender.send(("input_error", str(exc)))
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        sender.send(("error", f"annotation failed: {detail}"))
    finally:
        sender.close()


def _annotate_here(
    *,
    input_path: Path,
    reference_dir: Path,
    out_dir: Path,
    workers: int,
    max_variants: int | None,
    progress: _Progress,
    scratch_dir: Path | None,
    options: EngineOptions,
) -> AnnotationResult:
    started = time.time()
    tick = progress
    if not input_path.is_file():
        raise InputError(f"{input_path.name}: no such file")
    try:
        bundle = load_bundle(reference_dir)
    except BundleError as exc:
        raise RuntimeError(f"reference bundle unusable: {exc}") from exc
    out_dir.mkdir(parents=True, exist_ok=True)
    if scratch_dir is not None:
        scratch_dir.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="gas-annotate-", dir=scratch_dir))
    outputs: Outputs = output_paths(input_path, out_dir)
    joiner: Joiner | None = None
    try:
        validator = Validator(
            input_path,
            bundle,
            ChunkPlan(
                scratch=scratch,
                chunk_records=options.chunk_records,
                max_variants=max_variants,
                ref_mismatch_threshold=options.ref_mismatch_threshold,
                limits=options.limits,
            ),
        )
        joiner = Joiner(outputs, options.parquet_row_group)
        results = _run_chunks(validator, bundle, options, workers, tick, joiner=joiner)
        # The exact count: bcftools norm --check-ref x compared every record with the FASTA.
        validator.stats.ref_mismatches = sum(r.mismatch_removed for r in results)
        check_mismatch_rate(
            validator.stats.ref_mismatches,
            validator.stats.records,
            threshold=options.ref_mismatch_threshold,
            assembly=bundle.manifest.assembly,
            scope="",
            first=validator.stats.first_mismatches[0] if validator.stats.first_mismatches else None,
        )
        tick(0.95, 1.0, 0.05 * _FINISH_RECORDS_PER_SECOND / max(validator.stats.records, 1))
        summary = finish_outputs(
            outputs,
            results,
            validator.stats,
            bundle,
            joiner=joiner,
            input_path=input_path,
            options=options,
            workers=workers,
            started=started,
            scratch=scratch,
        )
    except ReferenceMismatch as exc:
        if joiner is not None:
            joiner.abort()
        if bundle.manifest.synthetic:  # real data on the demo: say so, and what to do
            raise InputError(f"{exc}; {REAL_DATA_ON_DEMO}") from exc
        raise
    except BaseException:
        if joiner is not None:
            joiner.abort()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return AnnotationResult(
        **vars(outputs),
        summary_data=json.loads(outputs.summary.read_text()),
        variant_count=int(summary["variants"]["annotated"]),
    )


def _context(
    bundle: Bundle, spec: ChunkSpec, to_user: dict[str, str], options: EngineOptions
) -> ChunkContext:
    gff = bundle.gff_for(spec.contig)
    mane = bundle.mane
    return ChunkContext(
        fasta=str(bundle.fasta),
        gff=str(gff) if gff else None,
        known=known_files(bundle),
        genes=str(bundle.genes),
        mane=str(mane) if mane else None,
        to_user=to_user,
        context_distance=options.context_distance,
        norm_window_records=options.norm_window_records,
        known_region_gap_bp=options.known_region_gap_bp,
        af_columns=af_columns(bundle),
        parquet_metadata=af_metadata(bundle),
    )


def _run_chunks(
    validator: Validator,
    bundle: Bundle,
    options: EngineOptions,
    workers: int,
    tick: _Progress,
    *,
    joiner: Joiner,
) -> list[ChunkResult]:
    # Validation reads the input while chunks run: 5% for reading, 90% for chunks, 5% for the
    # outputs; between chunk completions the caller's estimate moves (progress.py).
    chunks = ChunkProgress(tick, workers=workers, records_seen=lambda: validator.records_seen,
                           prior_records_per_second=_PRIOR_RECORDS_PER_SECOND)

    def on_validate(fraction: float) -> None:
        chunks.read(fraction)

    def to_user() -> dict[str, str]:
        return {b: u for u, b in validator.stats.contigs.items()}

    results: list[ChunkResult] = []

    def chunk_done(spec: ChunkSpec, _previous_offset: int) -> None:
        chunks.finished(spec.index, spec.records)

    runner = _ChunkRunner(workers)
    warmed: set[str] = set()
    try:
        for spec in validator.chunks(on_validate):
            if _IN_JOB_PROCESS and spec.contig not in warmed:
                # Forked chunk processes inherit what the job process has loaded.
                warm_up(_context(bundle, spec, to_user(), options), spec.contig, spec.path.parent)
                warmed.add(spec.contig)
            # Back-pressure: at most two chunks per worker written ahead of the workers.
            while runner.busy >= 2 * workers:
                _record(runner.next_result(), results, joiner, chunk_done)
            runner.submit(spec, _context(bundle, spec, to_user(), options))
            chunks.submitted(spec.index, spec.records)
        chunks.read(1.0)  # the whole input is read
        while runner.busy:
            _record(runner.next_result(), results, joiner, chunk_done)
    finally:
        runner.stop()
    results.sort(key=lambda r: r.index)
    return results


def _record(
    done: tuple[ChunkSpec, ChunkResult],
    results: list[ChunkResult],
    joiner: Joiner,
    chunk_done: Callable[[ChunkSpec, int], None],
) -> None:
    spec, result = done
    # Joined here, in the job process, while the next chunk runs in a worker.
    joiner.add(result)
    results.append(result)
    chunk_done(spec, 0)


def _bcftools_main(sender: Any, spec: ChunkSpec, ctx: ChunkContext) -> None:
    try:
        sender.send(("ok", bcftools_stages(spec, ctx)))
    except NeedsSortError as exc:
        sender.send(("resort", str(exc)))
    except InputError as exc:
        sender.send(("input_error", str(exc)))
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        sender.send(("error", f"chunk {spec.index} failed: {detail}"))
    finally:
        sender.close()


def _one_chunk(spec: ChunkSpec, ctx: ChunkContext) -> tuple[str, Any]:
    """One chunk from a worker: bcftools in a fresh forked child, the Python stages here."""
    fork = multiprocessing.get_context("fork")
    receiver, sender = fork.Pipe(duplex=False)
    child = fork.Process(
        target=_bcftools_main, args=(sender, spec, ctx), name=f"gas-bcftools-{spec.index}"
    )
    child.start()
    sender.close()
    try:
        kind, payload = receiver.recv()
    except EOFError:
        kind, payload = "error", f"chunk {spec.index} crashed"
    receiver.close()
    child.join()
    if kind != "ok" and child.exitcode not in (0, None):
        payload = f"{payload} (exit code {child.exitcode})"
    if kind != "ok":
        return kind, payload
    try:
        return "ok", python_stages(spec, ctx, payload)
    except InputError as exc:
        return "input_error", str(exc)
    except Exception as exc:
        detail = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return "error", f"chunk {spec.index} failed: {detail}"
    finally:
        # Hand the chunk's Arrow memory back so a long-lived worker stays at one chunk's peak.
        pa.default_memory_pool().release_unused()


def _worker_main(conn: Any) -> None:
    """A long-lived chunk worker: takes (spec, context) until it gets None."""
    while True:
        try:
            task = conn.recv()
        except EOFError:
            return
        if task is None:
            return
        conn.send(_one_chunk(*task))


class _ChunkRunner:
    """Runs chunks on ``workers`` long-lived worker processes, one chunk per worker at a time.

    The Python stages (reading the text, our pass, rows, the VCF member) run in the worker, which
    keeps its imports, caches and warmed-up pyarrow kernels from chunk to chunk: a fresh process
    per chunk cost 34-44 % more CPU on those stages. bcftools still runs in a fresh fork per
    chunk (it leaves global state behind, and a crash there takes down only that child).
    Inside the isolated job process workers are forked directly (milliseconds, inheriting what
    warm_up loaded); otherwise they come from the forkserver. The parent validates the next
    chunks meanwhile and joins the outputs.
    """

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.ctx: Any = (
            multiprocessing.get_context("fork") if _IN_JOB_PROCESS else _process_context()
        )
        self.queue: list[tuple[ChunkSpec, ChunkContext]] = []
        self.idle: list[tuple[Any, Any]] = []  # (connection, process)
        self.started = 0
        self.processes: list[Any] = []
        # connection -> (spec, context, process) of the chunk it is running
        self.running: dict[Any, tuple[ChunkSpec, ChunkContext, Any]] = {}

    @property
    def busy(self) -> int:
        return len(self.queue) + len(self.running)

    def submit(self, spec: ChunkSpec, ctx: ChunkContext) -> None:
        self.queue.append((spec, ctx))
        self._start()

    def next_result(self) -> tuple[ChunkSpec, ChunkResult]:
        """Wait for the next finished chunk, rerunning chunks that need sorting first."""
        while True:
            done = self.wait_one()
            if done is not None:
                return done

    def _worker(self) -> tuple[Any, Any] | None:
        if self.idle:
            return self.idle.pop()
        if self.started >= self.workers:
            return None
        conn, child_end = self.ctx.Pipe(duplex=True)
        process = self.ctx.Process(
            target=_worker_main, args=(child_end,), name=f"gas-worker-{self.started}"
        )
        process.start()
        child_end.close()
        self.started += 1
        self.processes.append(process)
        return conn, process

    def _start(self) -> None:
        while self.queue:
            worker = self._worker()
            if worker is None:
                return
            conn, process = worker
            spec, ctx = self.queue.pop(0)
            conn.send((spec, ctx))
            self.running[conn] = (spec, ctx, process)

    def wait_one(self) -> tuple[ChunkSpec, ChunkResult] | None:
        self._start()
        ready = multiprocessing.connection.wait(list(self.running))
        conn = cast("multiprocessing.connection.Connection", ready[0])
        spec, ctx, process = self.running.pop(conn)
        try:
            kind, payload = conn.recv()
            self.idle.append((conn, process))
        except EOFError:
            process.join()
            kind, payload = "error", f"chunk {spec.index} crashed (exit code {process.exitcode})"
        self._start()
        if kind == "ok":
            return spec, cast("ChunkResult", payload)
        if kind == "resort":
            self.queue.insert(0, (spec, dataclasses.replace(ctx, presort=True)))
            self._start()
            return None
        if kind == "input_error":
            raise InputError(str(payload))
        raise RuntimeError(str(payload))

    def stop(self) -> None:
        self.queue.clear()
        # A worker still on a chunk (the job is failing) is stopped; idle ones are told to end.
        for _spec, _ctx, process in self.running.values():
            process.terminate()
        for conn, _process in self.idle:
            with contextlib.suppress(OSError):
                conn.send(None)
        for process in self.processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join(5)
        for conn in [*self.running, *(c for c, _ in self.idle)]:
            conn.close()
        self.running.clear()
        self.idle.clear()
