"""Throughput and memory of the annotation engine against plain `bcftools csq`.

    uv run python benchmarks/annotate.py [N] [--repeat R] [--workers 1,2]

Generates N synthetic variants (85 % SNVs, 15 % indels up to 6 bp; seeded) on the real sequence
of the shared chr21 bundle (GAS_TEST_REFERENCE, default ../shared/refdata/grch38_chr21), builds a
bundle from it, then measures, each in a fresh subprocess so peak RSS is per measurement:

- plain csq: `pysam.bcftools.csq -l -s -` on the same VCF (the same csq mode the engine uses),
  writing VCF: the baseline every ratio is against;
- the bcftools chain alone: the three passes the engine is built on, with the engine's own
  arguments, over the whole file in one process and no GAS code at all (no validation, no
  chunks, no our pass, no TSV/Parquet/summary): `norm -m -any -c x -f FASTA -w W` (W: the
  engine's density-scaled window) -> `csq -l -s -` -> `annotate` (known variants) to VCF.gz
  (BGZF level 1, as the engine writes it) + .tbi. What one process cannot go below;
- our full pipeline: validation, norm, csq, annotate, our pass, and every output (VCF.gz + tbi,
  TSV, Parquet, summary, log) with 1 and 2 workers, two ways:
  - warm, as the annotator service runs it: the engine imported and its forkserver up (a small
    job has run first); CPU is the measured job's process tree (the forkserver's reaped
    children) plus the caller;
  - cold, as `gas annotate` runs it: a fresh CLI process tree (imports, forkserver, job,
    workers), every process's CPU included (the measuring process is a subreaper).

Peak RSS is the larger of the measuring process and its children (the engine's job process and
pool workers), from getrusage(RUSAGE_SELF / RUSAGE_CHILDREN). Not a test: prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_REFERENCE = "../shared/refdata/grch38_chr21"
FASTA = "GRCh38_chr21.fa.gz"
GFF = "Ensembl84_chr21_25mb_plusAPP.gff3"
KNOWN = "known_variants_dbSNP149_1KG_gnomADe_ClinVar.norm.vcf.gz"
MANE = "../mane/MANE.GRCh38.v1.5.summary.txt.gz"
SEED = 20240917


def reference_dir() -> Path:
    value = os.environ.get("GAS_TEST_REFERENCE", DEFAULT_REFERENCE)
    path = (REPO_ROOT / value).resolve()
    if not (path / FASTA).is_file():
        sys.exit(f"no {FASTA} in {path}: set GAS_TEST_REFERENCE")
    return path


def sequenced_blocks(seq: str, min_len: int = 10_000) -> list[tuple[int, int]]:
    """0-based [start, end) runs without N: only there do synthetic variants make sense."""
    blocks: list[tuple[int, int]] = []
    i = 0
    n = len(seq)
    while i < n:
        while i < n and seq[i] == "N":
            i += 1
        j = i
        while j < n and seq[j] != "N":
            j += 1
        if j - i >= min_len:
            blocks.append((i, j))
        i = j
    return blocks


def generate(n: int, out: Path, ref: Path) -> None:
    import pysam

    fasta = pysam.FastaFile(str(ref / FASTA))
    contig = fasta.references[0]
    # The real sequence lies in a few blocks; fetch around them only.
    seq = fasta.fetch(contig).upper()
    blocks = sequenced_blocks(seq)
    weights = [e - s for s, e in blocks]
    rng = random.Random(SEED)
    positions = sorted(
        rng.randrange(*blocks[rng.choices(range(len(blocks)), weights)[0]]) for _ in range(n)
    )
    with out.open("w") as handle:
        handle.write(
            "##fileformat=VCFv4.2\n"
            f"##contig=<ID={contig},length={fasta.get_reference_length(contig)}>\n"
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        )
        lines = []
        for p0 in positions:
            r = seq[p0]
            x = rng.random()
            if x < 0.85:
                ref_allele, alt = r, rng.choice([b for b in "ACGT" if b != r])
            elif x < 0.93:
                length = rng.randint(1, 6)
                ref_allele, alt = seq[p0 : p0 + length + 1], r
            else:
                length = rng.randint(1, 6)
                ref_allele, alt = r, r + "".join(rng.choice("ACGT") for _ in range(length))
            lines.append(f"{contig}\t{p0 + 1}\t.\t{ref_allele}\t{alt}\t.\t.\t.\n")
            if len(lines) >= 100_000:
                handle.writelines(lines)
                lines.clear()
        handle.writelines(lines)


def build(ref: Path, out: Path) -> None:
    from gas_annotator.reference import build_bundle

    mane = (ref / MANE).resolve()
    build_bundle(
        "GRCh38",
        ref / FASTA,
        ref / GFF,
        [ref / KNOWN],
        out,
        name="bench-chr21",
        version="ensembl84",
        mane=mane if mane.is_file() else None,
    )


# --------------------------------------------------------------------------- measurements


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024  # Linux reports KiB


def measure(kind: str, vcf: Path, bundle: Path, workers: int, work: Path) -> dict[str, float]:
    cpu_before = _cpu_seconds()
    if kind == "csq":
        import pysam.bcftools

        from gas_annotator.reference import load_bundle

        b = load_bundle(bundle)
        gff = _whole_gff(bundle) or b.gff_for(next(iter(b.manifest.contigs)))
        started = time.perf_counter()
        pysam.bcftools.csq(
            "-f", str(b.fasta), "-g", str(gff), "-l", "-s", "-", "-o", str(work / "plain.vcf"),
            str(vcf), catch_stdout=False,
        )  # fmt: skip
        seconds = time.perf_counter() - started
    elif kind in ("chain", "chain-sorted"):
        seconds, sorted_ok = bcftools_chain(vcf, bundle, work / kind, presort=kind != "chain")
        if not sorted_ok:
            # As in the engine: csq found norm's output out of order; the parent reruns the
            # chain with a sort step in a fresh process and adds this attempt's time.
            return {"seconds": seconds, "cpu_seconds": _cpu_seconds() - cpu_before,
                    "peak_rss_mb": _peak_rss_mb(), "needs_sort": 1.0}  # fmt: skip
    elif kind == "service":
        return _measure_warm(vcf, bundle, workers, work)
    elif kind == "cli":
        return _measure_cli(vcf, bundle, workers, work)
    else:
        from gas_annotator.engine import annotate

        started = time.perf_counter()
        annotate(vcf, reference_dir=bundle, out_dir=work / f"out{workers}", workers=workers)
        seconds = time.perf_counter() - started
        # The engine's processes descend from the multiprocessing forkserver; only once it has
        # exited (and been reaped) do their CPU time and peak RSS show in RUSAGE_CHILDREN.
        from multiprocessing import forkserver

        forkserver._forkserver._stop()  # type: ignore[attr-defined]
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _whole_gff(bundle_dir: Path) -> Path | None:
    """The genome-density input's GFF over all contigs (the bundle splits it per contig)."""
    path = bundle_dir.parent / "genome-src" / "genes.gff3"
    return path if path.is_file() else None


