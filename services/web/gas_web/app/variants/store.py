"""The variant browser's data: filtered, sorted pages of a job's annotated rows, their
summary, one variant's detail and filtered exports.

The annotator writes its rows as Parquet (`job.result_keys["parquet"]`). The file is downloaded
once per job into a size-bounded local cache and queried with DuckDB, which pushes filters and
column selection down into the Parquet scan: a page costs a scan of the needed columns, and
no more than one page of rows ever becomes Python objects; exports stream in batches.
"""

from __future__ import annotations

import copy
import hashlib
import os
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from gas_core.jobs import Job
from gas_core.logging import get_logger
from gas_web.app.core.errors import Problem
from gas_web.app.variants import detail as detail_module
from gas_web.app.variants import export as export_module
from gas_web.app.variants import summary as summary_module
from gas_web.app.variants.info import ResultInfo, read_info
from gas_web.app.variants.links import LinkTemplates
from gas_web.app.variants.orders import page_in_order, write_order
from gas_web.app.variants.paging import page_row_numbers
from gas_web.app.variants.query import (
    CLINVAR_TERMS_SQL,
    IMPACTS,
    KEY_SORTS,
    MAX_PAGE,
    Compiled,
    VariantQuery,
    compile_query,
)
from gas_web.app.variants.scan import Scan, zygosity_sql

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = get_logger(__name__)
# Totals of recent queries, so paging through a filtered view counts its rows once.
_TOTALS_KEPT = 512
# Filtered summaries of recent queries: a summary follows the filter, not the page or sort,
# so paging or re-sorting a filtered view reuses it (a transcript-view summary of a 4M-row
# result costs ~1 s; a page ~0.1 s).
_SUMMARIES_KEPT = 64
DUCKDB_MEMORY = "512MB"
ZYGOSITY_SUFFIX = ".samples"
# The by-sample copy's earlier layout (row numbers stored), left in a cache dir that outlives
# an upgrade (`make run`'s /tmp one): never read, removed with its result.
_OLD_ZYGOSITY_SUFFIX = ".zygosity"
# A sorted row order (gas_web.app.variants.orders): `<result>.order-<key digest>`.
ORDER_SUFFIX = ".order-"
ExportFormat = Literal["tsv", "vcf"]


@dataclass(frozen=True)
class VariantPage:
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None


def _cache_name(job: Job) -> str:
    # Per user *and* job: two users' jobs may share an id, and neither may see the other's rows.
    return hashlib.sha256(f"{job.user_id}\n{job.job_id}".encode()).hexdigest()[:40]


