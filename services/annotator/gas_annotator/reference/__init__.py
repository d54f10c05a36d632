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

The package is split along its seams: bundle (manifest, files, checks), build, install
(Ensembl/ClinVar), demo (the synthetic bundle). Every name imports from here.
"""

from gas_annotator.reference.build import (
    build_bundle,
)
from gas_annotator.reference.bundle import (
    AF_FIELD_PREFERENCE,
    CLNSIG_FIELDS,
    FASTA_NAME,
    GENES_NAME,
    GFF_DIR,
    KNOWN_DIR,
    MANE_NAME,
    MANIFEST_NAME,
    MANIFEST_SCHEMA,
    Bundle,
    BundleError,
    KnownSource,
    Manifest,
    environment_manifest_summary,
    load_bundle,
    resolve_contig,
    safe_name,
    sha256_file,
    tool_versions,
)
from gas_annotator.reference.demo import (
    DEMO_CONTIG,
    DEMO_LENGTH,
    DEMO_MITO_LENGTH,
    DEMO_SEED,
    build_demo_bundle,
    revcomp,
)
from gas_annotator.reference.install import (
    CLINVAR_BASE_URL,
    ENSEMBL_BASE_URL,
    ENSEMBL_RELEASE,
    INSTALL_SOURCES,
    InstallUrls,
    bsd_sum,
    bsd_sum_python,
    install_bundle,
)

__all__ = [
    "AF_FIELD_PREFERENCE",
    "CLINVAR_BASE_URL",
    "CLNSIG_FIELDS",
    "DEMO_CONTIG",
    "DEMO_LENGTH",
    "DEMO_MITO_LENGTH",
    "DEMO_SEED",
    "ENSEMBL_BASE_URL",
    "ENSEMBL_RELEASE",
    "FASTA_NAME",
    "GENES_NAME",
    "GFF_DIR",
    "INSTALL_SOURCES",
    "KNOWN_DIR",
    "MANE_NAME",
    "MANIFEST_NAME",
    "MANIFEST_SCHEMA",
    "Bundle",
    "BundleError",
    "InstallUrls",
    "KnownSource",
    "Manifest",
    "bsd_sum",
    "bsd_sum_python",
    "build_bundle",
    "build_demo_bundle",
    "environment_manifest_summary",
    "install_bundle",
    "load_bundle",
    "resolve_contig",
    "revcomp",
    "safe_name",
    "sha256_file",
    "tool_versions",
]
