"""One chunk through the pipeline: norm → csq → annotate (known variants, our header lines,
the user's contig names; VCF text) → read the text → our pass → rows + splice table.

Runs in a worker process. Every bcftools stage is inside pysam and writes uncompressed output
(BCF, then VCF text for the last) in the chunk's scratch directory. Our pass never touches pysam
records: pyarrow parses the text's fixed columns in C++, RE2 pulls BCSQ and our known-variant
fields out of INFO, and the per-transcript logic is columnar (pyarrow compute + numpy);
Python-level loops run only over distinct values (consequence strings, amino-acid changes),
never over records. The job process then writes the chunk's VCF lines from the text and the
splice table (finish_vcf) while the next chunk runs.
"""

from __future__ import annotations

import re
import resource
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pysam
import pysam.bcftools
from pysam.libcbgzf import BGZFile
from pysam.utils import SamtoolsError

from gas_annotator.engine import consequences as cq
from gas_annotator.engine.errors import InputError
from gas_annotator.engine.validate import ChunkSpec

# What our pass reads per record (from the annotated VCF text, see read_annotated).
QUERY_COLUMNS = ("chrom", "pos", "ref", "alt", "id", "bcsq", "known_id", "clnsig", "af")

TSV_SCHEMA = pa.schema(
    [
        ("chrom", pa.string()),
        ("pos", pa.int64()),
        ("id", pa.string()),
        ("ref", pa.string()),
        ("alt", pa.string()),
        ("gene", pa.string()),
        ("transcript", pa.string()),
        ("biotype", pa.string()),
        ("consequence", pa.string()),
        ("impact", pa.string()),
        ("protein_change", pa.string()),
        ("mane_select", pa.bool_()),
        ("known_id", pa.string()),
        ("clinvar", pa.string()),
        ("allele_frequency", pa.float64()),
        ("nearest_gene", pa.string()),
        ("distance", pa.int64()),
    ]
)

OUR_INFO = (
    ("GAS_CSQ", "1", "String", "Most severe Sequence Ontology consequence of the variant over all "
     "transcripts; upstream_gene_variant/downstream_gene_variant (within the context distance) "
     "or intergenic_variant when it hits no transcript"),
    ("GAS_IMPACT", "1", "String", "Impact of GAS_CSQ: HIGH, MODERATE, LOW or MODIFIER"),
    ("GAS_GENE", "1", "String", "Gene of the most severe consequence (empty when no transcript "
     "is hit)"),
    ("GAS_NEAREST_GENE", "1", "String", "For variants hitting no transcript: the nearest gene"),
    ("GAS_DISTANCE", "1", "Integer", "For variants hitting no transcript: distance in bp to "
     "GAS_NEAREST_GENE"),
    ("GAS_MANE", "1", "String", "Consequence on the MANE Select transcript: "
     "transcript|consequence|protein_change"),
)  # fmt: skip

_NORM_STATS = re.compile(r"total/split/joined/realigned/mismatch_removed[^:]*:\s*([\d/]+)")


@dataclass(frozen=True)
class ChunkContext:
    fasta: str
    gff: str | None
    known: list[tuple[str, bool, str | None, str | None]]  # path, id_is_rsid, af, clnsig
    genes: str
    mane: str | None
    to_user: dict[str, str]  # bundle contig -> user's name
    context_distance: int
    norm_window_records: int
    known_region_gap_bp: int = 10_000
    local_csq: bool = True
    presort: bool = False


@dataclass
class ChunkResult:
    index: int
    vcf: Path
    tsv: Path
    arrow: Path
    records_in: int
    variants: int
    rows: int
    mismatch_removed: int
    split: int
    realigned: int
    stats: dict[str, Any]
    log: list[str] = field(default_factory=list)
    # Until finish_vcf has turned them into ``vcf``: the annotated VCF text and what to splice.
    text: Path | None = None
    splice: Path | None = None


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


def run_chunk(spec: ChunkSpec, ctx: ChunkContext) -> ChunkResult:  # noqa: PLR0915 - one stage per block
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
    sources = [(path, _known_columns(id_is_rsid, af, clnsig)) for path, id_is_rsid, af, clnsig
               in ctx.known]  # fmt: skip
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
    t = stage("annotate", t)

    text = read_annotated(annotated)
    t = stage("read", t)

    rows, per_variant, stats = our_pass(text.table, spec.contig, ctx)
    t = stage("ours", t)
    tsv = work / "rows.tsv"
    arrow = work / "rows.arrow"
    _write_rows(rows, tsv, arrow)
    t = stage("rows", t)

    # The VCF itself is written by the job process (finish_vcf, into the one output file) while
    # the next chunk runs here: this process only records what to splice into each line.
    splice = work / "splice.arrow"
    write_splice(text, _our_info(per_variant), splice)
    vcf = work / "final.vcf.gz"
    stage("splice", t)

    log.append(
        f"chunk {spec.index}: {spec.contig}:{spec.first_pos}-{spec.last_pos} "
        f"{spec.records:,} records -> {rows.num_rows:,} rows; norm -w {window}; "
        f"known variants read in {len(regions)} region(s); "
        + ", ".join(f"{k} {v:.2f}s" for k, v in timings.items())
        + f"; peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB"
    )
    for leftover in (normed, csq_out):
        leftover.unlink(missing_ok=True)
    spec.path.unlink(missing_ok=True)
    return ChunkResult(
        index=spec.index,
        vcf=vcf,
        tsv=tsv,
        arrow=arrow,
        records_in=spec.records,
        variants=per_variant.num_rows,
        rows=rows.num_rows,
        mismatch_removed=counts[4] if len(counts) > 4 else 0,
        split=counts[1] if len(counts) > 1 else 0,
        realigned=counts[3] if len(counts) > 3 else 0,
        stats=stats,
        log=log,
        text=annotated,
        splice=splice,
    )


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


