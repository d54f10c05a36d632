"""One chunk through the pipeline: norm → csq → annotate (known variants, our header lines,
the user's contig names; VCF text) → read the text → our pass → rows + the chunk's VCF lines.

The bcftools stages run inside pysam in a fresh process per chunk and write uncompressed output
(BCF, then VCF text for the last) in the chunk's scratch directory. The Python stages run in a
long-lived worker: our pass never touches pysam records (pyarrow parses the text's fixed columns
in C++, one split on ';' pulls BCSQ and our known-variant fields out of INFO, the
per-transcript logic is columnar), and the chunk's VCF lines are spliced and BGZF-compressed
here, so the job process only concatenates the members.
"""

from __future__ import annotations

import re
import resource
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pysam
import pysam.bcftools
from pysam.utils import SamtoolsError

from gas_annotator.engine.annotated import read_annotated
from gas_annotator.engine.chunk_models import DEFAULT_AF_KEY, ChunkContext, ChunkResult, Staged
from gas_annotator.engine.duplicates import share_known
from gas_annotator.engine.errors import InputError
from gas_annotator.engine.gene_context import load_genes, load_mane
from gas_annotator.engine.genotypes import samples_metadata
from gas_annotator.engine.rows import our_pass, tsv_columns, write_rows
from gas_annotator.engine.validate import ChunkSpec
from gas_annotator.engine.vcf_splice import OUR_INFO, new_texts, our_info, write_vcf_member

_NORM_STATS = re.compile(r"total/split/joined/realigned/mismatch_removed[^:]*:\s*([\d/]+)")


def _bcftools(tool: str, *args: str) -> str:
    runner = getattr(pysam.bcftools, tool)
    try:
        runner(*args, catch_stdout=False)
    except SamtoolsError as exc:
        raise _ToolError(tool, str(exc)) from exc
    messages = runner.get_messages()
    return messages if isinstance(messages, str) else "\n".join(messages or [])


class _ToolError(RuntimeError):
    def __init__(self, tool: str, detail: str) -> None:
        # pysam's message is "... stdout=..., stderr=<stderr>": keep bcftools' own lines.
        text = detail.split("stderr=", 1)[-1].replace("\\n", "\n").strip("'\" \n")
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith(("Error", "[E::")) or "error" in ln.lower()]
        self.tool = tool
        self.detail = text
        self.first = (errors or lines or [detail])[0][:300]
        super().__init__(f"bcftools {tool} failed: {self.first}")


def norm_window(spec: ChunkSpec, window_records: int) -> int:
    """bcftools norm's re-sorting window (bp), scaled to the chunk's variant density.

    norm keeps every record within ``-w`` bp in a buffer and its cost grows with how many
    records that is: on dense input (a variant per base) the default 1000 bp is 20x slower than
    50 bp. A window of ~``window_records`` records keeps the cost flat; sparse input (a genome,
    one variant per ~600 bp) keeps the full default. An indel shifted further left than the
    window makes csq fail on the unsorted chunk; it is then rerun with a sort (NeedsSortError).
    """
    # Gaps of more than GAP_BP (an unsequenced stretch, a gene desert) hold no records: they do
    # not dilute the density norm's window sees.
    span = max(spec.last_pos - spec.first_pos - spec.skipped, 1)
    per_bp = spec.records / span
    return int(min(1000, max(50, window_records / max(per_bp, 1e-9))))


def run_chunk(spec: ChunkSpec, ctx: ChunkContext) -> ChunkResult:
    """The whole chunk in this process (tests, and the engine without persistent workers)."""
    return python_stages(spec, ctx, bcftools_stages(spec, ctx))


