"""Click commands the `gas` CLI mounts: `gas annotate` and `gas reference ...`.

Bad input exits with status 2 (click's usage-error code) and a single line on stderr; a broken
bundle or a failed download exits with status 1. Nothing here prints a traceback for a problem
the user can fix.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from gas_annotator.reference import (
    CLINVAR_BASE_URL,
    ENSEMBL_BASE_URL,
    ENSEMBL_RELEASE,
    BundleError,
    InstallUrls,
    build_bundle,
    build_demo_bundle,
    install_bundle,
)

EXIT_BAD_INPUT = 2
EXIT_FAILED = 1


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


class _ProgressPrinter:
    """Prints progress to stderr at most once per 10 % so logs stay readable."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.last = -1

    def __call__(self, fraction: float) -> None:
        step = int(fraction * 10)
        if self.enabled and step > self.last:
            self.last = step
            click.echo(f"  {fraction:4.0%}", err=True)


@click.command("annotate")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path, dir_okay=False))
@click.option(
    "--reference",
    "reference",
    required=True,
    type=click.Path(path_type=Path, file_okay=False),
    help="Reference bundle directory (gas reference build/install/demo).",
)
@click.option(
    "--out", "out", required=True, type=click.Path(path_type=Path, file_okay=False),
    help="Directory for the outputs.",
)  # fmt: skip
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option("--max-variants", type=click.IntRange(1), default=None, help="Reject larger files.")
@click.option("--quiet", is_flag=True, help="No progress on stderr.")
def annotate_command(
    *,
    input_path: Path,
    reference: Path,
    out: Path,
    workers: int,
    max_variants: int | None,
    quiet: bool,
) -> None:
    """Annotate INPUT (.vcf, .vcf.gz or .bcf) offline with the annotation engine."""
    # Imported here: numpy/pyarrow cost ~1 s, which every other `gas` command would pay.
    from gas_annotator.engine import EngineOptions, InputError, annotate

    if not input_path.is_file():
        _fail(f"{input_path}: no such file", EXIT_BAD_INPUT)
    try:
        result = annotate(
            input_path,
            reference_dir=reference,
            out_dir=out,
            workers=workers,
            max_variants=max_variants,
            progress=_ProgressPrinter(not quiet),
            # One job, then exit, no threads: the job process forks from here (no forkserver).
            options=EngineOptions(job_start="fork"),
        )
    except InputError as exc:
        _fail(str(exc), EXIT_BAD_INPUT)
        return
    except (BundleError, RuntimeError) as exc:
        _fail(str(exc), EXIT_FAILED)
        return
    summary = result.summary_data
    ref = summary["reference"]
    click.echo(
        f"{result.variant_count:,} variants annotated against {ref['name']} {ref['version']} "
        f"({ref['assembly']}{', SYNTHETIC' if ref['synthetic'] else ''})"
    )
    for path in (result.vcf, result.tsv, result.parquet, result.summary, result.log):
        click.echo(f"  {path}")


@click.group("reference")
def reference_group() -> None:
    """Build, install or create reference bundles."""


@reference_group.command("build")
@click.option("--assembly", required=True, help="Assembly name, e.g. GRCh38.")
@click.option(
    "--fasta", required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True)
)
@click.option("--gff3", required=True, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--known-variants", "known", multiple=True,
    type=click.Path(path_type=Path, dir_okay=False, exists=True),
    help="Known-variant VCF (dbSNP, ClinVar, ...); repeatable.",
)  # fmt: skip
@click.option("--mane", type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--name", default=None, help="Bundle name (default: derived from assembly + FASTA).")
@click.option("--version", "version", default="1", show_default=True)
@click.option(
    "--alias", "aliases", multiple=True, metavar="ALIAS=CONTIG",
    help="Extra contig alias, e.g. NC_000021.9=21; repeatable.",
)  # fmt: skip
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False))
def build_command(
    *,
    assembly: str,
    fasta: Path,
    gff3: Path,
    known: tuple[Path, ...],
    mane: Path | None,
    name: str | None,
    version: str,
    aliases: tuple[str, ...],
    out: Path,
) -> None:
    """Validate, bgzip and index a bundle from local files."""
    table: dict[str, str] = {}
    for item in aliases:
        alias, sep, contig = item.partition("=")
        if not sep or not alias or not contig:
            _fail(f"--alias {item!r} must look like ALIAS=CONTIG", EXIT_BAD_INPUT)
        table[alias] = contig
    try:
        manifest = build_bundle(
            assembly, fasta, gff3, list(known), out,
            name=name, version=version, aliases=table, mane=mane,
        )  # fmt: skip
    except BundleError as exc:
        _fail(str(exc), EXIT_FAILED)
        return
    click.echo(f"built {manifest.name} {manifest.version} ({manifest.assembly}) in {out}")


@reference_group.command("install")
@click.argument("assembly")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False))
@click.option("--base-url", default=ENSEMBL_BASE_URL, show_default=True, help="Ensembl FTP base.")
@click.option("--clinvar-base-url", default=CLINVAR_BASE_URL, show_default=True)
@click.option("--release", default=ENSEMBL_RELEASE, show_default=True, help="e.g. release-113")
@click.option("--mane", type=click.Path(path_type=Path, dir_okay=False, exists=True))
def install_command(
    *,
    assembly: str,
    out: Path,
    base_url: str,
    clinvar_base_url: str,
    release: str,
    mane: Path | None,
) -> None:
    """Download Ensembl sequence, gene models and ClinVar; verify; build a bundle."""
    try:
        manifest = install_bundle(
            assembly,
            out,
            urls=InstallUrls(ensembl=base_url, clinvar=clinvar_base_url, release=release),
            mane=mane,
        )
    except BundleError as exc:
        _fail(str(exc), EXIT_FAILED)
        return
    click.echo(f"installed {manifest.name} {manifest.version} ({manifest.assembly}) in {out}")


@reference_group.command("demo")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False))
def demo_command(out: Path) -> None:
    """Create the small SYNTHETIC demo bundle (no downloads)."""
    manifest = build_demo_bundle(out)
    click.echo(f"built SYNTHETIC demo bundle {manifest.name} {manifest.version} in {out}")
