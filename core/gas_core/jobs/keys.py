"""Key formats of the shared table and of result objects: nothing else spells a key."""

from __future__ import annotations

from datetime import UTC, datetime

from ulid import ULID

USER_PREFIX = "USER#"
JOB_PREFIX = "JOB#"
PROFILE_SK = "PROFILE"
# Idempotency markers of sent emails live under the user's partition too (never listed as
# jobs: job queries select `JOB#` sort keys only).
NOTIFIED_PREFIX = "NOTIFIED#"
# Upload reservations (a job id issued to its user at `POST /jobs`, consumed at submit) and
# signed-in browser sessions (revoked at logout) live under the user's partition too; both
# carry `expires_at` for DynamoDB TTL. The web service writes them (gas_web.app.uploads,
# gas_web.app.sessions).
UPLOAD_PREFIX = "UPLOAD#"
SESSION_PREFIX = "SESSION#"
# A user's saved filters (gas_core.jobs.saved_filters): one item per filter, one claim per
# name (names are unique per user) and one count (kept under the cap). Neither prefix begins
# with the other, so a `begins_with(sk, "FILTER#")` query lists filters only.
FILTER_PREFIX = "FILTER#"
FILTER_NAME_PREFIX = "FILTERNAME#"
FILTER_COUNT_SK = "FILTERS"
# The annotators' recent pace (gas_core.jobs.queue): one item outside every user's partition.
THROUGHPUT_PK = "SERVICE#annotator"
THROUGHPUT_SK = "THROUGHPUT"
# Result objects, in the results bucket and (same key) in the archive bucket.
RESULTS_KEY_PREFIX = "results/"


def user_pk(user_id: str) -> str:
    return f"{USER_PREFIX}{user_id}"


def job_sk(job_id: str) -> str:
    return f"{JOB_PREFIX}{job_id}"


def new_job_id() -> str:
    """Time-ordered (ULID), so a user's jobs sort newest-first by sort key alone."""
    return str(ULID())


def notified_sk(kind: str, job_id: str, occurrence: str | None = None) -> str:
    """Marker of one sent email: `NOTIFIED#{kind}#{job_id}` (+ `#{occurrence}` for events that
    can recur for the same job, e.g. a second restore after a second archive)."""
    return f"{NOTIFIED_PREFIX}{kind}#{job_id}" + (f"#{occurrence}" if occurrence else "")


def upload_sk(job_id: str) -> str:
    """Reservation of a job id issued to the partition's user: `UPLOAD#{job_id}`."""
    return f"{UPLOAD_PREFIX}{job_id}"


def session_sk(session_hash: str) -> str:
    """A signed-in browser session, by the hash of its id: `SESSION#{hash}`."""
    return f"{SESSION_PREFIX}{session_hash}"


def filter_sk(filter_id: str) -> str:
    """One saved filter: `FILTER#{filter_id}` (a ULID)."""
    return f"{FILTER_PREFIX}{filter_id}"


def filter_name_sk(name_key: str) -> str:
    """The claim on one saved-filter name: `FILTERNAME#{normalised name}`."""
    return f"{FILTER_NAME_PREFIX}{name_key}"


def results_prefix(user_id: str, job_id: str) -> str:
    """Where a job's result objects live: `results/{user_id}/{job_id}/`."""
    return f"{RESULTS_KEY_PREFIX}{user_id}/{job_id}/"


def parse_results_key(key: str) -> tuple[str, str] | None:
    """(user_id, job_id) of a result object's key, or None for a key of any other shape."""
    parts = key.split("/")
    if len(parts) < 4 or f"{parts[0]}/" != RESULTS_KEY_PREFIX or not all(parts[1:4]):
        return None
    user_id, job_id = parts[1], parts[2]
    return (user_id, job_id) if is_job_id(job_id) else None


def is_job_id(value: str) -> bool:
    try:
        ULID.from_str(value)
    except ValueError:
        return False
    return True


def utc_now() -> datetime:
    return datetime.now(UTC)