def bcftools_stages(spec: ChunkSpec, ctx: ChunkContext) -> Staged:  # noqa: PLR0915 - one stage per block
    """norm -> csq -> annotate, ending in the annotated VCF text. Run in a fresh process per
    chunk: bcftools inside pysam leaves global state behind (after a failure especially)."""
    work = spec.path.parent / f"chunk{spec.index:05d}.d"
    work.mkdir(exist_ok=True)
    log: list[str] = []
    timings: dict[str, float] = {}

    def stage(name: str, t0: float) -> float:
        now = time.perf_counter()
        timings[name] = now - t0
        return now

    t = time.perf_counter()
    normed = work / "norm.bcf"
    window = norm_window(spec, ctx.norm_window_records)
    try:
        messages = _bcftools(
            "norm", "--no-version", "-m", "-any", "-c", "x", "-f", ctx.fasta,
            "-w", str(window), "-Ou", "-o", str(normed), str(spec.path),
        )  # fmt: skip
    except _ToolError as exc:
        # The first stage is the first to parse the user's header and fields with htslib.
        raise InputError(f"htslib could not parse the VCF: {exc.first}") from exc
    stats_match = _NORM_STATS.search(messages)
    counts = [int(x) for x in stats_match.group(1).split("/")] if stats_match else [0] * 5
    t = stage("norm", t)

    csq_out = work / "csq.bcf"
    _run_csq(ctx, normed, csq_out, work, log)
    t = stage("csq", t)

    header = work / "ours.hdr"
    header.write_text(
        "".join(
            f'##INFO=<ID={n},Number={num},Type={typ},Description="{desc}">\n'
            for n, num, typ, desc in OUR_INFO
        )
    )
    rename = work / "rename.txt"
    rename.write_text("".join(f"{b}\t{u}\n" for b, u in ctx.to_user.items() if b != u))
    # Known variants, our header lines and the user's contig names in one pass (one per known
    # source); the last pass writes plain VCF text, which our pass reads and rewrites once
    # (no bcftools query, no second annotate with a tab file of our fields).
    sources = [(k.path, known_columns(k.id_is_rsid, k.af, k.clnsig, k.extra_af))
               for k in ctx.known]  # fmt: skip
    sources = [(path, columns) for path, columns in sources if columns] or [("", "")]
    # Without regions the synced reader streams the known file from its first record up to
    # the chunk; -R jumps there through both indexes (see known_regions).
    region = work / "region.tsv"
    regions = known_regions(csq_out, spec, ctx.known_region_gap_bp)
    first = regions[0][0] if regions else None
    if regions:
        region.write_text("".join(f"{spec.contig}\t{a}\t{b}\n" for a, b in regions))
    annotated = csq_out
    for i, (path, columns) in enumerate(sources):
        last = i == len(sources) - 1
        nxt = work / (f"known{i}.bcf" if not last else "annotated.vcf")
        args = ["--no-version"]
        if path:
            args += ["-a", path, "-c", columns]
            if first is not None:
                # Position-based: each record lies in exactly one region (they are disjoint),
                # and a known variant can only match a record at its own position.
                args += ["-R", str(region), "--regions-overlap", "0"]
        if last:
            # Every chunk gets the same header lines (-h), even one left empty by REF-mismatch
            # removal: the naive concatenation of chunk VCFs needs identical headers.
            args += ["-h", str(header), "-Ov"]
            if rename.stat().st_size:
                args += ["--rename-chrs", str(rename)]
        else:
            # annotate -a reads its input through an indexed reader: index the intermediate.
            args += ["-Ob0", "-W"]
        _bcftools("annotate", *args, "-o", str(nxt), str(annotated))
        if annotated != csq_out:
            annotated.unlink(missing_ok=True)
        annotated = nxt
    stage("annotate", t)
    for leftover in (normed, csq_out):
        leftover.unlink(missing_ok=True)
    spec.path.unlink(missing_ok=True)
    return Staged(
        work=work,
        annotated=annotated,
        norm_counts=counts,
        window=window,
        regions=len(regions),
        timings=timings,
        log=log,
    )


