"""Join the chunk results into the user's outputs: VCF.gz + .tbi, TSV, Parquet, summary, log."""

from __future__ import annotations

import contextlib
import json
import resource
import shutil
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq
import pysam
import pysam.bcftools
from pysam.utils import SamtoolsError

from gas_annotator.engine import consequences as cq
from gas_annotator.engine.chunk_models import ChunkResult
from gas_annotator.engine.member_rejoin import rejoin
from gas_annotator.engine.rows import TSV_SCHEMA
from gas_annotator.engine.tabix_merge import Member, crosses, index_joined, index_member
from gas_annotator.engine.validate import ValidationStats
from gas_annotator.engine.vcf_splice import BGZF_EOF, bgzf_member
from gas_annotator.reference import Bundle, tool_versions

if TYPE_CHECKING:
    from gas_annotator.engine import EngineOptions

SUMMARY_TOP_GENES = 50
SUMMARY_MAX_PATHOGENIC = 100


@dataclass(frozen=True)
class Outputs:
    vcf: Path
    vcf_index: Path
    tsv: Path
    summary: Path
    log: Path
    parquet: Path


def stem_of(name: str) -> str:
    for suffix in (".vcf.gz", ".vcf.bgz", ".vcf", ".bcf", ".gz"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def output_paths(input_path: Path, out_dir: Path) -> Outputs:
    stem = stem_of(input_path.name)
    return Outputs(
        vcf=out_dir / f"{stem}.annot.vcf.gz",
        vcf_index=out_dir / f"{stem}.annot.vcf.gz.tbi",
        tsv=out_dir / f"{stem}.annot.tsv",
        summary=out_dir / f"{stem}.summary.json",
        log=out_dir / f"{stem}.log",
        parquet=out_dir / f"{stem}.annot.parquet",
    )


class Joiner:
    """Builds the VCF.gz, TSV and Parquet from the chunk results as they arrive, in chunk order,
    in the job process while the workers run the next chunks; only the index is left for the end.

    The files are written under ``.part`` names and renamed when complete, so a failed job leaves
    no output that looks finished.
    """

    def __init__(self, outputs: Outputs, row_group: int) -> None:
        self.outputs = outputs
        self.row_group = row_group
        self.pending: dict[int, ChunkResult] = {}
        self.next_index = 0
        self.seconds = {"vcf": 0.0, "tsv": 0.0, "parquet": 0.0}
        self.vcf_part = _part(outputs.vcf)
        self.tsv_part = _part(outputs.tsv)
        self.parquet_part = _part(outputs.parquet)
        # Concatenated BGZF members: the header's, then each chunk's (compressed by its worker).
        self.vcf = self.vcf_part.open("wb")
        self.members: list[Member] = []
        self.rejoined = 0  # boundaries an indel crossed (see member_rejoin)
        self.tsv = self.tsv_part.open("wb")
        # Opened with the first chunk: its rows carry the columns (AF fields, genotypes) and
        # the Parquet metadata, which depend on the bundle and the input's samples.
        self.parquet: pq.ParquetWriter | None = None

    def add(self, result: ChunkResult) -> None:
        self.pending[result.index] = result
        while self.next_index in self.pending:
            self._write(self.pending.pop(self.next_index))
            self.next_index += 1

    def _write(self, result: ChunkResult) -> None:
        t0 = time.perf_counter()
        if self.next_index == 0:
            header = result.vcf.with_name("header.vcf.gz")
            bgzf_member(header, result.header)
            with header.open("rb") as src:
                shutil.copyfileobj(src, self.vcf, 1 << 20)
            header.unlink()
        previous = self.members[-1] if self.members else None
        if previous is not None and crosses(previous.span, result.span):
            self.members[-1] = self._rejoin(previous, result)
            self.rejoined += 1
        else:
            self.members.append(Member(self.vcf.tell(), result.vcf_index, result.span))
        with result.vcf.open("rb") as src:
            shutil.copyfileobj(src, self.vcf, 1 << 20)
        result.vcf.unlink(missing_ok=True)
        t1 = time.perf_counter()
        if self.next_index == 0:
            self.tsv.write(("\t".join(result.tsv_columns or TSV_SCHEMA.names) + "\n").encode())
        with result.tsv.open("rb") as src:
            shutil.copyfileobj(src, self.tsv, 1 << 20)
        result.tsv.unlink(missing_ok=True)
        t2 = time.perf_counter()
        with pa.memory_map(str(result.arrow)) as source:
            reader = pa.ipc.open_file(source)
            if self.parquet is None:
                self._open(reader.schema, result.tsv_columns)
            assert self.parquet is not None
            for i in range(reader.num_record_batches):
                self.parquet.write_batch(reader.get_batch(i), row_group_size=self.row_group)
        result.arrow.unlink(missing_ok=True)
        t3 = time.perf_counter()
        for key, value in (("vcf", t1 - t0), ("tsv", t2 - t1), ("parquet", t3 - t2)):
            self.seconds[key] += value

    def _rejoin(self, previous: Member, result: ChunkResult) -> Member:
        """Take the previous member back off the file and leave in `result.vcf` the two
        members' records as one sorted member, with its own index (see member_rejoin)."""
        assert previous.span is not None and result.span is not None
        self.vcf.flush()
        with self.vcf_part.open("rb") as src:
            src.seek(previous.start)
            earlier = src.read()
        self.vcf.seek(previous.start)
        self.vcf.truncate()
        rejoined = rejoin(
            earlier, result.vcf.read_bytes(), (previous.span, result.span), result.vcf.parent
        )
        result.vcf.write_bytes(rejoined.member + BGZF_EOF)  # htslib indexes files with one
        for stale in (previous.index, result.vcf_index):
            if stale is not None:
                stale.unlink(missing_ok=True)
        index = result.vcf.with_name(result.vcf.name + ".rejoined.tbi")
        indexed = index_member(result.vcf, index)
        bgzf_member(result.vcf)
        return Member(previous.start, index if indexed else None, rejoined.span)

    def _open(self, schema: pa.Schema, tsv_columns: list[str]) -> None:
        del tsv_columns
        self.parquet = parquet_writer(self.parquet_part, schema)

    def close(self, scratch: Path) -> None:
        if self.pending:
            raise RuntimeError(
                f"chunks {sorted(self.pending)} arrived without chunk {self.next_index}"
            )
        if self.parquet is None:  # no chunk at all
            self.tsv.write(("\t".join(TSV_SCHEMA.names) + "\n").encode())
            self._open(TSV_SCHEMA, [])
        assert self.parquet is not None
        self.vcf.write(BGZF_EOF)
        self.vcf.close()
        self.tsv.close()
        self.parquet.close()
        self.vcf_part.replace(self.outputs.vcf)
        self.tsv_part.replace(self.outputs.tsv)
        self.parquet_part.replace(self.outputs.parquet)
        t0 = time.perf_counter()
        # The chunks' own indexes, merged; htslib over the whole file only when they do not
        # join (a chunk htslib refused, or records moved across more than one boundary).
        if not index_joined(self.outputs.vcf_index, self.members):
            _index_vcf(self.outputs.vcf, scratch)
        self._drop_member_indexes()
        self.seconds["index"] = time.perf_counter() - t0

    def _drop_member_indexes(self) -> None:
        for member in self.members:
            if member.index is not None:
                member.index.unlink(missing_ok=True)

    def abort(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self.vcf.close()
        with contextlib.suppress(OSError, ValueError):
            self.tsv.close()
        with contextlib.suppress(OSError, ValueError, pa.ArrowException):
            if self.parquet is not None:
                self.parquet.close()
        for path in (self.vcf_part, self.tsv_part, self.parquet_part):
            path.unlink(missing_ok=True)
        self._drop_member_indexes()


def _part(path: Path) -> Path:
    return path.with_name(path.name + ".part")


def _index_vcf(out: Path, scratch: Path) -> None:
    try:
        pysam.bcftools.index("-t", "-f", str(out), catch_stdout=False)
    except SamtoolsError:
        # Records out of order across more than two members (the Joiner puts two adjacent
        # members back in order, see member_rejoin): sort the whole file.
        tmp = scratch / "final.sorted.vcf.gz"
        sort_tmp = scratch / "sort.tmp"
        sort_tmp.mkdir(exist_ok=True)
        pysam.bcftools.sort(
            "-m", "256M", "-T", str(sort_tmp), "-Oz", "-o", str(tmp), str(out),
            catch_stdout=False,
        )  # fmt: skip
        shutil.move(str(tmp), out)
        pysam.bcftools.index("-t", "-f", str(out), catch_stdout=False)


# Dictionary-encode only columns with few distinct values: on ids and protein changes the
# dictionary grows to the column's size and triples the write time for nothing. Alleles and
# genotype fields have few values: read back (the browser's pages, distinct variant counts,
# a sample's zygosity), dictionary pages decode 2-3x faster than plain ones (4M rows, real
# chr21: a page's rows from 50 row groups 634 -> 260 ms, a sample zygosity scan 1033 -> 305 ms)
# and the file is smaller.
_DICTIONARY_COLUMNS = [
    "chrom", "ref", "alt", "gene", "transcript", "biotype", "consequence", "impact", "clinvar",
    "nearest_gene", "genotype", "zygosity",
]  # fmt: skip


# Data pages of ~16 KB, not pyarrow's 1 MB: a browser page's 50 rows can lie in 50 row
# groups (sorted by AF), and DuckDB decompresses only the pages holding wanted rows. At 4M
# rows, real chr21: fetching those rows 125 -> 86 ms; scans, write time and size unchanged
# within noise (80 MB either way; 8 KB pages grow the file 4 %).
DATA_PAGE_BYTES = 16 * 1024


def parquet_writer(path: Path, schema: pa.Schema) -> pq.ParquetWriter:
    """The result Parquet's writer: the job's, and the browser benchmark's larger copies."""
    return pq.ParquetWriter(str(path), schema, compression="zstd",
                            use_dictionary=dictionary_columns(schema),
                            data_page_size=DATA_PAGE_BYTES)


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The column paths dictionary-encoded: the few-valued columns, and every field of the
    per-sample genotypes (list<struct> leaves, named as Parquet names them)."""
    columns = [c for c in _DICTIONARY_COLUMNS if c in schema.names]
    if "genotypes" in schema.names:
        element = schema.field("genotypes").type.value_type
        columns += [f"genotypes.list.element.{field.name}" for field in element]
    return columns


def _merge_stats(results: list[ChunkResult]) -> dict[str, Any]:
    consequences: Counter[str] = Counter()
    impacts: Counter[str] = Counter()
    genes: Counter[str] = Counter()
    pathogenic: list[dict[str, Any]] = []
    totals = Counter[str]()
    for r in results:
        consequences.update(r.stats["consequences"])
        impacts.update(r.stats["impacts"])
        genes.update(r.stats["genes"])
        pathogenic.extend(r.stats["pathogenic"])
        for key in ("known", "snvs", "transitions", "transversions", "pathogenic_count",
                    "carrier_variants"):  # fmt: skip
            totals[key] += int(r.stats[key])
    return {
        "consequences": consequences,
        "impacts": impacts,
        "genes": genes,
        "pathogenic": pathogenic,
        "totals": totals,
    }


def finish_outputs(
    outputs: Outputs,
    results: list[ChunkResult],
    stats: ValidationStats,
    bundle: Bundle,
    *,
    joiner: Joiner,
    input_path: Path,
    options: EngineOptions,
    workers: int,
    started: float,
    scratch: Path,
) -> dict[str, Any]:
    joiner.close(scratch)
    merge_seconds = joiner.seconds

    merged = _merge_stats(results)
    totals = merged["totals"]
    variants = sum(r.variants for r in results)
    rows = sum(r.rows for r in results)
    removed = sum(r.mismatch_removed for r in results)
    manifest = bundle.manifest
    ordered_consequences = dict(
        sorted(merged["consequences"].items(), key=lambda kv: cq.RANK.get(kv[0], cq.UNKNOWN_RANK))
    )
    impacts = {k: int(merged["impacts"].get(k, 0)) for k in cq.IMPACTS}
    top_genes = dict(merged["genes"].most_common(SUMMARY_TOP_GENES))
    transitions = int(totals["transitions"])
    transversions = int(totals["transversions"])
    summary: dict[str, Any] = {
        "schema": 1,
        "input": {
            "file_name": input_path.name,
            "format": stats.input_format,
            "records": stats.records,
            "samples": stats.samples,
            "contigs": stats.contigs,
        },
        "variants": {
            "input_records": stats.records,
            "annotated": variants,
            "split_from_multiallelic": sum(r.split for r in results),
            "left_aligned": sum(r.realigned for r in results),
            "excluded_ref_mismatch": removed,
            "tsv_rows": rows,
        },
        "ref_mismatch": {
            "count": stats.ref_mismatches,
            "rate": (stats.ref_mismatches / stats.records) if stats.records else 0.0,
            "threshold": options.ref_mismatch_threshold,
            "excluded": stats.ref_mismatches > 0,
        },
        "consequences": ordered_consequences,
        "impacts": impacts,
        "genes": top_genes,
        "genes_total": len(merged["genes"]),
        "known": int(totals["known"]),
        "novel": variants - int(totals["known"]),
        "snvs": int(totals["snvs"]),
        "transitions": transitions,
        "transversions": transversions,
        "ti_tv": round(transitions / transversions, 4) if transversions else None,
        # Per variant record (after the split), not per row: what a researcher counts.
        "counts": {
            "variants": variants,
            "high_impact_variants": impacts["HIGH"],
            "clinvar_plp_variants": int(totals["pathogenic_count"]),
            "carrier_variants": int(totals["carrier_variants"]) if stats.samples else None,
        },
        "clinvar_pathogenic_count": int(totals["pathogenic_count"]),
        "clinvar_pathogenic": merged["pathogenic"][:SUMMARY_MAX_PATHOGENIC],
        "reference": {
            "name": manifest.name,
            "version": manifest.version,
            "assembly": manifest.assembly,
            "synthetic": manifest.synthetic,
            "known_variant_sources": [k.source for k in manifest.known],
            "mane": manifest.has_mane,
        },
        "tools": tool_versions(),
        "engine": {
            "csq_mode": "local (--local-csq), site-level: genotypes and phase are not used",
            "workers": workers,
            "chunks": len(results),
            "context_distance": options.context_distance,
            "seconds": round(time.time() - started, 3),
        },
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    outputs.summary.write_text(json.dumps(summary, indent=2) + "\n")
    _write_log(
        outputs,
        summary=summary,
        results=results,
        stats=stats,
        bundle=bundle,
        merge_seconds=merge_seconds,
        rejoined=joiner.rejoined,
    )
    return summary


def _write_log(
    outputs: Outputs,
    *,
    summary: dict[str, Any],
    results: list[ChunkResult],
    stats: ValidationStats,
    bundle: Bundle,
    merge_seconds: dict[str, float],
    rejoined: int,
) -> None:
    v = summary["variants"]
    lines = [
        f"GAS annotation of {summary['input']['file_name']} "
        f"({summary['input']['format']}, {stats.records:,} records, {stats.samples} samples)",
        f"created {summary['created_at']}",
        f"reference: {bundle.label}",
    ]
    if bundle.manifest.synthetic:
        lines.append(
            "WARNING: this reference bundle is SYNTHETIC (demo data); "
            "the annotations have no biological meaning"
        )
    tools = summary["tools"]
    lines += [
        f"tools: pysam {tools['pysam']}, htslib {tools['htslib']}, bcftools {tools['bcftools']}",
        "contigs: " + ", ".join(f"{u} -> {b}" if u != b else u for u, b in stats.contigs.items()),
        "",
        f"variants annotated: {v['annotated']:,} (split from multiallelic: "
        f"{v['split_from_multiallelic']:,}; left-aligned: {v['left_aligned']:,})",
        f"REF mismatches: {stats.ref_mismatches:,} "
        f"({summary['ref_mismatch']['rate']:.3%}; threshold "
        f"{summary['ref_mismatch']['threshold']:.0%}); mismatching records were excluded",
    ]
    for m in stats.first_mismatches[:10]:
        lines.append(
            f"  line {m.line}: {m.chrom}:{m.pos} REF {m.ref[:20]} but reference {m.expected[:20]}"
        )
    lines += [
        f"known: {summary['known']:,}; novel: {summary['novel']:,}; Ti/Tv: {summary['ti_tv']}",
        "most severe consequence per variant:",
    ]
    lines += [f"  {k:40s} {n:>12,}" for k, n in summary["consequences"].items()]
    lines.append("impact: " + ", ".join(f"{k} {n:,}" for k, n in summary["impacts"].items()))
    lines.append(f"ClinVar pathogenic/likely pathogenic: {summary['clinvar_pathogenic_count']}")
    for hit in summary["clinvar_pathogenic"][:20]:
        lines.append(
            f"  {hit['chrom']}:{hit['pos']} {hit['ref']}>{hit['alt']} {hit['id'] or ''} "
            f"{hit['gene'] or ''} {hit['protein_change'] or ''} [{hit['clinvar']}]"
        )
    lines += ["", "chunks:"]
    for r in results:
        lines += [f"  {line}" for line in r.log]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    joined = ", ".join(f"{k} {v:.2f}s" for k, v in merge_seconds.items())
    lines.append(
        f"  join outputs (as chunks finished, index at the end): {joined}; "
        f"job process peak RSS {peak} MB"
    )
    if rejoined:
        lines.append(
            f"  chunk boundaries an indel was left-aligned across, their records re-sorted: "
            f"{rejoined}"
        )
    lines.append(
        f"total {summary['engine']['seconds']:.2f}s with {summary['engine']['workers']} worker(s)"
    )
    outputs.log.write_text("\n".join(lines) + "\n")
