"""The results browser's queries on a 4M-row result: page, export and summary latency, and the
web process's peak RSS for 1M vs 4M rows.

    uv run python benchmarks/bench_browser_queries.py [--rows 4000000] [--repeat 15]
        [--reference ../shared/refdata/grch38_chr21]   (default: $GAS_TEST_REFERENCE)

The result is made by the engine. With the real chr21 data (--reference or
GAS_TEST_REFERENCE) the engine runs on the known-variant file's sites (~119k records, every
bundle AF column; ~1.15 rows per variant: the 1 Mb window is mostly intergenic, APP's
variants ~1.44) with seeded
genotypes of three samples, on a chr21 bundle built into the workdir (Ensembl 84 + APP, MANE
when the shared folder has it). Without it, on a generated multi-sample VCF (every base of the
synthetic demo bundle's genome, seeded random ALTs and genotypes). The output says which. The
Parquet's row groups are then replicated, positions shifted per copy so the
file stays in genomic order, up to the row count (annotating 4M rows directly would take the
engine minutes of both of this machine's cores). Contract columns the engine did not write
(`picked`, `af_*`, genotypes, e.g. before the engine's issue-13 work lands) are added at the
replication step and listed in the output.

Each size is measured in a fresh subprocess with the web's own VariantStore (DuckDB over the
cached Parquet, in-process, S3 replaced by a local copy), so ru_maxrss is that process's peak:
- pages: p50/p95 of several filtered queries, first, deep (90 % in) and middle pages (the
  slowest for a sort: past the middle a page is read from the end), each call with the
  page-count cache cleared (the slowest case, what a new filter costs), and the p95 of the
  next request for the same filter (counts kept, as when paging through it);
- exports: the whole filtered TSV and VCF.gz streams;
- the results page as served: the page query plus the filtered summary (its charts), for a
  new filter opening on its first page (nothing kept) and when paging on (both kept);
- the filtered summary alone, of a new filter;
with ratios against the baseline, the unfiltered first page, measured in the same process.
Targets: page p95 <= 300 ms; RSS flat in result size. Not a test: prints a table.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
SEED = 20240917
SAMPLES = ["S1", "S2", "S3"]
ROW_GROUP = 65_536  # the engine's Parquet row group (EngineOptions.parquet_row_group)
PAGES: list[tuple[str, dict[str, Any], str]] = [
    # (label, params, page: "first", "deep" or "middle")
    ("baseline: no filter, first page", {}, "first"),
    ("no filter, deep page", {}, "deep"),
    ("transcript view, all sites, deep", {"view": "transcript", "carriers": "all"}, "deep"),
    ("impact HIGH,MODERATE, first", {"impact": "HIGH,MODERATE"}, "first"),
    ("gene DEMOPLUS, sort impact, deep", {"gene": "DEMOPLUS", "sort": "impact"}, "deep"),
    ("consequence missense, first", {"consequence": "missense_variant"}, "first"),
    ("max_af 0.05 keep_no_af, first", {"max_af": "0.05", "keep_no_af": "true"}, "first"),
    ("preset rare-coding + all sites", {"preset": "rare-coding", "carriers": "all"}, "first"),
    ("sample S2 het, sort AF desc, deep",
     {"sample": "S2", "zygosity": "het", "sort": "allele_frequency", "order": "desc"}, "deep"),
    ("sample S2 het, sort AF desc, middle",
     {"sample": "S2", "zygosity": "het", "sort": "allele_frequency", "order": "desc"}, "middle"),
    ("transcript view, sort gene, middle",
     {"view": "transcript", "carriers": "all", "sort": "gene"}, "middle"),
    ("preset lof, transcript view", {"preset": "lof", "view": "transcript"}, "first"),
    # The highest AFs' rows lie all over the file: the page's rows are read from ~50 row
    # groups, not one or two.
    ("sort AF desc, first", {"sort": "allele_frequency", "order": "desc"}, "first"),
    ("sample S2 het, sort AF desc, first",
     {"sample": "S2", "zygosity": "het", "sort": "allele_frequency", "order": "desc"}, "first"),
    ("impact HIGH,MODERATE, sort AF desc, first",
     {"impact": "HIGH,MODERATE", "sort": "allele_frequency", "order": "desc"}, "first"),
    ("sort gene, first", {"sort": "gene"}, "first"),
    ("sort ClinVar desc, first", {"sort": "clinvar", "order": "desc"}, "first"),
]
EXPORTS: list[tuple[str, dict[str, Any]]] = [
    ("impact HIGH,MODERATE transcripts", {"impact": "HIGH,MODERATE", "view": "transcript"}),
    ("gene DEMOMINUS, sort impact", {"gene": "DEMOMINUS", "sort": "impact"}),
]
SUMMARIES: list[tuple[str, dict[str, Any]]] = [
    ("no filter", {}),
    ("impact HIGH,MODERATE transcripts", {"impact": "HIGH,MODERATE", "view": "transcript"}),
    ("transcript view, all sites", {"view": "transcript", "carriers": "all"}),
]


# -- building the result -------------------------------------------------------------------


def generate_vcf(bundle: Path, out: Path) -> int:
    """One SNV at every base of the demo genome's first contig, with three samples."""
    import pysam

    rng = random.Random(SEED)
    fasta = pysam.FastaFile(str(bundle / "genome.fa.gz"))
    contig = fasta.references[0]
    seq = fasta.fetch(contig).upper()
    choices = ["0/0"] * 70 + ["0/1"] * 20 + ["1/1"] * 8 + ["./."] * 2
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID={contig},length={len(seq)}>",
             '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
             '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">',
             '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Quality">',
             "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO", "FORMAT",
                        *SAMPLES])]
    count = 0
    for pos in range(1, len(seq) + 1):
        ref = seq[pos - 1]
        if ref not in "ACGT":
            continue
        alt = rng.choice([b for b in "ACGT" if b != ref])
        samples = [f"{rng.choice(choices)}:{rng.randint(5, 60)}:{rng.randint(10, 99)}"
                   for _ in SAMPLES]
        lines.append("\t".join([contig, str(pos), ".", ref, alt, ".", "PASS", ".", "GT:DP:GQ",
                                *samples]))
        count += 1
    out.write_text("\n".join(lines) + "\n")
    return count


