"""Filtered exports, streamed: the rows a query selects as TSV, or its variants as a bgzipped VCF.

Rows come from DuckDB in batches (`fetchmany`), so a 4M-row export holds one batch at a time;
in file order (the default) DuckDB does not sort at all. The TSV has the annotator's TSV
layout (a filtered TSV reads like the full one). The VCF has one record per variant even in
the transcript view, in genomic order whatever the requested sort (VCF readers and indexers
expect it); its INFO lists the matching transcript rows (GAS_CSQ), the variant's known ids,
ClinVar, every AF field, and its genotypes when the input had samples.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import duckdb

from gas_core.logging import get_logger
from gas_web.app.variants import bgzf
from gas_web.app.variants.query import (
    SINGLE_SAMPLE_COLUMNS,
    TSV_COLUMNS,
    Compiled,
    VariantQuery,
)
from gas_web.app.variants.scan import Scan

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = get_logger(__name__)
BATCH_ROWS = 5000
# The annotated VCF's header is read from its first bytes (headers of real files are well
# under this); a longer one falls back to a minimal header.
HEADER_BYTES = 4 * 1024 * 1024
CSQ_FIELDS = ("gene", "transcript", "biotype", "consequence", "impact", "protein_change",
              "mane_select")
# VCF 4.3 percent-encoding of the characters with a meaning in INFO and FORMAT values.
_ENCODE = str.maketrans({"%": "%25", ":": "%3A", ";": "%3B", "=": "%3D", ",": "%2C",
                         "|": "%7C", " ": "%20", "\t": "%09", "\n": "%0A", "\r": "%0D"})


def tsv_columns(scan: Scan) -> list[str]:
    columns = list(TSV_COLUMNS)
    if scan.info.single_sample:
        columns += SINGLE_SAMPLE_COLUMNS
    elif scan.info.has_samples:
        columns.append("carriers")
    return columns


def tsv_stream(
    cursor: duckdb.DuckDBPyConnection, scan: Scan, query: VariantQuery, compiled: Compiled
) -> Iterator[bytes]:
    columns = tsv_columns(scan)
    # Each line is built by DuckDB: one string per row crosses into Python.
    cells = ", ".join(
        f"coalesce(CAST({name} AS VARCHAR), '')" if name in scan.info.columns else "''"
        for name in columns)
    sql = (f"SELECT concat_ws(chr(9), {cells}) FROM {scan.source_for(compiled)}"  # noqa: S608
           f"{compiled.where}"
           f"{scan.order(query)}")
    try:
        yield ("\t".join(columns) + "\n").encode()
        result = cursor.execute(sql, compiled.params)
        while batch := result.fetchmany(BATCH_ROWS):
            yield ("\n".join(line for (line,) in batch) + "\n").encode()
    finally:
        cursor.close()


def _enc(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value).translate(_ENCODE)


def _number(value: float | int | None) -> str:
    return "." if value is None else repr(value) if isinstance(value, float) else str(value)


def vcf_info_lines(scan: Scan) -> list[str]:
    lines = [
        '##INFO=<ID=GAS_CSQ,Number=.,Type=String,Description="Transcript rows matching the '
        f'export\'s filter. Format: {"|".join(CSQ_FIELDS)}">',
        '##INFO=<ID=GAS_KNOWN_ID,Number=.,Type=String,Description="IDs of the matching known '
        'variant (dbSNP rsID) in the reference bundle">',
        '##INFO=<ID=GAS_CLNSIG,Number=.,Type=String,Description="ClinVar clinical significance '
        'of the matching known variant">',
        '##INFO=<ID=GAS_AF,Number=A,Type=Float,Description="Population allele frequency '
        '(the bundle\'s default field)">',
    ]
    for af in scan.info.af_fields:
        label = af.label.replace('"', "'")
        lines.append(f'##INFO=<ID=GAS_{af.column.upper()},Number=A,Type=Float,'
                     f'Description="Allele frequency: {label} ({af.field})">')
    if scan.info.has_samples:
        lines.append('##INFO=<ID=GAS_CARRIERS,Number=1,Type=Integer,Description="Samples '
                     'whose genotype includes the ALT allele">')
    if _genotype_mode(scan):
        lines += ['##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">',
                  '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Read depth">',
                  '##FORMAT=<ID=GQ,Number=1,Type=Integer,Description="Genotype quality">']
    return lines


def _genotype_mode(scan: Scan) -> str | None:
    if scan.info.has_genotypes:
        return "list"
    if scan.info.single_sample:
        return "flat"
    return None


def vcf_stream(
    cursor: duckdb.DuckDBPyConnection, scan: Scan, query: VariantQuery, compiled: Compiled,
    header: list[str],
) -> Iterator[bytes]:
    return bgzf.compress(_vcf_text(cursor, scan, query, compiled, header))


def _vcf_text(
    cursor: duckdb.DuckDBPyConnection, scan: Scan, query: VariantQuery, compiled: Compiled,
    header: list[str],
) -> Iterator[bytes]:
    info = scan.info
    mode = _genotype_mode(scan)
    af_columns = [af.column for af in info.af_fields]
    select = [scan.column(name) for name in ("chrom", "pos", "id", "ref", "alt", *CSQ_FIELDS,
                                             "known_id", "clinvar", "allele_frequency")]
    select += [f'"{column}"' for column in af_columns]
    if info.has_samples:
        select.append("carriers")
    # The sample columns are written by DuckDB: one string per record crosses into Python.
    if mode == "list":
        select.append(f"array_to_string(list_transform(genotypes, lambda g: "
                      f"{_sample_sql('g.gt', 'g.depth', 'g.gq')}), chr(9)) AS sample_text")
    elif mode == "flat":
        select.append(f"{_sample_sql('genotype', 'depth', 'gq')} AS sample_text")
    # Genomic (file) order always; the scan keeps it without sorting when rows are picked.
    order = "" if info.has_picked else " ORDER BY file_row_number"
    source = scan.source_with_genotypes(compiled) if mode == "list" else scan.source_for(compiled)
    sql = f"SELECT {', '.join(select)} FROM {source}{compiled.where}{order}"  # noqa: S608
    samples = list(info.samples) if mode == "list" else (
        [info.samples[0] if info.samples else "SAMPLE"] if mode == "flat" else [])
    columns = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    if samples:
        columns += ["FORMAT", *samples]
    try:
        text = [*header, *vcf_info_lines(scan), "\t".join(columns)]
        yield ("\n".join(text) + "\n").encode()
        result = cursor.execute(sql, compiled.params)
        names = [d[0] for d in result.description or []]
        current: tuple[Any, ...] | None = None
        record: dict[str, Any] = {}
        csq: list[str] = []
        lines: list[str] = []
        while batch := result.fetchmany(BATCH_ROWS):
            for values in batch:
                row = dict(zip(names, values, strict=True))
                key = (row["chrom"], row["pos"], row["ref"], row["alt"])
                if key != current:
                    if current is not None:
                        lines.append(_record(record, csq, af_columns, mode))
                    current, record, csq = key, row, []
                if row["transcript"] is not None or row["gene"] is not None or not csq:
                    csq.append("|".join(_enc(row[name]) for name in CSQ_FIELDS))
            if lines:
                yield ("\n".join(lines) + "\n").encode()
                lines = []
        if current is not None:
            yield (_record(record, csq, af_columns, mode) + "\n").encode()
    finally:
        cursor.close()


def _record(row: dict[str, Any], csq: list[str], af_columns: list[str], mode: str | None) -> str:
    info: list[str] = []
    entries = [entry for entry in csq if entry.strip("|")]
    if entries:
        info.append("GAS_CSQ=" + ",".join(entries))
    if row["known_id"]:
        info.append("GAS_KNOWN_ID=" + ",".join(
            _enc(item.strip()) for item in str(row["known_id"]).replace(";", ",").split(",")
            if item.strip()))
    if row["clinvar"]:
        info.append("GAS_CLNSIG=" + ",".join(
            _enc(item.strip()) for item in str(row["clinvar"]).split(",") if item.strip()))
    if row["allele_frequency"] is not None:
        info.append(f"GAS_AF={_number(row['allele_frequency'])}")
    for column in af_columns:
        if row[column] is not None:
            info.append(f"GAS_{column.upper()}={_number(row[column])}")
    if row.get("carriers") is not None:
        info.append(f"GAS_CARRIERS={row['carriers']}")
    fields = [str(row["chrom"]), str(row["pos"]), row["id"] or ".", str(row["ref"]),
              str(row["alt"]), ".", ".", ";".join(info) or "."]
    if mode is not None:
        fields += ["GT:DP:GQ", row["sample_text"] or ""]
    return "\t".join(fields)


def _sample_sql(gt: str, depth: str, gq: str) -> str:
    return (f"concat_ws(':', coalesce(nullif({gt}, ''), '.'), "
            f"coalesce(CAST({depth} AS VARCHAR), '.'), coalesce(CAST({gq} AS VARCHAR), '.'))")


def read_vcf_header(s3: S3Client, bucket: str, key: str) -> list[str] | None:
    """The `##` lines of the job's annotated VCF.gz (its contigs, reference, provenance), but
    not its INFO/FORMAT definitions (the export writes its own); None when not readable."""
    try:
        body = s3.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{HEADER_BYTES - 1}")["Body"]
        data = body.read()
    except Exception as error:
        log.warning("annotated VCF header not readable; minimal header", error=str(error))
        return None
    text = bytearray()
    while data and b"\n#CHROM" not in text:
        decompressor = zlib.decompressobj(31)  # one gzip member (a BGZF block) at a time
        try:
            text += decompressor.decompress(data)
        except zlib.error:
            return None
        data = decompressor.unused_data
    decoded = text.decode("utf-8", errors="replace")
    if "\n#CHROM" not in decoded:
        return None
    lines = decoded[: decoded.index("\n#CHROM")].splitlines()
    return [line for line in lines if line.startswith("##")
            and not line.startswith(("##INFO=", "##FORMAT="))]


def minimal_header(cursor: duckdb.DuckDBPyConnection, scan: Scan) -> list[str]:
    contigs = [row[0] for row in cursor.execute(
        f"SELECT chrom FROM {scan.source} GROUP BY chrom ORDER BY min(file_row_number)"  # noqa: S608
    ).fetchall()]
    return ["##fileformat=VCFv4.2", *(f"##contig=<ID={contig}>" for contig in contigs)]
