"""Builds the six service images with buildah: no Docker engine, no registry needed.

    python3 images/build.py [--ca-bundle FILE] [--python-image IMG --uv-image IMG] [SERVICE...]

Without --python-image/--uv-image the bases are made here (no public registry is reachable
from the machines we build on): a Debian bookworm root with python3 from mmdebstrap, imported
into a scratch image, and a scratch image holding the installed `uv` binary at /uv. Both are
kept in buildah's storage (and the root as a tar in the cache directory), so only the first
run pays for them.

--ca-bundle is for a network that intercepts TLS: the bundle goes into the LOCAL python base
(with SSL_CERT_FILE and UV_NATIVE_TLS=1), so uv inside the build trusts it. `buildah bud --env`
does not reach RUN steps, so the base image is the one place it works. Images built for release
use the public bases and never carry it.

Needs root (buildah with the vfs driver and chroot isolation works without kernel overlay
support or user namespaces). Only the standard library, so it runs before `uv sync`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVICES = ("web", "annotator", "archiver", "restorer", "thawer", "notifier")
BUILDAH = ("buildah", "--storage-driver", "vfs")
DEBIAN_SUITE = "bookworm"
# What the services need from the base: Debian's python3 is 3.11, as the lock expects.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
MMDEBSTRAP_OPTIONS = (
    "--variant=minbase",
    "--include=" + ",".join(BASE_PACKAGES),
    # No documentation or translations, as in the slim public images (~40 MB less).
    *(f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("doc", "man", "info", "locale")),
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
)
# Named after the options, so changing them makes a new base rather than reusing the old.
BASE_KEY = hashlib.sha256(" ".join((DEBIAN_SUITE, *MMDEBSTRAP_OPTIONS)).encode()).hexdigest()[:8]
BASE_IMAGE = f"localhost/gas-base-python:3.11-{DEBIAN_SUITE}-{BASE_KEY}"
UV_BASE_IMAGE = "localhost/gas-base-uv"
# uv reads the system's roots (SSL_CERT_FILE) instead of its built-in ones: UV_NATIVE_TLS is
# what uv <= 0.13 reads, UV_SYSTEM_CERTS its newer name.
TRUST_SYSTEM_CERTS = ("UV_NATIVE_TLS=1", "UV_SYSTEM_CERTS=1")
DIGEST_LABEL = "org.gas.build.context-digest"
CA_PATH_IN_IMAGE = "/etc/ssl/certs/gas-build-ca-bundle.crt"


def default_cache_dir() -> Path:
    configured = os.environ.get("GAS_IMAGE_CACHE")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gas" / "images"


def say(message: str) -> None:
    print(f"images| {message}", file=sys.stderr, flush=True)


def buildah(*args: str, capture: bool = False) -> str:
    result = subprocess.run([*BUILDAH, *args], check=True, text=True,
                            stdout=subprocess.PIPE if capture else None)
    return (result.stdout or "").strip()


def inspect_image(name: str, template: str) -> str | None:
    """`buildah inspect --format template` of a local image; None if there is no such image."""
    found = subprocess.run([*BUILDAH, "inspect", "--type", "image", "--format", template, name],
                           check=False, capture_output=True, text=True)
    return found.stdout.strip() if found.returncode == 0 else None


def image_exists(name: str) -> bool:
    return inspect_image(name, "{{.FromImageID}}") is not None


_UNITS = {"B": 1, "kB": 1e3, "KB": 1e3, "MB": 1e6, "GB": 1e9}


def image_size(name: str) -> int:
    """The image's uncompressed size in bytes (what it occupies once pulled)."""
    (image,) = json.loads(buildah("images", "--json", name, capture=True))
    # buildah 1.28 gives it only as text, e.g. "588 MB" (decimal units).
    number, unit = image["size"].split()
    return round(float(number) * _UNITS[unit])


# -- local bases ---------------------------------------------------------------------------------


def debian_root(cache: Path) -> Path:
    """A minimal Debian root with python3, made once by mmdebstrap and kept as a tar."""
    tar = cache / f"debian-{DEBIAN_SUITE}-python3-{BASE_KEY}.tar"
    if tar.is_file():
        return tar
    cache.mkdir(parents=True, exist_ok=True)
    partial = tar.with_suffix(".partial.tar")
    say(f"mmdebstrap {DEBIAN_SUITE} (takes a few minutes, once) -> {tar}")
    subprocess.run(["mmdebstrap", *MMDEBSTRAP_OPTIONS, DEBIAN_SUITE, str(partial)], check=True)
    partial.rename(tar)
    return tar