CHR21_FILES = ("GRCh38_chr21.fa.gz", "Ensembl84_chr21_25mb_plusAPP.gff3",
               "known_variants_dbSNP149_1KG_gnomADe_ClinVar.norm.vcf.gz")
MANE = "mane/MANE.GRCh38.v1.5.summary.txt.gz"  # next to the chr21 folder in the shared refdata


def chr21_bundle(source: Path, workdir: Path) -> Path:
    """The real chr21 bundle (Ensembl 84 genes + APP, known variants, MANE when present)."""
    from gas_annotator.reference.build import build_bundle

    bundle = workdir / "grch38_chr21"
    if not (bundle / "manifest.json").exists():
        mane = source.parent / MANE
        build_bundle("GRCh38", source / CHR21_FILES[0], source / CHR21_FILES[1],
                     [source / CHR21_FILES[2]], bundle, name="grch38-chr21-bench",
                     version="ensembl84", mane=mane if mane.exists() else None)
    return bundle


def known_variants_vcf(source: Path, out: Path) -> int:
    """The known-variant file's records (real sites, real rows per variant and AFs) with seeded
    genotypes of three samples and no INFO."""
    import gzip

    rng = random.Random(SEED)
    choices = ["0/0"] * 70 + ["0/1"] * 20 + ["1/1"] * 8 + ["./."] * 2
    count = 0
    with gzip.open(source / CHR21_FILES[2], "rt") as known, out.open("w") as vcf:
        vcf.write("##fileformat=VCFv4.2\n##contig=<ID=21,length=46709983>\n"
                  '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
                  '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
                  '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Quality">\n'
                  + "\t".join(["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO",
                               "FORMAT", *SAMPLES]) + "\n")
        for line in known:
            if line.startswith("#"):
                continue
            chrom, pos, _, ref, alt = line.split("\t", 5)[:5]
            samples = [f"{rng.choice(choices)}:{rng.randint(5, 60)}:{rng.randint(10, 99)}"
                       for _ in SAMPLES]
            vcf.write("\t".join([chrom, pos, ".", ref, alt, ".", "PASS", ".", "GT:DP:GQ",
                                 *samples]) + "\n")
            count += 1
    return count


