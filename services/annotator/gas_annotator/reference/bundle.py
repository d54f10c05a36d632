"""A bundle on disk: its manifest, its files, and the checks load_bundle makes before the engine
uses it (every file listed, every checksum right)."""

from __future__ import annotations

import hashlib
import importlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

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


# The ALT allele frequency the build derives from a 1000 Genomes-style MAF + MINOR_ALLELE pair
# (MAF is the frequency of the minor allele, which need not be the ALT; see build.py).
MAF_DERIVED_FIELD = "GAS_MAF_AF"

# Cohorts of population AF fields (``<cohort>_<POP>_AF`` / ``<cohort>_AF``), display order.
_COHORTS = {
    "gnomADg": "gnomAD genomes",
    "gnomAD": "gnomAD",
    "gnomADe": "gnomAD exomes",
    "KG": "1000 Genomes",
    "ExAC": "ExAC",
    "ESP": "GO-ESP",
}
_POPULATIONS = {
    "AFR": "African", "AMR": "Admixed American", "ASJ": "Ashkenazi Jewish",
    "EAS": "East Asian", "EUR": "European", "FIN": "Finnish", "NFE": "non-Finnish European",
    "SAS": "South Asian", "OTH": "other", "MID": "Middle Eastern", "AMI": "Amish",
    "EA": "European American", "AA": "African American",
}  # fmt: skip
# Fields whose name does not follow the pattern.
_SPECIAL_AF = {
    MAF_DERIVED_FIELD: ("af_kg_global", "1000 Genomes global", ("KG", "")),
    "AF_TGP": ("af_tgp", "1000 Genomes (ClinVar AF_TGP)", ("KG", "")),
    "AF_EXAC": ("af_exac", "ExAC (ClinVar AF_EXAC)", ("ExAC", "")),
    "AF_ESP": ("af_esp", "GO-ESP (ClinVar AF_ESP)", ("ESP", "")),
    "AF": ("af_all", "AF", ("", "")),
}
_AF_PATTERN = re.compile(r"^(?P<cohort>[A-Za-z0-9]+?)(?:_(?P<pop>[A-Za-z]+))?_AF$")


def is_af_field(name: str, number: str, typ: str) -> bool:
    """A population allele-frequency INFO field: a Float, one value per ALT (or one), named
    like one (``AF``, ``gnomADe_AF``, ``KG_EUR_AF``, ``AF_TGP``)."""
    if typ != "Float" or number not in ("A", "1"):
        return False
    return name in _SPECIAL_AF or _AF_PATTERN.match(name) is not None


def af_column(name: str, description: str = "") -> dict[str, str]:
    """The result column and label of an AF field: ``gnomADe_AF`` -> af_gnomade "gnomAD
    exomes", ``KG_AFR_AF`` -> af_kg_afr "1000 Genomes African (AFR)". A field that names no
    cohort (``AF``) is labelled with its header description when it has one."""
    if name in _SPECIAL_AF:
        column, label, (cohort, _pop) = _SPECIAL_AF[name]
        return {"field": name, "column": column, "label": label if cohort else description or label}
    match = _AF_PATTERN.match(name)
    if match is None:
        return {"field": name, "column": "af_" + re.sub(r"[^a-z0-9]+", "_", name.lower()),
                "label": description or name}  # fmt: skip
    cohort, pop = match.group("cohort"), match.group("pop") or ""
    cohort_label = _COHORTS.get(cohort, cohort)
    label = cohort_label
    if pop:
        label += f" {_POPULATIONS.get(pop.upper(), pop)} ({pop.upper()})"
    column = "af_" + cohort.lower() + (f"_{pop.lower()}" if pop else "")
    return {"field": name, "column": column, "label": label}


def af_display_key(name: str) -> tuple[int, int, str]:
    """Cohorts in _COHORTS order, each cohort's global field before its populations."""
    if name in _SPECIAL_AF:
        cohort, pop = _SPECIAL_AF[name][2]
    else:
        match = _AF_PATTERN.match(name)
        cohort, pop = (match.group("cohort"), match.group("pop") or "") if match else ("", name)
    order = list(_COHORTS).index(cohort) if cohort in _COHORTS else len(_COHORTS)
    return order, 1 if pop else 0, pop


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
    # Every population AF field of the file ({field, column, label}), in display order; None
    # in manifests written before bundles kept them all (then af_field is the only one).
    af_fields: list[dict[str, str]] | None = None

    def all_af_fields(self) -> list[dict[str, str]]:
        if self.af_fields is not None:
            return self.af_fields
        return [af_column(self.af_field)] if self.af_field else []


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
        rel = f"{GFF_DIR}/{safe_name(contig)}.gff3.gz"
        return self.root / rel if rel in self.manifest.files else None

    def known_paths(self) -> list[tuple[KnownSource, Path]]:
        return [(k, self.root / k.path) for k in self.manifest.known]

    def af_fields(self) -> list[tuple[int, dict[str, str]]]:
        """(source index, {field, column, label}) of every population AF field of the bundle,
        display order, columns unique (a repeated one gets the source's number appended)."""
        out: list[tuple[int, dict[str, str]]] = []
        seen: set[str] = set()
        for i, known in enumerate(self.manifest.known):
            for entry in known.all_af_fields():
                column = entry["column"]
                if column in seen:
                    column = f"{column}_{i + 1}"
                seen.add(column)
                out.append((i, {**entry, "column": column}))
        return out

    def af_default(self) -> tuple[int, dict[str, str]] | None:
        """The field ``allele_frequency`` copies: the first source's af_field that has one."""
        for i, entry in self.af_fields():
            if entry["field"] == self.manifest.known[i].af_field:
                return i, entry
        return None

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


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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


def safe_name(contig: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", contig)
