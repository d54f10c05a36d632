"""Submitting a job: a presigned POST bound to one user and job, then checks
of what was actually uploaded, then the PENDING job and its `job.requested` event.

The presigned POST carries the tier's size cap in its policy, but the emulator does not enforce
POST policies (and a policy is only as good as the code that issued it), so `submit_job`
measures the object itself before anything is queued.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from gas_core.events import JobRequested, publish
from gas_core.jobs import (
    ItemKey,
    Job,
    JobNotFound,
    JobRepository,
    JobStatus,
    UserProfile,
    is_job_id,
    new_job_id,
)
from gas_core.logging import get_logger
from gas_core.outbox import Outbox
from gas_core.resources import Topic
from gas_web.app.core.errors import Problem, not_found

if TYPE_CHECKING:
    from gas_core.aws import AwsClients
    from gas_web.settings import WebSettings

log = get_logger(__name__)

INPUT_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz", ".bcf")
MAX_FILE_NAME = 120
ASSEMBLY_PATTERN = r"^[A-Za-z0-9._-]{1,32}$"
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_GZIP_MAGIC = b"\x1f\x8b"
_ASSEMBLY_META = "assembly"


def input_prefix(user_id: str, job_id: str) -> str:
    return f"inputs/{user_id}/{job_id}/"


def sanitize_file_name(name: str) -> str:
    """A safe object-key segment from a user's file name, keeping its VCF suffix.

    Directories are dropped, anything outside [A-Za-z0-9._-] becomes `_`, and leading dots go
    (no hidden or `..` names). Raises Problem(422) for names that are not VCF/BCF files.
    """
    base = PurePosixPath(unicodedata.normalize("NFKC", name).replace("\\", "/")).name
    cleaned = _UNSAFE.sub("_", base).lstrip("._-")
    lower = cleaned.lower()
    suffix = next((s for s in sorted(INPUT_SUFFIXES, key=len, reverse=True)
                   if lower.endswith(s)), None)
    if suffix is None or len(cleaned) <= len(suffix):
        raise Problem(422, "GAS annotates VCF files: choose a .vcf, .vcf.gz or .bcf file.",
                      title="Unsupported file type")
    stem = cleaned[: -len(suffix)][: MAX_FILE_NAME - len(suffix)]
    return stem + cleaned[-len(suffix):]


def human_bytes(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"


def create_upload(
    *,
    settings: WebSettings,
    aws: AwsClients,
    profile: UserProfile,
    file_name: str,
    assembly: str,
) -> dict[str, Any]:
    """A new job id and a presigned POST that can only create that job's input object."""
    safe_name = sanitize_file_name(file_name)
    job_id = new_job_id()
    key = input_prefix(profile.user_id, job_id) + safe_name
    max_bytes = settings.max_upload_bytes(profile.tier)
    post = aws.s3.generate_presigned_post(
        Bucket=settings.names.inputs_bucket,
        Key=key,
        Fields={f"x-amz-meta-{_ASSEMBLY_META}": assembly},
        Conditions=[
            ["content-length-range", 1, max_bytes],
            {f"x-amz-meta-{_ASSEMBLY_META}": assembly},
        ],
        ExpiresIn=settings.upload_url_seconds,
    )
    log.info("upload issued", job_id=job_id, max_bytes=max_bytes)
    return {
        "job_id": job_id,
        "file_name": safe_name,
        "upload": {"url": post["url"], "fields": post["fields"]},
        "max_bytes": max_bytes,
    }


