"""Verified copies of S3 objects between GAS buckets (the archiver's and the thawer's step).

A copy counts only when S3 itself reports the destination's size and SHA-256 equal to what the
source holds: `CopyObject` with `ChecksumAlgorithm=SHA256` makes S3 compute the checksum of the
bytes it wrote, so the check covers the stored copy end to end, not just our request. That
matters for the archive, whose objects cannot even be read back (Glacier classes refuse GET)
to check them later.

CopyObject copies objects up to 5 GiB in one request
(https://docs.aws.amazon.com/AmazonS3/latest/API/API_CopyObject.html). Larger objects are
copied in parts (`UploadPartCopy`) of a fixed COPY_PART_BYTES into a multipart upload created
with SHA-256: S3 then holds a composite checksum, the SHA-256 of the parts' SHA-256s, and
requires each part's checksum at completion, which it checks against the bytes it copied. The
expected composite comes from reading the source once (which the full SHA-256 needs anyway:
an object over 5 GiB was itself uploaded in parts, so S3 holds no full-object SHA-256 for it),
and because the part size is fixed, every copy of the same content (the archive copy, the
thawed hot copy) holds the same composite, so it is recorded once and compared everywhere.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MAX_SINGLE_COPY_BYTES = 5 * 1024**3
# Parts of multipart copies: S3 allows 5 MiB to 5 GiB per part and 10,000 parts.
COPY_PART_BYTES = 1024**3
READ_CHUNK_BYTES = 8 * 1024**2
# Storage classes whose objects must be restored before they can be read or copied.
RESTORE_REQUIRED_CLASSES = frozenset({"GLACIER", "DEEP_ARCHIVE"})
# A multipart object's ETag ends in "-<number of parts>".
_MULTIPART_ETAG = re.compile(r'-\d+"?$')

# RestoreObject errors: https://docs.aws.amazon.com/AmazonS3/latest/API/API_RestoreObject.html
EXPEDITED_UNAVAILABLE = "GlacierExpeditedRetrievalNotAvailable"
ALREADY_IN_PROGRESS = "RestoreAlreadyInProgress"


class CopyNotVerified(Exception):
    """The destination does not match the source (size or checksum); it has been removed."""


@dataclass(frozen=True)
class Checksums:
    """What every verified copy of some content holds."""

    size: int
    sha256: str  # base64 SHA-256 of the whole content
    # Above MAX_SINGLE_COPY_BYTES: base64 SHA-256 of the SHA-256s of its COPY_PART_BYTES parts
    # (what S3 holds for a copy made by copy_verified), and the parts' own, when read here.
    composite_sha256: str | None = None
    part_sha256: tuple[str, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class ObjectInfo:
    bucket: str
    key: str
    size: int
    # Base64 SHA-256 when S3 holds one for the whole object.
    sha256: str | None
    storage_class: str
    # S3's `x-amz-restore` header: None when no restore was ever requested.
    restore: str | None
    # A multipart object's SHA-256 checksum: the SHA-256 of its parts' SHA-256s (S3 shows it
    # with a "-<parts>" suffix, left out here).
    composite_sha256: str | None = None
    # The version this describes, on a versioned bucket (None otherwise).
    version_id: str | None = None
    # The object's user metadata (x-amz-meta-*) and Content-Type.
    metadata: dict[str, str] = field(default_factory=dict, compare=False)
    content_type: str | None = None

    @property
    def restore_in_progress(self) -> bool:
        return self.restore is not None and 'ongoing-request="true"' in self.restore

    @property
    def is_readable(self) -> bool:
        """Can be read (or copied) now: not in a Glacier class, or restored."""
        if self.storage_class not in RESTORE_REQUIRED_CLASSES:
            return True
        return self.restore is not None and 'ongoing-request="false"' in self.restore


def head_object(
    s3: S3Client, bucket: str, key: str, *, version_id: str | None = None
) -> ObjectInfo | None:
    """The object's metadata (its current version, or `version_id`), or None when it does not
    exist."""
    which: dict[str, Any] = {"VersionId": version_id} if version_id else {}
    try:
        head = s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **which)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    checksum = head.get("ChecksumSHA256")
    # AWS marks a composite checksum with "-<parts>"; the local emulator does not, but gives
    # the multipart ETag either way.
    multipart = bool(checksum) and (
        "-" in str(checksum) or bool(_MULTIPART_ETAG.search(head.get("ETag", "")))
    )
    return ObjectInfo(
        bucket=bucket,
        key=key,
        size=head["ContentLength"],
        sha256=None if multipart or not checksum else checksum,
        storage_class=head.get("StorageClass") or "STANDARD",
        restore=head.get("Restore"),
        composite_sha256=str(checksum).split("-")[0] if multipart else None,
        version_id=_version(head.get("VersionId")),
        metadata=dict(head.get("Metadata") or {}),
        content_type=head.get("ContentType"),
    )


def _version(version_id: str | None) -> str | None:
    # An unversioned bucket's objects have no version id, or the literal "null".
    return None if version_id in (None, "", "null") else version_id


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def composite_of(part_sha256: Sequence[str]) -> str:
    """S3's composite SHA-256 of a multipart object from its parts' (base64) SHA-256s."""
    return _b64(hashlib.sha256(b"".join(base64.b64decode(p) for p in part_sha256)).digest())


def content_checksums(s3: S3Client, source: ObjectInfo) -> Checksums:
    """The checksums a verified copy of `source` must hold: S3's full-object SHA-256 when it
    holds one (objects up to 5 GiB copied before), else read through once (results are
    uploaded with other checksums or in parts), with the part SHA-256s of a multipart copy
    when the object is above the single-copy limit."""
    if source.sha256 and source.size <= MAX_SINGLE_COPY_BYTES:
        return Checksums(source.size, source.sha256)
    in_parts = source.size > MAX_SINGLE_COPY_BYTES
    part_bytes = COPY_PART_BYTES
    whole = hashlib.sha256()
    part = hashlib.sha256()
    parts: list[str] = []
    filled = 0
    body = s3.get_object(Bucket=source.bucket, Key=source.key)["Body"]
    for chunk in body.iter_chunks(READ_CHUNK_BYTES):
        whole.update(chunk)
        view = memoryview(chunk)
        while in_parts and view:
            take = min(len(view), part_bytes - filled)
            part.update(view[:take])
            view = view[take:]
            filled += take
            if filled == part_bytes:
                parts.append(_b64(part.digest()))
                part, filled = hashlib.sha256(), 0
    if in_parts and filled:
        parts.append(_b64(part.digest()))
    return Checksums(
        size=source.size,
        sha256=_b64(whole.digest()),
        composite_sha256=composite_of(parts) if in_parts else None,
        part_sha256=tuple(parts),
    )


def matches(
    info: ObjectInfo | None, *, size: int, sha256: str, composite_sha256: str | None = None
) -> bool:
    """`info` holds this content: same size and S3's full SHA-256, or (a multipart copy) the
    composite recorded for it."""
    if info is None or info.size != size:
        return False
    if info.sha256 is not None:
        return info.sha256 == sha256
    return composite_sha256 is not None and info.composite_sha256 == composite_sha256


def copy_verified(
    s3: S3Client,
    *,
    source: ObjectInfo,
    checksums: Checksums,
    bucket: str,
    key: str,
    storage_class: str,
    metadata: dict[str, str] | None = None,
) -> ObjectInfo:
    """Copy `source` to bucket/key in `storage_class`; return the verified destination.
    `metadata` replaces the source's user metadata on the copy (its Content-Type is kept).

    `checksums` is what the source holds (from `content_checksums` or recorded at archive
    time). A copy that does not match is deleted and CopyNotVerified raised, so a later check
    never finds a bad copy that looks like a finished one. On a versioned bucket the result's
    `version_id` is the version this copy made (not whatever is current by the time of the
    check), and a bad copy is deleted by that version, never by key.
    """
    if source.size > MAX_SINGLE_COPY_BYTES:
        version = _copy_in_parts(s3, source=source, checksums=checksums, bucket=bucket, key=key,
                                 storage_class=storage_class, metadata=metadata)  # fmt: skip
    else:
        replaced: dict[str, Any] = {} if metadata is None else {
            "MetadataDirective": "REPLACE", "Metadata": metadata,
            **({"ContentType": source.content_type} if source.content_type else {}),
        }
        version = s3.copy_object(
            Bucket=bucket,
            Key=key,
            CopySource={"Bucket": source.bucket, "Key": source.key},
            StorageClass=storage_class,  # type: ignore[arg-type]
            ChecksumAlgorithm="SHA256",
            **({"MetadataDirective": "COPY"} | replaced),
        ).get("VersionId")
    version = _version(version)
    # Ours, by its version: another writer's copy may have landed since.
    copied = head_object(s3, bucket, key, version_id=version)
    if not matches(copied, size=checksums.size, sha256=checksums.sha256,
                   composite_sha256=checksums.composite_sha256):  # fmt: skip
        if version is not None:
            s3.delete_object(Bucket=bucket, Key=key, VersionId=version)
        else:
            s3.delete_object(Bucket=bucket, Key=key)
        got = (copied.size, copied.sha256 or copied.composite_sha256) if copied else "nothing"
        raise CopyNotVerified(
            f"copy of s3://{source.bucket}/{source.key} to s3://{bucket}/{key} does not match: "
            f"expected {checksums.size} bytes sha256 "
            f"{checksums.composite_sha256 or checksums.sha256}, got {got}"
        )
    assert copied is not None
    return copied


def _copy_in_parts(
    s3: S3Client, *, source: ObjectInfo, checksums: Checksums, bucket: str, key: str,
    storage_class: str, metadata: dict[str, str] | None = None,
) -> str | None:  # fmt: skip
    """A multipart copy in COPY_PART_BYTES parts, each part's SHA-256 checked against ours
    when we read the source (the archiver), and given to S3, which checks it again."""
    if checksums.composite_sha256 is None:
        raise CopyNotVerified(f"s3://{source.bucket}/{source.key} is over "
                              f"{MAX_SINGLE_COPY_BYTES} bytes but no composite checksum is known")
    described: dict[str, Any] = {} if metadata is None else {
        "Metadata": metadata,
        **({"ContentType": source.content_type} if source.content_type else {}),
    }
    upload = s3.create_multipart_upload(
        Bucket=bucket, Key=key, StorageClass=storage_class,  # type: ignore[arg-type]
        ChecksumAlgorithm="SHA256", **described,
    )
    upload_id = upload["UploadId"]
    try:
        completed: list[dict[str, Any]] = []
        for number, start in enumerate(range(0, source.size, COPY_PART_BYTES), start=1):
            end = min(start + COPY_PART_BYTES, source.size) - 1
            result = s3.upload_part_copy(
                Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number,
                CopySource={"Bucket": source.bucket, "Key": source.key},
                CopySourceRange=f"bytes={start}-{end}",
            )["CopyPartResult"]
            ours = checksums.part_sha256[number - 1] if checksums.part_sha256 else None
            theirs = result.get("ChecksumSHA256")
            if ours and theirs and ours != theirs:
                raise CopyNotVerified(f"part {number} of s3://{bucket}/{key}: S3 copied "
                                      f"sha256 {theirs}, the source part is {ours}")
            part: dict[str, Any] = {"PartNumber": number, "ETag": result["ETag"]}
            if theirs or ours:
                part["ChecksumSHA256"] = theirs or ours
            completed.append(part)
        return s3.complete_multipart_upload(
            Bucket=bucket, Key=key, UploadId=upload_id,
            MultipartUpload={"Parts": completed},  # type: ignore[typeddict-item]
        ).get("VersionId")
    except BaseException:
        # Nothing half-copied stays behind (an incomplete upload is invisible but billed).
        s3.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
        raise


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
