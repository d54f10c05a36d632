"""Jobs and user profiles in the one shared DynamoDB table.

This module owns every key format, attribute name and state transition; nothing else builds a
key or writes the table. Two kinds of write keep concurrent services honest:

* version-guarded transitions: read the item, decide, then write with the condition
  "status/storage and version are still what I read" (`transition_status`, `transition_storage`,
  `claim_lease`, profile updates). The loser gets `ConflictError` with the current item.
* lease-guarded writes by the worker that holds a job's lease (`renew_lease`, `update_progress`,
  `complete_job`, `fail_job(owner=...)`): the condition is "RUNNING and the lease is still mine",
  so a worker whose lease was taken over can no longer change the job.

Every write bumps `version`. Items live under their owner's partition, so a job read under
another user's id simply does not exist.

The package, by part: `keys` (key formats), `models` (states, errors, models), `codec`
(DynamoDB (de)serialisation), `store` (the conditional-update machinery), `profiles`,
`notifications` (email markers), `outbox` (pending events), `queue` (queue position and the
annotators' pace) and `repository` (jobs;
`JobRepository` combines them all); `saved_filters` (users' saved result filters,
`SavedFilterStore`). Import from `gas_core.jobs`.
"""

from gas_core.jobs.keys import (
    JOB_PREFIX,
    NOTIFIED_PREFIX,
    PROFILE_SK,
    RESULTS_KEY_PREFIX,
    USER_PREFIX,
    is_job_id,
    job_sk,
    new_job_id,
    notified_sk,
    parse_results_key,
    results_prefix,
    user_pk,
    utc_now,
)
from gas_core.jobs.models import (
    STATUS_TRANSITIONS,
    STORAGE_TRANSITIONS,
    ArchivedObject,
    ConflictError,
    IllegalTransition,
    InvalidCursor,
    Job,
    JobNotFound,
    JobStatus,
    NotificationClaim,
    Page,
    ProfileChanged,
    StorageState,
    UserProfile,
)
from gas_core.jobs.outbox import ItemKey
from gas_core.jobs.queue import QUEUE_COUNT_LIMIT, QueueStatus, Throughput
from gas_core.jobs.repository import JobRepository
from gas_core.jobs.saved_filters import (
    FILTER_PARAMETERS,
    MAX_SAVED_FILTERS,
    FilterLimitReached,
    FilterNameTaken,
    FilterNotFound,
    InvalidFilter,
    SavedFilter,
    SavedFilterStore,
)

__all__ = [
    "FILTER_PARAMETERS",
    "JOB_PREFIX",
    "MAX_SAVED_FILTERS",
    "NOTIFIED_PREFIX",
    "PROFILE_SK",
    "QUEUE_COUNT_LIMIT",
    "RESULTS_KEY_PREFIX",
    "STATUS_TRANSITIONS",
    "STORAGE_TRANSITIONS",
    "USER_PREFIX",
    "ArchivedObject",
    "ConflictError",
    "FilterLimitReached",
    "FilterNameTaken",
    "FilterNotFound",
    "IllegalTransition",
    "InvalidCursor",
    "InvalidFilter",
    "ItemKey",
    "Job",
    "JobNotFound",
    "JobRepository",
    "JobStatus",
    "NotificationClaim",
    "Page",
    "ProfileChanged",
    "QueueStatus",
    "SavedFilter",
    "SavedFilterStore",
    "StorageState",
    "Throughput",
    "UserProfile",
    "is_job_id",
    "job_sk",
    "new_job_id",
    "notified_sk",
    "parse_results_key",
    "results_prefix",
    "user_pk",
    "utc_now",
]