# --------------------------------------------------------------------------- our pass


@dataclass(frozen=True)
class _Genes:
    starts: np.ndarray[Any, np.dtype[np.int64]]
    ends: np.ndarray[Any, np.dtype[np.int64]]
    strands: np.ndarray[Any, np.dtype[np.bool_]]  # True = '+'
    names: pa.Array
    by_end: np.ndarray[Any, np.dtype[np.int64]]  # gene indices sorted by end
    ends_sorted: np.ndarray[Any, np.dtype[np.int64]]
    prefix_max_end: np.ndarray[Any, np.dtype[np.int64]]  # over genes in start order
    prefix_arg: np.ndarray[Any, np.dtype[np.int64]]


@lru_cache(maxsize=8)
def _load_genes(path: str, contig: str) -> _Genes:
    starts: list[int] = []
    ends: list[int] = []
    strands: list[bool] = []
    names: list[str] = []
    with open(path) as handle:  # noqa: PTH123 - a str path from a picklable context
        next(handle)
        for line in handle:
            c, s, e, strand, _gid, name, _bt = line.rstrip("\n").split("\t")
            if c != contig:
                continue
            starts.append(int(s))
            ends.append(int(e))
            strands.append(strand != "-")
            names.append(name)
    order = sorted(range(len(starts)), key=lambda i: (starts[i], ends[i]))
    st = np.array([starts[i] for i in order], dtype=np.int64)
    en = np.array([ends[i] for i in order], dtype=np.int64)
    sd = np.array([strands[i] for i in order], dtype=np.bool_)
    nm = pa.array([names[i] for i in order], pa.string())
    by_end = np.argsort(en, kind="stable").astype(np.int64)
    prefix_max = np.maximum.accumulate(en) if len(en) else en
    # Index of the gene that attains the running maximum end (the one that may cover a position).
    prefix_arg = np.zeros(len(en), dtype=np.int64)
    best = -1
    for i in range(len(en)):
        if best < 0 or en[i] >= en[best]:
            best = i
        prefix_arg[i] = best
    return _Genes(st, en, sd, nm, by_end, en[by_end], prefix_max, prefix_arg)


@lru_cache(maxsize=2)
def _load_mane(path: str | None) -> pa.Array:
    if path is None:
        return pa.array([], pa.string())
    table = pacsv.read_csv(
        path,
        parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
        convert_options=pacsv.ConvertOptions(column_types={"transcript_id": pa.string()}),
    )
    return table.column("transcript_id").combine_chunks()


# INFO fields our pass reads from the annotated VCF text (query column -> INFO key).
_INFO_KEYS = {"bcsq": "BCSQ", "known_id": "GAS_KNOWN_ID", "clnsig": "GAS_CLNSIG", "af": "GAS_AF"}
_FIXED = [f"f{i}" for i in range(8)]  # CHROM .. INFO; sample columns are never materialised
# Level 1: several times faster than the default 6 on VCF text, ~20 % larger output. htslib's
# mode string takes the level; pysam's type stub lists only the plain modes.
BGZF_MODE = "wb1"


@dataclass
class AnnotatedText:
    """The last bcftools pass's VCF text: header bytes, where the body starts, the query columns
    our pass needs and, per record, where its INFO column sits inside the line."""

    path: Path
    header: bytes
    body_offset: int
    table: pa.Table  # QUERY_COLUMNS
    info: pa.Array
    info_start: np.ndarray[Any, np.dtype[np.int64]]  # offset of INFO within the line
    info_len: np.ndarray[Any, np.dtype[np.int64]]


def _known_columns(id_is_rsid: bool, af: str | None, clnsig: str | None) -> str:
    columns = []
    if id_is_rsid:
        columns += ["+ID", "INFO/GAS_KNOWN_ID:=ID"]
    if af:
        columns.append(f"INFO/GAS_AF:=INFO/{af}")
    if clnsig:
        columns.append(f"INFO/GAS_CLNSIG:=INFO/{clnsig}")
    return ",".join(columns)