def complete_contract(table: Any, vcf: Path) -> tuple[Any, list[str]]:
    """The engine's table with any contract column it did not write added; which ones."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    added: list[str] = []
    metadata = dict(table.schema.metadata or {})
    names = set(table.column_names)
    keys = pc.binary_join_element_wise(
        table["chrom"], pc.cast(table["pos"], pa.string()), table["ref"], table["alt"], "-")
    if "picked" not in names:
        # The first row of each variant (rows of a variant are adjacent).
        values = keys.to_pylist()
        picked = [i == 0 or values[i] != values[i - 1] for i in range(len(values))]
        table = table.append_column("picked", pa.array(picked))
        added.append("picked")
    if not any(name.startswith("af_") for name in names):
        table = table.append_column("af_default", table["allele_frequency"])
        metadata[b"gas.af_fields"] = json.dumps(
            [{"column": "af_default", "field": "AF", "label": "Default AF"}]).encode()
        metadata[b"gas.af_default"] = b"af_default"
        added.append("af_* (a copy of allele_frequency)")
    if "carriers" not in names:
        by_pos: dict[int, list[str]] = {}
        for line in vcf.read_text().splitlines():
            if not line.startswith("#"):
                cells = line.split("\t")
                by_pos[int(cells[1])] = cells[9:]
        zyg = {"0/0": "hom_ref", "0/1": "het", "1/1": "hom_alt", "./.": "missing"}
        structs = []
        carriers = []
        for pos in table["pos"].to_pylist():
            per = [cell.split(":") for cell in by_pos.get(pos, ["./.:.:."] * len(SAMPLES))]
            structs.append([{"gt": gt, "zygosity": zyg.get(gt, "missing"), "depth": int(dp),
                             "gq": int(gq)} for gt, dp, gq in per])
            carriers.append(sum(zyg.get(gt) in ("het", "hom_alt") for gt, _, _ in per))
        genotype = pa.struct([("gt", pa.string()), ("zygosity", pa.string()),
                              ("depth", pa.int32()), ("gq", pa.int32())])
        table = table.append_column("carriers", pa.array(np.array(carriers, np.int32)))
        table = table.append_column("genotypes", pa.array(structs, pa.list_(genotype)))
        metadata[b"gas.samples"] = json.dumps(SAMPLES).encode()
        added.append("carriers, genotypes (from the VCF's GT:DP:GQ)")
    return table.replace_schema_metadata(metadata), added


def replicate(table: Any, rows: int, out: Path) -> int:
    """Copies of the table, positions shifted per copy, until `rows`; returns rows written."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from gas_annotator.engine.outputs import parquet_writer

    span = int(pc.max(table["pos"]).as_py()) + 1000
    copies = math.ceil(rows / table.num_rows)
    written = 0
    # The engine's own writer: the copies are encoded as the service's results are.
    with parquet_writer(out, table.schema) as writer:
        for copy in range(copies):
            shifted = table.set_column(table.schema.get_field_index("pos"), "pos",
                                       pc.add(table["pos"], pa.scalar(copy * span, pa.int64())))
            take = min(table.num_rows, rows - written)
            writer.write_table(shifted.slice(0, take), row_group_size=ROW_GROUP)
            written += take
    return written


