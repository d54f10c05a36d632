"""What must hold after the chaos, read straight from the emulator (table, buckets, queues, SES).

`snapshot` reads everything once; `quiet` says whether the system has settled; `violations`
lists every invariant that does not hold, each as one line naming the job and what is wrong.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from gas_cli.emulator import SES_MAIL_PATH
from gas_core.jobs import Job, JobStatus, StorageState
from gas_core.jobs.codec import deserialize_item, job_from_item
from gas_core.jobs.store import OUTBOX_ATTRIBUTE
from gas_core.resources import Queue
from tests.chaos.load import EXACT_KINDS, CalmResult, Submitted, comparable_summary
from tests.chaos.stack import ChaosStack

QUEUE_COUNTS = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed")
SUBJECT_KINDS = {"has completed": "job.completed", "failed": "job.failed",
                 "available again": "job.restored"}


@dataclass
class Snapshot:
    jobs: dict[str, Job] = field(default_factory=dict)
    tiers: dict[str, str] = field(default_factory=dict)
    outboxes: dict[str, int] = field(default_factory=dict)  # item sk -> pending events
    markers: list[dict[str, Any]] = field(default_factory=list)
    # Job ids whose upload reservation was never marked consumed (harmless: a submit retried
    # after the web died finds the job and returns it; the reservation expires by TTL).
    unconsumed: list[str] = field(default_factory=list)
    queues: dict[str, int] = field(default_factory=dict)  # queue -> messages in any state
    dlqs: dict[str, int] = field(default_factory=dict)
    emails: list[dict[str, Any]] = field(default_factory=list)
    objects: dict[str, dict[str, list[dict[str, Any]]]] = field(default_factory=dict)


def snapshot(stack: ChaosStack) -> Snapshot:
    aws, names = stack.aws, stack.settings.names  # type: ignore[union-attr]
    snap = Snapshot()
    for page in aws.dynamodb.get_paginator("scan").paginate(TableName=names.table):
        for item in page["Items"]:
            sk = item["sk"]["S"]
            plain = deserialize_item(item)
            if plain.get(OUTBOX_ATTRIBUTE):
                snap.outboxes[f"{plain['pk']}/{sk}"] = len(plain[OUTBOX_ATTRIBUTE])
            if sk.startswith("JOB#"):
                job = job_from_item(item)
                snap.jobs[job.job_id] = job
            elif sk == "PROFILE":
                snap.tiers[plain["pk"].removeprefix("USER#")] = plain.get("tier", "free")
            elif sk.startswith("NOTIFIED#"):
                snap.markers.append(plain)
            elif sk.startswith("UPLOAD#") and "consumed_at" not in plain:
                snap.unconsumed.append(sk.removeprefix("UPLOAD#"))
    for queue in Queue:
        for target, url in ((snap.queues, aws.queue_url(queue)), (snap.dlqs, aws.dlq_url(queue))):
            attributes = aws.sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["All"])["Attributes"]
            target[queue.value] = sum(int(attributes.get(name, 0)) for name in QUEUE_COUNTS)
    # Sent mail from SES's models alone (gas_cli.emulator): data.json would also advance
    # moto's simulated restores as a side effect.
    with urllib.request.urlopen(stack.emulator_url + SES_MAIL_PATH, timeout=10) as response:
        ses = json.load(response)["ses"]
    snap.emails = [m for models in ses.values() for m in models if "destinations" in m]
    for bucket in (names.inputs_bucket, names.results_bucket, names.archive_bucket):
        versions: dict[str, list[dict[str, Any]]] = {}
        for page in aws.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            for version in page.get("Versions", []):
                versions.setdefault(version["Key"], []).append(version)
        snap.objects[bucket] = versions
    return snap


def settled_storage(tier: str) -> StorageState:
    """Where a completed job's results end up once nothing is in flight."""
    return StorageState.ARCHIVED if tier == "free" else StorageState.HOT


def unsettled(snap: Snapshot, submitted: list[Submitted]) -> list[str]:
    """Why the system is not quiet yet (empty: quiet)."""
    reasons = []
    for sub in submitted:
        job = snap.jobs.get(sub.job_id)
        if job is None:
            reasons.append(f"{sub.job_id} missing")
        elif not job.is_finished:
            reasons.append(f"{sub.job_id} {job.status}")
        elif job.status is JobStatus.COMPLETED and \
                job.storage is not settled_storage(snap.tiers.get(sub.user, "free")):
            reasons.append(f"{sub.job_id} storage {job.storage}")
    reasons += [f"queue {q}: {n}" for q, n in snap.queues.items() if n]
    reasons += [f"outbox {k}: {n}" for k, n in snap.outboxes.items()]
    return reasons


