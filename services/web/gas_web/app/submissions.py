"""Submitting a job: a presigned POST bound to one user and job, then checks
of what was actually uploaded, then the PENDING job and its `job.requested` event.

The presigned POST carries the tier's size cap in its policy, but the emulator does not enforce
POST policies (and a policy is only as good as the code that issued it), so `submit_job`
measures the object itself before anything is queued. Likewise it accepts only a job id that
`POST /jobs` issued to the caller (an upload reservation, gas_web.app.uploads), and records
the exact object it checked (ETag, VersionId) so a file re-posted afterwards is not annotated.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
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
    from gas_web.app.uploads import UploadReservations
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
    uploads: UploadReservations,
    profile: UserProfile,
    file_name: str,
    assembly: str,
) -> dict[str, Any]:
    """A new job id, reserved for this user, and a presigned POST that can only create that
    job's input object."""
    safe_name = sanitize_file_name(file_name)
    check_assembly(settings, assembly)
    job_id = new_job_id()
    key = input_prefix(profile.user_id, job_id) + safe_name
    uploads.reserve(user_id=profile.user_id, job_id=job_id, input_key=key, assembly=assembly,
                    lifetime_seconds=settings.upload_reservation_seconds)
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
    uploads: UploadReservations,
    profile: UserProfile,
    job_id: str,
) -> Job:
    """Check the uploaded input, record the job PENDING and ask for its annotation.

    Only a job id issued to the caller (and not yet submitted) is accepted: any other id is a
    404, answered like an unknown one.
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

    reservation = uploads.find(profile.user_id, job_id)
    if reservation is None:
        raise not_found()
    bucket = settings.names.inputs_bucket
    key = reservation.input_key
    uploaded = _uploaded_object(aws=aws, bucket=bucket, key=key)
    size, metadata = uploaded.size, uploaded.metadata
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
    if not _looks_like_vcf(aws=aws, uploaded=uploaded, file_name=file_name):
        aws.s3.delete_object(Bucket=bucket, Key=key)
        raise Problem(
            422,
            f"{file_name} does not look like a VCF file (a plain VCF starts with "
            "'##fileformat=VCF'; .vcf.gz and .bcf files are gzip/BGZF compressed).",
            title="Not a VCF file",
        )
    # The upload's metadata, as posted (the emulator does not hold a POST to its policy).
    assembly = metadata.get(_ASSEMBLY_META) or reservation.assembly
    check_assembly(settings, assembly)
    job = _create_requested(settings=settings, repository=repository, job=Job(
        user_id=profile.user_id,
        job_id=job_id,
        input_file_name=file_name,
        input_key=key,
        input_bytes=size,
        input_etag=uploaded.etag,
        input_version_id=uploaded.version_id,
        assembly=assembly,
        user_tier=profile.tier,
    ))
    _announce(settings=settings, aws=aws, repository=repository, job=job)
    # Only now: a crash before this leaves a reservation that expires, and the job (if it was
    # created) answers any retried submit above.
    uploads.consume(profile.user_id, job_id)
    log.info("job submitted", job_id=job_id, input_bytes=size)
    return job


def check_assembly(settings: WebSettings, assembly: str) -> None:
    if assembly not in settings.supported_assemblies:
        supported = ", ".join(settings.supported_assemblies)
        raise Problem(422, f"GAS has no reference data for assembly {assembly[:40]!r}; "
                           f"supported: {supported}.", title="Unsupported assembly")


@dataclass(frozen=True)
class _Uploaded:
    bucket: str
    key: str
    size: int
    etag: str
    version_id: str | None
    metadata: dict[str, str]


def _uploaded_object(*, aws: AwsClients, bucket: str, key: str) -> _Uploaded:
    try:
        head = aws.s3.head_object(Bucket=bucket, Key=key)
    except ClientError:
        # The same answer whether or not the id is known: nothing uploaded at its key.
        raise Problem(404, "No such job, or nothing has been uploaded for it yet: upload the "
                           "file first.") from None
    version_id = head.get("VersionId")
    return _Uploaded(bucket=bucket, key=key, size=int(head["ContentLength"]),
                     etag=str(head["ETag"]),
                     version_id=str(version_id) if version_id and version_id != "null" else None,
                     metadata=dict(head.get("Metadata") or {}))


def _looks_like_vcf(*, aws: AwsClients, uploaded: _Uploaded, file_name: str) -> bool:
    # Exactly the object measured above (IfMatch/VersionId): a replacement in between fails
    # the read instead of being sniffed in its place.
    try:
        if uploaded.version_id:
            body = aws.s3.get_object(Bucket=uploaded.bucket, Key=uploaded.key,
                                     Range="bytes=0-15", VersionId=uploaded.version_id)
        else:
            body = aws.s3.get_object(Bucket=uploaded.bucket, Key=uploaded.key,
                                     Range="bytes=0-15", IfMatch=uploaded.etag)
    except ClientError:
        raise Problem(409, "The uploaded file changed while it was being checked; submit "
                           "again.", title="Upload changed") from None
    head = body["Body"].read()
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