def _proc_cpu(pid: int) -> float:
    """utime + stime + cutime + cstime of a live process (its reaped descendants included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _measure_warm(vcf: Path, bundle: Path, workers: int, work: Path) -> dict[str, float]:
    """GAS the way the service runs it: engine imported, forkserver already up (a small job has
    run). CPU is the forkserver's reaped children (the job process and everything under it)
    plus this process, over the measured job only."""
    from multiprocessing import forkserver

    from gas_annotator.engine import annotate

    warm = work / "warm.vcf"
    with vcf.open() as src, warm.open("w") as dst:
        for i, line in enumerate(src):
            dst.write(line)
            if i > 2000:
                break
    annotate(warm, reference_dir=bundle, out_dir=work / "warm-out", workers=workers)
    time.sleep(0.5)  # let the forkserver reap the warm-up job
    server = forkserver._forkserver._forkserver_pid  # type: ignore[attr-defined]
    cpu_before = _proc_cpu(server) + _cpu_seconds()
    started = time.perf_counter()
    annotate(vcf, reference_dir=bundle, out_dir=work / f"warm{workers}", workers=workers)
    seconds = time.perf_counter() - started
    time.sleep(0.5)
    cpu = _proc_cpu(server) + _cpu_seconds() - cpu_before
    forkserver._forkserver._stop()  # type: ignore[attr-defined]
    return {"seconds": seconds, "cpu_seconds": cpu, "peak_rss_mb": _peak_rss_mb()}


def _measure_cli(vcf: Path, bundle: Path, workers: int, work: Path) -> dict[str, float]:
    """`gas annotate` cold: a new interpreter imports everything and starts its forkserver.
    This process becomes a subreaper so the CLI's orphaned forkserver is reaped here and the
    whole tree's CPU shows in RUSAGE_CHILDREN."""
    import ctypes

    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    gas = Path(sys.executable).with_name("gas")
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    subprocess.run(
        [str(gas), "annotate", str(vcf), "--reference", str(bundle),
         "--out", str(work / f"cli{workers}"), "--workers", str(workers), "--quiet"],
        check=True,
    )  # fmt: skip
    seconds = time.perf_counter() - started
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    return {
        "seconds": seconds,
        "cpu_seconds": _cpu_seconds() - cpu_before,
        "peak_rss_mb": _peak_rss_mb(),
    }