def violations(
    stack: ChaosStack, snap: Snapshot, submitted: list[Submitted],
    calm: dict[str, CalmResult],
) -> list[str]:
    names = stack.settings.names  # type: ignore[union-attr]
    found: list[str] = []
    ours = {sub.job_id: sub for sub in submitted}
    hot = snap.objects[names.results_bucket]
    archive = snap.objects[names.archive_bucket]

    # Nothing stuck: every submitted job exists and is finished, its storage settled.
    for reason in unsettled(snap, submitted):
        found.append(f"stuck: {reason}")
    for job_id in sorted(set(snap.jobs) - set(ours)):
        found.append(f"unexpected job {job_id} ({snap.jobs[job_id].status})")
    for key, count in snap.outboxes.items():
        found.append(f"outbox not drained: {key} has {count} pending event(s)")
    for marker in snap.markers:
        if marker.get("state") != "sent":
            found.append(f"email claim never finished: {marker['sk']} ({marker.get('state')})")
    for queue, count in snap.dlqs.items():
        if count:
            found.append(f"DLQ {queue}-dlq holds {count} message(s)")

    for job_id, sub in ours.items():
        job = snap.jobs.get(job_id)
        if job is None:
            continue
        where = f"{job_id} ({sub.user}, {sub.input.name})"
        if sub.input.bad_reason is not None:
            # Bad input: FAILED with the engine's reason, and no results anywhere.
            if job.status is not JobStatus.FAILED:
                found.append(f"bad input not FAILED: {where} is {job.status}")
            elif sub.input.bad_reason not in (job.error or ""):
                found.append(f"bad input failed for another reason: {where}: {job.error!r}")
            continue
        if job.status is not JobStatus.COMPLETED:
            found.append(f"valid job not COMPLETED: {where} is {job.status}: {job.error!r}")
            continue
        found += _results_identical(stack, job, calm[sub.input.name], hot, archive, where)

    found += _one_copy_no_orphans(snap, ours, hot, archive, snap.objects[names.inputs_bucket])
    found += _one_email_per_event(stack, snap, ours)
    leftovers = stack.scratch_leftovers()
    if leftovers:
        found.append(f"annotator scratch not cleaned: {leftovers}")
    return found


def _results_identical(stack: ChaosStack, job: Job, calm: CalmResult,
                       hot: dict[str, Any], archive: dict[str, Any], where: str) -> list[str]:
    """The job's results are byte-identical to the calm run's (hot copies read; archived
    copies by the SHA-256 S3 holds for them)."""
    aws, names = stack.aws, stack.settings.names  # type: ignore[union-attr]
    found = []
    for kind in EXACT_KINDS:
        key = job.result_keys.get(kind)
        if key is None:
            found.append(f"result missing: {where} has no {kind}")
        elif key in hot:
            body = aws.s3.get_object(Bucket=names.results_bucket, Key=key)["Body"].read()
            if hashlib.sha256(body).hexdigest() != calm.sha256[kind]:
                found.append(f"result differs from the calm run: {where} {kind}")
        elif key in archive:
            head = aws.s3.head_object(Bucket=names.archive_bucket, Key=key, ChecksumMode="ENABLED")
            if head.get("ChecksumSHA256") != calm.sha256_b64[kind]:
                found.append(f"archived result differs from the calm run: {where} {kind} "
                             f"({head.get('ChecksumSHA256')} != {calm.sha256_b64[kind]})")
        else:
            found.append(f"result lost: {where} {kind} ({key}) is in neither bucket")
    summary_key = job.result_keys.get("summary")
    if summary_key in hot:
        body = aws.s3.get_object(Bucket=names.results_bucket, Key=summary_key)["Body"].read()
        if comparable_summary(json.loads(body)) != calm.summary:
            found.append(f"summary differs from the calm run: {where}")
    else:
        found.append(f"summary not hot: {where}")
    return found


