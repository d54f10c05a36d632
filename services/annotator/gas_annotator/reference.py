"""Reference bundles: everything the engine needs for one assembly, in one checked directory.

A bundle is a directory with a ``manifest.json`` that names the assembly, the bundle's name and
version, whether it is synthetic, where every input came from and the sha256 of every file in
it. The engine never reads a file the manifest does not list, and ``load_bundle`` refuses a
bundle whose files do not match their checksums (a half-copied bundle pulled from S3 must not
silently annotate against the wrong sequence).

Layout (all paths relative to the bundle directory)::

    manifest.json
    genome.fa.gz (+ .fai, .gzi)     bgzipped FASTA, faidx-indexed
    gff/<contig>.gff3.gz            gene models split per contig: bcftools csq parses the GFF on
                                    every call, so a chunk on chr21 must not pay for chr1's genes
    genes.tsv                       gene spans (nearest gene, upstream/downstream context)
    known/<n>.vcf.gz (+ .tbi)       known variants, split to biallelic, left-aligned, contigs
                                    renamed to the FASTA's names
    mane.tsv                        optional: MANE Select transcripts (unversioned Ensembl IDs)
"""

from __future__ import annotations

import gzip
import hashlib
import importlib
import json
import random
import re
import shutil
import subprocess
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import IO, Any

import pysam
import pysam.bcftools
from pysam.utils import SamtoolsError

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = 1
FASTA_NAME = "genome.fa.gz"
GENES_NAME = "genes.tsv"
MANE_NAME = "mane.tsv"
GFF_DIR = "gff"
KNOWN_DIR = "known"

# Population allele-frequency fields, most preferred first: genome-wide cohorts before exome-only
# ones, gnomAD before 1000 Genomes before ExAC/ESP (bigger and more recent).
AF_FIELD_PREFERENCE = (
    "AF",
    "gnomADg_AF",
    "gnomAD_AF",
    "gnomADe_AF",
    "AF_TGP",
    "AF_EXAC",
    "AF_ESP",
)
CLNSIG_FIELDS = ("CLNSIG", "CLIN_SIG")

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


class BundleError(Exception):
    """A bundle cannot be built, installed or loaded; str(e) is a one-line reason."""


@dataclass(frozen=True)
class KnownSource:
    path: str
    source: str
    id_is_rsid: bool
    af_field: str | None
    clnsig_field: str | None
    records: int


@dataclass(frozen=True)
class Manifest:
    assembly: str
    name: str
    version: str
    synthetic: bool
    created_at: str
    contigs: dict[str, int]
    aliases: dict[str, str]
    files: dict[str, str]
    sources: list[dict[str, Any]]
    known: list[KnownSource]
    has_mane: bool
    tools: dict[str, str]
    schema: int = MANIFEST_SCHEMA

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if data.get("schema") != MANIFEST_SCHEMA:
            raise BundleError(f"unsupported bundle manifest schema {data.get('schema')!r}")
        data["known"] = [KnownSource(**k) for k in data["known"]]
        return cls(**data)


@dataclass(frozen=True)
class Bundle:
    """A loaded, verified bundle: the manifest plus absolute paths the engine uses."""

    root: Path
    manifest: Manifest

    @property
    def fasta(self) -> Path:
        return self.root / FASTA_NAME

    @property
    def genes(self) -> Path:
        return self.root / GENES_NAME

    @property
    def mane(self) -> Path | None:
        return self.root / MANE_NAME if self.manifest.has_mane else None

    def gff_for(self, contig: str) -> Path | None:
        """The contig's gene models, or None when the bundle has no genes on it."""
        rel = f"{GFF_DIR}/{_safe_name(contig)}.gff3.gz"
        return self.root / rel if rel in self.manifest.files else None

    def known_paths(self) -> list[tuple[KnownSource, Path]]:
        return [(k, self.root / k.path) for k in self.manifest.known]

    def resolve_contig(self, name: str) -> str | None:
        return resolve_contig(name, self.manifest.contigs, self.manifest.aliases)

    @property
    def label(self) -> str:
        synthetic = " (SYNTHETIC)" if self.manifest.synthetic else ""
        return f"{self.manifest.name} {self.manifest.version} {self.manifest.assembly}{synthetic}"


