"""Reference bundles in S3: publish a built bundle, and pull it into a pod's local cache.

A bundle is a directory with `manifest.json` listing every file and its sha256. Pods pull
`s3://bucket/references/<assembly>/<version>/` at start; files already in the cache with the
right checksum are kept, so a restarted pod does not download gigabytes again. Every file
is verified against the manifest before the service starts using the bundle.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

from gas_annotator.reference import MANIFEST_NAME, Bundle, BundleError, load_bundle, sha256_file
from gas_core.logging import get_logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

log = get_logger("gas.annotator.bundle")


def split_s3_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise BundleError(f"not an s3:// URI: {uri}")
    return parsed.netloc, parsed.path.lstrip("/").rstrip("/") + "/"


def publish_bundle(s3: S3Client, bundle_dir: Path, uri: str) -> int:
    """Upload a verified bundle (manifest last, so a reader never sees a partial bundle)."""
    bundle = load_bundle(bundle_dir)
    bucket, prefix = split_s3_uri(uri)
    for rel in sorted(bundle.manifest.files):
        s3.upload_file(str(bundle.root / rel), bucket, prefix + rel)
    s3.upload_file(str(bundle.root / MANIFEST_NAME), bucket, prefix + MANIFEST_NAME)
    return len(bundle.manifest.files) + 1


def pull_bundle(s3: S3Client, uri: str, cache_dir: Path) -> Bundle:
    """Download the bundle at `uri` into `cache_dir` (reusing verified files), then load it."""
    bucket, prefix = split_s3_uri(uri)
    cache_dir.mkdir(parents=True, exist_ok=True)
    manifest_text = s3.get_object(Bucket=bucket, Key=prefix + MANIFEST_NAME)["Body"].read()
    files: dict[str, str] = json.loads(manifest_text)["files"]
    downloaded = 0
    for rel, checksum in sorted(files.items()):
        target = (cache_dir / rel).resolve()
        if not target.is_relative_to(cache_dir.resolve()):
            raise BundleError(f"bundle manifest names a file outside the bundle: {rel}")
        if target.is_file() and sha256_file(target) == checksum:
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        s3.download_file(bucket, prefix + rel, str(partial))
        if sha256_file(partial) != checksum:
            partial.unlink()
            raise BundleError(f"bundle file {rel} from {uri} does not match its checksum")
        shutil.move(partial, target)
        downloaded += 1
    (cache_dir / MANIFEST_NAME).write_bytes(manifest_text)
    bundle = load_bundle(cache_dir)
    log.info(
        "reference_bundle_ready",
        uri=uri,
        bundle=bundle.label,
        files=len(files),
        downloaded=downloaded,
    )
    return bundle