def python_base(cache: Path, ca_bundle: Path | None = None) -> str:
    """The local stand-in for python:3.11-slim-bookworm, with `ca_bundle` trusted if given."""
    if not image_exists(BASE_IMAGE):
        tar = debian_root(cache)
        container = buildah("from", "scratch", capture=True)
        try:
            mountpoint = buildah("mount", container, capture=True)
            subprocess.run(["tar", "-xf", str(tar), "-C", mountpoint], check=True)
            buildah("umount", container)
            buildah("config", "--env", "LANG=C.UTF-8", "--cmd", "python3", container)
            buildah("commit", "--quiet", container, BASE_IMAGE, capture=True)
        finally:
            buildah("rm", container, capture=True)
    if ca_bundle is None:
        return BASE_IMAGE
    extra = ca_bundle.read_bytes()
    env = (f"SSL_CERT_FILE={CA_PATH_IN_IMAGE}", *TRUST_SYSTEM_CERTS)
    name = f"{BASE_IMAGE}-ca-{hashlib.sha256(extra + repr(env).encode()).hexdigest()[:12]}"
    if image_exists(name):
        return name
    container = buildah("from", BASE_IMAGE, capture=True)
    try:
        root = Path(buildah("mount", container, capture=True))
        # The image's own roots plus the extra ones: a bundle holding only a proxy's CA then
        # still leaves every other host trusted.
        own = (root / "etc/ssl/certs/ca-certificates.crt").read_bytes()
        (root / CA_PATH_IN_IMAGE.lstrip("/")).write_bytes(own + b"\n" + extra)
        buildah("umount", container)
        buildah("config", *(f"--env={variable}" for variable in env), container)
        buildah("commit", "--quiet", container, name, capture=True)
    finally:
        buildah("rm", container, capture=True)
    return name


def installed_uv(binary: str | None = None) -> tuple[Path, str]:
    """The installed `uv` (the PyPI package's binary) and its version: the one that wrote and
    reads uv.lock here."""
    found = binary or shutil.which("uv")
    if found is None or not Path(found).is_file():
        raise SystemExit("uv is not installed (pip install uv)")
    version = subprocess.run([found, "--version"], check=True, capture_output=True,
                             text=True).stdout.split()[1]
    return Path(found).resolve(), version


def uv_base(uv_binary: str | None = None) -> str:
    """A scratch image with the uv binary at /uv, like ghcr.io/astral-sh/uv."""
    binary, version = installed_uv(uv_binary)
    name = f"{UV_BASE_IMAGE}:{version}"
    if image_exists(name):
        return name
    container = buildah("from", "scratch", capture=True)
    try:
        buildah("copy", "--chmod", "0755", container, str(binary), "/uv")
        buildah("commit", "--quiet", container, name, capture=True)
    finally:
        buildah("rm", container, capture=True)
    return name


def _remove_stage_containers(image: str) -> None:
    """buildah 1.28 leaves behind the working container of a stage used only by
    `COPY --from` (the uv stage): remove those, or each build leaves one."""
    listed = json.loads(buildah("containers", "--json", capture=True) or "null") or []
    for container in listed:
        if container.get("imagename") == image:
            buildah("rm", container["id"], capture=True)


# -- service images ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Built:
    service: str
    image: str
    seconds: float
    size_bytes: int
    reused: bool = False

    def __str__(self) -> str:
        how = "up to date, reused" if self.reused else f"built in {self.seconds:.0f} s"
        return f"{self.image}: {self.size_bytes / 1e6:.0f} MB, {how}"


def copied_sources(dockerfile: Path) -> list[str]:
    """What the Dockerfile COPYs from the build context (not --from another stage)."""
    logical = re.sub(r"\\\n", " ", dockerfile.read_text())
    sources: list[str] = []
    for line in logical.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from=") for w in words):
            sources += [w for w in words[1:-1] if not w.startswith("--")]
    return sources


