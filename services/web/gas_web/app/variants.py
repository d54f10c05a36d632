"""The variant browser's data: filtered, sorted pages of a job's annotated rows.

The annotator writes its rows as Parquet (`job.result_keys["parquet"]`). The file is downloaded
once per job into a size-bounded local cache and queried with DuckDB, which pushes filters and
column selection down into the Parquet scan: a page costs a scan of the needed columns, and
no more than one page of rows ever becomes Python objects.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from gas_core.jobs import Job
from gas_core.logging import get_logger
from gas_web.app.core.errors import Problem

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = get_logger(__name__)

# The TSV column contract: API rows have exactly these keys.
COLUMNS = ("chrom", "pos", "id", "ref", "alt", "gene", "transcript", "consequence", "impact",
           "protein_change", "known_id", "clinvar", "allele_frequency")
IMPACTS = ("HIGH", "MODERATE", "LOW", "MODIFIER")
_IMPACT_RANK = ("CASE impact WHEN 'HIGH' THEN 0 WHEN 'MODERATE' THEN 1 WHEN 'LOW' THEN 2 "
                "WHEN 'MODIFIER' THEN 3 ELSE 4 END")
# Sort keys offered to users → SQL expressions (never user text in SQL).
SORTS: dict[str, str] = {
    "position": "file_row_number",  # the annotator writes rows in genomic order
    "gene": "gene",
    "consequence": "consequence",
    "impact": _IMPACT_RANK,
    "allele_frequency": "allele_frequency",
    "clinvar": "clinvar",
}
MAX_PAGE = 500
# Far beyond any result's row count (the annotator's inputs are capped in bytes).
MAX_OFFSET = 2**31 - 1


@dataclass(frozen=True)
class VariantQuery:
    gene: str | None = None
    consequence: str | None = None
    impact: str | None = None
    clinvar: str | None = None
    known: bool | None = None
    max_af: float | None = None
    sort: str = "position"
    descending: bool = False

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.gene:
            # Exact match keeps the Parquet min/max pushdown; symbols are usually upper case.
            clauses.append("gene IN (?, ?)")
            params += [self.gene.strip(), self.gene.strip().upper()]
        if self.consequence:
            clauses.append("list_contains(string_split(consequence, '&'), ?)")
            params.append(self.consequence.strip())
        if self.impact:
            clauses.append("impact = ?")
            params.append(self.impact.strip().upper())
        if self.clinvar:
            clauses.append("list_contains(string_split(lower(clinvar), ','), ?)")
            params.append(self.clinvar.strip().lower())
        if self.known is True:
            clauses.append("coalesce(known_id, '') <> ''")
        elif self.known is False:
            clauses.append("coalesce(known_id, '') = ''")
        if self.max_af is not None:
            # A variant with no known frequency is kept: unknown is not common.
            clauses.append("(allele_frequency IS NULL OR allele_frequency <= ?)")
            params.append(self.max_af)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params

    def order_by(self) -> str:
        expression = SORTS.get(self.sort, SORTS["position"])
        direction = "DESC" if self.descending else "ASC"
        return f" ORDER BY {expression} {direction} NULLS LAST, file_row_number"


@dataclass(frozen=True)
class VariantPage:
    items: list[dict[str, Any]]
    total: int
    offset: int
    limit: int

    @property
    def next_offset(self) -> int | None:
        return self.offset + self.limit if self.offset + self.limit < self.total else None


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The offset in a cursor from `encode_cursor`; anything else is a 400, never a 500."""
    if not cursor:
        return 0
    invalid = Problem(400, "The cursor is not valid; start from the first page.",
                      title="Invalid cursor")
    try:
        data = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                           validate=True))
    except (binascii.Error, ValueError):
        raise invalid from None
    # Exactly {"o": <int>} in range: a bool is an int to Python, and DuckDB takes 64-bit ints.
    if not isinstance(data, dict) or set(data) != {"o"}:
        raise invalid
    offset = data["o"]
    if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
        raise invalid
    return offset


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
        self._db = duckdb.connect(":memory:", config={"threads": 2})
        self._options: dict[str, dict[str, list[str]]] = {}

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
                os.utime(path)  # most recently used: evicted last
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
        files = sorted(self._dir.glob("*.parquet"), key=lambda p: p.stat().st_mtime)
        total = sum(p.stat().st_size for p in files)
        for path in files:
            if total <= self._max_bytes:
                break
            if path == keep:
                continue
            total -= path.stat().st_size
            path.unlink(missing_ok=True)
            self._options.pop(path.stem, None)

    def page(
        self, job: Job, query: VariantQuery, *, offset: int = 0, limit: int = 50
    ) -> VariantPage:
        path = self.local_file(job)
        limit = max(1, min(limit, MAX_PAGE))
        source = _source(path)
        columns = ", ".join(
            column if column in _schema_names(path) else f"NULL AS {column}" for column in COLUMNS
        )
        where, params = query.where()
        cursor = self._db.cursor()
        try:
            # SQL is assembled only from our own fragments; every user value is a parameter.
            count_sql = f"SELECT count(*) FROM {source}{where}"  # noqa: S608
            rows_sql = f"SELECT {columns} FROM {source}{where}{query.order_by()} LIMIT ? OFFSET ?"  # noqa: S608
            counted = cursor.execute(count_sql, params).fetchone()
            total = int(counted[0]) if counted else 0
            result = cursor.execute(rows_sql, [*params, limit, offset])
            names = [d[0] for d in result.description or []]
            rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
        finally:
            cursor.close()
        return VariantPage(items=rows, total=total, offset=offset, limit=limit)

    def filter_options(self, job: Job) -> dict[str, list[str]]:
        """Values offered in the browser's filter menus (consequence terms, ClinVar terms)."""
        if _cache_name(job) in self._options:
            return self._options[_cache_name(job)]
        path = self.local_file(job)
        source = _source(path)
        cursor = self._db.cursor()
        try:
            terms_sql = (
                "SELECT DISTINCT unnest(string_split({expr}, '{sep}')) AS c "  # noqa: S608
                f"FROM {source} WHERE {{column}} IS NOT NULL ORDER BY c"
            )
            consequences = [r[0] for r in cursor.execute(terms_sql.format(
                expr="consequence", sep="&", column="consequence")).fetchall() if r[0]]
            clinvar = [r[0] for r in cursor.execute(terms_sql.format(
                expr="lower(clinvar)", sep=",", column="clinvar")).fetchall() if r[0]]
        finally:
            cursor.close()
        options = {"consequence": consequences, "clinvar": clinvar, "impact": list(IMPACTS)}
        self._options[_cache_name(job)] = options
        return options


def _source(path: Path) -> str:
    # The path is ours (cache dir + a hash), never user text; quotes escaped anyway.
    quoted = str(path).replace("'", "''")
    return f"read_parquet('{quoted}', file_row_number = true)"


def _schema_names(path: Path) -> set[str]:
    # DuckDB reads the footer only; no need for pyarrow (~130 MB of the image) for this.
    quoted = str(path).replace("'", "''")
    with duckdb.connect(":memory:") as db:
        return set(db.sql(f"SELECT * FROM read_parquet('{quoted}') LIMIT 0").columns)  # noqa: S608