def submit_job(
    *,
    settings: WebSettings,
    aws: AwsClients,
    repository: JobRepository,
    profile: UserProfile,
    job_id: str,
) -> Job:
    """Check the uploaded input, record the job PENDING and ask for its annotation.

    Idempotent: submitting a job again returns it as it is (re-announcing it while it is still
    PENDING, in case the first announcement was lost; the annotator's lease de-duplicates).
    """
    if not is_job_id(job_id):
        raise not_found()
    try:
        existing = repository.get_job(profile.user_id, job_id)
    except JobNotFound:
        existing = None
    if existing is not None:
        if existing.status is JobStatus.PENDING:
            _announce(settings=settings, aws=aws, repository=repository, job=existing)
        return existing

    bucket = settings.names.inputs_bucket
    key, size, metadata = _uploaded_object(aws=aws, bucket=bucket,
                                           prefix=input_prefix(profile.user_id, job_id))
    limit = settings.max_upload_bytes(profile.tier)
    if size > limit:
        aws.s3.delete_object(Bucket=bucket, Key=key)
        upgrade = " Premium accounts accept larger files." if profile.tier == "free" else ""
        raise Problem(
            413,
            f"The file is {human_bytes(size)}; your {profile.tier} account accepts files up to "
            f"{human_bytes(limit)}.{upgrade}",
            title="File too large", max_bytes=limit, size=size,
        )
    if size == 0:
        aws.s3.delete_object(Bucket=bucket, Key=key)
        raise Problem(422, "The uploaded file is empty.", title="Empty file")
    file_name = PurePosixPath(key).name
    if not _looks_like_vcf(aws=aws, bucket=bucket, key=key, file_name=file_name):
        aws.s3.delete_object(Bucket=bucket, Key=key)
        raise Problem(
            422,
            f"{file_name} does not look like a VCF file (a plain VCF starts with "
            "'##fileformat=VCF'; .vcf.gz and .bcf files are gzip/BGZF compressed).",
            title="Not a VCF file",
        )
    assembly = metadata.get(_ASSEMBLY_META) or "GRCh38"
    if not re.match(ASSEMBLY_PATTERN, assembly):
        assembly = "GRCh38"
    job = _create_requested(settings=settings, repository=repository, job=Job(
        user_id=profile.user_id,
        job_id=job_id,
        input_file_name=file_name,
        input_key=key,
        input_bytes=size,
        assembly=assembly,
        user_tier=profile.tier,
    ))
    _announce(settings=settings, aws=aws, repository=repository, job=job)
    log.info("job submitted", job_id=job_id, input_bytes=size)
    return job


def _uploaded_object(
    *, aws: AwsClients, bucket: str, prefix: str
) -> tuple[str, int, dict[str, str]]:
    listing = aws.s3.list_objects_v2(Bucket=bucket, Prefix=prefix, MaxKeys=2)
    keys = [item["Key"] for item in listing.get("Contents", [])]
    if not keys:
        # The same answer as for another user's job id: nothing under this caller's prefix.
        raise Problem(404, "No such job, or nothing has been uploaded for it yet: upload the "
                           "file first.")
    if len(keys) > 1:
        raise Problem(409, "More than one file was uploaded for this job; start a new one.",
                      title="Ambiguous upload")
    try:
        head = aws.s3.head_object(Bucket=bucket, Key=keys[0])
    except ClientError:
        raise Problem(409, "The uploaded file is no longer there; upload it again.",
                      title="Nothing uploaded") from None
    return keys[0], int(head["ContentLength"]), dict(head.get("Metadata") or {})


def _looks_like_vcf(*, aws: AwsClients, bucket: str, key: str, file_name: str) -> bool:
    head = aws.s3.get_object(Bucket=bucket, Key=key, Range="bytes=0-15")["Body"].read()
    if file_name.lower().endswith((".gz", ".bgz", ".bcf")):
        return head.startswith(_GZIP_MAGIC)
    return head.startswith((b"##fileformat=VCF", b"#CHROM"))


def _requested(settings: WebSettings, job: Job) -> JobRequested:
    return JobRequested(
        user_id=job.user_id,
        job_id=job.job_id,
        user_tier=job.user_tier,
        input_bucket=settings.names.inputs_bucket,
        input_key=job.input_key,
        assembly=job.assembly,
    )


def _create_requested(*, settings: WebSettings, repository: JobRepository, job: Job) -> Job:
    """Create the job PENDING with its `job.requested` in the same write (its outbox), so
    the request cannot be lost between the write and the publish (gas_core.outbox)."""
    return repository.create_job(job, events=[_requested(settings, job)])


def _announce(
    *, settings: WebSettings, aws: AwsClients, repository: JobRepository, job: Job
) -> None:
    """Publish the job's pending `job.requested`; a resubmit of a job whose request already
    went out announces it again (the annotator's lease de-duplicates)."""
    outbox = Outbox(repository, aws.sns, aws.topic_arn)
    if outbox.flush(ItemKey.of_job(job.user_id, job.job_id)).found == 0:
        publish(aws.sns, aws.topic_arn(Topic.JOB_REQUESTS), _requested(settings, job))
