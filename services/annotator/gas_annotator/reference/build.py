"""Building a bundle from a FASTA, a GFF3 and known-variant VCFs: bgzip and index the sequence,
split the gene models per contig, normalise the known variants onto the FASTA's contig names,
record every input and checksum in the manifest."""

from __future__ import annotations

import gzip
import shutil
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pysam
import pysam.bcftools
from pysam.utils import SamtoolsError

from gas_annotator.reference.bundle import (
    AF_FIELD_PREFERENCE,
    CLNSIG_FIELDS,
    FASTA_NAME,
    GENES_NAME,
    GFF_DIR,
    KNOWN_DIR,
    MAF_DERIVED_FIELD,
    MANE_NAME,
    MANIFEST_NAME,
    BundleError,
    KnownSource,
    Manifest,
    af_column,
    af_display_key,
    is_af_field,
    resolve_contig,
    safe_name,
    sha256_file,
    tool_versions,
)


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
                    paths[contig] = out_dir / f"{safe_name(contig)}.gff3.gz"
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
            af_names = [
                name for name, meta in header.info.items()
                if is_af_field(name, str(meta.number), str(meta.type))
            ]  # fmt: skip
            maf = "MAF" in info and "MINOR_ALLELE" in info
            descriptions = {
                name: str(meta.description or "").strip('"') for name, meta in header.info.items()
            }
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
        if maf:
            _derive_maf_af(normed, scratch)
            af_names.append(MAF_DERIVED_FIELD)
    except SamtoolsError as exc:
        raise BundleError(
            f"cannot prepare known variants {vcf.name}: {_first_line(str(exc))}"
        ) from exc
    records = int(str(pysam.bcftools.index("-n", str(normed))).strip() or 0)
    af_field = next((f for f in AF_FIELD_PREFERENCE if f in info), None)
    # The default (allele_frequency) first, then cohorts, each global before its populations.
    af_names.sort(key=lambda name: (name != af_field, *af_display_key(name)))
    return KnownSource(
        path=f"{KNOWN_DIR}/{out.name}",
        source=vcf.name,
        id_is_rsid=bool(ids) and sum(i.startswith("rs") for i in ids) >= len(ids) // 2,
        af_field=af_field,
        clnsig_field=next((f for f in CLNSIG_FIELDS if f in info), None),
        records=records,
        af_fields=[af_column(name, descriptions.get(name, "")) for name in af_names],
    )


def _derive_maf_af(known: Path, scratch: Path) -> None:
    """Add MAF_DERIVED_FIELD, the ALT allele's frequency, to a split known-variant file with
    1000 Genomes' MAF + MINOR_ALLELE (Ensembl's variation files).

    MAF is the frequency of MINOR_ALLELE, which may be the REF (or another ALT of the site) as
    often as the ALT: read as an ALT frequency it is wrong for those. MINOR_ALLELE is written
    in Ensembl's notation: without the shared first base, '-' for none (``AG>A`` has alleles G
    and -). Per record: MAF when MINOR_ALLELE is its ALT, 1 - MAF when it is its REF and the
    site had no other ALT (no other record with its ID, or at its position when it has none),
    else missing. Columnar over `bcftools query` output, then `annotate` from a tab file.
    """
    table_path = scratch / f"{known.name}.maf.tsv"
    pysam.bcftools.query(
        "-i", 'MAF!="." && MINOR_ALLELE!="."',
        "-f", "%CHROM\t%POS\t%ID\t%REF\t%ALT\t%MINOR_ALLELE\t%MAF\n",
        "-o", str(table_path), str(known), catch_stdout=False,
    )  # fmt: skip
    names = ["chrom", "pos", "id", "ref", "alt", "minor", "maf"]
    if table_path.stat().st_size == 0:
        table = pa.table({n: pa.array([], pa.string()) for n in names})
    else:
        table = pacsv.read_csv(
            str(table_path),
            read_options=pacsv.ReadOptions(column_names=names),
            parse_options=pacsv.ParseOptions(delimiter="\t", quote_char=False),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string())),
        )
    ref, alt = table.column("ref"), table.column("alt")
    anchored = pc.and_(
        pc.equal(pc.utf8_slice_codeunits(ref, 0, 1), pc.utf8_slice_codeunits(alt, 0, 1)),
        pc.not_equal(pc.utf8_length(ref), pc.utf8_length(alt)),
    )

    def ensembl(allele: pa.ChunkedArray) -> pa.ChunkedArray:
        trimmed = pc.if_else(anchored, pc.utf8_slice_codeunits(allele, 1), allele)
        return pc.if_else(pc.equal(trimmed, ""), "-", trimmed)

    # Records of one site share its ID (split by norm); ID-less ones are grouped by position.
    site = pc.if_else(
        pc.equal(table.column("id"), "."),
        pc.binary_join_element_wise("\0", table.column("chrom"), table.column("pos"), ""),
        table.column("id"),
    )
    encoded = pc.dictionary_encode(site).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    alone = pa.array(np.bincount(codes, minlength=len(encoded.dictionary))[codes] == 1)
    maf = pc.cast(table.column("maf"), pa.float64())
    minor = table.column("minor")
    value = pc.if_else(
        pc.equal(minor, ensembl(alt)),
        maf,
        pc.if_else(
            pc.and_(pc.equal(minor, ensembl(ref)), alone),
            pc.round(pc.subtract(1.0, maf), 6),
            pa.scalar(None, pa.float64()),
        ),
    )
    keep = pc.is_valid(value)
    out = pa.table(
        {n: table.column(n) for n in ("chrom", "pos", "ref", "alt")}
        | {"af": pc.cast(value, pa.string())}
    ).filter(keep)
    tab = scratch / f"{known.name}.maf_af.tsv"
    # No value holds a tab, a quote or a newline (contigs, alleles, numbers).
    pacsv.write_csv(out, str(tab), pacsv.WriteOptions(
        include_header=False, delimiter="\t", quoting_style="none"
    ))  # fmt: skip
    tab_gz = scratch / f"{tab.name}.gz"
    pysam.tabix_compress(str(tab), str(tab_gz), force=True)
    pysam.tabix_index(str(tab_gz), seq_col=0, start_col=1, end_col=1, force=True)
    header = scratch / f"{known.name}.maf.hdr"
    header.write_text(
        f'##INFO=<ID={MAF_DERIVED_FIELD},Number=A,Type=Float,Description="ALT allele '
        "frequency from MAF and MINOR_ALLELE: MAF where MINOR_ALLELE is the ALT, 1-MAF where "
        'it is the REF of a biallelic site, else missing (GAS)">\n'
    )
    derived = scratch / f"{known.name}.derived.vcf.gz"
    pysam.bcftools.annotate(
        "--no-version", "-a", str(tab_gz), "-h", str(header),
        "-c", f"CHROM,POS,REF,ALT,INFO/{MAF_DERIVED_FIELD}",
        "-Oz", "-o", str(derived), str(known), catch_stdout=False,
    )  # fmt: skip
    shutil.move(str(derived), known)
    pysam.bcftools.index("-t", "-f", str(known), catch_stdout=False)


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