def python_stages(spec: ChunkSpec, ctx: ChunkContext, staged: Staged) -> ChunkResult:
    """Read the annotated text, our pass, the rows and the VCF member: pure Python/Arrow,
    so it can run in a long-lived worker that keeps its imports and caches warm."""
    work, annotated, counts, timings = (
        staged.work,
        staged.annotated,
        staged.norm_counts,
        staged.timings,
    )
    log = staged.log

    def stage(name: str, t0: float) -> float:
        now = time.perf_counter()
        timings[name] = now - t0
        return now

    t = time.perf_counter()
    af_keys = {name: key for name, key in ctx.af_columns if key != DEFAULT_AF_KEY}
    text = share_known(read_annotated(annotated, af_keys))
    t = stage("read", t)

    rows, per_variant, stats = our_pass(
        text.table, spec.contig, ctx, samples=text.samples, genotypes=text.genotypes
    )
    t = stage("ours", t)
    tsv = work / "rows.tsv"
    arrow = work / "rows.arrow"
    metadata = {**ctx.parquet_metadata, **samples_metadata(text.samples)}
    write_rows(rows, tsv, arrow, samples=text.samples, metadata=metadata)
    # Dropped before the VCF stage, which can then reuse their memory: a worker keeps its
    # high-water mark (the allocator keeps freed pages), and a gene-dense chunk's rows are
    # ~2x its records (4M dense: the worker's peak 496-505 -> 470-477 MB).
    row_count = rows.num_rows
    del rows
    t = stage("rows", t)

    # The chunk's VCF lines as BGZF blocks: the job process only concatenates them.
    vcf = work / "body.vcf.gz"
    vcf_index = work / "body.vcf.gz.tbi"
    variant_count = per_variant.num_rows
    replacements = new_texts(text, our_info(per_variant))
    del per_variant
    indexed = write_vcf_member(text, replacements, vcf, vcf_index)
    annotated.unlink(missing_ok=True)
    stage("vcf", t)

    log.append(
        f"chunk {spec.index}: {spec.contig}:{spec.first_pos}-{spec.last_pos} "
        f"{spec.records:,} records -> {row_count:,} rows; norm -w {staged.window}; "
        f"known variants read in {staged.regions} region(s); "
        + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
        + f"; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB"
    )
    return ChunkResult(
        index=spec.index,
        vcf=vcf,
        tsv=tsv,
        arrow=arrow,
        records_in=spec.records,
        variants=variant_count,
        rows=row_count,
        mismatch_removed=counts[4] if len(counts) > 4 else 0,
        split=counts[1] if len(counts) > 1 else 0,
        realigned=counts[3] if len(counts) > 3 else 0,
        stats=stats,
        log=log,
        header=text.header,
        tsv_columns=tsv_columns(text.samples),
        vcf_index=vcf_index if indexed else None,
        span=record_span(text.table),
    )


def record_span(table: pa.Table) -> tuple[str, int, str, int] | None:
    """(contig, POS) of the first and the last record, in file order; None for no record."""
    if table.num_rows == 0:
        return None
    chrom, pos = table.column("chrom"), table.column("pos")
    last = table.num_rows - 1
    return (chrom[0].as_py(), pos[0].as_py(), chrom[last].as_py(), pos[last].as_py())


def known_regions(bcf: Path, spec: ChunkSpec, gap_bp: int) -> list[tuple[int, int]]:
    """Where `annotate` reads the known variants for a chunk: the positions of its records
    after norm (left-alignment moves them left, trimming a shared prefix right), from csq's
    sorted, indexed output, as disjoint ranges that hold every record.

    One range, the chunk's span, when the input has no gap over validate.GAP_BP (dense input,
    a whole-genome VCF's typical spacing): jumping would not skip enough to pay. Otherwise the
    span is cut wherever records are more than `gap_bp` apart, so for an exome or a panel
    (clusters of records, long gaps) annotate reads the known file only around the clusters:
    a 30k-record chunk across a 19 Mb gap took 0.38 s instead of 5.2 s against 7.4M known
    variants (docs/annotation.md).
    """
    if spec.skipped == 0:
        span = _position_span(bcf, spec.contig, spec.last_pos)
        return [span] if span else []
    text = pysam.bcftools.query("-f", "%POS\n", str(bcf))
    pos = np.array(str(text).split(), dtype=np.int64)
    if len(pos) == 0:
        return []
    cut = np.flatnonzero(np.diff(pos) > gap_bp)
    starts = np.concatenate([pos[:1], pos[cut + 1]])
    ends = np.concatenate([pos[cut], pos[-1:]])
    return [(int(a), int(b)) for a, b in zip(starts, ends, strict=True)]