def _empty_query() -> pa.Table:
    types = {n: pa.string() for n in QUERY_COLUMNS} | {"pos": pa.int64(), "af": pa.float64()}
    return pa.table({n: pa.array([], t) for n, t in types.items()})


def read_annotated(path: Path) -> AnnotatedText:
    """Parse the fixed columns of a VCF text file in C++ (pyarrow) and pull the INFO fields we
    need out with RE2: what ``bcftools query`` printed, without a separate pass."""
    with path.open("rb") as handle:
        header = bytearray()
        for line in iter(handle.readline, b""):
            header += line
            if line.startswith(b"#CHROM"):
                break
        offset = len(header)
        if offset >= path.stat().st_size:
            none = np.zeros(0, dtype=np.int64)
            return AnnotatedText(
                path, bytes(header), offset, _empty_query(), pa.array([], pa.string()), none, none
            )
        handle.seek(offset)
        raw = pacsv.read_csv(
            handle,
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False),
            convert_options=pacsv.ConvertOptions(
                include_columns=_FIXED,
                column_types=dict.fromkeys(_FIXED, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        ).combine_chunks()
    lengths = [pc.binary_length(raw.column(c)).to_numpy().astype(np.int64) for c in _FIXED]
    info_start = np.sum(lengths[:7], axis=0) + 7
    info = _a(raw.column("f7"))
    dot = pa.scalar(".", pa.string())

    def value(key: str) -> pa.Array:
        # A substring test first: most records lack the known-variant fields, and the regex
        # then only runs where the key may be (a null input gives a null match).
        hit = pc.match_substring(info, f"{key}=")
        candidates = pc.if_else(hit, info, pa.scalar(None, pa.string()))
        found = pc.struct_field(pc.extract_regex(candidates, rf"(?:^|;){key}=(?P<v>[^;]*)"), [0])
        # extract_regex gives null where the key is absent
        return _a(pc.if_else(pc.equal(found, dot), pa.scalar(None, pa.string()), found))

    ident = _a(raw.column("f2"))
    table = pa.table(
        {
            "chrom": raw.column("f0"),
            "pos": pc.cast(raw.column("f1"), pa.int64()),
            "ref": raw.column("f3"),
            "alt": pc.if_else(pc.equal(raw.column("f4"), dot), pa.scalar(None, pa.string()),
                              raw.column("f4")),
            "id": pc.if_else(pc.equal(ident, dot), pa.scalar(None, pa.string()), ident),
            "bcsq": value(_INFO_KEYS["bcsq"]),
            "known_id": value(_INFO_KEYS["known_id"]),
            "clnsig": value(_INFO_KEYS["clnsig"]),
            "af": pc.cast(value(_INFO_KEYS["af"]), pa.float64()),
        }
    )  # fmt: skip
    return AnnotatedText(path, bytes(header), offset, table, info, info_start, lengths[7])


def _our_info(per_variant: pa.Table) -> pa.Array:
    """Per variant, our INFO fields as ``KEY=value;...`` (null when there is none to add)."""
    parts = [
        pc.binary_join_element_wise(
            f"{name}=",
            _info_escape(per_variant.column(name))
            if typ == "String"
            else pc.cast(per_variant.column(name), pa.string()),
            "",
        )
        for name, _num, typ, _desc in OUR_INFO
    ]
    if per_variant.num_rows == 0:
        return pa.array([], pa.string())
    joined = _a(pc.binary_join_element_wise(*parts, ";", null_handling="skip"))
    return _nonempty(joined)


def _info_escape(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Percent-encode '=' and ';' in an INFO string value, as bcftools annotate does
    (``p.Lys315=`` is written ``p.Lys315%3D``)."""
    text = _a(pc.cast(values, pa.string()))
    for char, code in (("=", "%3D"), (";", "%3B")):
        # The check is cheaper than the rewrite, and only protein changes carry an '='.
        if pc.any(pc.match_substring(text, char)).as_py():
            text = _a(pc.replace_substring(text, char, code))
    return text


def write_splice(text: AnnotatedText, ours: pa.Array, out: Path) -> None:
    """Per record of the annotated text: where its INFO column is and the INFO to put there
    (the old one, with our fields appended; ours alone when it was '.')."""
    if len(text.info):
        joined = pc.binary_join_element_wise(text.info, ours, ";")
        new_info = _a(pc.coalesce(pc.if_else(pc.equal(text.info, "."), ours, joined), text.info))
    else:
        new_info = pa.array([], pa.string())
    table = pa.table(
        {
            "info_start": pa.array(text.info_start, pa.int64()),
            "info_len": pa.array(text.info_len, pa.int64()),
            "info": new_info.cast(pa.large_binary()),
        }
    )
    with pa.OSFile(str(out), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)


def _splice_block(
    block: bytes,
    info_start: np.ndarray[Any, np.dtype[np.int64]],
    info_len: np.ndarray[Any, np.dtype[np.int64]],
    new_info: pa.Array,
    first: int,
) -> tuple[int, bytes]:
    """Whole lines of VCF text with each INFO column replaced: (number of lines, new bytes)."""
    arr = np.frombuffer(block, dtype=np.uint8)
    line_end = np.flatnonzero(arr == 10) + 1
    k = len(line_end)
    starts = np.concatenate([[0], line_end[:-1]])
    info_at = starts + info_start[:k]
    offsets = np.empty(3 * k + 1, dtype=np.int64)
    offsets[0:-1:3] = starts
    offsets[1::3] = info_at
    offsets[2::3] = info_at + info_len[:k]
    offsets[-1] = line_end[-1]
    pieces = pa.Array.from_buffers(
        pa.large_binary(), 3 * k, [None, pa.py_buffer(offsets), pa.py_buffer(block)]
    )
    every3 = np.arange(0, 3 * k, 3, dtype=np.int64)
    lines = pc.binary_join_element_wise(
        pc.take(pieces, every3),
        new_info.slice(first, k),
        pc.take(pieces, every3 + 2),
        pa.scalar(b"", pa.large_binary()),
    )
    size = int(np.frombuffer(lines.buffers()[1], dtype=np.int64)[k])
    return k, lines.buffers()[2].slice(0, size).to_pybytes()


def finish_vcf(result: ChunkResult, handle: BGZFile, *, header: bool) -> float:
    """Append the chunk's records (and the header when ``header``; every chunk's is the same)
    to the final VCF.gz from its annotated text and splice table; returns seconds.

    The body is streamed in blocks; per block the lines are cut (zero-copy, Arrow offsets into
    the block) into before-INFO / INFO / after-INFO pieces and rejoined with the new INFO, so
    sample columns are never parsed, and held one block at a time.
    """
    if result.text is None or result.splice is None:
        return 0.0
    started = time.perf_counter()
    with pa.memory_map(str(result.splice)) as source:
        table = pa.ipc.open_file(source).read_all()
    info_start = table.column("info_start").to_numpy()
    info_len = table.column("info_len").to_numpy()
    new_info = _a(table.column("info"))
    n = table.num_rows
    done = 0
    with result.text.open("rb") as src:
        for line in iter(src.readline, b""):
            if header:
                handle.write(line)
            if line.startswith(b"#CHROM"):
                break
        carry = b""
        while True:
            data = src.read(16 << 20)
            block = carry + data
            cut = block.rfind(b"\n") + 1
            if not data and cut == 0:
                break
            carry = block[cut:]
            block = block[:cut]
            if not block:
                continue
            k, spliced = _splice_block(block, info_start[done:], info_len[done:], new_info, done)
            handle.write(spliced)
            done += k
    if done != n:
        raise RuntimeError(f"chunk {result.index}: {done} VCF lines but {n} records")
    result.text.unlink(missing_ok=True)
    result.splice.unlink(missing_ok=True)
    result.text = result.splice = None
    return time.perf_counter() - started


def _map_distinct(array: pa.Array, fn: Any, out_type: pa.DataType) -> pa.Array:
    """Apply a Python function to each distinct value only (dictionary-encode, map, take)."""
    if len(array) == 0:
        return pa.array([], out_type)
    encoded = pc.dictionary_encode(array)
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    mapped = pa.array([fn(v) for v in encoded.dictionary.to_pylist()], out_type)
    return pc.take(mapped, encoded.indices)


def our_pass(  # noqa: PLR0915 - a sequence of columnar steps, clearer in one place
    q: pa.Table, contig: str, ctx: ChunkContext
) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    n = q.num_rows
    pos = q.column("pos").to_numpy()
    user_chrom = ctx.to_user.get(contig, contig)

    # --- transcript consequences: one row per BCSQ entry
    bcsq = _a(q.column("bcsq"))
    entries = pc.split_pattern(bcsq, ",")
    flat = pc.list_flatten(entries)
    parent = pc.list_parent_indices(entries).to_numpy()
    keep = pc.invert(pc.starts_with(flat, "@"))  # haplotype back-references (not with -l)
    flat = pc.filter(flat, keep)
    parent = parent[keep.to_numpy(zero_copy_only=False)]
    padded = pc.binary_join_element_wise(flat, "|||||||", "")
    parts = pc.split_pattern(padded, "|")
    entries_table = pa.table(
        {
            "parent": pa.array(parent.astype(np.int64)),
            "transcript": _a(pc.list_element(parts, 2)),
            "csq": _a(pc.list_element(parts, 0)),
            "gene": _a(pc.list_element(parts, 1)),
            "biotype": _a(pc.list_element(parts, 3)),
            "aa": _a(_nonempty(pc.list_element(parts, 5))),
        }
    )
    merged = _merge_same_transcript(entries_table)
    parent = merged.column("parent").to_numpy()
    transcript = _a(merged.column("transcript"))
    gene = _a(merged.column("gene"))
    biotype = _a(merged.column("biotype"))
    aa = pc.fill_null(_a(merged.column("aa")), "")
    csq_short = _a(merged.column("csq"))

    mapped = _map_distinct(csq_short, _so_fields, pa.struct(
        [("so", pa.string()), ("top", pa.string()), ("impact", pa.string()), ("rank", pa.int32())]
    ))  # fmt: skip
    so = pc.struct_field(mapped, "so")
    top = pc.struct_field(mapped, "top")
    impact = pc.struct_field(mapped, "impact")
    rank = pc.struct_field(mapped, "rank").to_numpy(zero_copy_only=False).astype(np.int64)

    tx_unversioned = pc.replace_substring_regex(transcript, r"\..*$", "")
    mane_set = _load_mane(ctx.mane)
    mane = (
        pc.is_in(tx_unversioned, value_set=mane_set)
        if len(mane_set)
        else pc.equal(transcript, pa.scalar("\0"))
    )
    protein = _protein_changes(aa, so)

    # --- variants with no transcript consequence: our upstream/downstream/intergenic context
    hit = np.zeros(n, dtype=np.bool_)
    hit[parent] = True
    nohit_idx = np.flatnonzero(~hit)
    genes = _load_genes(ctx.genes, contig)
    term_code, near_gene, near_dist = _context(pos[nohit_idx], genes, ctx.context_distance)
    ctx_term = pc.take(_CONTEXT_TERMS, pa.array(term_code))
    near_name = pc.take(genes.names, pa.array(near_gene, mask=near_gene < 0))
    near_distance = pa.array(near_dist, mask=near_dist < 0)

    # --- per-variant most severe consequence and MANE consequence (columnar scatter/take)
    order = np.lexsort((rank, parent))
    first = order[np.r_[True, parent[order][1:] != parent[order][:-1]]] if len(order) else order
    first_rows = pa.array(first)
    var_csq = pc.coalesce(
        _scatter(pc.take(top, first_rows), parent[first], n), _scatter(ctx_term, nohit_idx, n)
    )
    var_impact = pc.fill_null(_scatter(pc.take(impact, first_rows), parent[first], n), "MODIFIER")
    var_gene = _scatter(pc.take(_nonempty(gene), first_rows), parent[first], n)
    mane_rows = np.flatnonzero(mane.to_numpy(zero_copy_only=False))
    if len(mane_rows):
        mane_rows = mane_rows[np.lexsort((rank[mane_rows], parent[mane_rows]))]
        keep_first = np.r_[True, parent[mane_rows][1:] != parent[mane_rows][:-1]]
        mane_rows = mane_rows[keep_first]
        idx = pa.array(mane_rows)
        label = pc.binary_join_element_wise(
            pc.take(transcript, idx), pc.take(so, idx), pc.fill_null(pc.take(protein, idx), ""), "|"
        )
        var_mane = _scatter(label, parent[mane_rows], n)
    else:
        var_mane = pa.nulls(n, pa.string())
    var_near = _scatter(near_name, nohit_idx, n)
    var_dist = _scatter(near_distance, nohit_idx, n)

    # --- TSV rows: transcript rows and context rows, in input order
    n_hit_rows = len(parent)
    n_ctx = len(nohit_idx)
    row_variant = np.concatenate([parent.astype(np.int64), nohit_idx.astype(np.int64)])
    variant_take = pa.array(row_variant)

    def col(name: str) -> pa.Array:
        return _a(pc.take(q.column(name), variant_take))

    def both(hit_values: pa.Array, context_values: pa.Array) -> pa.Array:
        return pa.concat_arrays([_a(hit_values), _a(context_values)])

    no_strings = pa.nulls(n_ctx, pa.string())
    rows = pa.table(
        {
            "chrom": pc.take(
                pa.array([user_chrom]), pa.array(np.zeros(len(row_variant), np.int64))
            ),
            "pos": col("pos"),
            "id": col("id"),
            "ref": col("ref"),
            "alt": col("alt"),
            "gene": both(_nonempty(gene), no_strings),
            "transcript": both(_nonempty(transcript), no_strings),
            "biotype": both(_nonempty(biotype), no_strings),
            "consequence": both(so, ctx_term),
            "impact": both(impact, pa.array(np.full(n_ctx, "MODIFIER", dtype=object), pa.string())),
            "protein_change": both(protein, no_strings),
            "mane_select": both(mane, pa.array(np.zeros(n_ctx, np.bool_))),
            "known_id": col("known_id"),
            "clinvar": col("clnsig"),
            "allele_frequency": col("af"),
            "nearest_gene": both(pa.nulls(n_hit_rows, pa.string()), near_name),
            "distance": both(pa.nulls(n_hit_rows, pa.int64()), near_distance),
        },
        schema=TSV_SCHEMA,
    )
    row_order = np.lexsort((np.arange(len(row_variant)), row_variant))
    rows = rows.take(pa.array(row_order))

    per_variant = pa.table(
        {
            "chrom": q.column("chrom"),
            "pos": q.column("pos"),
            "ref": q.column("ref"),
            "alt": q.column("alt"),
            "GAS_CSQ": var_csq,
            "GAS_IMPACT": var_impact,
            "GAS_GENE": var_gene,
            "GAS_NEAREST_GENE": var_near,
            "GAS_DISTANCE": var_dist,
            "GAS_MANE": var_mane,
        }
    )
    detail = pa.table(
        {
            "transcript": _scatter(pc.take(transcript, first_rows), parent[first], n),
            "protein": _scatter(pc.take(protein, first_rows), parent[first], n),
        }
    )
    stats = _chunk_stats(
        q,
        per_variant=per_variant,
        rows=rows,
        detail=detail,
        chrom=user_chrom,
        variant_of_row=row_variant[row_order],
    )
    return rows, per_variant, stats


def _merge_same_transcript(entries: pa.Table) -> pa.Table:
    """One row per variant x transcript: csq reports e.g. splice_region and missense on one
    transcript as two entries, users (and VEP) expect one row with the terms joined by '&'.

    Such pairs are rare, so they are found with a sort on integer keys and only they are
    grouped; the other entries pass through untouched.
    """
    parent = entries.column("parent").to_numpy()
    codes = _a(pc.dictionary_encode(entries.column("transcript"))).indices.to_numpy(
        zero_copy_only=False
    )
    key = parent * (int(codes.max(initial=0)) + 2) + codes
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    repeated = sorted_key[1:] == sorted_key[:-1]
    entries = entries.append_column("index", pa.array(np.arange(len(parent), dtype=np.int64)))
    if not repeated.any():
        return entries.drop_columns(["index"])
    duplicated = np.isin(key, sorted_key[1:][repeated])
    dup = entries.filter(pa.array(duplicated))
    single = entries.filter(pa.array(~duplicated))
    grouped = dup.group_by(["parent", "transcript"], use_threads=False).aggregate(
        [("csq", "list"), ("gene", "first"), ("biotype", "first"), ("aa", "first"),
         ("index", "min")]
    )  # fmt: skip
    grouped = pa.table(
        {
            "parent": grouped.column("parent"),
            "transcript": grouped.column("transcript"),
            "csq": pc.binary_join(grouped.column("csq_list"), "&"),
            "gene": grouped.column("gene_first"),
            "biotype": grouped.column("biotype_first"),
            "aa": grouped.column("aa_first"),
            "index": grouped.column("index_min"),
        }
    )
    combined = pa.concat_tables([single, grouped.cast(single.schema)])
    return combined.sort_by("index").drop_columns(["index"])


_AA_LETTERS = pa.array(list(cq.AA3))
_AA_NAMES = pa.array(list(cq.AA3.values()))
_SIMPLE_AA = r"^(?P<pos>[0-9]+)(?P<ref>[A-Z*])(?:>[0-9]+(?P<alt>[A-Z*]))?$"


def _protein_changes(aa: pa.Array, so: pa.Array) -> pa.Array:
    """HGVS p. notation for csq's amino-acid field.

    The common single-residue forms (``717V>717I`` -> ``p.Val717Ile``, ``315K`` -> ``p.Lys315=``)
    are built column-wise; the rest (indels, frameshifts) go through cq.protein_change once per
    distinct value.
    """
    if len(aa) == 0:
        return pa.array([], pa.string())
    parts = pc.extract_regex(aa, _SIMPLE_AA)
    ref = pc.take(_AA_NAMES, pc.index_in(pc.struct_field(parts, "ref"), value_set=_AA_LETTERS))
    alt_letter = pc.struct_field(parts, "alt")
    alt = pc.take(_AA_NAMES, pc.index_in(alt_letter, value_set=_AA_LETTERS))
    same = pc.or_(pc.equal(alt_letter, ""), pc.equal(alt_letter, pc.struct_field(parts, "ref")))
    suffix = pc.if_else(pc.fill_null(same, True), "=", alt)
    simple = pc.binary_join_element_wise("p.", ref, pc.struct_field(parts, "pos"), suffix, "")
    simple_ok = pc.and_(pc.is_valid(simple), pc.invert(pc.match_substring(so, "frameshift")))
    simple_ok = pc.fill_null(simple_ok, False)
    pair = pc.binary_join_element_wise(aa, so, "\t")
    needs_python = pc.and_(pc.invert(simple_ok), pc.not_equal(aa, ""))
    slow = _map_distinct(
        pc.if_else(needs_python, pair, pa.scalar(None, pa.string())), _protein_from_pair,
        pa.string(),
    )  # fmt: skip
    out = pc.if_else(simple_ok, simple, slow)
    return _a(pc.if_else(pc.equal(aa, ""), pa.scalar(None, pa.string()), out))


def _scatter(
    values: pa.Array | pa.ChunkedArray, at: np.ndarray[Any, np.dtype[np.int64]], n: int
) -> pa.Array:
    """An array of length n holding ``values`` at positions ``at`` and nulls elsewhere."""
    index = np.full(n, -1, dtype=np.int64)
    index[at] = np.arange(len(at), dtype=np.int64)
    return _a(pc.take(values, pa.array(index, mask=index < 0)))


def warm_up(ctx: ChunkContext, contig: str, scratch: Path) -> None:
    """Do once, in the parent, what every chunk of ``contig`` would otherwise redo: load the MANE
    list and gene spans and run our pass on a two-line query (first-call costs of pyarrow and
    numpy). Chunk processes are forked from the parent and inherit all of it."""
    _load_mane(ctx.mane)
    genes = _load_genes(ctx.genes, contig)
    del genes
    sample = scratch / f"warm-{_safe(contig)}.vcf"
    sample.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        f"{contig}\t100\trs1\tA\tG\t.\t.\tBCSQ=missense|G|T1.1|protein_coding|+|10V>10I|100A>G\n"
        f"{contig}\t200\t.\tAC\tA\t.\t.\tGAS_KNOWN_ID=rs2;GAS_CLNSIG=pathogenic;GAS_AF=0.1\n"
    )
    text = read_annotated(sample)
    _rows, per_variant, _stats = our_pass(text.table, contig, ctx)
    _our_info(per_variant)
    sample.unlink()


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name)


def _a(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _nonempty(array: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def _so_fields(csq: str | None) -> dict[str, Any]:
    terms, impact, rank = cq.so_terms(csq or "")
    return {"so": terms, "top": terms.split("&")[0], "impact": impact, "rank": rank}


def _protein_from_pair(pair: str | None) -> str | None:
    if not pair:
        return None
    aa, _, so = pair.partition("\t")
    return cq.protein_change(aa, so) if aa else None


_CONTEXT_TERMS = pa.array([cq.GENE_BODY, cq.UPSTREAM, cq.DOWNSTREAM, cq.INTERGENIC])


def _context(
    positions: np.ndarray[Any, np.dtype[np.int64]], genes: _Genes, distance: int
) -> tuple[
    np.ndarray[Any, np.dtype[np.int64]],
    np.ndarray[Any, np.dtype[np.int64]],
    np.ndarray[Any, np.dtype[np.int64]],
]:
    """Per position: context term code (index into _CONTEXT_TERMS), nearest gene index and
    distance (-1 when the contig has no genes). Upstream/downstream within ``distance``."""
    m = len(positions)
    if len(genes.starts) == 0:
        none = np.full(m, -1, dtype=np.int64)
        return np.full(m, 3, dtype=np.int64), none, none.copy()
    big = np.int64(1) << 62
    # Covering gene: among genes starting at or before pos, the one reaching furthest.
    k = np.searchsorted(genes.starts, positions, side="right") - 1
    kc = np.clip(k, 0, None)
    covered = (k >= 0) & (genes.prefix_max_end[kc] >= positions)
    cover_gene = genes.prefix_arg[kc]
    # Nearest gene ending before pos, and nearest gene starting after pos.
    e = np.searchsorted(genes.ends_sorted, positions, side="left") - 1
    left_gene = genes.by_end[np.clip(e, 0, None)]
    left_dist = np.where(e >= 0, positions - genes.ends[left_gene], big)
    s = np.searchsorted(genes.starts, positions, side="right")
    right_gene = np.clip(s, 0, len(genes.starts) - 1)
    right_dist = np.where(s < len(genes.starts), genes.starts[right_gene] - positions, big)
    use_right = right_dist < left_dist
    chosen = np.where(covered, cover_gene, np.where(use_right, right_gene, left_gene))
    dist = np.where(covered, 0, np.minimum(left_dist, right_dist))
    plus = genes.strands[chosen]
    # A gene to the right of the variant on the + strand means the variant is upstream of it;
    # mirrored on the - strand.
    upstream = np.where(use_right, plus, ~plus)
    code = np.where(covered, 0, np.where(dist <= distance, np.where(upstream, 1, 2), 3))
    return code.astype(np.int64), chosen.astype(np.int64), dist.astype(np.int64)


_TRANSITIONS = pa.array(["AG", "GA", "CT", "TC"])


def _chunk_stats(
    q: pa.Table,
    *,
    per_variant: pa.Table,
    rows: pa.Table,
    detail: pa.Table,
    chrom: str,
    variant_of_row: np.ndarray[Any, np.dtype[np.int64]],
) -> dict[str, Any]:
    def counts(array: pa.Array | pa.ChunkedArray) -> dict[str, int]:
        out: dict[str, int] = {}
        for item in pc.value_counts(array).to_pylist():
            if item["values"] is not None:
                out[item["values"]] = int(item["counts"])
        return out

    ref = q.column("ref")
    alt = q.column("alt")
    snv = pc.and_(
        pc.equal(pc.utf8_length(ref), 1), pc.equal(pc.utf8_length(pc.fill_null(alt, "")), 1)
    )
    pair = pc.binary_join_element_wise(pc.utf8_upper(ref), pc.utf8_upper(pc.fill_null(alt, "")), "")
    transitions = int(pc.sum(pc.and_(snv, pc.is_in(pair, value_set=_TRANSITIONS))).as_py() or 0)
    snvs = int(pc.sum(snv).as_py() or 0)
    known = pc.is_valid(q.column("known_id"))
    clnsig = q.column("clnsig")
    patho = pc.fill_null(
        pc.match_substring_regex(clnsig, cq.PATHOGENIC_REGEX, ignore_case=True), False
    )
    hits: list[dict[str, Any]] = []
    patho_idx = np.nonzero(patho.to_numpy(zero_copy_only=False))[0]
    if len(patho_idx):
        hits = _pathogenic_hits(q, per_variant, detail, patho_idx[:500], chrom)
    # Variants per gene: distinct (variant, gene) pairs from the transcript rows.
    gene_counter: Counter[str] = Counter()
    if len(variant_of_row):
        genes_col = _a(pc.dictionary_encode(rows.column("gene")))
        width = len(genes_col.dictionary) + 1
        # Null genes (context rows) become code -1; distinct (variant, gene) pairs via one sort.
        codes = pc.fill_null(genes_col.indices, -1).to_numpy(zero_copy_only=False)
        keys = variant_of_row * width + codes + 1
        # Rows are grouped by variant (variant_of_row is sorted): a variant with one row is one
        # distinct pair already; only the rows of variants with several need the sort.
        same = variant_of_row[1:] == variant_of_row[:-1]
        shared = np.zeros(len(keys), dtype=np.bool_)
        shared[1:] |= same
        shared[:-1] |= same
        pairs = np.concatenate([keys[~shared], np.unique(keys[shared])])
        gene_codes = pairs % width - 1
        per_gene = np.bincount(gene_codes[gene_codes >= 0], minlength=len(genes_col.dictionary))
        names = genes_col.dictionary.to_pylist()
        gene_counter.update({names[i]: int(c) for i, c in enumerate(per_gene) if c})
    return {
        "consequences": counts(per_variant.column("GAS_CSQ")),
        "impacts": counts(per_variant.column("GAS_IMPACT")),
        "genes": dict(gene_counter),
        "known": int(pc.sum(known).as_py() or 0),
        "snvs": snvs,
        "transitions": transitions,
        "transversions": snvs - transitions,
        "pathogenic_count": len(patho_idx),
        "pathogenic": hits,
    }


def _pathogenic_hits(
    q: pa.Table,
    per_variant: pa.Table,
    detail: pa.Table,
    idx: np.ndarray[Any, np.dtype[np.int64]],
    chrom: str,
) -> list[dict[str, Any]]:
    """Pathogenic variants with gene and protein change: the MANE Select transcript's when the
    variant hits one, else those of its most severe consequence."""
    take = pa.array(idx)
    out: list[dict[str, Any]] = []
    for rec, var, most in zip(
        q.take(take).to_pylist(),
        per_variant.take(take).to_pylist(),
        detail.take(take).to_pylist(),
        strict=True,
    ):
        transcript, protein = most["transcript"], most["protein"]
        if var["GAS_MANE"]:
            transcript, _, rest = var["GAS_MANE"].partition("|")
            protein = rest.partition("|")[2] or protein
        out.append(
            {
                "chrom": chrom,
                "pos": rec["pos"],
                "id": rec["id"],
                "ref": rec["ref"],
                "alt": rec["alt"],
                "gene": var["GAS_GENE"],
                "transcript": transcript,
                "consequence": var["GAS_CSQ"],
                "protein_change": protein,
                "clinvar": rec["clnsig"],
            }
        )
    return out


def _write_rows(rows: pa.Table, tsv: Path, arrow: Path) -> None:
    _write_tsv(rows, tsv)
    with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_file(sink, rows.schema) as writer:
        writer.write_table(rows, max_chunksize=65536)


def _write_tsv(rows: pa.Table, path: Path) -> None:
    """The rows as TSV, values verbatim. pyarrow's CSV writer either quotes a value with a '"'
    (an ID like rs1"x) or, with quoting off, refuses it; no field holds a tab or a newline (they
    come from VCF and GFF fields), so joining the columns as text is exact. The text of numbers
    and booleans is the same cast the CSV writer applies."""
    columns = [pc.fill_null(pc.cast(c, pa.string()), "") for c in rows.columns]
    lines = pc.binary_join_element_wise(*columns, "\t")
    with path.open("wb") as out:
        for chunk in lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]:
            if len(chunk) == 0:
                continue
            text = pc.binary_join_element_wise(chunk, "", "\n")  # each line + newline
            offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)
            start, end = offsets[text.offset], offsets[text.offset + len(text)]
            out.write(memoryview(text.buffers()[2])[start:end])