def tool_versions() -> dict[str, str]:
    # pysam's package __init__ shadows the `version` module with a dispatcher for type checkers.
    version = importlib.import_module("pysam.version")
    return {
        "pysam": str(version.__version__),
        "htslib": str(version.__htslib_version__),
        "bcftools": str(version.__bcftools_version__),
    }


# --------------------------------------------------------------------------- contig names


def resolve_contig(name: str, contigs: Mapping[str, int], aliases: Mapping[str, str]) -> str | None:
    """Map a user's contig name to the bundle's: exact, alias table, then chr-prefix rules."""
    if name in contigs:
        return name
    if name in aliases and aliases[name] in contigs:
        return aliases[name]
    for candidate in _naming_variants(name):
        if candidate in contigs:
            return candidate
        if candidate in aliases and aliases[candidate] in contigs:
            return aliases[candidate]
    return None


def _naming_variants(name: str) -> Iterator[str]:
    # UCSC names mitochondria chrM, Ensembl/NCBI MT; everything else differs by the chr prefix.
    mito = {"chrM", "chrMT", "M", "MT"}
    if name in mito:
        yield from ("MT", "chrM", "M", "chrMT")
        return
    if name.lower().startswith("chr"):
        yield name[3:]
    else:
        yield "chr" + name


# --------------------------------------------------------------------------- helpers


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _safe_name(contig: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", contig)


def _open_text(path: Path) -> IO[str]:
    with path.open("rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return path.open("r", encoding="utf-8", errors="replace")


def _bgzip_fasta(fasta: Path, out: Path) -> None:
    """Copy a FASTA (plain, gzip or bgzip) into the bundle as bgzip, then faidx it."""
    with _open_text(fasta) as src, pysam.BGZFile(str(out), "wb", index=None) as dst:
        first = src.readline()
        if not first.startswith(">"):
            raise BundleError(f"{fasta.name} is not a FASTA file (it does not start with '>')")
        dst.write(first.encode())
        for block in iter(lambda: src.read(1 << 20), ""):
            dst.write(block.encode())
    try:
        pysam.faidx(str(out))
    except SamtoolsError as exc:
        raise BundleError(f"cannot index {fasta.name}: {_first_line(str(exc))}") from exc


def _first_line(text: str) -> str:
    for line in text.replace("\\n", "\n").splitlines():
        if line.strip():
            return line.strip()
    return text.strip()


def _attrs(column9: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in column9.strip().split(";"):
        key, sep, value = part.partition("=")
        if sep:
            out[key] = urllib.parse.unquote(value)
    return out


_GENE_TYPES = {"gene", "ncRNA_gene", "pseudogene"}


def _split_gff(
    gff3: Path, out_dir: Path, contigs: Mapping[str, int], aliases: Mapping[str, str]
) -> tuple[dict[str, Path], list[tuple[str, int, int, str, str, str, str]], int]:
    """Split GFF3 per contig (renamed to FASTA names) and collect gene spans.

    Returns the per-contig files, gene rows and the number of transcripts seen. Lines on contigs
    the FASTA lacks are counted and rejected: gene models without sequence are a wrong pairing.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    handles: dict[str, gzip.GzipFile] = {}
    paths: dict[str, Path] = {}
    genes: list[tuple[str, int, int, str, str, str, str]] = []
    transcripts = 0
    unknown: dict[str, int] = {}
    saw_feature = False
    try:
        with _open_text(gff3) as src:
            for lineno, line in enumerate(src, 1):
                if line.startswith("#") or not line.strip():
                    continue
                cols = line.rstrip("\n").split("\t")
                if len(cols) != 9:
                    raise BundleError(
                        f"{gff3.name} line {lineno}: expected 9 tab-separated GFF3 columns, "
                        f"found {len(cols)}"
                    )
                saw_feature = True
                contig = resolve_contig(cols[0], contigs, aliases)
                if contig is None:
                    unknown[cols[0]] = unknown.get(cols[0], 0) + 1
                    continue
                attrs = _attrs(cols[8])
                ident = attrs.get("ID", "")
                if ident.startswith("transcript:"):
                    transcripts += 1
                if ident.startswith("gene:") or cols[2] in _GENE_TYPES or cols[2].endswith("_gene"):
                    genes.append(
                        (
                            contig,
                            int(cols[3]),
                            int(cols[4]),
                            cols[6],
                            attrs.get("gene_id", ident.removeprefix("gene:")),
                            attrs.get("Name", attrs.get("gene_id", ident.removeprefix("gene:"))),
                            attrs.get("biotype", cols[2]),
                        )
                    )
                out_line = line if cols[0] == contig else "\t".join([contig, *cols[1:]]) + "\n"
                handle = handles.get(contig)
                if handle is None:
                    paths[contig] = out_dir / f"{_safe_name(contig)}.gff3.gz"
                    # One open file per contig for the whole pass; closed in `finally` below.
                    # mtime=0: the same input gives the same bytes (and checksums) whatever
                    # the second of the build (gzip stores the time in its header).
                    handle = gzip.GzipFile(paths[contig], "wb", compresslevel=6, mtime=0)
                    handle.write(b"##gff-version 3\n")
                    handles[contig] = handle
                handle.write(out_line.encode())
    finally:
        for handle in handles.values():
            handle.close()
    if not saw_feature:
        raise BundleError(f"{gff3.name} has no GFF3 features")
    if unknown:
        names = ", ".join(sorted(unknown)[:5])
        raise BundleError(
            f"{gff3.name} has features on contigs the FASTA lacks ({names}); "
            "are the gene models and the sequence from the same assembly?"
        )
    if transcripts == 0:
        raise BundleError(
            f"{gff3.name} has no transcripts with ID=transcript:... "
            "(bcftools csq needs Ensembl-style GFF3)"
        )
    return paths, genes, transcripts


def _read_contigs(fasta_index: Path) -> dict[str, int]:
    contigs: dict[str, int] = {}
    for line in fasta_index.read_text().splitlines():
        name, length, *_ = line.split("\t")
        contigs[name] = int(length)
    return contigs


def _prepare_known(
    *,
    vcf: Path,
    out: Path,
    fasta: Path,
    contigs: Mapping[str, int],
    aliases: Mapping[str, str],
    scratch: Path,
) -> KnownSource:
    """Rename contigs to the FASTA's, split multiallelics and left-align, bgzip + tabix."""
    try:
        with pysam.VariantFile(str(vcf)) as reader:
            header = reader.header
            info = set(header.info.keys())
            used = [str(name) for name in header.contigs]
            ids = []
            for rec in reader:
                if rec.id:
                    ids.append(rec.id)
                if len(ids) >= 200:
                    break
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read known variants {vcf.name}: {exc}") from exc
    rename = scratch / f"{out.name}.rename.txt"
    lines = []
    for name in used:
        target = resolve_contig(name, contigs, aliases)
        if target is not None and target != name:
            lines.append(f"{name}\t{target}\n")
    rename.write_text("".join(lines))
    renamed = scratch / f"{out.name}.renamed.bcf"
    normed = out
    try:
        args = ["--no-version", "-Ou", "-o", str(renamed)]
        if lines:
            args += ["--rename-chrs", str(rename)]
        pysam.bcftools.annotate(*args, str(vcf), catch_stdout=False)
        # Records on contigs the bundle lacks cannot match any user record: drop them.
        keep = ",".join(sorted(contigs))
        filtered = scratch / f"{out.name}.filtered.bcf"
        pysam.bcftools.view(
            "--no-version", "-t", keep, "-Ou", "-o", str(filtered), str(renamed),
            catch_stdout=False,
        )  # fmt: skip
        pysam.bcftools.norm(
            "--no-version", "-m", "-any", "-c", "x", "-f", str(fasta),
            "-Oz", "-o", str(normed), str(filtered),
            catch_stdout=False,
        )  # fmt: skip
        pysam.bcftools.index("-t", "-f", str(normed), catch_stdout=False)
    except SamtoolsError as exc:
        raise BundleError(
            f"cannot prepare known variants {vcf.name}: {_first_line(str(exc))}"
        ) from exc
    records = int(str(pysam.bcftools.index("-n", str(normed))).strip() or 0)
    return KnownSource(
        path=f"{KNOWN_DIR}/{out.name}",
        source=vcf.name,
        id_is_rsid=bool(ids) and sum(i.startswith("rs") for i in ids) >= len(ids) // 2,
        af_field=next((f for f in AF_FIELD_PREFERENCE if f in info), None),
        clnsig_field=next((f for f in CLNSIG_FIELDS if f in info), None),
        records=records,
    )


def _read_mane(mane: Path) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with _open_text(mane) as src:
        header = src.readline().lstrip("#").rstrip("\n").split("\t")
        try:
            tx_col = header.index("Ensembl_nuc")
            sym_col = header.index("symbol")
            status_col = header.index("MANE_status")
        except ValueError as exc:
            raise BundleError(
                f"{mane.name} is not a MANE summary file (needs Ensembl_nuc, symbol, MANE_status)"
            ) from exc
        for line in src:
            cols = line.rstrip("\n").split("\t")
            if len(cols) > max(tx_col, sym_col, status_col) and cols[status_col] == "MANE Select":
                rows.append((cols[tx_col].split(".")[0], cols[sym_col]))
    if not rows:
        raise BundleError(f"{mane.name} lists no MANE Select transcripts")
    return rows


# --------------------------------------------------------------------------- build / load


def build_bundle(
    assembly: str,
    fasta: Path,
    gff3: Path,
    known_variants: Sequence[Path],
    out: Path,
    *,
    name: str | None = None,
    version: str = "1",
    aliases: Mapping[str, str] | None = None,
    mane: Path | None = None,
    synthetic: bool = False,
    sources: Sequence[Mapping[str, Any]] | None = None,
) -> Manifest:
    """Validate the inputs, bgzip and index them into ``out``, write ``manifest.json``.

    ``out`` is written through a temporary sibling directory and renamed at the end, so a failed
    build never leaves a directory that looks like a bundle.
    """
    for path in (fasta, gff3, *known_variants, *([mane] if mane else [])):
        if not path.is_file():
            raise BundleError(f"{path} does not exist")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        manifest = _build_into(
            staging,
            assembly=assembly,
            fasta=fasta,
            gff3=gff3,
            known_variants=known_variants,
            name=name or f"{assembly.lower()}-{fasta.name.split('.')[0]}",
            version=version,
            aliases=dict(aliases or {}),
            mane=mane,
            synthetic=synthetic,
            sources=list(sources or []),
        )
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return manifest


def _build_into(
    root: Path,
    *,
    assembly: str,
    fasta: Path,
    gff3: Path,
    known_variants: Sequence[Path],
    name: str,
    version: str,
    aliases: dict[str, str],
    mane: Path | None,
    synthetic: bool,
    sources: list[dict[str, Any]] | list[Mapping[str, Any]],
) -> Manifest:
    fasta_out = root / FASTA_NAME
    _bgzip_fasta(fasta, fasta_out)
    contigs = _read_contigs(root / f"{FASTA_NAME}.fai")
    if not contigs:
        raise BundleError(f"{fasta.name} has no sequences")
    bad_alias = {a: c for a, c in aliases.items() if c not in contigs}
    if bad_alias:
        raise BundleError(f"aliases point to contigs the FASTA lacks: {bad_alias}")

    _, genes, _ = _split_gff(gff3, root / GFF_DIR, contigs, aliases)
    genes.sort(key=lambda g: (g[0], g[1], g[2]))
    with (root / GENES_NAME).open("w") as handle:
        handle.write("contig\tstart\tend\tstrand\tgene_id\tname\tbiotype\n")
        handle.writelines("\t".join(map(str, g)) + "\n" for g in genes)

    known: list[KnownSource] = []
    if known_variants:
        (root / KNOWN_DIR).mkdir()
        with tempfile.TemporaryDirectory(dir=root) as scratch:
            for i, vcf in enumerate(known_variants):
                known.append(
                    _prepare_known(
                        vcf=vcf,
                        out=root / KNOWN_DIR / f"{i}.vcf.gz",
                        fasta=fasta_out,
                        contigs=contigs,
                        aliases=aliases,
                        scratch=Path(scratch),
                    )
                )

    if mane is not None:
        rows = _read_mane(mane)
        with (root / MANE_NAME).open("w") as handle:
            handle.write("transcript_id\tgene\n")
            handle.writelines(f"{tx}\t{gene}\n" for tx, gene in rows)

    all_sources: list[dict[str, Any]] = [dict(s) for s in sources]
    given = {s.get("role") for s in all_sources}
    local = [("fasta", fasta), ("gff3", gff3)] + [("known_variants", k) for k in known_variants]
    if mane is not None:
        local.append(("mane", mane))
    for role, path in local:
        if role not in given:
            all_sources.append({"role": role, "file": path.name, "sha256": sha256_file(path)})

    files = {
        str(p.relative_to(root)): sha256_file(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST_NAME
    }
    manifest = Manifest(
        assembly=assembly,
        name=name,
        version=version,
        synthetic=synthetic,
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        contigs=contigs,
        aliases=aliases,
        files=files,
        sources=all_sources,
        known=known,
        has_mane=mane is not None,
        tools=tool_versions(),
    )
    (root / MANIFEST_NAME).write_text(manifest.to_json())
    return manifest


def load_bundle(directory: Path, *, verify: bool = True) -> Bundle:
    """Read and (by default) verify a bundle. Verification is cached per file state."""
    directory = directory.resolve()
    manifest_path = directory / MANIFEST_NAME
    if not manifest_path.is_file():
        raise BundleError(f"{directory} is not a reference bundle (no {MANIFEST_NAME})")
    try:
        manifest = Manifest.from_json(manifest_path.read_text())
    except (ValueError, TypeError, KeyError) as exc:
        raise BundleError(f"{manifest_path} is not a valid bundle manifest: {exc}") from exc
    if verify:
        for rel, expected in sorted(manifest.files.items()):
            path = directory / rel
            if not path.is_file():
                raise BundleError(f"bundle file {rel} is missing from {directory}")
            stat = path.stat()
            if _cached_sha256(str(path), stat.st_size, stat.st_mtime_ns) != expected:
                raise BundleError(f"bundle file {rel} does not match its manifest checksum")
    return Bundle(root=directory, manifest=manifest)


@lru_cache(maxsize=256)
def _cached_sha256(path: str, size: int, mtime_ns: int) -> str:
    # Keyed by size and mtime so a service checks a multi-GB genome once, not once per job.
    del size, mtime_ns
    return sha256_file(Path(path))


# --------------------------------------------------------------------------- install


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


# --------------------------------------------------------------------------- demo bundle

_CODONS = [
    a + b + c
    for a in "ACGT"
    for b in "ACGT"
    for c in "ACGT"
    if a + b + c not in {"TAA", "TAG", "TGA"}
]
_COMPLEMENT = str.maketrans("ACGTN", "TGCAN")


def revcomp(seq: str) -> str:
    return seq.translate(_COMPLEMENT)[::-1]


@dataclass(frozen=True)
class _DemoGene:
    gene_id: str
    name: str
    strand: str
    exons: list[tuple[int, int]]  # genomic, 1-based inclusive, ascending
    cds: list[tuple[int, int]]
    biotype: str = "protein_coding"


def _demo_genome(rng: random.Random, length: int) -> list[str]:
    return [rng.choice("ACGT") for _ in range(length)]


def _place_coding_gene(
    seq: list[str], rng: random.Random, *, start: int, strand: str, gene_id: str, name: str
) -> _DemoGene:
    """Write a spliceable ORF (ATG ... stop, GT..AG introns, UTRs) into ``seq`` at ``start``."""
    n_codons = [40, 35, 45]
    utr5, utr3, intron = 60, 80, 300
    coding = "ATG" + "".join(rng.choice(_CODONS) for _ in range(sum(n_codons) - 2)) + "TAA"
    pieces = [coding[0 : n_codons[0] * 3]]
    pieces.append(coding[n_codons[0] * 3 : (n_codons[0] + n_codons[1]) * 3])
    pieces.append(coding[(n_codons[0] + n_codons[1]) * 3 :])
    # Transcript-orientation layout: UTR5 + cds1 | intron | cds2 | intron | cds3 + UTR3
    tx: list[str] = []
    exons_tx: list[tuple[int, int]] = []
    cds_tx: list[tuple[int, int]] = []
    pos = 0
    for i, piece in enumerate(pieces):
        exon_start = pos
        if i == 0:
            tx.append("".join(rng.choice("ACGT") for _ in range(utr5)))
            pos += utr5
        cds_tx.append((pos, pos + len(piece) - 1))
        tx.append(piece)
        pos += len(piece)
        if i == len(pieces) - 1:
            tx.append("".join(rng.choice("ACGT") for _ in range(utr3)))
            pos += utr3
        exons_tx.append((exon_start, pos - 1))
        if i < len(pieces) - 1:
            body = "".join(rng.choice("ACGT") for _ in range(intron - 4))
            tx.append("GT" + body + "AG")
            pos += intron
    transcript = "".join(tx)
    length = len(transcript)
    genomic = transcript if strand == "+" else revcomp(transcript)
    seq[start - 1 : start - 1 + length] = list(genomic)

    def to_genomic(a: int, b: int) -> tuple[int, int]:
        if strand == "+":
            return start + a, start + b
        return start + length - 1 - b, start + length - 1 - a

    exons = sorted(to_genomic(a, b) for a, b in exons_tx)
    cds = sorted(to_genomic(a, b) for a, b in cds_tx)
    return _DemoGene(gene_id=gene_id, name=name, strand=strand, exons=exons, cds=cds)


def _demo_gff(contig: str, genes: Iterable[_DemoGene]) -> list[str]:
    lines: list[str] = []
    for gene in genes:
        g0, g1 = gene.exons[0][0], gene.exons[-1][1]
        tx = gene.gene_id.replace("DEMOG", "DEMOT")
        lines.append(
            f"{contig}\tdemo\tgene\t{g0}\t{g1}\t.\t{gene.strand}\t.\t"
            f"ID=gene:{gene.gene_id};Name={gene.name};biotype={gene.biotype};gene_id={gene.gene_id}"
        )
        lines.append(
            f"{contig}\tdemo\tmRNA\t{g0}\t{g1}\t.\t{gene.strand}\t.\t"
            f"ID=transcript:{tx};Parent=gene:{gene.gene_id};Name={gene.name}-201;"
            f"biotype={gene.biotype};transcript_id={tx}"
        )
        for a, b in gene.exons:
            lines.append(
                f"{contig}\tdemo\texon\t{a}\t{b}\t.\t{gene.strand}\t.\tParent=transcript:{tx}"
            )
        # GFF3 CDS phase: bases to skip at the feature's 5' end (transcript orientation).
        ordered = gene.cds if gene.strand == "+" else list(reversed(gene.cds))
        done = 0
        for a, b in ordered:
            phase = (3 - done % 3) % 3
            lines.append(
                f"{contig}\tdemo\tCDS\t{a}\t{b}\t.\t{gene.strand}\t{phase}\t"
                f"ID=CDS:{tx};Parent=transcript:{tx}"
            )
            done += b - a + 1
        for a, b in gene.exons:
            utr_parts = _subtract(a, b, gene.cds)
            for u0, u1 in utr_parts:
                five = (u1 < gene.cds[0][0]) if gene.strand == "+" else (u0 > gene.cds[-1][1])
                kind = "five_prime_UTR" if five else "three_prime_UTR"
                lines.append(
                    f"{contig}\tdemo\t{kind}\t{u0}\t{u1}\t.\t{gene.strand}\t.\t"
                    f"Parent=transcript:{tx}"
                )
    return lines


def _subtract(a: int, b: int, cds: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    parts = [(a, b)]
    for c0, c1 in cds:
        nxt: list[tuple[int, int]] = []
        for p0, p1 in parts:
            if c1 < p0 or c0 > p1:
                nxt.append((p0, p1))
                continue
            if p0 < c0:
                nxt.append((p0, c0 - 1))
            if p1 > c1:
                nxt.append((c1 + 1, p1))
        parts = nxt
    return parts


DEMO_CONTIG = "1"
DEMO_LENGTH = 40_000
DEMO_MITO_LENGTH = 2_000
DEMO_SEED = 20240917


def build_demo_bundle(out: Path, *, seed: int = DEMO_SEED) -> Manifest:
    """A small, seeded, clearly SYNTHETIC bundle so the system works with no real data."""
    rng = random.Random(seed)  # noqa: S311 - seeded synthetic data, not security
    seq = _demo_genome(rng, DEMO_LENGTH)
    genes = [
        _place_coding_gene(seq, rng, start=5_001, strand="+", gene_id="DEMOG0001", name="DEMOPLUS"),
        _place_coding_gene(
            seq, rng, start=15_001, strand="-", gene_id="DEMOG0002", name="DEMOMINUS"
        ),
    ]
    nc = _DemoGene(
        gene_id="DEMOG0003",
        name="DEMONC",
        strand="+",
        exons=[(22_001, 22_400), (23_001, 23_300)],
        cds=[],
        biotype="lincRNA",
    )
    with tempfile.TemporaryDirectory(prefix="gas-demo-") as tmp_name:
        tmp = Path(tmp_name)
        fasta = tmp / "demo.fa"
        body = "".join(seq)
        # A second, gene-less contig named like a mitochondrion: exercises chrM <-> MT naming
        # and contigs without gene models.
        mito = "".join(rng.choice("ACGT") for _ in range(DEMO_MITO_LENGTH))
        fasta.write_text(
            f">{DEMO_CONTIG} synthetic demo sequence, seed {seed}\n"
            + "\n".join(body[i : i + 60] for i in range(0, len(body), 60))
            + f"\n>MT synthetic, no genes, seed {seed}\n"
            + "\n".join(mito[i : i + 60] for i in range(0, len(mito), 60))
            + "\n"
        )
        gff_lines = ["##gff-version 3", f"##sequence-region {DEMO_CONTIG} 1 {DEMO_LENGTH}"]
        gff_lines += _demo_gff(DEMO_CONTIG, genes)
        g0, g1 = nc.exons[0][0], nc.exons[-1][1]
        gff_lines += [
            f"{DEMO_CONTIG}\tdemo\tncRNA_gene\t{g0}\t{g1}\t.\t+\t.\t"
            f"ID=gene:{nc.gene_id};Name={nc.name};biotype=lincRNA;gene_id={nc.gene_id}",
            f"{DEMO_CONTIG}\tdemo\tlnc_RNA\t{g0}\t{g1}\t.\t+\t.\t"
            f"ID=transcript:DEMOT0003;Parent=gene:{nc.gene_id};biotype=lincRNA;"
            "transcript_id=DEMOT0003",
        ]
        gff_lines += [
            f"{DEMO_CONTIG}\tdemo\texon\t{a}\t{b}\t.\t+\t.\tParent=transcript:DEMOT0003"
            for a, b in nc.exons
        ]
        gff = tmp / "demo.gff3"
        gff.write_text("\n".join(gff_lines) + "\n")

        known = tmp / "demo_known.vcf"
        known.write_text(_demo_known_vcf(seq, genes))
        mane = tmp / "demo_mane.txt"
        mane.write_text(
            "#NCBI_GeneID\tEnsembl_Gene\tsymbol\tEnsembl_nuc\tMANE_status\n"
            "GeneID:0\tDEMOG0001\tDEMOPLUS\tDEMOT0001.1\tMANE Select\n"
        )
        return build_bundle(
            "demo",
            fasta,
            gff,
            [known],
            out,
            name="gas-demo",
            version=f"seed-{seed}",
            aliases={"demo1": DEMO_CONTIG},
            mane=mane,
            synthetic=True,
            sources=[
                {"role": "fasta", "file": "synthetic", "seed": seed},
                {"role": "gff3", "file": "synthetic", "seed": seed},
                {"role": "mane", "file": "synthetic", "seed": seed},
            ],
        )


def _demo_known_vcf(seq: Sequence[str], genes: Sequence[_DemoGene]) -> str:
    lines = [
        "##fileformat=VCFv4.2",
        f"##contig=<ID={DEMO_CONTIG},length={DEMO_LENGTH}>",
        '##INFO=<ID=AF,Number=A,Type=Float,Description="Synthetic population allele frequency">',
        '##INFO=<ID=CLNSIG,Number=.,Type=String,Description="Synthetic clinical significance">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    records: list[tuple[int, str, str, str]] = []
    rs = 9_000_000_001
    for gene in genes:
        for j, (a, _b) in enumerate(gene.cds):
            pos = a + 7 + j
            ref = seq[pos - 1]
            alt = {"A": "G", "C": "T", "G": "A", "T": "C"}[ref]
            info = f"AF={0.01 * (j + 1):.2f}"
            if j == 1:
                info += ";CLNSIG=pathogenic"
            elif j == 2:
                info += ";CLNSIG=benign"
            records.append((pos, f"rs{rs}", ref, alt + "\t.\t.\t" + info))
            rs += 1
    # One intergenic common variant.
    ref = seq[1_999]
    records.append((2_000, f"rs{rs}", ref, ("A" if ref != "A" else "C") + "\t.\t.\tAF=0.45"))
    records.sort()
    lines += [f"{DEMO_CONTIG}\t{p}\t{i}\t{r}\t{rest}" for p, i, r, rest in records]
    return "\n".join(lines) + "\n"


def environment_manifest_summary(bundle: Bundle) -> dict[str, Any]:
    """What every summary.json says about the reference it was annotated against."""
    m = bundle.manifest
    return {
        "name": m.name,
        "version": m.version,
        "assembly": m.assembly,
        "synthetic": m.synthetic,
        "known_variant_sources": [k.source for k in m.known],
        "mane": m.has_mane,
    }
