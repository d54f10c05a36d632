"""Verified copies of S3 objects between GAS buckets (the archiver's and the thawer's step).

A copy counts only when S3 itself reports the destination's size and SHA-256 equal to what the
source holds: `CopyObject` with `ChecksumAlgorithm=SHA256` makes S3 compute the checksum of the
bytes it wrote, so the check covers the stored copy end to end, not just our request. That
matters for the archive, whose objects cannot even be read back (Glacier classes refuse GET)
to check them later.

CopyObject copies objects up to 5 GiB in one request:
https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_SINGLE_COPY_BYTES = 5 * 1024**3
READ_CHUNK_BYTES = 8 * 1024**2
# Storage classes whose objects must be restored before they can be read or copied.
RESTORE_REQUIRED_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})


# RestoreObject errors: https://docs.aws.amazon.com/AmazonS3/latest/API/API_RestoreObject.html
EXPEDITED_UNAVAILABLE = "GlacierExpeditedRetrievalNotAvailable"
ALREADY_IN_PROGRESS = "RestoreAlreadyInProgress"


class CopyNotVerified(Exception):
    """The destination does not match the source (size or checksum); it has been removed."""


class ObjectTooLarge(Exception):
    """Above the single-request copy limit."""


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    # Base64 SHA-256 when S3 holds one for the whole object (multipart uploads hold a
    # checksum of part checksums instead, marked by a `-N` suffix: not usable here).
    sha256: str | None
    storage_class: str
    # S3's `x-amz-restore` header: None when no restore was ever requested.
    restore: str | None

    @property
    def restore_in_progress(self) -> bool:
        return self.restore is not None and 'ongoing-request="true"' in self.restore

    @property
    def is_readable(self) -> bool:
        """Can be read (or copied) now: not in a Glacier class, or restored."""
        if self.storage_class not in RESTORE_REQUIRED_CLASSES:
            return True
        return self.restore is not None and 'ongoing-request="false"' in self.restore


def head_object(s3: S3Client, bucket: str, key: str) -> ObjectInfo | None:
    """The object's metadata, or None when it does not exist."""
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    checksum = head.get("ChecksumSHA256")
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=head["ContentLength"],
        sha256=checksum if checksum and "-" not in checksum else None,
        storage_class=head.get("StorageClass") or "STANDARD",
        restore=head.get("Restore"),
    )


def content_sha256(s3: S3Client, source: ObjectInfo) -> str:
    """The object's SHA-256 (base64): S3's full-object checksum if it holds one, else read
    through once (results are uploaded with other checksums, or in parts)."""
    if source.sha256:
        return source.sha256
    digest = hashlib.sha256()
    body = s3.get_object(Bucket=source.bucket, Key=source.key)["Body"]
    for chunk in body.iter_chunks(READ_CHUNK_BYTES):
        digest.update(chunk)
    return base64.b64encode(digest.digest()).decode()


def matches(info: ObjectInfo | None, *, size: int, sha256: str) -> bool:
    return info is not None and info.size == size and info.sha256 == sha256


def copy_verified(
    s3: S3Client,
    *,
    source: ObjectInfo,
    sha256: str,
    bucket: str,
    key: str,
    storage_class: str,
) -> ObjectInfo:
    """Copy `source` to bucket/key in `storage_class`; return the verified destination.

    `sha256` is what the source holds (from `content_sha256` or a recorded checksum). A copy
    that does not match is deleted and CopyNotVerified raised, so a later check never finds
    a bad copy that looks like a finished one.
    """
    if source.size > MAX_SINGLE_COPY_BYTES:
        raise ObjectTooLarge(
            f"s3://{source.bucket}/{source.key} is {source.size} bytes; single-request copies "
            f"stop at {MAX_SINGLE_COPY_BYTES}"
        )
    s3.copy_object(
        Bucket=bucket,
        Key=key,
        CopySource={"Bucket": source.bucket, "Key": source.key},
        StorageClass=storage_class,  # type: ignore[arg-type]
        ChecksumAlgorithm="SHA256",
        MetadataDirective="COPY",
    )
    copied = head_object(s3, bucket, key)
    if not matches(copied, size=source.size, sha256=sha256):
        s3.delete_object(Bucket=bucket, Key=key)
        raise CopyNotVerified(
            f"copy of s3://{source.bucket}/{source.key} to s3://{bucket}/{key} does not match: "
            f"expected {source.size} bytes sha256 {sha256}, got "
            f"{(copied.size, copied.sha256) if copied else 'nothing'}"
        )
    assert copied is not None
    return copied


def request_restore(
    s3: S3Client,
    *,
    bucket: str,
    key: str,
    days: int,
    tiers: Sequence[str],
    on_fallback: Callable[[str, str], None] | None = None,
) -> str:
    """RestoreObject with the first of `tiers` that S3 accepts; returns that tier.

    Expedited capacity is not guaranteed without provisioned capacity units: when S3 refuses
    it, the next tier (slower, always accepted) is tried and `on_fallback(refused, next)` is
    told. A restore already in progress (an earlier attempt, a duplicate message) counts as
    accepted.
    """
    for i, tier in enumerate(tiers):
        try:
            s3.restore_object(
                Bucket=bucket,
                Key=key,
                RestoreRequest={
                    "Days": days,
                    "GlacierJobParameters": {"Tier": tier},  # type: ignore[typeddict-item]
                },
            )
        except ClientError as error:
            code = error.response.get("Error", {}).get("Code")
            if code == EXPEDITED_UNAVAILABLE and i + 1 < len(tiers):
                if on_fallback:
                    on_fallback(tier, tiers[i + 1])
                continue
            if code == ALREADY_IN_PROGRESS:
                return tier
            raise
        return tier
    raise ValueError("no restore tier given")