def _position_span(bcf: Path, contig: str, last_input: int) -> tuple[int, int] | None:
    """(first, last) POS of a sorted, indexed BCF: the first record, and the largest POS among
    the records from the last input position on (found through the index)."""
    with pysam.VariantFile(str(bcf)) as records:
        first = next((int(r.pos) for r in records), None)
        if first is None:
            return None
        last = max(first, last_input)
        for record in records.fetch(contig, max(last_input - 1, 0)):
            last = max(last, int(record.pos))
    return first, last


def csq_args(fasta: str, gff: str, *, local: bool = True) -> list[str]:
    """The csq invocation. ``--local-csq`` and ``-s -``: see docs/annotation.md, "csq mode"."""
    args = ["--no-version", "-f", fasta, "-g", gff, "-s", "-"]
    if local:
        args.append("-l")
    return args


class NeedsSortError(RuntimeError):
    """norm's output is out of order (an indel moved left past the window): rerun sorted.

    Not retried in this process: bcftools run in-process keeps state after a failure, so the
    runner starts a fresh process with ``presort`` set instead.
    """


def _run_csq(ctx: ChunkContext, normed: Path, out: Path, work: Path, log: list[str]) -> None:
    source = normed
    if ctx.presort:
        source = work / "norm.sorted.bcf"
        tmp = work / "sort.tmp"
        tmp.mkdir(exist_ok=True)
        _bcftools("sort", "-m", "256M", "-T", str(tmp), "-Ou", "-o", str(source), str(normed))
        log.append("sorted after left-alignment moved a record past norm's window")
    try:
        if ctx.gff is None:
            # No gene models on this contig: nothing to predict, but annotate needs an index.
            _bcftools("view", "--no-version", "-Ob0", "-W", "-o", str(out), str(source))
        else:
            _bcftools(
                "csq", *csq_args(ctx.fasta, ctx.gff, local=ctx.local_csq),
                "-Ob0", "-W", "-o", str(out), str(source),
            )  # fmt: skip
    except _ToolError as exc:
        # Out-of-order input shows up as "not sorted" from csq or as a failed write of the
        # index (-W); either way one sorted rerun in a fresh process settles it, and a second
        # failure is a real error.
        if not ctx.presort:
            raise NeedsSortError(exc.first) from exc
        raise


def known_columns(
    id_is_rsid: bool,
    af: str | None,
    clnsig: str | None,
    extra_af: tuple[tuple[str, str], ...] = (),
) -> str:
    columns = []
    if id_is_rsid:
        columns += ["+ID", "INFO/GAS_KNOWN_ID:=ID"]
    if af:
        columns.append(f"INFO/{DEFAULT_AF_KEY}:=INFO/{af}")
    if clnsig:
        columns.append(f"INFO/GAS_CLNSIG:=INFO/{clnsig}")
    # Every other population AF field under its own key (annotate copies its header line).
    columns += [f"INFO/{ours}:=INFO/{theirs}" for theirs, ours in extra_af]
    return ",".join(columns)


def warm_up(ctx: ChunkContext, contig: str, scratch: Path) -> None:
    """Do once, in the parent, what every chunk of ``contig`` would otherwise redo: load the MANE
    list and gene spans and run our pass on a two-line query (first-call costs of pyarrow and
    numpy). Chunk processes are forked from the parent and inherit all of it."""
    load_mane(ctx.mane)
    genes = load_genes(ctx.genes, contig)
    del genes
    sample = scratch / f"warm-{_safe(contig)}.vcf"
    sample.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"{contig}\t100\trs1\tA\tG\t.\t.\tBCSQ=missense|G|T1.1|protein_coding|+|10V>10I|100A>G\n"
        f"{contig}\t200\t.\tAC\tA\t.\t.\tGAS_KNOWN_ID=rs2;GAS_CLNSIG=pathogenic;GAS_AF=0.1\n"
    )
    text = read_annotated(sample, {n: k for n, k in ctx.af_columns if k != DEFAULT_AF_KEY})
    _rows, per_variant, _stats = our_pass(text.table, contig, ctx)
    our_info(per_variant)
    sample.unlink()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)
