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
from typing import TYPE_CHECKING

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
_ENCODE = {"%": "%25", ":": "%3A", ";": "%3B", "=": "%3D", ",": "%2C", "|": "%7C", " ": "%20",
           "\t": "%09", "\n": "%0A", "\r": "%0D"}
# What Python's str.strip() strips (every such character is below U+3001), for DuckDB's trim.
_WHITESPACE = "".join(char for char in map(chr, range(0x3001)) if char.isspace())
# A comma list with nothing to strip, drop or encode.
_PLAIN_LIST = "[0-9A-Za-z_./+-]+(,[0-9A-Za-z_./+-]+)*"


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
    sql = _vcf_sql(cursor, scan, compiled, mode)
    samples = list(info.samples) if mode == "list" else (
        [info.samples[0] if info.samples else "SAMPLE"] if mode == "flat" else [])
    names = ["#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO"]
    if samples:
        names += ["FORMAT", *samples]
    try:
        text = [*header, *vcf_info_lines(scan), "\t".join(names)]
        yield ("\n".join(text) + "\n").encode()
        result = cursor.execute(sql, compiled.params)
        current: str | None = None
        fields = tail_text = ""
        entries: list[str] = []
        lines: list[str] = []
        while batch := result.fetchmany(BATCH_ROWS):
            for key, csq, listed, row_head, row_tail in batch:
                if key != current:
                    if current is not None:
                        lines.append(_record(fields, entries, tail_text))
                    current, fields, tail_text, entries = key, row_head, row_tail, []
                elif not listed:  # past a variant's first row, only rows naming a gene or
                    continue  # transcript add theirs
                if csq is not None:
                    entries.append(csq)
            if lines:
                yield ("\n".join(lines) + "\n").encode()
                lines = []
        if current is not None:
            yield (_record(fields, entries, tail_text) + "\n").encode()
    finally:
        cursor.close()


def _vcf_sql(
    cursor: duckdb.DuckDBPyConnection, scan: Scan, compiled: Compiled, mode: str | None
) -> str:
    info = scan.info
    # (INFO ID, column) of each AF field: the default's, then every af_* column.
    afs = [("GAS_AF", "allele_frequency"),
           *((f"GAS_{af.column.upper()}", af.column) for af in info.af_fields)]
    columns = [scan.column(name) for name in ("chrom", "pos", "id", "ref", "alt", *CSQ_FIELDS,
                                              "known_id", "clinvar")]
    columns += [scan.column(column) for _, column in afs]
    if info.has_samples:
        columns.append("carriers")
    if mode == "list":
        columns.append(f"array_to_string(list_transform(genotypes, lambda g: "
                       f"{_sample_sql('g.gt', 'g.depth', 'g.gq')}), chr(9)) AS sample_text")
    elif mode == "flat":
        columns.append(f"{_sample_sql('genotype', 'depth', 'gq')} AS sample_text")
    # Genomic (file) order always; the scan keeps it without sorting when rows are picked.
    order = ""
    if not info.has_picked:
        columns.append("file_row_number")
        order = " ORDER BY file_row_number"
    source = scan.source_with_genotypes(compiled) if mode == "list" else scan.source_for(compiled)
    af_types = {name: str(kind) for name, kind, *_ in cursor.execute(
        f"SELECT {', '.join(scan.column(c) for _, c in afs)} FROM {scan.source} LIMIT 0"  # noqa: S608
    ).description or []}
    # DuckDB writes each row's text: the variant's key, its GAS_CSQ entry, whether the entry
    # is listed after a variant's first row, the fields before INFO and the INFO fields after
    # GAS_CSQ (each led by ";") with the sample columns. Python only joins a variant's rows.
    # One encoding over the list of fields: seven copies of it take DuckDB ~15 ms to plan.
    fields = ", ".join(f"CAST({name} AS VARCHAR)" for name in CSQ_FIELDS)
    entry = (f"array_to_string(list_transform([{fields}], "
             f"lambda field: coalesce({_encoded_sql('field')}, '')), '|')")
    head = "concat_ws(chr(9), chrom, pos, coalesce(nullif(id, ''), '.'), ref, alt, '.', '.', '')"
    known_ids = _id_list_sql("replace(known_id, ';', ',')")
    tail = [f"';GAS_KNOWN_ID=' || {known_ids}", f"';GAS_CLNSIG=' || {_id_list_sql('clinvar')}"]
    tail += [f"';{name}=' || {_number_sql(column, af_types[column])}" for name, column in afs]
    if info.has_samples:
        tail.append("';GAS_CARRIERS=' || CAST(carriers AS VARCHAR)")
    if mode is not None:
        tail.append("chr(9) || 'GT:DP:GQ' || chr(9) || coalesce(sample_text, '')")
    return (f"SELECT concat_ws(chr(9), chrom, pos, ref, alt), "  # noqa: S608
            f"nullif({entry}, '{'|' * (len(CSQ_FIELDS) - 1)}'), "
            f"transcript IS NOT NULL OR gene IS NOT NULL, {head}, concat({', '.join(tail)}) "
            f"FROM (SELECT {', '.join(columns)} FROM {source}{compiled.where}){order}")


def _record(head: str, entries: list[str], tail: str) -> str:
    """One VCF line from the text DuckDB wrote: `tail` is the INFO fields after GAS_CSQ, each
    led by ";", then the sample columns."""
    if entries:
        return f"{head}GAS_CSQ={','.join(entries)}{tail}"
    return head + (tail[1:] if tail.startswith(";") else "." + tail)


def _encoded_sql(value: str) -> str:
    """`value` percent-encoded as `_ENCODE` does ("%" first, so no code is encoded again)."""
    for char, code in _ENCODE.items():
        value = f"replace({value}, chr({ord(char)}), '{code}')"
    return value


def _id_list_sql(text: str) -> str:
    """A comma list's items, stripped as Python's str.strip() does, empty ones dropped, each
    percent-encoded; NULL when `text` is NULL or ''. Most lists (rs123,rs456) are already
    that: only the others pay for splitting them."""
    items = (f"list_filter(list_transform(string_split({text}, ','), "
             f"lambda item: trim(item, '{_WHITESPACE}')), lambda item: item <> '')")
    return (f"CASE WHEN regexp_full_match({text}, '{_PLAIN_LIST}') THEN {text} "
            f"WHEN {text} <> '' THEN array_to_string(list_transform({items}, "
            f"lambda item: {_encoded_sql('item')}), ',') END")


def _number_sql(column: str, kind: str) -> str:
    """The value as Python's repr of the float DuckDB returns (str of any other number).
    DuckDB's shortest round-trip double text is repr's, but for NaN's sign; a FLOAT is
    widened to that double first (its own text is shorter than repr of the double)."""
    if kind not in ("FLOAT", "DOUBLE"):
        return f"CAST({column} AS VARCHAR)"
    return (f"CASE WHEN isnan({column}) THEN 'nan' "
            f"ELSE CAST(CAST({column} AS DOUBLE) AS VARCHAR) END")


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
