"""Results over CopyObject's single-request limit (5 GiB in AWS; 6 MiB here, with 5 MiB parts)
are archived and thawed with multipart copies checked by composite SHA-256, byte-identical."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from dataclasses import replace

import pytest
from boto3.s3.transfer import TransferConfig

from gas_core import objects
from gas_core.jobs import Job
from gas_core.objects import Checksums, CopyNotVerified, composite_of, copy_verified, head_object
from tests.services.archiver.lifecycle_support import Crash, Intercept, Lifecycle, crash

MIB = 1024**2


@pytest.fixture(autouse=True)
def small_copy_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(objects, "MAX_SINGLE_COPY_BYTES", 6 * MIB)
    monkeypatch.setattr(objects, "COPY_PART_BYTES", 5 * MIB)


def _b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def _large_result(life: Lifecycle, job: Job, kind: str = "tsv", size: int = 13 * MIB) -> bytes:
    """Replace one result with `size` random bytes uploaded in 8 MiB parts, as the annotator's
    upload_file leaves a large file (no full-object SHA-256 in S3)."""
    body = os.urandom(size)
    key = job.result_keys[kind]
    life.aws.s3.upload_fileobj(
        io.BytesIO(body), life.results_bucket, key,
        Config=TransferConfig(multipart_threshold=5 * MIB, multipart_chunksize=8 * MIB))
    life.contents[key] = body
    return body


def _no_pending_uploads(life: Lifecycle, bucket: str) -> bool:
    return not life.aws.s3.list_multipart_uploads(Bucket=bucket).get("Uploads")


def test_a_result_over_the_copy_limit_is_archived_in_parts_and_thawed_byte_identical(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    body = _large_result(life, job)

    assert life.archive(job) == "archived"

    life.assert_archived(job)
    archived = life.job(job).archived_objects["tsv"]
    parts = [_b64_sha256(body[i:i + 5 * MIB]) for i in range(0, len(body), 5 * MIB)]
    assert (archived.size, archived.sha256) == (len(body), _b64_sha256(body))
    assert archived.composite_sha256 == composite_of(parts)
    stored = head_object(life.aws.s3, life.archive_bucket, archived.key)
    assert stored is not None and stored.composite_sha256 == archived.composite_sha256
    assert _no_pending_uploads(life, life.archive_bucket)

    life.upgrade(user_id)
    assert life.thaw(job) == {job.job_id: "thawed"}
    life.assert_hot_and_intact(job)  # byte-identical, archive emptied
    assert _no_pending_uploads(life, life.results_bucket)


def test_redelivery_after_a_crash_reuses_the_verified_multipart_copy(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    _large_result(life, job)
    faulty = Intercept(life.archiver.repository, "transition_storage_if_profile_unchanged",
                       before=crash)
    with pytest.raises(Crash):
        life.archive(job, archiver=replace(life.archiver, repository=faulty))
    copies = Intercept(life.aws.s3, "upload_part_copy")

    assert life.archive(job, archiver=replace(life.archiver, s3=copies)) == "archived"

    assert copies.calls == []  # the archive copy from the first attempt matched
    life.assert_archived(job)


def test_a_multipart_copy_that_does_not_match_is_removed(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    body = _large_result(life, job)
    source = head_object(life.aws.s3, life.results_bucket, job.result_keys["tsv"])
    assert source is not None and source.sha256 is None  # uploaded in parts
    wrong = Checksums(len(body), _b64_sha256(body), composite_sha256=_b64_sha256(b"other"))

    with pytest.raises(CopyNotVerified):
        copy_verified(life.aws.s3, source=source, checksums=wrong, bucket=life.archive_bucket,
                      key=source.key, storage_class="GLACIER")

    assert head_object(life.aws.s3, life.archive_bucket, source.key) is None
    assert _no_pending_uploads(life, life.archive_bucket)


def test_a_multipart_copy_failing_half_way_leaves_no_upload_behind(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    _large_result(life, job)
    source = head_object(life.aws.s3, life.results_bucket, job.result_keys["tsv"])
    assert source is not None
    checksums = objects.content_checksums(life.aws.s3, source)
    assert len(checksums.part_sha256) == 3
    second_part_fails = Intercept(life.aws.s3, "upload_part_copy", before=crash,
                                  match=lambda **kwargs: kwargs["PartNumber"] == 2)

    with pytest.raises(Crash):
        copy_verified(second_part_fails, source=source, checksums=checksums,  # type: ignore[arg-type]
                      bucket=life.archive_bucket, key=source.key, storage_class="GLACIER")

    assert head_object(life.aws.s3, life.archive_bucket, source.key) is None
    assert _no_pending_uploads(life, life.archive_bucket)
