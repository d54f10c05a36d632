"""Helpers for the web tests: sample inputs, real annotation results, uploads, finished jobs.

Results come from the real annotation engine (on the synthetic demo bundle, or the shared
GRCh38 chr21 data when GAS_TEST_REFERENCE is set), so the web reads exactly what the annotator
writes. A module with a unique name (not conftest) so other test folders can import it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pysam

from gas_annotator.engine import AnnotationResult, annotate
from gas_annotator.reference import build_bundle, build_demo_bundle
from gas_core.aws import AwsClients
from gas_core.jobs import Job, JobRepository
from gas_core.settings import GasSettings
from tests.support import REPO_ROOT

CHR21_FILES = ("GRCh38_chr21.fa.gz", "Ensembl84_chr21_25mb_plusAPP.gff3",
               "known_variants_dbSNP149_1KG_gnomADe_ClinVar.norm.vcf.gz")
CHR21_SAMPLE = "sample_HG00096_1KG_chr21.vcf.gz"
RESULT_FILES = ("vcf", "tsv", "summary", "log", "parquet")


def shared_reference() -> Path | None:
    """The shared chr21 data named by GAS_TEST_REFERENCE, if it is there."""
    value = os.environ.get("GAS_TEST_REFERENCE")
    if not value:
        return None
    path = (REPO_ROOT / value).resolve()
    return path if all((path / name).is_file() for name in (*CHR21_FILES, CHR21_SAMPLE)) else None


def demo_sample_vcf(bundle_dir: Path, out: Path) -> Path:
    """A small VCF for the demo bundle: its known variants plus novel SNVs in the genes."""
    fasta = pysam.FastaFile(str(bundle_dir / "genome.fa.gz"))
    records: dict[int, tuple[str, str, str]] = {}
    with pysam.VariantFile(str(bundle_dir / "known" / "0.vcf.gz")) as known:
        for rec in known:
            records[rec.pos] = (".", rec.ref, rec.alts[0])
    # Novel variants: every 97th base across both coding genes and the lincRNA.
    for pos in [*range(5_003, 9_000, 97), *range(15_003, 19_000, 97), *range(22_010, 22_400, 97)]:
        if pos in records:
            continue
        ref = fasta.fetch("1", pos - 1, pos).upper()
        alt = {"A": "G", "C": "T", "G": "A", "T": "C"}.get(ref)
        if alt:
            records[pos] = (".", ref, alt)
    lines = ["##fileformat=VCFv4.2", "##contig=<ID=1,length=40000>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]
    lines += [f"1\t{pos}\t{ident}\t{ref}\t{alt}\t.\t.\t."
              for pos, (ident, ref, alt) in sorted(records.items())]
    out.write_text("\n".join(lines) + "\n")
    return out


def prepare_reference(workdir: Path) -> tuple[Path, Path]:
    """(reference bundle dir, sample VCF): the chr21 data when available, else the demo."""
    source = shared_reference()
    if source is not None:
        bundle = workdir / "grch38_chr21"
        if not (bundle / "manifest.json").exists():
            build_bundle("GRCh38", source / CHR21_FILES[0], source / CHR21_FILES[1],
                         [source / CHR21_FILES[2]], bundle, name="grch38-chr21-test",
                         version="ensembl84")
        return bundle, source / CHR21_SAMPLE
    bundle = workdir / "demo"
    if not (bundle / "manifest.json").exists():
        build_demo_bundle(bundle)
    return bundle, demo_sample_vcf(bundle, workdir / "demo_sample.vcf")


def run_engine(input_path: Path, reference_dir: Path, out_dir: Path) -> AnnotationResult:
    return annotate(input_path, reference_dir=reference_dir, out_dir=out_dir)


def upload(upload: dict[str, Any], content: bytes, file_name: str = "input.vcf") -> httpx.Response:
    """What a browser or the CLI does with a presigned POST."""
    return httpx.post(upload["url"], data=upload["fields"],
                      files={"file": (file_name, content)}, timeout=30)


def store_results(
    *, aws: AwsClients, settings: GasSettings, job: Job, result: AnnotationResult
) -> dict[str, str]:
    """Upload the engine's files as the annotator does; returns result_keys."""
    keys: dict[str, str] = {}
    for kind in RESULT_FILES:
        path: Path = getattr(result, kind)
        key = f"results/{job.user_id}/{job.job_id}/{path.name}"
        aws.s3.upload_file(str(path), settings.names.results_bucket, key)
        keys[kind] = key
    return keys


def finish_job(
    *,
    repository: JobRepository,
    aws: AwsClients,
    settings: GasSettings,
    job: Job,
    result: AnnotationResult,
) -> Job:
    """Take the job through RUNNING to COMPLETED with real results, as the annotator would."""
    leased = repository.claim_lease(job, owner="test-annotator", ttl_seconds=60)
    keys = store_results(aws=aws, settings=settings, job=leased, result=result)
    return repository.complete_job(job.user_id, job.job_id, owner="test-annotator",
                                   summary=result.summary_data, result_keys=keys)
