"""Least-privilege IAM policies per service, derived from the resource definitions.

`gas infra policy SERVICE` prints one; operators attach it to the service's IRSA role.
Each statement says what the service does with the resource, so a reviewer can check it
against the code in one read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gas_core.resources import OUTBOX_INDEX, QUEUE_INDEX, Bucket, Queue, Topic

if TYPE_CHECKING:
    from gas_cli.infra import Infrastructure

TABLE_READ = ("dynamodb:GetItem", "dynamodb:Query")
TABLE_WRITE = ("dynamodb:PutItem", "dynamodb:UpdateItem")
# Topics of the events state writes record in outboxes (gas_core.outbox).
OUTBOX_TOPICS = (Topic.JOB_REQUESTS, Topic.JOB_RESULTS, Topic.USER_EVENTS)
CONSUME = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
    "sqs:GetQueueUrl",
]


@dataclass(frozen=True)
class Access:
    """What one service may do."""

    table: tuple[str, ...] = ()
    # (bucket, key prefix or "*", actions)
    objects: tuple[tuple[Bucket, str, tuple[str, ...]], ...] = ()
    # (bucket, key prefix): ListBucketVersions, on the bucket, limited to keys under the prefix.
    lists_versions: tuple[tuple[Bucket, str], ...] = ()
    consumes: Queue | None = None
    # Queues it may send to directly (its own DLQ for poison messages, re-delays...).
    sends_to: tuple[Queue, ...] = ()
    publishes: tuple[Topic, ...] = ()
    reads_queue_attributes: tuple[Queue, ...] = ()
    sends_email: bool = False
    # Reads PENDING jobs' queue positions (gas_core.jobs.queue).
    counts_queue: bool = False


ACCESS: dict[str, Access] = {
    "web": Access(
        table=(*TABLE_READ, *TABLE_WRITE),
        objects=(
            # Presigned POST uploads are signed with the web role's credentials.
            # DeleteObject: submit removes an upload it refuses (too large, not a VCF);
            # GetObjectVersion: the submit check reads the exact version it records.
            (Bucket.INPUTS, "inputs/*",
             ("s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject")),
            # Presigned downloads of results and the variant browser's reads.
            (Bucket.RESULTS, "results/*", ("s3:GetObject",)),
        ),
        publishes=(Topic.JOB_REQUESTS, Topic.USER_EVENTS),
        reads_queue_attributes=(Queue.ANNOTATOR,),
        counts_queue=True,
    ),
    "annotator": Access(
        table=(*TABLE_READ, "dynamodb:UpdateItem"),
        objects=(
            # GetObjectVersion: on a versioned bucket the job's recorded input version is read.
            (Bucket.INPUTS, "inputs/*", ("s3:GetObject", "s3:GetObjectVersion")),
            # AbortMultipartUpload: large results are uploaded in parts, aborted on failure.
            (Bucket.RESULTS, "results/*",
             ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload")),
            (Bucket.RESULTS, "references/*", ("s3:GetObject",)),
        ),
        consumes=Queue.ANNOTATOR,
        publishes=(Topic.JOB_RESULTS,),
    ),
    "archiver": Access(
        # ConditionCheckItem: the `archived` write is a transaction that also checks the
        # user's profile is unchanged (an upgrade cancels it).
        table=(*TABLE_READ, "dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"),
        objects=(
            (Bucket.RESULTS, "results/*", ("s3:GetObject", "s3:DeleteObject")),
            # DeleteObject(Version): an archive abandoned after an upgrade removes its copies,
            # by the version it wrote (the archive bucket is versioned).
            # AbortMultipartUpload: a failed copy of a result over 5 GiB (copied in parts).
            (Bucket.ARCHIVE, "results/*",
             ("s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObject",
              "s3:DeleteObjectVersion", "s3:AbortMultipartUpload")),
        ),
        # ListBucketVersions: a run whose duplicate recorded the job finds whether the key
        # holds a version besides its own copy (its own, then, is the extra one to delete).
        lists_versions=((Bucket.ARCHIVE, "results/"),),
        consumes=Queue.ARCHIVER,
        # Windows longer than SQS's 15-minute delay re-delay the message on its own queue.
        sends_to=(Queue.ARCHIVER,),
    ),
    "restorer": Access(
        table=(*TABLE_READ, "dynamodb:UpdateItem"),
        objects=((Bucket.ARCHIVE, "results/*", ("s3:RestoreObject", "s3:GetObject")),),
        consumes=Queue.RESTORER,
        # GLACIER_IR needs no restore: the restorer hands such jobs straight to the thawer.
        sends_to=(Queue.THAWER,),
        publishes=(Topic.JOB_RESULTS,),
    ),
    "thawer": Access(
        table=(*TABLE_READ, "dynamodb:UpdateItem"),
        objects=(
            # RestoreObject: a restore whose copy expired before the thaw is requested again.
            # DeleteObjectVersion: thawed archive copies are deleted by version (versioned
            # bucket), so no non-current version is left behind.
            (Bucket.ARCHIVE, "results/*",
             ("s3:GetObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:RestoreObject")),
            (Bucket.RESULTS, "results/*",
             ("s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload")),
        ),
        consumes=Queue.THAWER,
        publishes=(Topic.JOB_RESULTS,),
    ),
    "notifier": Access(
        # Put/Update/Delete: the "already notified" markers that make emails idempotent.
        table=(*TABLE_READ, "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"),
        consumes=Queue.NOTIFIER,
        sends_email=True,
    ),
}


def policy_document(service: str, infra: Infrastructure) -> dict[str, Any]:
    """The IAM policy JSON for one service of one deployment."""
    access = ACCESS[service]
    names = infra.names
    statements: list[dict[str, Any]] = []
    if access.table:
        statements.append({"Sid": "JobTable", "Effect": "Allow", "Action": sorted(access.table),
                           "Resource": [infra.table_arn()]})
    if access.counts_queue:
        # A PENDING job's position: a COUNT Query of the keys-only queue index.
        statements.append({"Sid": "QueueIndex", "Effect": "Allow", "Action": ["dynamodb:Query"],
                           "Resource": [f"{infra.table_arn()}/index/{QUEUE_INDEX.name}"]})
    for index, (bucket, prefix, actions) in enumerate(access.objects):
        statements.append({
            "Sid": f"Objects{index}",
            "Effect": "Allow",
            "Action": sorted(actions),
            "Resource": [f"arn:aws:s3:::{names.bucket(bucket)}/{prefix}"],
        })
    for index, (bucket, prefix) in enumerate(access.lists_versions):
        statements.append({
            "Sid": f"ListVersions{index}",
            "Effect": "Allow",
            "Action": ["s3:ListBucketVersions"],
            "Resource": [f"arn:aws:s3:::{names.bucket(bucket)}"],
            "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
        })
    if access.consumes is not None:
        statements.append({"Sid": "ConsumeOwnQueue", "Effect": "Allow", "Action": CONSUME,
                           "Resource": [infra.queue_arn(names.queue(access.consumes))]})
        # Poison messages go to the DLQ directly.
        statements.append({"Sid": "PoisonToDeadLetterQueue", "Effect": "Allow",
                           "Action": ["sqs:SendMessage", "sqs:GetQueueUrl"],
                           "Resource": [infra.queue_arn(names.dlq(access.consumes))]})
    if access.sends_to:
        statements.append({"Sid": "SendToQueues", "Effect": "Allow",
                           "Action": ["sqs:SendMessage"],
                           "Resource": [infra.queue_arn(names.queue(q)) for q in access.sends_to]})
    if access.reads_queue_attributes:
        statements.append({
            "Sid": "ReadinessChecks", "Effect": "Allow",
            "Action": ["sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
            "Resource": [infra.queue_arn(names.queue(q)) for q in access.reads_queue_attributes],
        })
    if access.publishes:
        statements.append({"Sid": "PublishEvents", "Effect": "Allow", "Action": ["sns:Publish"],
                           "Resource": [infra.topic_arn(t) for t in access.publishes]})
    if access.consumes is not None:
        # Every worker runs the outbox reconciler (gas_core.outbox): it finds items with
        # overdue events through the table's outbox index, republishes them to whichever
        # topic they belong to, and marks them sent (GetItem/UpdateItem on the table).
        statements.append({"Sid": "OutboxIndex", "Effect": "Allow",
                           "Action": ["dynamodb:Query"],
                           "Resource": [f"{infra.table_arn()}/index/{OUTBOX_INDEX.name}"]})
        statements.append({"Sid": "RepublishPendingEvents", "Effect": "Allow",
                           "Action": ["sns:Publish"],
                           "Resource": [infra.topic_arn(t) for t in OUTBOX_TOPICS]})
    if access.sends_email:
        statements.append({
            "Sid": "SendEmail", "Effect": "Allow",
            "Action": ["ses:SendEmail", "ses:SendRawEmail"],
            "Resource": ["*"],
            "Condition": {"StringEquals": {"ses:FromAddress": infra.settings.email_sender}},
        })
    return {"Version": "2012-10-17", "Statement": statements}