def _one_copy_no_orphans(snap: Snapshot, ours: dict[str, Submitted], hot: dict[str, Any],
                         archive: dict[str, Any], inputs: dict[str, Any]) -> list[str]:
    found = []
    expected_hot: set[str] = set()
    expected_archive: set[str] = set()
    for job_id in ours:
        job = snap.jobs.get(job_id)
        if job is None or job.status is not JobStatus.COMPLETED:
            continue
        archived_keys = {obj.key for obj in job.archived_objects.values()}
        if job.storage is StorageState.ARCHIVED:
            expected_archive |= archived_keys
            expected_hot |= set(job.result_keys.values()) - archived_keys
            if not job.hot_copies_deleted:
                found.append(f"archived job {job_id} never finished with its hot copies")
            for kind, obj in job.archived_objects.items():
                versions = archive.get(obj.key, [])
                if len(versions) != 1:
                    found.append(f"{len(versions)} archive copies of {job_id} {kind}")
                elif versions[0].get("StorageClass") not in ("GLACIER", "DEEP_ARCHIVE"):
                    found.append(f"archive copy of {job_id} {kind} is "
                                 f"{versions[0].get('StorageClass')}")
        else:
            expected_hot |= set(job.result_keys.values())
    for key in sorted(expected_hot - set(hot)):
        found.append(f"hot copy missing: {key}")
    for key, versions in sorted(hot.items()):
        if key not in expected_hot:
            found.append(f"orphan object in the results bucket: {key}")
        elif len(versions) != 1:
            found.append(f"{len(versions)} versions of {key} in the results bucket")
    for key in sorted(set(archive) - expected_archive):
        found.append(f"orphan object in the archive bucket: {key} "
                     f"({archive[key][0].get('StorageClass')})")
    input_keys = {snap.jobs[j].input_key for j in ours if j in snap.jobs}
    found += [f"orphan input object: {key}" for key in sorted(set(inputs) - input_keys)]
    return found


def _one_email_per_event(stack: ChaosStack, snap: Snapshot,
                         ours: dict[str, Submitted]) -> list[str]:
    """One completion or failure email per job; one "available again" per restore: per sent
    restore marker, and at least one per restore the restorer logged recording (each has its
    own `restore_requested_at`, the email's occurrence; a restorer killed between its write
    and its log line makes that count only smaller).

    The one allowed extra copy: a notifier killed between SES accepting and its marker write
    (SES has no idempotency key). Its retry takes the claim over, and the marker counts its
    claims, so an event may have at most as many emails as its marker has claims."""
    sent: Counter[tuple[str, str]] = Counter()
    for email in snap.emails:
        kind = next((k for words, k in SUBJECT_KINDS.items() if words in email["subject"]), None)
        job_id = next((j for j in ours if f"/jobs/{j}" in email["body"]), None)
        if kind is None or job_id is None:
            continue
        sent[(job_id, kind)] += 1
    sent_markers: Counter[tuple[str, str]] = Counter()  # (job, kind) -> sent markers
    claims: Counter[tuple[str, str]] = Counter()  # (job, kind) -> claims of those markers
    for marker in snap.markers:
        _, kind, job_id, *_occurrence = str(marker["sk"]).split("#")
        if marker.get("state") == "sent":
            sent_markers[(job_id, kind)] += 1
            claims[(job_id, kind)] += int(marker.get("claims", 1))
    restores = Counter(r.get("job_id") for _, r in stack.records("restorer")
                       if r.get("event") == "restore_requested")
    found = []
    for job_id, sub in ours.items():
        job = snap.jobs.get(job_id)
        if job is None or not job.is_finished:
            continue
        end = "job.completed" if job.status is JobStatus.COMPLETED else "job.failed"
        for kind in ("job.completed", "job.failed"):
            emails, allowed = sent[(job_id, kind)], claims[(job_id, kind)]
            if kind != end and emails:
                found.append(f"{emails} {kind} emails for {job_id} ({sub.user}), expected 0")
            elif kind == end and not 1 <= emails <= max(allowed, 1):
                found.append(f"{emails} {kind} emails for {job_id} ({sub.user}), expected 1 "
                             f"(or up to {allowed}, its marker's claims)")
        key = (job_id, "job.restored")
        restored = sent[key]
        if not sent_markers[key] <= restored <= claims[key] or restored < restores[job_id]:
            found.append(f"{restored} job.restored emails for {job_id} ({sub.user}): "
                         f"{sent_markers[key]} sent-email markers ({claims[key]} claims), "
                         f"{restores[job_id]} restores recorded by the restorer")
    return found
