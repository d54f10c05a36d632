"""Our pass: from the annotated records to the result rows (one per variant x transcript, or one
context row for a variant that hits none) and the per-variant INFO fields.

Columnar throughout (pyarrow compute + numpy): Python-level loops run only over distinct values
(consequence strings, amino-acid changes), never over records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from gas_annotator.engine import consequences as cq
from gas_annotator.engine.arrowkit import has_any_byte, map_distinct, nonempty, scatter, whole
from gas_annotator.engine.chunk_models import DEFAULT_AF_KEY, ChunkContext
from gas_annotator.engine.chunk_stats import chunk_stats
from gas_annotator.engine.gene_context import CONTEXT_TERMS, gene_context, load_genes, load_mane
from gas_annotator.engine.genotypes import genotype_fields, tsv_genotype_columns

TSV_SCHEMA = pa.schema(
    [
        ("chrom", pa.string()),
        ("pos", pa.int64()),
        ("id", pa.string()),
        ("ref", pa.string()),
        ("alt", pa.string()),
        ("gene", pa.string()),
        ("transcript", pa.string()),
        ("biotype", pa.string()),
        ("consequence", pa.string()),
        ("impact", pa.string()),
        ("protein_change", pa.string()),
        ("mane_select", pa.bool_()),
        ("known_id", pa.string()),
        ("clinvar", pa.string()),
        ("allele_frequency", pa.float64()),
        ("nearest_gene", pa.string()),
        ("distance", pa.int64()),
    ]
)


def result_schema(af_columns: list[str], samples: list[str]) -> pa.Schema:
    """The Parquet rows: the TSV's columns, then ``picked`` and ``gene_first``, one float
    column per population AF field of the bundle, then the genotype columns when the input has
    samples."""
    return pa.schema(
        [
            *TSV_SCHEMA,
            pa.field("picked", pa.bool_()),
            pa.field("gene_first", pa.bool_()),
            *(pa.field(name, pa.float64()) for name in af_columns),
            *genotype_fields(samples),
        ]
    )


def tsv_columns(samples: list[str]) -> list[str]:
    return [*TSV_SCHEMA.names, *tsv_genotype_columns(samples)]


def our_pass(  # noqa: PLR0915 - a sequence of columnar steps, clearer in one place
    q: pa.Table,
    contig: str,
    ctx: ChunkContext,
    *,
    samples: list[str] | None = None,
    genotypes: pa.Table | None = None,
) -> tuple[pa.Table, pa.Table, dict[str, Any]]:
    """``q``: the query columns (annotated.read_annotated), with an ``af_<name>`` column per
    extra AF field of ctx.af_columns; ``genotypes``: per record, the genotype columns."""
    n = q.num_rows
    samples = samples or []
    pos = q.column("pos").to_numpy()
    user_chrom = ctx.to_user.get(contig, contig)

    # --- transcript consequences: one row per BCSQ entry
    bcsq = whole(q.column("bcsq"))
    entries = pc.split_pattern(bcsq, ",")
    flat = pc.list_flatten(entries)
    parent = pc.list_parent_indices(entries).to_numpy()
    keep = pc.invert(pc.starts_with(flat, "@"))  # haplotype back-references (not with -l)
    flat = pc.filter(flat, keep)
    parent = parent[keep.to_numpy(zero_copy_only=False)]
    padded = pc.binary_join_element_wise(flat, "|||||||", "")
    parts = pc.split_pattern(padded, "|")
    entries_table = pa.table(
        {
            "parent": pa.array(parent.astype(np.int64)),
            "transcript": whole(pc.list_element(parts, 2)),
            "csq": whole(pc.list_element(parts, 0)),
            "gene": whole(pc.list_element(parts, 1)),
            "biotype": whole(pc.list_element(parts, 3)),
            "aa": whole(nonempty(pc.list_element(parts, 5))),
        }
    )
    # The split text is dead from here: freed now, the rest of the pass reuses its memory
    # (a worker keeps its high-water mark; see docs/annotation.md, "Peak RSS at 4M dense").
    del bcsq, entries, flat, padded, parts
    merged = _merge_same_transcript(entries_table)
    del entries_table
    parent = merged.column("parent").to_numpy()
    transcript = whole(merged.column("transcript"))
    gene = whole(merged.column("gene"))
    biotype = whole(merged.column("biotype"))
    aa = pc.fill_null(whole(merged.column("aa")), "")
    csq_short = whole(merged.column("csq"))

    mapped = map_distinct(csq_short, _so_fields, pa.struct(
        [("so", pa.string()), ("top", pa.string()), ("impact", pa.string()), ("rank", pa.int32())]
    ))  # fmt: skip
    so = pc.struct_field(mapped, "so")
    top = pc.struct_field(mapped, "top")
    impact = pc.struct_field(mapped, "impact")
    rank = pc.struct_field(mapped, "rank").to_numpy(zero_copy_only=False).astype(np.int64)

    tx_unversioned = pc.replace_substring_regex(transcript, r"\..*$", "")
    mane_set = load_mane(ctx.mane)
    mane = (
        pc.is_in(tx_unversioned, value_set=mane_set)
        if len(mane_set)
        else pc.equal(transcript, pa.scalar("\0"))
    )
    # Only coding entries carry an amino-acid change (protein_changes gives null for none).
    coding = np.flatnonzero(pc.not_equal(aa, "").to_numpy(zero_copy_only=False))
    at = pa.array(coding)
    protein = scatter(protein_changes(pc.take(aa, at), pc.take(so, at)), coding, len(aa))

    # --- variants with no transcript consequence: our upstream/downstream/intergenic context
    hit = np.zeros(n, dtype=np.bool_)
    hit[parent] = True
    nohit_idx = np.flatnonzero(~hit)
    genes = load_genes(ctx.genes, contig)
    term_code, near_gene, near_dist = gene_context(pos[nohit_idx], genes, ctx.context_distance)
    ctx_term = pc.take(CONTEXT_TERMS, pa.array(term_code))
    near_name = pc.take(genes.names, pa.array(near_gene, mask=near_gene < 0))
    near_distance = pa.array(near_dist, mask=near_dist < 0)

    # --- per-variant most severe consequence and MANE consequence (columnar scatter/take)
    order = np.lexsort((rank, parent))
    first = order[np.r_[True, parent[order][1:] != parent[order][:-1]]] if len(order) else order
    first_rows = pa.array(first)
    var_csq = pc.coalesce(
        scatter(pc.take(top, first_rows), parent[first], n), scatter(ctx_term, nohit_idx, n)
    )
    var_impact = pc.fill_null(scatter(pc.take(impact, first_rows), parent[first], n), "MODIFIER")
    var_gene = scatter(pc.take(nonempty(gene), first_rows), parent[first], n)
    mane_rows = np.flatnonzero(mane.to_numpy(zero_copy_only=False))
    if len(mane_rows):
        mane_rows = mane_rows[np.lexsort((rank[mane_rows], parent[mane_rows]))]
        keep_first = np.r_[True, parent[mane_rows][1:] != parent[mane_rows][:-1]]
        mane_rows = mane_rows[keep_first]
        idx = pa.array(mane_rows)
        label = pc.binary_join_element_wise(
            pc.take(transcript, idx), pc.take(so, idx), pc.fill_null(pc.take(protein, idx), ""), "|"
        )
        var_mane = scatter(label, parent[mane_rows], n)
    else:
        var_mane = pa.nulls(n, pa.string())
    var_near = scatter(near_name, nohit_idx, n)
    var_dist = scatter(near_distance, nohit_idx, n)

    # --- TSV rows: transcript rows and context rows, in input order
    n_hit_rows = len(parent)
    n_ctx = len(nohit_idx)
    row_variant = np.concatenate([parent.astype(np.int64), nohit_idx.astype(np.int64)])
    # Each column is taken once, straight into row order (no second take of the table).
    row_order = np.lexsort((np.arange(len(row_variant)), row_variant))
    ordered = pa.array(row_order)
    variant_of_row = row_variant[row_order]
    variant_take = pa.array(variant_of_row)

    def col(name: str) -> pa.Array:
        return whole(pc.take(q.column(name), variant_take))

    def both(hit_values: pa.Array, context_values: pa.Array) -> pa.Array:
        return whole(pc.take(pa.concat_arrays([whole(hit_values), whole(context_values)]), ordered))

    no_strings = pa.nulls(n_ctx, pa.string())
    rows = pa.table(
        {
            "chrom": pc.take(
                pa.array([user_chrom]), pa.array(np.zeros(len(row_variant), np.int64))
            ),
            "pos": col("pos"),
            "id": col("id"),
            "ref": col("ref"),
            "alt": col("alt"),
            "gene": both(nonempty(gene), no_strings),
            "transcript": both(nonempty(transcript), no_strings),
            "biotype": both(nonempty(biotype), no_strings),
            "consequence": both(so, ctx_term),
            "impact": both(impact, _repeat("MODIFIER", n_ctx)),
            "protein_change": both(protein, no_strings),
            "mane_select": both(mane, pa.array(np.zeros(n_ctx, np.bool_))),
            "known_id": col("known_id"),
            "clinvar": col("clnsig"),
            "allele_frequency": col("af"),
            "nearest_gene": both(pa.nulls(n_hit_rows, pa.string()), near_name),
            "distance": both(pa.nulls(n_hit_rows, pa.int64()), near_distance),
        },
        schema=TSV_SCHEMA,
    )
    picked = both(
        picked_rows(parent, mane, biotype, rank, transcript), pa.array(np.ones(n_ctx, np.bool_))
    )
    gene_first = both(gene_first_rows(parent, nonempty(gene)), pa.array(np.zeros(n_ctx, np.bool_)))
    extra: dict[str, pa.Array] = {"picked": picked, "gene_first": gene_first}
    for name, source in ctx.af_columns:
        extra[name] = col("af" if source == DEFAULT_AF_KEY else name)
    schema = result_schema([name for name, _ in ctx.af_columns], samples)
    for f in genotype_fields(samples):
        if genotypes is not None and genotypes.num_rows == n:
            extra[f.name] = whole(pc.take(genotypes.column(f.name), variant_take))
        else:
            extra[f.name] = pa.nulls(len(row_variant), f.type)
    for name, values in extra.items():
        rows = rows.append_column(schema.field(name), values)

    per_variant = pa.table(
        {
            "chrom": q.column("chrom"),
            "pos": q.column("pos"),
            "ref": q.column("ref"),
            "alt": q.column("alt"),
            "GAS_CSQ": var_csq,
            "GAS_IMPACT": var_impact,
            "GAS_GENE": var_gene,
            "GAS_NEAREST_GENE": var_near,
            "GAS_DISTANCE": var_dist,
            "GAS_MANE": var_mane,
        }
    )
    detail = pa.table(
        {
            "transcript": scatter(pc.take(transcript, first_rows), parent[first], n),
            "protein": scatter(pc.take(protein, first_rows), parent[first], n),
        }
    )
    stats = chunk_stats(
        q,
        per_variant=per_variant,
        rows=rows,
        detail=detail,
        chrom=user_chrom,
        variant_of_row=variant_of_row,
        carriers=genotypes.column("carriers")
        if genotypes is not None and genotypes.num_rows == n
        else None,
    )
    return rows, per_variant, stats


def _repeat(value: str, n: int) -> pa.Array:
    """``value`` n times (a take of one string: no Python object per row)."""
    return pc.take(pa.array([value], pa.string()), pa.array(np.zeros(n, np.int64)))


def picked_rows(
    parent: np.ndarray[Any, np.dtype[Any]],
    mane: pa.Array,
    biotype: pa.Array,
    rank: np.ndarray[Any, np.dtype[np.int64]],
    transcript: pa.Array,
) -> pa.Array:
    """Per transcript row, whether it is its variant's picked row: a MANE Select row first, then
    protein_coding, then the most severe consequence, then the transcript id (docs/annotation.md,
    "One row per variant"). One sort over integer keys."""
    if len(parent) == 0:
        return pa.array([], pa.bool_())
    not_mane = ~pc.fill_null(mane, False).to_numpy(zero_copy_only=False)
    not_coding = ~pc.fill_null(pc.equal(biotype, "protein_coding"), False).to_numpy(
        zero_copy_only=False
    )
    tx_order = pc.rank(transcript, sort_keys="ascending", tiebreaker="dense").to_numpy()
    order = np.lexsort((tx_order, rank, not_coding, not_mane, parent))
    first = np.r_[True, parent[order][1:] != parent[order][:-1]]
    picked = np.zeros(len(parent), dtype=np.bool_)
    picked[order[first]] = True
    return pa.array(picked)


def gene_first_rows(parent: np.ndarray[Any, np.dtype[Any]], gene: pa.Array) -> pa.Array:
    """Per transcript row, whether it is its variant's first row in its gene (False without a
    gene): counting these counts each gene's variants with no distinct over the whole result
    (the web's transcript-view summary: a 4M-row distinct held ~100 MB)."""
    if len(parent) == 0:
        return pa.array([], pa.bool_())
    codes = pc.fill_null(pc.dictionary_encode(gene).indices, -1).to_numpy(zero_copy_only=False)
    order = np.lexsort((np.arange(len(parent)), codes, parent))
    key_parent, key_code = parent[order], codes[order]
    first = np.r_[True, (key_parent[1:] != key_parent[:-1]) | (key_code[1:] != key_code[:-1])]
    marked = np.zeros(len(parent), dtype=np.bool_)
    marked[order[first]] = True
    marked[codes < 0] = False
    return pa.array(marked)


def _merge_same_transcript(entries: pa.Table) -> pa.Table:
    """One row per variant x transcript: csq reports e.g. splice_region and missense on one
    transcript as two entries, users (and VEP) expect one row with the terms joined by '&'.

    Only entries of the same transcript merge. csq gives no transcript id for some entries
    (``intron|APP||protein_coding,non_coding|AP001442.2||antisense``): those stay apart per
    (gene, biotype), or one gene would be credited with another's consequence.

    Such pairs are rare, so they are found with a sort on integer keys and only they are
    grouped; the other entries pass through untouched.
    """
    parent = entries.column("parent").to_numpy()
    # The transcript, or for entries without one "\0gene\0biotype" (no id starts with NUL).
    same = pc.if_else(
        pc.equal(entries.column("transcript"), ""),
        pc.binary_join_element_wise("", entries.column("gene"), entries.column("biotype"), "\0"),
        entries.column("transcript"),
    )
    codes = whole(pc.dictionary_encode(same)).indices.to_numpy(zero_copy_only=False)
    key = parent * (int(codes.max(initial=0)) + 2) + codes
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    repeated = sorted_key[1:] == sorted_key[:-1]
    entries = entries.append_column("index", pa.array(np.arange(len(parent), dtype=np.int64)))
    if not repeated.any():
        return entries.drop_columns(["index"])
    duplicated = np.isin(key, sorted_key[1:][repeated])
    dup = entries.filter(pa.array(duplicated)).append_column("key", pa.array(key[duplicated]))
    single = entries.filter(pa.array(~duplicated))
    grouped = dup.group_by(["key"], use_threads=False).aggregate(
        [("parent", "first"), ("transcript", "first"), ("csq", "list"), ("gene", "first"),
         ("biotype", "first"), ("aa", "first"), ("index", "min")]
    )  # fmt: skip
    grouped = pa.table(
        {
            "parent": grouped.column("parent_first"),
            "transcript": grouped.column("transcript_first"),
            "csq": pc.binary_join(grouped.column("csq_list"), "&"),
            "gene": grouped.column("gene_first"),
            "biotype": grouped.column("biotype_first"),
            "aa": grouped.column("aa_first"),
            "index": grouped.column("index_min"),
        }
    )
    combined = pa.concat_tables([single, grouped.cast(single.schema)])
    return combined.sort_by("index").drop_columns(["index"])


_AA_LETTERS = pa.array(list(cq.AA3))


_AA_NAMES = pa.array(list(cq.AA3.values()))


_SIMPLE_AA = r"^(?P<pos>[0-9]+)(?P<ref>[A-Z*])(?:>[0-9]+(?P<alt>[A-Z*]))?$"


def protein_changes(aa: pa.Array, so: pa.Array) -> pa.Array:
    """HGVS p. notation for csq's amino-acid field.

    The common single-residue forms (``717V>717I`` -> ``p.Val717Ile``, ``315K`` -> ``p.Lys315=``)
    are built column-wise; the rest (indels, frameshifts) go through cq.protein_change once per
    distinct value.
    """
    if len(aa) == 0:
        return pa.array([], pa.string())
    parts = pc.extract_regex(aa, _SIMPLE_AA)
    ref = pc.take(_AA_NAMES, pc.index_in(pc.struct_field(parts, "ref"), value_set=_AA_LETTERS))
    alt_letter = pc.struct_field(parts, "alt")
    alt = pc.take(_AA_NAMES, pc.index_in(alt_letter, value_set=_AA_LETTERS))
    same = pc.or_(pc.equal(alt_letter, ""), pc.equal(alt_letter, pc.struct_field(parts, "ref")))
    suffix = pc.if_else(pc.fill_null(same, True), "=", alt)
    simple = pc.binary_join_element_wise("p.", ref, pc.struct_field(parts, "pos"), suffix, "")
    # Frameshifts, lost stops (``339*>339Q``) and lost starts have their own forms.
    stop_lost = pc.and_(pc.equal(pc.struct_field(parts, "ref"), "*"), pc.not_equal(alt_letter, "*"))
    special = pc.or_(
        pc.or_(pc.match_substring(so, "frameshift"), pc.match_substring(so, "start_lost")),
        pc.fill_null(pc.and_(stop_lost, pc.not_equal(alt_letter, "")), False),
    )
    simple_ok = pc.and_(pc.is_valid(simple), pc.invert(special))
    simple_ok = pc.fill_null(simple_ok, False)
    pair = pc.binary_join_element_wise(aa, so, "\t")
    needs_python = pc.and_(pc.invert(simple_ok), pc.not_equal(aa, ""))
    slow = map_distinct(
        pc.if_else(needs_python, pair, pa.scalar(None, pa.string())), _protein_from_pair,
        pa.string(),
    )  # fmt: skip
    out = pc.if_else(simple_ok, simple, slow)
    return whole(pc.if_else(pc.equal(aa, ""), pa.scalar(None, pa.string()), out))


def _so_fields(csq: str | None) -> dict[str, Any]:
    terms, impact, rank = cq.so_terms(csq or "")
    return {"so": terms, "top": terms.split("&")[0], "impact": impact, "rank": rank}


def _protein_from_pair(pair: str | None) -> str | None:
    if not pair:
        return None
    aa, _, so = pair.partition("\t")
    return cq.protein_change(aa, so) if aa else None


def write_rows(
    rows: pa.Table,
    tsv: Path,
    arrow: Path,
    *,
    samples: list[str] | None = None,
    metadata: dict[str, str] | None = None,
) -> None:
    """The chunk's rows: TSV (its columns only) and Arrow IPC (every column; the schema carries
    the Parquet key-value metadata the job process writes)."""
    _write_tsv(rows.select(tsv_columns(samples or [])), tsv)
    rows = rows.replace_schema_metadata(metadata or {})
    with pa.OSFile(str(arrow), "wb") as sink, pa.ipc.new_file(sink, rows.schema) as writer:
        writer.write_table(rows, max_chunksize=65536)


# What pyarrow's CSV writer will not write unquoted (RFC 4180's structural bytes, with a tab
# as the delimiter): with quoting off it refuses a value holding one.
_CSV_STRUCTURAL = '"\t\n\r'


def _write_tsv(rows: pa.Table, path: Path) -> None:
    """The rows as TSV, values verbatim: pyarrow's CSV writer with quoting off (half the CPU
    of joining the columns as text, 0.02 vs 0.04 s per 100k rows), unless a string may hold a
    byte it refuses unquoted; then the columns joined as text. No field holds a tab or a
    newline (they come from VCF and GFF fields), but an ID may hold a '"' (rs1"x): the CSV
    writer would quote it. Both give the same bytes (numbers and booleans as pyarrow casts
    them to text)."""
    strings = [whole(c) for c in rows.columns if pa.types.is_string(c.type)]
    if any(has_any_byte(c, _CSV_STRUCTURAL) for c in strings):
        _write_tsv_joined(rows, path)
        return
    with path.open("wb") as out:
        pa_csv.write_csv(rows, out, pa_csv.WriteOptions(
            include_header=False, delimiter="\t", quoting_style="none"))


def _write_tsv_joined(rows: pa.Table, path: Path) -> None:
    """The rows as TSV, the columns joined as text (any value but a tab or a newline)."""
    columns = [pc.fill_null(pc.cast(c, pa.string()), "") for c in rows.columns]
    lines = pc.binary_join_element_wise(*columns, "\t")
    with path.open("wb") as out:
        for chunk in lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]:
            if len(chunk) == 0:
                continue
            text = pc.binary_join_element_wise(chunk, "", "\n")  # each line + newline
            offsets = np.frombuffer(text.buffers()[1], dtype=np.int32)
            start, end = offsets[text.offset], offsets[text.offset + len(text)]
            out.write(memoryview(text.buffers()[2])[start:end])