def build(workdir: Path, sizes: list[int], reference: Path | None
          ) -> tuple[dict[int, Path], dict[str, Any]]:
    import pyarrow.parquet as pq

    from gas_annotator.engine import annotate
    from gas_annotator.reference import build_demo_bundle

    vcf = workdir / "input.vcf"
    genes: dict[str, str] = {}  # the demo's gene names -> the real data's
    if reference is not None:
        bundle = chr21_bundle(reference, workdir)
        variants = known_variants_vcf(reference, vcf)
        data = f"real chr21 ({reference}: known-variant sites, seeded genotypes)"
        genes = {"DEMOPLUS": "APP", "DEMOMINUS": "JAM2"}
    else:
        bundle = workdir / "demo"
        if not (bundle / "manifest.json").exists():
            build_demo_bundle(bundle)
        variants = generate_vcf(bundle, vcf)
        data = "synthetic demo bundle (every base of its genome)"
    started = time.perf_counter()
    result = annotate(vcf, reference_dir=bundle, out_dir=workdir / "out", workers=2)
    engine_seconds = time.perf_counter() - started
    table = pq.read_table(result.parquet)
    engine_rows = table.num_rows
    table, added = complete_contract(table, vcf)
    files = {}
    for size in sizes:
        files[size] = workdir / f"result_{size}.parquet"
        replicate(table, size, files[size])
    return files, {"variants": variants, "engine_rows": engine_rows,
                   "engine_seconds": round(engine_seconds, 1), "added_columns": added,
                   "data": data, "genes": genes,
                   "af_columns": sum(n.startswith("af_") for n in table.column_names),
                   "vcf_header": str(result.vcf)}


# -- measuring (in a fresh process per size) -------------------------------------------------


class LocalS3:
    """What VariantStore asks of S3, from local files (keys are paths)."""

    def download_fileobj(self, bucket: str, key: str, out: Any) -> None:
        with Path(key).open("rb") as source:
            while chunk := source.read(1 << 20):
                out.write(chunk)

    def get_object(self, *, Bucket: str, Key: str, Range: str) -> dict[str, Any]:  # noqa: N803
        end = int(Range.split("-")[1])
        return {"Body": io.BytesIO(Path(Key).read_bytes()[: end + 1])}


def _vm_hwm_kb() -> int:
    """Peak RSS of this process image (Linux), a cross-check of ru_maxrss."""
    status = Path("/proc/self/status")
    for line in status.read_text().splitlines() if status.exists() else []:
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)]


def _genes(params: dict[str, Any], genes: dict[str, str]) -> dict[str, Any]:
    """The demo's gene names swapped for the real data's (e.g. DEMOPLUS -> APP)."""
    return {**params, "gene": genes.get(params["gene"], params["gene"])} if "gene" in params \
        else dict(params)


def _label(label: str, genes: dict[str, str]) -> str:
    for demo, real in genes.items():
        label = label.replace(demo, real)
    return label


