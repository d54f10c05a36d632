"""The annotation queue as a user sees it: how many jobs wait before theirs, and when it should
start and finish at the annotators' recent pace.

* Position: PENDING jobs carry the keys of the sparse `queue` index (QUEUE_INDEX: the constant
  QUEUE_PENDING as hash key, the submit time as range key), put with the job at submit and
  removed by the very write that moves it out of PENDING (gas_core.jobs.store). A job's
  position is a COUNT Query of that index below its own submit time: only a number leaves the
  table, never another user's job.
* Pace: one item (THROUGHPUT_PK/THROUGHPUT_SK) holds exponentially weighted moving averages
  of a completed job's duration, input size and variant count, updated by the annotator after
  each completed job with a version-guarded write (a lost race re-reads and retries).

The estimate assumes the jobs ahead are like the recent ones and that `slots` jobs run at once
(the annotators at full scale); docs/architecture.md ("Queue position and ETA") lists its
limits.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from gas_core.jobs.codec import SERIALIZER, deserialize_item, is_conditional_failure, to_dynamo
from gas_core.jobs.keys import THROUGHPUT_PK, THROUGHPUT_SK
from gas_core.jobs.models import Job, JobStatus
from gas_core.jobs.store import TableStore
from gas_core.logging import get_logger
from gas_core.resources import QUEUE_INDEX, QUEUE_PENDING

log = get_logger("gas.jobs.queue")

# Weight of the newest job in the moving averages: about the last ten jobs count.
EWMA_WEIGHT = 0.2
# Counting stops here: a COUNT Query reads (and is billed for) every index entry it counts,
# so a very deep queue costs at most this many small keys-only entries per read (one page).
QUEUE_COUNT_LIMIT = 1000
# Tries of the throughput update when another annotator updated it at the same moment.
_UPDATE_TRIES = 5


def queue_item_attributes(job: Job) -> dict[str, Any]:
    """The queue index keys of a new item: only a PENDING job is in the queue."""
    if job.status is not JobStatus.PENDING:
        return {}
    return {QUEUE_INDEX.hash_key: QUEUE_PENDING,
            QUEUE_INDEX.range_key: job.submitted_at.timestamp()}


@dataclass(frozen=True)
class Throughput:
    """Moving averages over the recently completed jobs (all annotators together)."""

    job_seconds: float  # claim -> completed: download, annotation, upload
    input_bytes: float
    variants: float
    jobs: int  # completed jobs counted so far
    version: int = 0

    def seconds_for(self, input_bytes: int | None) -> float:
        """Expected duration of a job of this input size: the recent jobs' pace (their
        average bytes over their average seconds), or their average duration when the size
        is unknown."""
        if not input_bytes or self.input_bytes <= 0:
            return self.job_seconds
        return self.job_seconds * input_bytes / self.input_bytes


@dataclass(frozen=True)
class QueueStatus:
    """What the job JSON shows of the queue: both None unless the job is PENDING."""

    position: int | None = None  # PENDING jobs submitted before this one (0: next)
    start: datetime | None = None
    finish: datetime | None = None

    def to_api(self) -> dict[str, Any]:
        eta = ({"start": _iso(self.start), "finish": _iso(self.finish)}
               if self.start is not None and self.finish is not None else None)
        return {"queue_position": self.position, "eta": eta}


def estimate(
    *, ahead: int, throughput: Throughput | None, slots: int, input_bytes: int | None,
    now: datetime,
) -> tuple[datetime, datetime] | None:
    """(start, finish) of a job with `ahead` jobs before it: the jobs ahead drain through
    `slots` annotators at the recent average duration, then this one runs at the recent pace.
    None before any job has completed (nothing to base it on)."""
    if throughput is None or throughput.jobs == 0:
        return None
    start = now + timedelta(seconds=ahead * throughput.job_seconds / max(slots, 1))
    return start, start + timedelta(seconds=throughput.seconds_for(input_bytes))


class QueueStore(TableStore):
    def queue_position(self, job: Job) -> int:
        """PENDING jobs (any user's) submitted before `job`, up to QUEUE_COUNT_LIMIT.

        An eventually consistent COUNT Query of the keys-only queue index: it returns a number
        and no item. Jobs submitted in the same microsecond do not count each other."""
        request: dict[str, Any] = {
            "TableName": self._table,
            "IndexName": QUEUE_INDEX.name,
            "KeyConditionExpression": "#pending = :pending AND #at < :at",
            "ExpressionAttributeNames": {"#pending": QUEUE_INDEX.hash_key,
                                         "#at": QUEUE_INDEX.range_key},
            "ExpressionAttributeValues": {
                ":pending": {"S": QUEUE_PENDING},
                ":at": SERIALIZER.serialize(to_dynamo(job.submitted_at.timestamp())),
            },
            "Select": "COUNT",
            "Limit": QUEUE_COUNT_LIMIT,
        }
        response = self._db.query(**request)
        return min(int(response.get("Count", 0)), QUEUE_COUNT_LIMIT)

    def queue_status(self, job: Job, *, slots: int, now: datetime) -> QueueStatus:
        """Position and estimated start/finish of a PENDING job; all None otherwise."""
        if job.status is not JobStatus.PENDING:
            return QueueStatus()
        ahead = self.queue_position(job)
        window = estimate(ahead=ahead, throughput=self.throughput(), slots=slots,
                          input_bytes=job.input_bytes, now=now)
        if window is None:
            return QueueStatus(position=ahead)
        return QueueStatus(position=ahead, start=window[0], finish=window[1])

    def queue_statuses(
        self, jobs: Sequence[Job], *, slots: int, now: datetime
    ) -> dict[str, QueueStatus]:
        """queue_status of every job of a list (by job_id), with one Query and one read of the
        pace, however many of them are PENDING.

        The Query reads the queue index's submit times below the newest PENDING job's (only
        that attribute, up to QUEUE_COUNT_LIMIT), and each job's position is the number of
        times below its own, as queue_position counts them."""
        pending = [job for job in jobs if job.status is JobStatus.PENDING]
        statuses = {job.job_id: QueueStatus() for job in jobs}
        if not pending:
            return statuses
        newest = max(job.submitted_at.timestamp() for job in pending)
        response = self._db.query(
            TableName=self._table,
            IndexName=QUEUE_INDEX.name,
            KeyConditionExpression="#pending = :pending AND #at < :at",
            ProjectionExpression="#at",
            ExpressionAttributeNames={"#pending": QUEUE_INDEX.hash_key,
                                      "#at": QUEUE_INDEX.range_key},
            ExpressionAttributeValues={
                ":pending": {"S": QUEUE_PENDING},
                ":at": SERIALIZER.serialize(to_dynamo(newest)),
            },
            Limit=QUEUE_COUNT_LIMIT,
        )
        times = sorted(float(item[QUEUE_INDEX.range_key]["N"]) for item in response["Items"])
        throughput = self.throughput()
        for job in pending:
            # A cut page holds the QUEUE_COUNT_LIMIT oldest: a job past them shows the cap.
            ahead = bisect_left(times, job.submitted_at.timestamp())
            window = estimate(ahead=ahead, throughput=throughput, slots=slots,
                              input_bytes=job.input_bytes, now=now)
            statuses[job.job_id] = (QueueStatus(position=ahead) if window is None else
                                    QueueStatus(position=ahead, start=window[0],
                                                finish=window[1]))
        return statuses

    def throughput(self) -> Throughput | None:
        response = self._db.get_item(TableName=self._table, Key=_throughput_key())
        item = response.get("Item")
        if item is None:
            return None
        plain = deserialize_item(item)
        return Throughput(
            job_seconds=float(plain.get("job_seconds", 0)),
            input_bytes=float(plain.get("input_bytes", 0)),
            variants=float(plain.get("variants", 0)),
            jobs=int(plain.get("jobs", 0)),
            version=int(plain.get("version", 0)),
        )

    def record_completed_job(self, *, seconds: float, input_bytes: int, variants: int) -> bool:
        """Fold one completed job into the moving averages (a version-guarded write; a race
        with another annotator re-reads and tries again). False if it gave up: the averages
        are advisory, so a lost sample is not an error."""
        for _ in range(_UPDATE_TRIES):
            current = self.throughput()
            updated = _folded(current, seconds=seconds, input_bytes=input_bytes,
                              variants=variants)
            condition = ("attribute_not_exists(pk)" if current is None
                         else "#version = :expected")
            values: dict[str, Any] = {
                ":job_seconds": updated.job_seconds, ":input_bytes": updated.input_bytes,
                ":variants": updated.variants, ":jobs": updated.jobs,
                ":version": updated.version,
            }
            if current is not None:
                values[":expected"] = current.version
            try:
                self._db.update_item(
                    TableName=self._table,
                    Key=_throughput_key(),
                    UpdateExpression=("SET job_seconds = :job_seconds, input_bytes = :input_bytes,"
                                      " variants = :variants, jobs = :jobs, #version = :version"),
                    ConditionExpression=condition,
                    ExpressionAttributeNames={"#version": "version"},
                    ExpressionAttributeValues={
                        name: SERIALIZER.serialize(to_dynamo(value))
                        for name, value in values.items()
                    },
                )
            except ClientError as error:
                if not is_conditional_failure(error):
                    raise
                continue
            return True
        log.warning("throughput_update_gave_up", tries=_UPDATE_TRIES)
        return False


def _folded(
    current: Throughput | None, *, seconds: float, input_bytes: int, variants: int
) -> Throughput:
    if current is None or current.jobs == 0:
        return Throughput(job_seconds=float(seconds), input_bytes=float(input_bytes),
                          variants=float(variants), jobs=1, version=1)

    def mix(old: float, new: float) -> float:
        return (1 - EWMA_WEIGHT) * old + EWMA_WEIGHT * new

    return Throughput(
        job_seconds=mix(current.job_seconds, seconds),
        input_bytes=mix(current.input_bytes, input_bytes),
        variants=mix(current.variants, variants),
        jobs=current.jobs + 1,
        version=current.version + 1,
    )


def _iso(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _throughput_key() -> dict[str, Any]:
    return {"pk": {"S": THROUGHPUT_PK}, "sk": {"S": THROUGHPUT_SK}}