class VariantStore:
    """Per-job local Parquet files and the queries over them. Thread-safe.

    The cache directory is private (0700, files 0600, owned by this OS user): results are
    users' data, and a temp directory is shared by everyone on the host.
    """

    def __init__(self, *, s3: S3Client, bucket: str, cache_dir: Path, max_bytes: int) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._dir = cache_dir
        self._max_bytes = max_bytes
        self._locks: dict[str, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Bounded: sorts and aggregates beyond this spill to the private cache directory, so
        # the process's memory does not grow with the result (see the browser benchmark).
        self._db = duckdb.connect(":memory:", config={
            "threads": 2, "memory_limit": DUCKDB_MEMORY,
            "temp_directory": str(cache_dir / "duckdb-spill")})
        # Each query would otherwise parse the file's footer again (~12 ms at 4M rows, ~90 row
        # groups x ~40 columns), and a page or summary runs several. A changed file is read
        # afresh (checked: even one replaced within the same second); the LRU below marks use
        # in atime, not mtime, so a used file does not look changed.
        self._db.execute("SET parquet_metadata_cache = true")
        self._options: dict[str, dict[str, list[str]]] = {}
        self._info: dict[str, ResultInfo] = {}
        self._headers: dict[str, list[str]] = {}
        self._totals: OrderedDict[tuple[str, str, str], int] = OrderedDict()
        self._summaries: OrderedDict[tuple[str, str, str, str], dict[str, Any]] = OrderedDict()

    def _lock(self, job_id: str) -> threading.Lock:
        with self._locks_guard:
            return self._locks.setdefault(job_id, threading.Lock())

    def cache_path(self, job: Job) -> Path:
        return self._dir / f"{_cache_name(job)}.parquet"

    def local_file(self, job: Job) -> Path:
        """The job's Parquet file on local disk, downloaded on first use."""
        key = job.result_keys.get("parquet")
        if not key:
            raise Problem(404, "This job has no variant table.")
        name = _cache_name(job)
        path = self.cache_path(job)
        with self._lock(name):
            if path.exists():
                # Most recently used, evicted last (atime: see parquet_metadata_cache).
                os.utime(path, ns=(time.time_ns(), path.stat().st_mtime_ns))
                return path
            self._private_dir()
            partial = path.with_suffix(".part")
            partial.unlink(missing_ok=True)  # left by a crash: recreated 0600 below
            descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW,
                                 0o600)
            with os.fdopen(descriptor, "wb") as out:
                self._s3.download_fileobj(self._bucket, key, out)
            partial.replace(path)  # atomic: readers never see a half-written file
            log.info("result cached", job_id=job.job_id, bytes=path.stat().st_size)
        self._evict(keep=path)
        return path

    def _private_dir(self) -> None:
        """Create the cache directory 0700, or refuse one that is not this user's own."""
        self._dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = os.lstat(self._dir)
        if stat.S_ISLNK(info.st_mode) or info.st_uid != os.getuid():
            raise RuntimeError(f"the web cache directory {self._dir} is not owned by this user; "
                               "set GAS_WEB_CACHE_DIR to a private directory")
        if stat.S_IMODE(info.st_mode) != 0o700:
            self._dir.chmod(0o700)

    def _evict(self, *, keep: Path) -> None:
        def made_from(path: Path) -> list[Path]:  # its by-sample copy and orders, if made
            return [path.with_suffix(ZYGOSITY_SUFFIX),
                    *self._dir.glob(f"{path.stem}{ORDER_SUFFIX}*")]

        def size(path: Path) -> int:
            return path.stat().st_size + sum(
                made.stat().st_size for made in made_from(path) if made.exists())

        files = sorted(self._dir.glob("*.parquet"), key=lambda p: p.stat().st_atime_ns)
        total = sum(size(p) for p in files)
        for path in files:
            if total <= self._max_bytes:
                break
            if path == keep:
                continue
            total -= size(path)
            for made in made_from(path):
                made.unlink(missing_ok=True)
            path.unlink(missing_ok=True)
            path.with_suffix(_OLD_ZYGOSITY_SUFFIX).unlink(missing_ok=True)
            for cached in (self._options, self._info, self._headers):
                cached.pop(path.stem, None)

    def info(self, job: Job) -> ResultInfo:
        """What the job's file holds: AF fields, samples, whether rows are picked."""
        name = _cache_name(job)
        cached = self._info.get(name)
        if cached is None:
            cached = read_info(self._db, self.local_file(job))
            self._info[name] = cached
        else:
            self.local_file(job)  # marks it recently used (and fetches it again if evicted)
        return cached

    def scan(self, job: Job, compiled: Compiled | None = None) -> Scan:
        """The job's file to query; with the per-sample zygosity file when `compiled` names a
        sample of a multi-sample result (made once, on the first such query)."""
        info = self.info(job)
        path = self.cache_path(job)
        if compiled is None or compiled.sample_index is None:
            return Scan(path, info)
        zygosity = path.with_suffix(ZYGOSITY_SUFFIX)
        with self._lock(_cache_name(job)):
            if not zygosity.exists():
                partial = zygosity.with_suffix(".zpart")
                partial.unlink(missing_ok=True)
                # Its own small connection, one thread: a parallel COPY buffers a row group
                # per thread (+170 MB at 4M rows), for a second more.
                with duckdb.connect(":memory:", config={
                        "threads": 1, "memory_limit": "256MB",
                        "temp_directory": str(self._dir / "duckdb-spill")}) as db:
                    db.execute(zygosity_sql(path, info, partial))
                partial.chmod(0o600)
                partial.replace(zygosity)
                log.info("sample zygosity cached", job_id=job.job_id, samples=len(info.samples))
        return Scan(path, info, zygosity)

    def order(self, job: Job, scan: Scan, query: VariantQuery) -> Path:
        """The job's rows in the order of the query's key sort (made once, on the first page
        of that sort: see gas_web.app.variants.orders)."""
        key = query.sort_expression(scan.info)
        digest = hashlib.sha256(f"{key}\n{query.descending}".encode()).hexdigest()[:16]
        path = self.cache_path(job).with_suffix(f"{ORDER_SUFFIX}{digest}")
        with self._lock(_cache_name(job)):
            if not path.exists():
                partial = path.with_suffix(".opart")
                partial.unlink(missing_ok=True)
                cursor = self._db.cursor()
                try:
                    write_order(cursor, scan.source, key, descending=query.descending,
                                rows=scan.info.row_count, out=partial)
                finally:
                    cursor.close()
                partial.chmod(0o600)
                partial.replace(path)
                log.info("sorted row order cached", job_id=job.job_id, sort=query.sort,
                         descending=query.descending)
        return path

    def _compiled_scan(self, job: Job, query: VariantQuery) -> tuple[Scan, Compiled]:
        compiled = compile_query(query, self.info(job))
        return self.scan(job, compiled), compiled

    def page(
        self, job: Job, query: VariantQuery, *, offset: int = 0, limit: int = 50,
        genotypes: bool = True,
    ) -> VariantPage:
        """A page of the filtered, sorted rows; without `genotypes`, rows lack the per-sample
        list (the results table of a multi-sample file shows carriers unless a sample is
        chosen: the list is its widest read, ~35 ms of a page spread over 33 row groups)."""
        scan, compiled = self._compiled_scan(job, query)
        limit = max(1, min(limit, MAX_PAGE))
        source = scan.source_for(compiled)
        cursor = self._db.cursor()
        try:
            # Two steps: the page's row numbers from the filter columns alone (a key sort:
            # taken in the job's sorted row order, gas_web.app.variants.orders; file order:
            # gas_web.app.variants.paging; no sort of the whole set either way, and a new
            # filter's row count comes with them), then those rows' columns (row groups
            # found by row number), so wide columns are read for the page's rows only.
            if query.sort in KEY_SORTS:
                ids, total = page_in_order(
                    cursor, source, compiled, self.order(job, scan, query),
                    rows=scan.info.row_count, offset=offset, limit=limit)
            else:
                ids, total = page_row_numbers(
                    cursor, source, compiled, query, offset=offset, limit=limit,
                    total=self._kept_total(source, compiled))
            self._keep_total(source, compiled, total)
            rows: list[dict[str, Any]] = []
            if ids:
                columns = scan.row_select(query, genotypes=genotypes)
                rows_sql = (f"SELECT {columns}, file_row_number AS _row "  # noqa: S608
                            f"FROM {scan.source} WHERE file_row_number IN "
                            f"({', '.join('?' * len(ids))})")
                result = cursor.execute(rows_sql, ids)
                names = [d[0] for d in result.description or []]
                by_row = {row["_row"]: row for row in scan.rows(names, result.fetchall())}
                rows = [by_row[i] for i in ids]
                for row in rows:
                    del row["_row"]
        finally:
            cursor.close()
        return VariantPage(items=rows, total=total, offset=offset, limit=limit)

    def _kept_total(self, source: str, compiled: Compiled) -> int | None:
        key = (source, compiled.where, repr(compiled.params))
        with self._locks_guard:
            if key in self._totals:
                self._totals.move_to_end(key)
                return self._totals[key]
        return None

    def _keep_total(self, source: str, compiled: Compiled, total: int) -> None:
        with self._locks_guard:
            self._totals[(source, compiled.where, repr(compiled.params))] = total
            while len(self._totals) > _TOTALS_KEPT:
                self._totals.popitem(last=False)

    def forget_totals(self) -> None:
        """Count and summarise every filter afresh (the benchmark measures a new filter)."""
        with self._locks_guard:
            self._totals.clear()
            self._summaries.clear()

    def summary(self, job: Job, query: VariantQuery) -> dict[str, Any]:
        """Counts over the filtered set, for the charts (see gas_web.app.variants.summary)."""
        scan, compiled = self._compiled_scan(job, query)
        key = self._summary_key(scan, compiled, query)
        kept = self._kept_summary(key)
        if kept is not None:
            return kept
        cursor = self._db.cursor()
        try:
            summary = summary_module.summarize(cursor, scan, query, compiled)
        finally:
            cursor.close()
        with self._locks_guard:
            self._summaries[key] = copy.deepcopy(summary)
            while len(self._summaries) > _SUMMARIES_KEPT:
                self._summaries.popitem(last=False)
        return summary

    def kept_summary(self, job: Job, query: VariantQuery) -> dict[str, Any] | None:
        """This filter's summary if an earlier request made it (None: not kept)."""
        scan, compiled = self._compiled_scan(job, query)
        return self._kept_summary(self._summary_key(scan, compiled, query))

    def _kept_summary(self, key: tuple[str, str, str, str]) -> dict[str, Any] | None:
        with self._locks_guard:
            if key in self._summaries:
                self._summaries.move_to_end(key)
                return copy.deepcopy(self._summaries[key])
        return None

    @staticmethod
    def _summary_key(scan: Scan, compiled: Compiled, query: VariantQuery
                     ) -> tuple[str, str, str, str]:
        # The source names the user's own cached file, so no other user's summary matches.
        return (scan.source_for(compiled), compiled.where, repr(compiled.params), query.view)

    def detail(self, job: Job, key: str, links: LinkTemplates | None = None) -> dict[str, Any]:
        """One variant of this job by its key (`21-10413612-G-A`); 404 when it has none."""
        scan = self.scan(job)
        cursor = self._db.cursor()
        try:
            return detail_module.variant_detail(cursor, scan, key, assembly=job.assembly,
                                                links=links or LinkTemplates())
        finally:
            cursor.close()

    def export(self, job: Job, query: VariantQuery, fmt: ExportFormat) -> Iterator[bytes]:
        """The filtered, sorted set as TSV or bgzipped VCF, in chunks. Checks the query (and
        fetches the file and VCF header) now, so errors come before the first byte."""
        scan, compiled = self._compiled_scan(job, query)
        if fmt == "tsv":
            return export_module.tsv_stream(self._db.cursor(), scan, query, compiled)
        header = self._vcf_header(job, scan)
        return export_module.vcf_stream(self._db.cursor(), scan, query, compiled, header)

    def _vcf_header(self, job: Job, scan: Scan) -> list[str]:
        name = _cache_name(job)
        if name not in self._headers:
            key = job.result_keys.get("vcf")
            lines = export_module.read_vcf_header(self._s3, self._bucket, key) if key else None
            if lines is None:
                cursor = self._db.cursor()
                try:
                    lines = export_module.minimal_header(cursor, scan)
                finally:
                    cursor.close()
            self._headers[name] = lines
        return self._headers[name]

    def filter_options(self, job: Job) -> dict[str, list[str]]:
        """Values offered in the browser's filter menus (consequence terms, ClinVar terms)."""
        if _cache_name(job) in self._options:
            return self._options[_cache_name(job)]
        scan = self.scan(job)
        source = scan.source
        cursor = self._db.cursor()
        try:
            terms_sql = (
                "SELECT DISTINCT unnest(string_split({expr}, '{sep}')) AS c "  # noqa: S608
                f"FROM {source} WHERE {{column}} IS NOT NULL ORDER BY c"
            )
            consequences = [r[0] for r in cursor.execute(terms_sql.format(
                expr="consequence", sep="&", column="consequence")).fetchall() if r[0]]
            clinvar = [r[0] for r in cursor.execute(
                f"SELECT DISTINCT unnest({CLINVAR_TERMS_SQL}) AS c "  # noqa: S608
                f"FROM {source} WHERE clinvar IS NOT NULL ORDER BY c").fetchall() if r[0]]
        finally:
            cursor.close()
        options = {"consequence": consequences, "clinvar": clinvar, "impact": list(IMPACTS)}
        self._options[_cache_name(job)] = options
        return options