def measure(path: Path, vcf: str, repeat: int, genes: dict[str, str]) -> dict[str, Any]:
    from gas_web.app.variants import VariantStore, query_from_params

    rss_start = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cache = Path(tempfile.mkdtemp(prefix="bench-cache-"))
    store = VariantStore(s3=LocalS3(), bucket="local", cache_dir=cache, max_bytes=10**12)  # type: ignore[arg-type]
    job: Any = SimpleNamespace(user_id="bench", job_id=path.stem, assembly="GRCh38",
                               result_keys={"parquet": str(path), "vcf": vcf})
    info = store.info(job)  # downloads (copies) the file into the cache once
    out: dict[str, Any] = {"rows": info.row_count, "pages": [], "exports": [], "summaries": []}
    for label, params, which in PAGES:
        query = query_from_params(_genes(params, genes))
        store.forget_totals()  # the first page of a new filter counts its rows
        started = time.perf_counter()  # the very first sample query makes the by-sample copy
        total = store.page(job, query, limit=50).total
        first = (time.perf_counter() - started) * 1000
        # deep: 90 % in (read from the end); middle: the slowest page of a sorted view.
        offset = {"first": 0, "deep": max(0, int(total * 0.9) - 50),
                  "middle": max(0, total // 2 - 50)}[which]
        times = []
        for _ in range(repeat):
            store.forget_totals()
            started = time.perf_counter()
            store.page(job, query, offset=offset, limit=50)
            times.append((time.perf_counter() - started) * 1000)
        warm = []  # the next request for this filter: its counts are kept
        for _ in range(repeat):
            started = time.perf_counter()
            store.page(job, query, offset=offset, limit=50)
            warm.append((time.perf_counter() - started) * 1000)
        # The results page as served. A new filter opens on its first page with nothing
        # kept: the page shows its rows (the summary is not kept, so it is not computed
        # there), then the page's script asks for the summary in its own request: "charts"
        # is the time until the charts show. Paging on keeps both.
        opened, charted, paged = [], [], []
        for _ in range(max(3, repeat // 3)):
            store.forget_totals()
            started = time.perf_counter()
            store.page(job, query, limit=50)
            store.kept_summary(job, query)
            opened.append((time.perf_counter() - started) * 1000)
            store.summary(job, query)
            charted.append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            store.page(job, query, offset=offset, limit=50)
            store.summary(job, query)
            paged.append((time.perf_counter() - started) * 1000)
        out["pages"].append({"label": _label(label, genes), "total": total, "offset": offset,
                             "p50": statistics.median(times), "p95": percentile(times, 0.95),
                             "warm_p95": percentile(warm, 0.95), "first": first,
                             "opened_p95": percentile(opened, 0.95),
                             "charted_p95": percentile(charted, 0.95),
                             "paged_p95": percentile(paged, 0.95)})
    for label, params in EXPORTS:
        query = query_from_params(_genes(params, genes))
        for fmt in ("tsv", "vcf"):
            times, size = [], 0
            for _ in range(max(2, repeat // 5)):
                started = time.perf_counter()
                size = sum(len(chunk) for chunk in store.export(job, query, fmt))
                times.append((time.perf_counter() - started) * 1000)
            out["exports"].append({"label": f"{_label(label, genes)} ({fmt})", "bytes": size,
                                   "total": store.page(job, query, limit=1).total,
                                   "p50": statistics.median(times),
                                   "p95": percentile(times, 0.95)})
    for label, params in SUMMARIES:
        query = query_from_params(dict(params))
        times = []
        for _ in range(max(3, repeat // 3)):
            store.forget_totals()  # a new filter's summary, not the kept one
            started = time.perf_counter()
            store.summary(job, query)
            times.append((time.perf_counter() - started) * 1000)
        out["summaries"].append({"label": label, "p50": statistics.median(times),
                                 "p95": percentile(times, 0.95)})
    out["rss_start_mb"] = rss_start / 1024
    out["rss_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    out["vm_hwm_mb"] = _vm_hwm_kb() / 1024
    return out


def report(size: int, result: dict[str, Any]) -> None:
    base = result["pages"][0]["p50"] or 1e-9
    print(f"\n== {result['rows']:,} rows ==")
    print(f"{'page query (new filter)':<40} {'total':>10} {'offset':>10} {'p50 ms':>8} "
          f"{'p95 ms':>8} {'x base':>7} {'next p95':>9} {'1st call':>9} {'open p95':>9} "
          f"{'charts p95':>10} {'paged p95':>9}")
    for page in result["pages"]:
        print(f"{page['label']:<40} {page['total']:>10,} {page['offset']:>10,} "
              f"{page['p50']:>8.1f} {page['p95']:>8.1f} {page['p50'] / base:>7.1f} "
              f"{page['warm_p95']:>9.1f} {page['first']:>9.0f} {page['opened_p95']:>9.1f} "
              f"{page['charted_p95']:>10.1f} {page['paged_p95']:>9.1f}")
    print("(1st call: the filter's first request ever; the first sample query makes the "
          "by-sample copy, once per job. open: the results page of a new filter, nothing "
          "kept, its rows shown; charts: until its summary, requested by the page next, "
          "shows; paged: this page and its kept summary, as when paging on)")
    print(f"{'export (whole stream)':<40} {'rows':>10} {'MB':>10} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'x base':>7}")
    for export in result["exports"]:
        print(f"{export['label']:<40} {export['total']:>10,} {export['bytes'] / 1e6:>10.1f} "
              f"{export['p50']:>8.0f} {export['p95']:>8.0f} {export['p50'] / base:>7.0f}")
    print(f"{'filtered summary':<40} {'':>10} {'':>10} {'p50 ms':>8} {'p95 ms':>8} {'x base':>7}")
    for summary in result["summaries"]:
        print(f"{summary['label']:<40} {'':>10} {'':>10} {summary['p50']:>8.1f} "
              f"{summary['p95']:>8.1f} {summary['p50'] / base:>7.1f}")
    for name, column in (("page query", "p95"), ("results page, paged", "paged_p95"),
                         ("results page, new filter", "opened_p95")):
        worst = max(page[column] for page in result["pages"])
        print(f"worst {name} p95: {worst:.1f} ms (target <= 300): "
              f"{'OK' if worst <= 300 else 'MISSED'}")
    print(f"peak RSS (ru_maxrss): {result['rss_peak_mb']:.0f} MB (after imports: "
          f"{result['rss_start_mb']:.0f} MB; VmHWM {result['vm_hwm_mb']:.0f} MB)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--small", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--reference", type=Path, default=os.environ.get("GAS_TEST_REFERENCE"),
                        help="the shared chr21 refdata folder (default: $GAS_TEST_REFERENCE); "
                             "without it the synthetic demo bundle")
    parser.add_argument("--build", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--vcf", default="", help=argparse.SUPPRESS)
    parser.add_argument("--genes", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.vcf, args.repeat, json.loads(args.genes))))
        return
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-browser-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.build:
        reference = args.reference if args.reference and args.reference.exists() else None
        files, made = build(workdir, [args.small, args.rows], reference)
        print(json.dumps({"files": {str(k): str(v) for k, v in files.items()}, **made}))
        return
    # This process stays small (no pyarrow, no engine): a child's ru_maxrss starts from the
    # parent's at fork, so the build and each measurement run in their own processes.
    built = subprocess.run(
        [sys.executable, __file__, "--build", "--workdir", str(workdir), "--rows",
         str(args.rows), "--small", str(args.small),
         *(["--reference", str(args.reference)] if args.reference else [])],
        check=True, capture_output=True, text=True)
    made = json.loads(built.stdout.strip().splitlines()[-1])
    files = {int(k): Path(v) for k, v in made["files"].items()}
    print(f"data: {made['data']}; {made['af_columns']} af_* columns; genes {made['genes']}")
    print(f"engine: {made['variants']:,} variants -> {made['engine_rows']:,} rows in "
          f"{made['engine_seconds']} s (2 workers); replicated to "
          f"{args.small:,} and {args.rows:,} rows (row groups of {ROW_GROUP:,})")
    print("columns added at replication: " + (", ".join(made["added_columns"]) or "none "
                                                "(the engine wrote every contract column)"))
    results = {}
    for size, path in files.items():
        completed = subprocess.run(
            [sys.executable, __file__, "--measure", str(path), "--vcf", made["vcf_header"],
             "--repeat", str(args.repeat), "--genes", json.dumps(made["genes"])],
            check=True, capture_output=True, text=True)
        results[size] = json.loads(completed.stdout.strip().splitlines()[-1])
        report(size, results[size])
    small, big = results[args.small], results[args.rows]
    print(f"\nRSS {big['rows'] / small['rows']:.1f}x the rows: "
          f"{small['rss_peak_mb']:.0f} MB -> {big['rss_peak_mb']:.0f} MB "
          f"({big['rss_peak_mb'] / small['rss_peak_mb']:.2f}x)")


if __name__ == "__main__":
    main()
