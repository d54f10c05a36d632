"""The result Parquet's encodings: what the browser reads back often is dictionary-encoded."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from gas_annotator.engine.outputs import parquet_writer

GENOTYPE = pa.struct([("gt", pa.string()), ("zygosity", pa.string()), ("depth", pa.int32()),
                      ("gq", pa.int32())])


def test_the_result_parquet_dictionary_encodes_alleles_and_every_genotype_field_not_ids(
    tmp_path: Path,
) -> None:
    n = 1000
    table = pa.table({
        "chrom": ["21"] * n, "pos": list(range(1, n + 1)),
        "id": [f"rs{i}" for i in range(n)], "ref": ["ACGT"[i % 4] for i in range(n)],
        "alt": ["TGCA"[i % 4] for i in range(n)],
        "genotypes": pa.array([[{"gt": "0/1", "zygosity": "het", "depth": 30, "gq": 99},
                                {"gt": "0/0", "zygosity": "hom_ref", "depth": 20, "gq": 50}]
                               for _ in range(n)], pa.list_(GENOTYPE)),
    })
    path = tmp_path / "rows.parquet"
    with parquet_writer(path, table.schema) as writer:
        writer.write_table(table)
    chunks = pq.ParquetFile(path).metadata.row_group(0)
    encodings = {chunks.column(i).path_in_schema: set(chunks.column(i).encodings)
                 for i in range(chunks.num_columns)}
    dictionary = {path for path, used in encodings.items() if "RLE_DICTIONARY" in used}
    assert dictionary == {"chrom", "ref", "alt", "genotypes.list.element.gt",
                          "genotypes.list.element.zygosity", "genotypes.list.element.depth",
                          "genotypes.list.element.gq"}
    assert pq.read_table(path).equals(table)
