"""Known-variant lookup on clustered input: regions around the clusters against the whole span.

    uv run python benchmarks/known_regions.py [N] [--known-every BP]

An exome or a panel is clusters of records with long gaps between them. The engine has
`annotate` read the known variants only around the clusters (the chunk's span cut at gaps over
`EngineOptions.known_region_gap_bp`, see `chunk.known_regions`), instead of every known variant
across the gaps. This measures both on the same input in one process, each in a fresh
subprocess:

- the input: N synthetic variants (benchmarks/annotate.py's generator) on the shared chr21
  bundle's real sequence, which lies in two blocks 17.7 Mb apart: two clusters and one long gap;
- the bundle: the shared FASTA and gene models, with dense synthetic known variants (one every
  `--known-every` bp on average, dbSNP's density is ~one per 3 bp) over 21:20-46 Mb, REF taken
  from the reference (N in the unsequenced gap), so the gap is full of known variants;
- baseline: the whole span (`known_region_gap_bp` larger than the contig); ours: the default.

Prints wall seconds, the `annotate` stage's seconds (from the job's log) and the ratio.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from annotate import FASTA, GFF, SEED, generate, reference_dir

KNOWN_FROM, KNOWN_TO = 20_000_000, 46_000_000
WHOLE_SPAN = 10**12


def known_variants(ref: Path, out: Path, every: float) -> int:
    """Dense synthetic known variants with rsIDs and AF; returns the count."""
    import pysam

    fasta = pysam.FastaFile(str(ref / FASTA))
    contig = fasta.references[0]
    seq = fasta.fetch(contig, KNOWN_FROM, KNOWN_TO).upper()
    rng = random.Random(SEED + 1)
    text = out.with_suffix("")
    count = 0
    with text.open("w") as handle:
        handle.write(
            "##fileformat=VCFv4.2\n"
            f"##contig=<ID={contig},length={fasta.get_reference_length(contig)}>\n"
            '##INFO=<ID=AF,Number=A,Type=Float,Description="Allele frequency">\n'
            "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        )
        lines: list[str] = []
        offset = 0
        top = max(2, int(2 * every) - 1)
        while True:
            offset += rng.randint(1, top)
            if offset >= len(seq):
                break
            ref_base = seq[offset]
            alt = "A" if ref_base != "A" else "G"
            lines.append(f"{contig}\t{KNOWN_FROM + offset + 1}\trs{count + 1}\t{ref_base}\t{alt}"
                         f"\t.\t.\tAF={rng.random():.4f}\n")  # fmt: skip
            count += 1
            if len(lines) >= 200_000:
                handle.writelines(lines)
                lines.clear()
        handle.writelines(lines)
    pysam.tabix_compress(str(text), str(out), force=True)
    pysam.tabix_index(str(out), preset="vcf", force=True)
    text.unlink()
    return count


def measure(vcf: Path, bundle: Path, gap_bp: int, out: Path) -> dict[str, float]:
    from gas_annotator.engine import EngineOptions, annotate

    started = time.perf_counter()
    result = annotate(vcf, reference_dir=bundle, out_dir=out, workers=1,
                      options=EngineOptions(known_region_gap_bp=gap_bp))  # fmt: skip
    seconds = time.perf_counter() - started
    log = result.log.read_text()
    return {
        "seconds": seconds,
        "annotate_seconds": sum(float(x) for x in re.findall(r"annotate ([\d.]+)s", log)),
        "regions": sum(int(x) for x in re.findall(r"read in (\d+) region", log)),
        "variants": result.variant_count,
    }


def run_child(vcf: Path, bundle: Path, gap_bp: int, out: Path) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--child", str(vcf), str(bundle), str(gap_bp), str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        sys.exit(f"gap {gap_bp} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("n", nargs="?", type=int, default=30_000)
    parser.add_argument("--known-every", type=float, default=3.5)
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        vcf, bundle, gap, out = args.child
        print(json.dumps(measure(Path(vcf), Path(bundle), int(gap), Path(out))))
        return

    from gas_annotator.engine import EngineOptions
    from gas_annotator.reference import build_bundle

    ref = reference_dir()
    with tempfile.TemporaryDirectory(prefix="gas-bench-known-") as tmp_name:
        tmp = Path(tmp_name)
        t0 = time.perf_counter()
        vcf = tmp / "clustered.vcf"
        generate(args.n, vcf, ref)
        known = tmp / "known.vcf.gz"
        count = known_variants(ref, known, args.known_every)
        build_bundle("GRCh38", ref / FASTA, ref / GFF, [known], tmp / "bundle",
                     name="bench-known", version="1")  # fmt: skip
        span_mb = (KNOWN_TO - KNOWN_FROM) / 1e6
        print(f"{args.n:,} clustered variants, {count:,} known variants over {span_mb:.0f} Mb; "
              f"prepared in {time.perf_counter() - t0:.0f}s")
        runs = (("whole span (baseline)", WHOLE_SPAN),
                ("regions (default)", EngineOptions().known_region_gap_bp))
        rows = [(label, run_child(vcf, tmp / "bundle", gap_bp, tmp / f"out-{gap_bp}"))
                for label, gap_bp in runs]
        print(f"{'known-variant lookup':24s} {'wall s':>7s} {'annotate s':>10s} {'regions':>8s}")
        for label, r in rows:
            print(f"{label:24s} {r['seconds']:7.2f} {r['annotate_seconds']:10.2f} "
                  f"{int(r['regions']):8d}")
        base, ours = rows[0][1], rows[1][1]
        assert base["variants"] == ours["variants"]
        print(f"speed-up: {base['seconds'] / ours['seconds']:.1f}x wall, "
              f"{base['annotate_seconds'] / ours['annotate_seconds']:.1f}x annotate")


if __name__ == "__main__":
    main()