def bcftools_chain(vcf: Path, bundle_dir: Path, work: Path, *, presort: bool) -> tuple[float, bool]:
    """norm -> csq -> annotate over the whole file with the engine's arguments (see the
    module docstring); the engine's chunk pipeline runs the same three, per chunk. Returns the
    seconds of the passes (the set-up is not timed, as for plain csq) and False when csq
    found norm's output unsorted (an indel moved left past norm's window). With ``presort``
    a `bcftools sort` runs between norm and csq, as in the engine's rerun of such a chunk."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pysam.bcftools
    from pysam.utils import SamtoolsError

    from gas_annotator.engine import EngineOptions
    from gas_annotator.engine.chunk import csq_args, known_columns, norm_window
    from gas_annotator.engine.validate import GAP_BP, ChunkSpec
    from gas_annotator.reference import load_bundle

    work.mkdir(exist_ok=True)
    bundle = load_bundle(bundle_dir)
    contig = next(iter(bundle.manifest.contigs))
    gff = _whole_gff(bundle_dir) or bundle.gff_for(contig)
    # The window norm gets in the engine: from the records' density, gaps over GAP_BP ignored.
    with vcf.open("rb") as handle:
        skip = sum(1 for line in handle if line.startswith(b"#"))
    pos = (
        pacsv.read_csv(
            vcf,
            read_options=pacsv.ReadOptions(skip_rows=skip, autogenerate_column_names=True),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=["f1"], column_types={"f1": pa.int64()}
            ),
        )
        .column("f1")
        .to_numpy()
    )
    steps = pos[1:] - pos[:-1]
    spec = ChunkSpec(0, vcf, contig, len(pos), int(pos[0]), int(pos[-1]), 0,
                     skipped=int(steps[steps > GAP_BP].sum()))  # fmt: skip
    window = norm_window(spec, EngineOptions().norm_window_records)
    (known,) = [(path, k) for k, path in bundle.known_paths()]
    columns = known_columns(known[1].id_is_rsid, known[1].af_field, known[1].clnsig_field)
    normed, called = work / "norm.bcf", work / "csq.bcf"
    started = time.perf_counter()
    pysam.bcftools.norm(
        "--no-version", "-m", "-any", "-c", "x", "-f", str(bundle.fasta), "-w", str(window),
        "-Ou", "-o", str(normed), str(vcf), catch_stdout=False,
    )  # fmt: skip
    if presort:
        (work / "sort.tmp").mkdir(exist_ok=True)
        resorted = work / "sorted.bcf"
        pysam.bcftools.sort(
            "-m", "256M", "-T", str(work / "sort.tmp"), "-Ou", "-o", str(resorted), str(normed),
            catch_stdout=False,
        )  # fmt: skip
        normed = resorted
    try:
        pysam.bcftools.csq(
            *csq_args(str(bundle.fasta), str(gff)), "-Ob0", "-W", "-o", str(called), str(normed),
            catch_stdout=False,
        )  # fmt: skip
    except SamtoolsError:
        if presort:
            raise
        return time.perf_counter() - started, False
    pysam.bcftools.annotate(
        "--no-version", "-a", str(known[0]), "-c", columns, "-Oz1", "--write-index=tbi",
        "-o", str(work / "annotated.vcf.gz"), str(called), catch_stdout=False,
    )  # fmt: skip
    return time.perf_counter() - started, True


def run_child(kind: str, vcf: Path, bundle: Path, workers: int, work: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", kind, str(vcf), str(bundle), str(workers), str(work)],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        sys.exit(f"{kind} (workers={workers}) failed:\n{out.stderr}")
    result = dict(json.loads(out.stdout.strip().splitlines()[-1]))
    if result.pop("needs_sort", None):
        rerun = run_child("chain-sorted", vcf, bundle, workers, work)
        result = {
            "seconds": result["seconds"] + rerun["seconds"],
            "cpu_seconds": result["cpu_seconds"] + rerun["cpu_seconds"],
            "peak_rss_mb": max(result["peak_rss_mb"], rerun["peak_rss_mb"]),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=1, help="median of R runs per engine")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument(
        "--density", choices=["dense", "genome"], default="dense",
        help="dense: chr21's real sequence, ~1 variant per base; genome: a synthetic genome of "
        "N x 500 bp with genes every 50 kb, ~1 variant per 500 bp (benchmarks/genome_density.py)",
    )  # fmt: skip
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, vcf, bundle, workers, work = args.child
        result = measure(kind, Path(vcf), Path(bundle), int(workers), Path(work))
        print(json.dumps(result))
        return

    ref = reference_dir()
    with tempfile.TemporaryDirectory(prefix="gas-bench-") as tmp_name:
        tmp = Path(tmp_name)
        vcf = tmp / "synthetic.vcf"
        t0 = time.perf_counter()
        if args.density == "genome":
            sys.path.insert(0, str(Path(__file__).parent))
            import genome_density

            genome_density.build(args.n, vcf, tmp / "bundle")  # input and bundle together
            t1 = time.perf_counter()
        else:
            generate(args.n, vcf, ref)
            t1 = time.perf_counter()
            build(ref, tmp / "bundle")
        t2 = time.perf_counter()
        print(
            f"{args.n:,} synthetic {args.density} variants ({vcf.stat().st_size / 1e6:.0f} MB) "
            f"generated in {t1 - t0:.1f}s; bundle built in {t2 - t1:.1f}s (genome: in the first "
            "figure); "
            f"{os.cpu_count()} CPUs; median of {args.repeat}"
        )
        runs: list[tuple[str, str, int]] = [
            ("plain bcftools csq -l", "csq", 1),
            ("bcftools chain alone", "chain", 1),
        ]
        for w in args.workers.split(","):
            runs += [
                (f"GAS service (warm), {w} worker(s)", "service", int(w)),
                (f"gas annotate (cold), {w} worker(s)", "cli", int(w)),
            ]
        # Rounds interleave the engines (each round runs every engine once), so a shared
        # machine's load drifting over the minutes of a run hits every engine alike; the
        # ratios below are the medians of each round's own ratios.
        by_run: dict[str, list[dict[str, float]]] = {label: [] for label, _, _ in runs}
        for _ in range(args.repeat):
            for label, kind, workers in runs:
                by_run[label].append(run_child(kind, vcf, tmp / "bundle", workers, tmp))
        rows = []
        baseline = None
        for label, _kind, _workers in runs:
            results = by_run[label]
            seconds = statistics.median(r["seconds"] for r in results)
            cpu = statistics.median(r["cpu_seconds"] for r in results)
            rss = max(r["peak_rss_mb"] for r in results)
            rate = args.n / seconds
            baseline = baseline or rate
            rows.append((label, seconds, cpu, rate, rate / baseline, rss))
        print(
            f"{'engine':30s} {'wall s':>7s} {'CPU s':>7s} {'variants/s':>11s} {'vs csq':>7s} "
            f"{'peak RSS':>9s}"
        )
        for label, seconds, cpu, rate, ratio, rss in rows:
            print(f"{label:30s} {seconds:7.2f} {cpu:7.2f} {rate:11,.0f} {ratio:7.2f} {rss:6.0f} MB")
        print("peak RSS: the largest single process (measuring process or any child)")
        csq_runs, chain_runs = by_run[runs[0][0]], by_run[runs[1][0]]

        def per_round(label: str, key: str, base: list[dict[str, float]]) -> float:
            return statistics.median(
                b[key] / r[key] if key == "seconds" else r[key] / b[key]
                for r, b in zip(by_run[label], base, strict=True)
            )

        for label, _seconds, cpu, _rate, _ratio, _rss in rows[2:]:
            per_million = cpu / args.n * 1e6
            print(
                f"{label}: {per_million:.2f} CPU-s per 1M, "
                f"{per_round(label, 'cpu_seconds', chain_runs):.2f}x the chain's CPU; wall "
                f"{per_round(label, 'seconds', csq_runs):.2f} of csq's, "
                f"{per_round(label, 'seconds', chain_runs):.2f} of the chain's"
            )
        print(
            "warm = engine imported and forkserver up, as the annotator service runs it; "
            "cold = a fresh `gas annotate` process tree, everything included"
        )
        print(
            "bcftools chain alone: norm + csq + annotate to VCF.gz + tbi over the whole file in "
            "one process, no GAS code: the most one process can reach with these three passes"
        )


if __name__ == "__main__":
    main()
