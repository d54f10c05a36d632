"""Filtered exports: exactly the rows (TSV) or variants (VCF.gz) the page shows, streamed; the
VCF is real BGZF that htslib (pysam) reads."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

import pysam
import pytest
from fastapi.testclient import TestClient

from gas_core.aws import AwsClients
from gas_core.jobs import Job, JobRepository
from gas_web.app.variants import bgzf
from gas_web.settings import WebSettings
from tests.services.web import variants_parquet as vp
from tests.services.web.conftest import SubmitJob, bearer

HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=1,length=100000>\n##contig=<ID=2,length=50000>\n"
          "##reference=file:///ref.fa\n##INFO=<ID=BCSQ,Number=.,Type=String,Description=\"x\">\n"
          "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\tS3\n")


@pytest.fixture(scope="module")
def exported(
    submit_job: SubmitJob, repository: JobRepository, web_aws: AwsClients,
    web_settings: WebSettings, tmp_path_factory: pytest.TempPathFactory,
) -> tuple[Job, list[vp.Variant]]:
    """A job with a multi-sample result and an annotated VCF whose header has the contigs."""
    user_id = "export-reader"
    job = submit_job(user_id)
    folder = tmp_path_factory.mktemp("export")
    data = vp.write_result(folder / "r.annot.parquet")
    (folder / "r.annot.vcf.gz").write_bytes(b"".join(bgzf.compress([HEADER.encode()])))
    keys = {}
    for kind, name in (("parquet", "r.annot.parquet"), ("vcf", "r.annot.vcf.gz")):
        keys[kind] = f"results/{user_id}/{job.job_id}/{name}"
        web_aws.s3.upload_file(str(folder / name), web_settings.names.results_bucket, keys[kind])
    leased = repository.claim_lease(job, owner="test", ttl_seconds=60)
    return repository.complete_job(user_id, leased.job_id, owner="test", summary={},
                                   result_keys=keys), data


def export(client: TestClient, job: Job, **params: Any) -> bytes:
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants/export", params=params,
                          headers=bearer(job.user_id))
    assert response.status_code == 200, response.text
    content: bytes = response.content
    return content


def total(client: TestClient, job: Job, **params: Any) -> int:
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants", params=params,
                          headers=bearer(job.user_id))
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


@pytest.mark.parametrize("params", [
    {}, {"carriers": "all"}, {"view": "transcript", "carriers": "all"},
    {"impact": "HIGH,MODERATE", "view": "transcript"}, {"max_af": 0.01},
    {"gene": "GENEF", "sort": "allele_frequency", "order": "desc", "carriers": "all"},
    {"preset": "lof", "view": "transcript", "carriers": "all"},
])
def test_the_tsv_export_has_exactly_the_pages_rows_in_their_order(
    client: TestClient, exported: tuple[Job, list[vp.Variant]], params: dict[str, Any]
) -> None:
    job, _ = exported
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants/export",
                          params={**params, "format": "tsv"}, headers=bearer(job.user_id))
    assert response.status_code == 200
    assert response.headers["content-disposition"] == (
        'attachment; filename="demo_sample.filtered.tsv"')
    rows = list(csv.DictReader(io.StringIO(response.text), delimiter="\t"))
    assert len(rows) == total(client, job, **params)
    page = client.get(f"/api/v1/jobs/{job.job_id}/variants", params={**params, "limit": 500},
                      headers=bearer(job.user_id)).json()["items"]
    assert [(r["chrom"], r["pos"], r["transcript"]) for r in rows] == [
        (p["chrom"], str(p["pos"]), p["transcript"] or "") for p in page]


def test_the_tsv_export_has_the_annotators_columns_and_the_carriers(
    client: TestClient, exported: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = exported
    text = export(client, job, format="tsv").decode()
    header, first = text.splitlines()[:2]
    assert header.split("\t") == ["chrom", "pos", "id", "ref", "alt", "gene", "transcript",
                                  "biotype", "consequence", "impact", "protein_change",
                                  "mane_select", "known_id", "clinvar", "allele_frequency",
                                  "nearest_gene", "distance", "carriers"]
    cells = first.split("\t")
    assert cells[:5] == ["1", "100", "rs100", "A", "G"] and cells[11] == "true"
    assert cells[-1] == str(data[0].carriers) and cells[14] == "0.001"


@pytest.mark.parametrize("params", [
    {}, {"carriers": "all"}, {"view": "transcript", "carriers": "all"},
    {"view": "transcript", "impact": "HIGH"}, {"sample": "S2", "zygosity": "het"},
])
def test_the_vcf_export_is_bgzf_htslib_reads_with_one_record_per_variant(
    client: TestClient, exported: tuple[Job, list[vp.Variant]], tmp_path: Path,
    params: dict[str, Any],
) -> None:
    job, _ = exported
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants/export",
                          params={**params, "format": "vcf"}, headers=bearer(job.user_id))
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/gzip"
    assert response.headers["content-disposition"] == (
        'attachment; filename="demo_sample.filtered.vcf.gz"')
    path = tmp_path / "export.vcf.gz"
    path.write_bytes(response.content)
    assert response.content.endswith(bgzf.EOF_BLOCK)
    with pysam.VariantFile(str(path)) as vcf:
        records = list(vcf)
        assert list(vcf.header.contigs) == ["1", "2"]  # from the job's annotated VCF
        assert list(vcf.header.samples) == vp.SAMPLES
        assert "BCSQ" not in vcf.header.info  # its INFO is not what the export writes
    page = client.get(f"/api/v1/jobs/{job.job_id}/variants",
                      params={**params, "limit": 500}, headers=bearer(job.user_id)).json()
    keys = list(dict.fromkeys(r["variant_key"] for r in page["items"]))
    assert [f"{r.chrom}-{r.pos}-{r.ref}-{(r.alts or ('',))[0]}" for r in records] == keys
    if params.get("view") != "transcript":
        assert len(records) == page["total"]
    pysam.tabix_index(str(path), preset="vcf", force=True)  # sorted and indexable


def test_the_vcf_export_carries_the_matching_transcripts_afs_and_genotypes(
    client: TestClient, exported: tuple[Job, list[vp.Variant]], tmp_path: Path
) -> None:
    job, data = exported
    path = tmp_path / "export.vcf.gz"
    path.write_bytes(export(client, job, format="vcf", view="transcript", gene="GENEB"))
    with pysam.VariantFile(str(path)) as vcf:
        (record,) = list(vcf)
    variant = data[2]
    assert (record.pos, record.id) == (variant.pos, "rs300")
    assert [entry.split("|")[1] for entry in record.info["GAS_CSQ"]] == ["TB1", "TB2", "TB3"]
    assert record.info["GAS_CSQ"][2].split("|")[3] == (
        "intron_variant&non_coding_transcript_variant")
    assert record.info["GAS_AF_GNOMADE"] == (pytest.approx(0.2),)
    assert "GAS_AF_KG_GLOBAL" not in record.info
    assert record.info["GAS_CLNSIG"] == ("not_provided", "likely_pathogenic")
    assert record.info["GAS_CARRIERS"] == variant.carriers
    assert [record.samples[s]["GT"] for s in vp.SAMPLES] == [(1, 1), (0, 1), (0, 0)]
    assert record.samples["S1"]["DP"] == 30 and record.samples["S3"]["GQ"] == 97


def test_an_export_streams_in_chunks(
    client: TestClient, exported: tuple[Job, list[vp.Variant]]
) -> None:
    store = client.app.state.variants  # type: ignore[attr-defined]
    from gas_web.app.variants import VariantQuery
    from gas_web.app.variants import export as export_module

    job, _ = exported
    small = export_module.BATCH_ROWS
    export_module.BATCH_ROWS = 10  # a batch of rows per chunk
    try:
        chunks = list(store.export(job, VariantQuery(view="transcript", carriers="all"), "tsv"))
    finally:
        export_module.BATCH_ROWS = small
    assert len(chunks) > 10  # header + one chunk per 10 rows, never one whole body
    assert sum(chunk.count(b"\n") for chunk in chunks) == 1 + total(
        client, job, view="transcript", carriers="all")


def test_a_job_without_its_vcf_header_exports_a_minimal_valid_one(
    client: TestClient, submit_job: SubmitJob, repository: JobRepository, web_aws: AwsClients,
    web_settings: WebSettings, tmp_path: Path,
) -> None:
    user_id = "export-minimal"
    job = submit_job(user_id)
    vp.write_result(tmp_path / "r.parquet", samples=0)
    key = f"results/{user_id}/{job.job_id}/r.parquet"
    web_aws.s3.upload_file(str(tmp_path / "r.parquet"), web_settings.names.results_bucket, key)
    leased = repository.claim_lease(job, owner="test", ttl_seconds=60)
    job = repository.complete_job(user_id, leased.job_id, owner="test", summary={},
                                  result_keys={"parquet": key})
    body = export(client, job, format="vcf")
    assert gzip.decompress(body).startswith(b"##fileformat=VCFv4.2\n##contig=<ID=1>\n")
    (tmp_path / "e.vcf.gz").write_bytes(body)
    with pysam.VariantFile(str(tmp_path / "e.vcf.gz")) as vcf:
        assert len(list(vcf)) == total(client, job) and not list(vcf.header.samples)


def test_bgzf_blocks_are_gzip_members_with_their_size_recorded() -> None:
    data = bytes(range(256)) * 1000  # 256 kB: several blocks
    blocks = list(bgzf.compress([data[:1000], data[1000:]], level=1))
    assert gzip.decompress(b"".join(blocks)) == data
    assert blocks[-1] == bgzf.EOF_BLOCK and len(blocks) == 1 + -(-len(data) // bgzf.BLOCK_INPUT)
    for block in blocks:
        assert block[12:14] == b"BC" and int.from_bytes(block[16:18], "little") == len(block) - 1


def test_vcf_export_percent_encodes_csq_fields_and_writes_afs_as_written(
    client: TestClient, submit_job: SubmitJob, repository: JobRepository, web_aws: AwsClients,
    web_settings: WebSettings, tmp_path: Path,
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = vp.variants(3)
    first = data[0]
    first.rows[0]["gene"] = "GE;NE=A,1|x%y:z w\tt"
    first.rows[0]["protein_change"] = "p.(Leu9=)\r\n"
    first.known_id = " rs1 ; rs2,,\u00a0rs3\u2003 ;;"
    first.clinvar = " a=b , c;d ,, "
    first.af_gnomade = 0.1 + 0.2
    first.af_kg_global = 0.1
    data[1].af_gnomade = 1e-05
    path = tmp_path / "r.parquet"
    vp.write_result(path, data=data)
    table = pq.read_table(path)  # a FLOAT column: its values are written as the widened double
    index = table.schema.get_field_index("af_kg_global")
    table = table.set_column(index, pa.field("af_kg_global", pa.float32()),
                             table["af_kg_global"].cast(pa.float32()))
    pq.write_table(table, path, row_group_size=64)
    user_id = "export-encoding"
    job = submit_job(user_id)
    key = f"results/{user_id}/{job.job_id}/r.parquet"
    web_aws.s3.upload_file(str(path), web_settings.names.results_bucket, key)
    leased = repository.claim_lease(job, owner="test", ttl_seconds=60)
    job = repository.complete_job(user_id, leased.job_id, owner="test", summary={},
                                  result_keys={"parquet": key})
    text = gzip.decompress(export(client, job, format="vcf", view="transcript", carriers="all"))
    records = [line.split("\t") for line in text.decode().splitlines() if line[0] != "#"]
    assert records[0][:8] == [
        "1", "100", first.known_id, "A", "G", ".", ".",
        "GAS_CSQ=GE%3BNE%3DA%2C1%7Cx%25y%3Az%20w%09t|TA1|protein_coding|missense_variant|"
        "MODERATE|p.(Leu9%3D)%0D%0A|true,GENEA|TA2|protein_coding|stop_gained|HIGH|p.Arg5Ter|"
        "false;GAS_KNOWN_ID=rs1,rs2,rs3;GAS_CLNSIG=a%3Db,c%3Bd;GAS_AF=0.30000000000000004;"
        "GAS_AF_GNOMADE=0.30000000000000004;GAS_AF_KG_GLOBAL=0.10000000149011612;"
        "GAS_CARRIERS=1"]
    assert records[1][7] == "GAS_CSQ=GENEA|TA1|protein_coding|intron_variant|MODIFIER||true;" \
        "GAS_AF=1e-05;GAS_AF_GNOMADE=1e-05;GAS_CARRIERS=0"
