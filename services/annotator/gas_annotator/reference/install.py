"""Installing a real bundle from Ensembl and ClinVar: resolve the URLs, download, verify the
published checksums, then build."""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gas_annotator.reference.build import build_bundle
from gas_annotator.reference.bundle import BundleError, Manifest, sha256_file

# Where `install_bundle` downloads from. The base URLs are overridable (mirrors, tests).
ENSEMBL_BASE_URL = "https://ftp.ensembl.org/pub"


ENSEMBL_RELEASE = "current"


CLINVAR_BASE_URL = "https://ftp.ncbi.nlm.nih.gov/pub/clinvar"


INSTALL_SOURCES: dict[str, dict[str, str]] = {
    "GRCh38": {
        # Ensembl publishes a CHECKSUMS file (BSD `sum` output) next to each file.
        "fasta": "{ensembl}/{release}_fasta/homo_sapiens/dna/"
        "Homo_sapiens.GRCh38.dna.primary_assembly.fa.gz",
        "fasta_checksums": "{ensembl}/{release}_fasta/homo_sapiens/dna/CHECKSUMS",
        "gff3": "{ensembl}/{release}_gff3/homo_sapiens/"
        "Homo_sapiens.GRCh38.{ensembl_version}gff3.gz",
        "gff3_checksums": "{ensembl}/{release}_gff3/homo_sapiens/CHECKSUMS",
        # NCBI publishes an .md5 next to the ClinVar VCF.
        "clinvar": "{clinvar}/vcf_GRCh38/clinvar.vcf.gz",
        "clinvar_md5": "{clinvar}/vcf_GRCh38/clinvar.vcf.gz.md5",
    }
}


@dataclass(frozen=True)
class InstallUrls:
    ensembl: str = ENSEMBL_BASE_URL
    clinvar: str = CLINVAR_BASE_URL
    release: str = ENSEMBL_RELEASE
    # Ensembl names the GFF3 with the release number (Homo_sapiens.GRCh38.113.gff3.gz); empty
    # means "discover it from the directory listing".
    ensembl_version: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def _download(url: str, dest: Path) -> None:
    if not url.startswith(("http://", "https://", "ftp://", "file://")):
        raise BundleError(f"refusing to download from {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, dest.open("wb") as out:  # noqa: S310
            shutil.copyfileobj(response, out, 1 << 20)
    except OSError as exc:
        raise BundleError(f"download of {url} failed: {exc}") from exc


def _fetch_text(url: str) -> str:
    if not url.startswith(("http://", "https://", "ftp://", "file://")):
        raise BundleError(f"refusing to download from {url!r}")
    try:
        with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310
            data: bytes = response.read()
    except OSError as exc:
        raise BundleError(f"download of {url} failed: {exc}") from exc
    return data.decode("utf-8", errors="replace")


def bsd_sum(path: Path) -> tuple[int, int]:
    """BSD ``sum`` (16-bit rotating checksum, 1 KiB blocks): what Ensembl's CHECKSUMS lists.

    The checksum is inherently sequential, so a pure-Python loop would take minutes on a 1 GB
    genome: coreutils ``sum -r`` (the same algorithm) is used when present.
    """
    tool = shutil.which("sum")
    if tool is not None:
        result = subprocess.run(
            [tool, "-r", str(path)], capture_output=True, text=True, check=False
        )
        parts = result.stdout.split()
        if result.returncode == 0 and len(parts) >= 2:
            return int(parts[0]), int(parts[1])
    return bsd_sum_python(path)


def bsd_sum_python(path: Path) -> tuple[int, int]:
    """The reference implementation of BSD ``sum`` (slow; a fallback and a test oracle)."""
    checksum = 0
    size = 0
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            size += len(block)
            for byte in block:
                checksum = (checksum >> 1) + ((checksum & 1) << 15)
                checksum = (checksum + byte) & 0xFFFF
    return checksum, (size + 1023) // 1024


def _verify_ensembl_sum(path: Path, checksums_text: str, file_name: str) -> str:
    for line in checksums_text.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[-1] == file_name:
            expected = (int(parts[0]), int(parts[1]))
            actual = bsd_sum(path)
            if actual != expected:
                raise BundleError(
                    f"{file_name}: checksum {actual} does not match Ensembl's {expected}"
                )
            return f"sum {parts[0]} {parts[1]}"
    raise BundleError(f"{file_name} is not listed in Ensembl's CHECKSUMS file")


def _discover_gff3_name(listing_url: str) -> str:
    html = _fetch_text(listing_url)
    names = sorted(set(re.findall(r"Homo_sapiens\.GRCh38\.\d+\.gff3\.gz", html)))
    if not names:
        raise BundleError(f"no Homo_sapiens.GRCh38.<release>.gff3.gz listed at {listing_url}")
    return str(names[-1])


def install_bundle(
    assembly: str,
    out: Path,
    *,
    urls: InstallUrls | None = None,
    mane: Path | None = None,
    download_dir: Path | None = None,
) -> Manifest:
    """Download Ensembl sequence + gene models and ClinVar, verify them, build a bundle."""
    if assembly not in INSTALL_SOURCES:
        raise BundleError(f"no download sources known for {assembly!r} (known: GRCh38)")
    urls = urls or InstallUrls()
    templates = INSTALL_SOURCES[assembly]
    fill = {
        "ensembl": urls.ensembl.rstrip("/"),
        "clinvar": urls.clinvar.rstrip("/"),
        "release": urls.release,
        "ensembl_version": f"{urls.ensembl_version}." if urls.ensembl_version else "",
    }
    resolved = {key: tpl.format(**fill) for key, tpl in templates.items()}
    resolved.update(urls.extra)
    if not urls.ensembl_version and "gff3" not in urls.extra:
        listing = resolved["gff3_checksums"].rsplit("/", 1)[0] + "/"
        resolved["gff3"] = listing + _discover_gff3_name(listing)

    keep = download_dir is not None
    work = download_dir or Path(tempfile.mkdtemp(prefix="gas-install-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        sources: list[dict[str, Any]] = []
        local: dict[str, Path] = {}
        for role in ("fasta", "gff3", "clinvar"):
            url = resolved[role]
            dest = work / url.rsplit("/", 1)[-1]
            _download(url, dest)
            if role in ("fasta", "gff3"):
                verified = _verify_ensembl_sum(
                    dest, _fetch_text(resolved[f"{role}_checksums"]), dest.name
                )
            else:
                expected = _fetch_text(resolved["clinvar_md5"]).split()[0]
                actual = hashlib.md5(dest.read_bytes(), usedforsecurity=False).hexdigest()
                if actual != expected:
                    raise BundleError(f"{dest.name}: md5 {actual} does not match NCBI's {expected}")
                verified = f"md5 {expected}"
            local[role] = dest
            sources.append(
                {
                    "role": "known_variants" if role == "clinvar" else role,
                    "url": url,
                    "verified": verified,
                    "sha256": sha256_file(dest),
                }
            )
        release = urls.ensembl_version or _release_from_name(local["gff3"].name)
        return build_bundle(
            assembly,
            local["fasta"],
            local["gff3"],
            [local["clinvar"]],
            out,
            name=f"{assembly.lower()}-ensembl",
            version=f"ensembl-{release}",
            mane=mane,
            sources=sources,
        )
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


def _release_from_name(name: str) -> str:
    match = re.search(r"\.(\d+)\.gff3", name)
    return match.group(1) if match else "unknown"