def context_digest(service: str, python_image: str, uv_image: str) -> str:
    """A digest of everything the image is made of: its Dockerfile, the bases, and every file
    it copies (less what .dockerignore leaves out: caches and bytecode)."""
    dockerfile = REPO_ROOT / "services" / service / "Dockerfile"
    digest = hashlib.sha256(dockerfile.read_bytes())
    for base in (python_image, uv_image):
        digest.update(f"{base}={inspect_image(base, '{{.FromImageID}}')}\n".encode())
    for source in copied_sources(dockerfile):
        top = REPO_ROOT / source
        files = sorted(top.rglob("*")) if top.is_dir() else [top]
        for path in files:
            if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
                digest.update(f"{path.relative_to(REPO_ROOT)}\n".encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def image_label(name: str, label: str) -> str | None:
    found = subprocess.run([*BUILDAH, "inspect", "--type", "image", name],
                           check=False, capture_output=True, text=True)
    if found.returncode != 0:
        return None
    # buildah 1.28's --format has no `json` function: read the whole description.
    labels = json.loads(found.stdout)["OCIv1"]["config"].get("Labels") or {}
    value = labels.get(label)
    return str(value) if value is not None else None


def build(service: str, *, python_image: str, uv_image: str, tag: str | None = None) -> Built:
    """`buildah bud` of services/<service>/Dockerfile from the repository root.

    An image whose context digest matches is not rebuilt: a second `make images`, or the image
    tests after it in the same CI run, reuse it. (buildah's own --layers cache would keep a
    full copy of the root per step with the vfs driver: several GB and slower cold builds.)
    """
    image = tag or f"localhost/gas-{service}:dev"
    digest = context_digest(service, python_image, uv_image)
    started = time.monotonic()
    if image_label(image, DIGEST_LABEL) == digest:
        say(f"{image} is up to date")
        return Built(service, image, 0.0, image_size(image), reused=True)
    say(f"building {image} FROM {python_image}")
    previous = inspect_image(image, "{{.FromImageID}}")
    buildah("bud", "--isolation", "chroot", "--quiet",
            "-f", str(REPO_ROOT / "services" / service / "Dockerfile"),
            "--build-arg", f"PYTHON_IMAGE={python_image}",
            "--build-arg", f"UV_IMAGE={uv_image}",
            "--label", f"{DIGEST_LABEL}={digest}",
            "-t", image, str(REPO_ROOT), capture=True)
    _remove_stage_containers(uv_image)
    if previous and previous != inspect_image(image, "{{.FromImageID}}"):
        # The old image lost its tag: remove it, or every build would leave one behind.
        subprocess.run([*BUILDAH, "rmi", previous], check=False, capture_output=True)
    return Built(service, image, time.monotonic() - started, image_size(image))


def build_all(services: list[str], *, python_image: str | None = None,
              uv_image: str | None = None, ca_bundle: Path | None = None,
              cache: Path | None = None, uv_binary: str | None = None) -> list[Built]:
    if (python_image is None) != (uv_image is None):
        raise SystemExit("give both --python-image and --uv-image, or neither (local bases)")
    if python_image is None or uv_image is None:
        python_image = python_base(cache or default_cache_dir(), ca_bundle)
        uv_image = uv_base(uv_binary)
    elif ca_bundle is not None:
        raise SystemExit("--ca-bundle applies to the local bases only")
    results = []
    for service in services:
        results.append(build(service, python_image=python_image, uv_image=uv_image))
        if not results[-1].reused:
            say(str(results[-1]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("services", nargs="*", metavar="SERVICE",
                        help=f"any of {', '.join(SERVICES)} (default: all six)")
    parser.add_argument("--python-image", help="public base (default: a local one)")
    parser.add_argument("--uv-image", help="public uv image (default: a local one)")
    parser.add_argument("--ca-bundle", type=Path,
                        help="extra CA bundle trusted by the LOCAL base (TLS proxies)")
    parser.add_argument("--cache", type=Path, help=f"default: {default_cache_dir()}")
    parser.add_argument("--uv-binary", help="the uv put in the local uv image (default: on PATH)")
    args = parser.parse_args()
    unknown = set(args.services) - set(SERVICES)
    if unknown:
        parser.error(f"unknown services: {', '.join(sorted(unknown))}")
    results = build_all(list(args.services) or list(SERVICES), python_image=args.python_image,
                        uv_image=args.uv_image, ca_bundle=args.ca_bundle, cache=args.cache,
                        uv_binary=args.uv_binary)
    for built in results:
        print(built)


if __name__ == "__main__":
    main()
