"""The six service images, built once per test session with buildah on local bases (no
registry is reachable here). buildah keeps every layer, so images that `make images` built
earlier in the same run are reused: an unchanged image rebuilds in seconds."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from images.build import SERVICES, Built, build_all
from tests.support import require_or_skip

# The network here intercepts TLS; the system bundle carries its CA (see docs/operations.md).
SYSTEM_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@pytest.fixture(scope="session")
def built_images() -> dict[str, Built]:
    require_or_skip(os.geteuid() == 0, "building images with buildah (vfs, chroot) needs root")
    for tool in ("buildah", "mmdebstrap", "uv"):
        require_or_skip(shutil.which(tool) is not None, f"{tool} is not installed")
    configured = os.environ.get("GAS_IMAGE_CA_BUNDLE")
    ca_bundle = Path(configured) if configured else SYSTEM_CA_BUNDLE
    results = build_all(list(SERVICES), ca_bundle=ca_bundle if ca_bundle.is_file() else None)
    print()
    for built in results:
        print(f"image {built}")
    return {built.service: built for built in results}
