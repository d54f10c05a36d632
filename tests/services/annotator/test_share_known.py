"""duplicates.share_known on an annotated text: which copies gain known-variant fields."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from gas_annotator.engine.annotated import read_annotated
from gas_annotator.engine.duplicates import share_known
from gas_annotator.engine.vcf_splice import new_texts

HEADER = "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"


def shared(tmp_path: Path, *lines: str) -> tuple[list[dict[str, object]], list[str | None]]:
    path = tmp_path / "annotated.vcf"
    path.write_text(HEADER + "".join(f"{line}\n" for line in lines))
    text = share_known(read_annotated(path, {"af_kg_afr": "GAS_AF_KG_AFR"}))
    extra = text.extra_info.to_pylist() if text.extra_info is not None else [None] * len(lines)
    return text.table.to_pylist(), extra


def test_only_copies_of_a_known_record_gain_its_fields(tmp_path: Path) -> None:
    rows, extra = shared(
        tmp_path,
        "1\t10\t.\tA\tG\t.\t.\t.",  # two novel alleles sharing position 10: nothing to share
        "1\t10\t.\tA\tT\t.\t.\tBCSQ=x",
        "1\t20\trs1\tC\tT\t.\t.\tGAS_KNOWN_ID=rs1;GAS_AF=.;GAS_CLNSIG=benign;GAS_AF_KG_AFR=0.5",
        "1\t20\t.\tC\tT\t.\t.\t.",  # its copy
        "1\t20\t.\tC\tA\t.\t.\t.",  # another allele at the known position
        "1\t30\t.\tG\tA\t.\t.\tGAS_CLNSIG=benign",  # a copy that has ClinVar but no rsID yet
        "1\t30\trs3\tG\tA\t.\t.\tGAS_KNOWN_ID=rs3;GAS_CLNSIG=benign",
    )
    assert [r["id"] for r in rows] == [None, None, "rs1", "rs1", None, "rs3", "rs3"]
    assert [r["known_id"] for r in rows] == [None, None, "rs1", "rs1", None, "rs3", "rs3"]
    assert [r["clnsig"] for r in rows] == [None, None, "benign", "benign", None, "benign", "benign"]
    assert [r["af_kg_afr"] for r in rows] == [None, None, 0.5, 0.5, None, None, None]
    assert [r["af"] for r in rows] == [None] * 7  # GAS_AF=. is missing, for the copy too
    # The VCF line of a copy gets exactly the fields it lacked, '.' as written.
    assert extra == [
        None, None, None,
        "GAS_KNOWN_ID=rs1;GAS_AF=.;GAS_CLNSIG=benign;GAS_AF_KG_AFR=0.5",
        None,
        "GAS_KNOWN_ID=rs3",
        None,
    ]  # fmt: skip


def test_shared_positions_without_any_known_record_are_left_alone(tmp_path: Path) -> None:
    rows, extra = shared(
        tmp_path,
        "1\t10\t.\tA\tG\t.\t.\t.",
        "1\t10\t.\tA\tG\t.\t.\t.",
        "1\t11\trs9\tA\tG\t.\t.\tGAS_KNOWN_ID=rs9",
    )
    assert [r["known_id"] for r in rows] == [None, None, "rs9"]
    assert extra == [None, None, None]


def test_a_copys_vcf_span_gets_its_new_id_the_fields_it_lacked_then_ours(tmp_path: Path) -> None:
    path = tmp_path / "annotated.vcf"
    path.write_text(HEADER + "1\t20\trs1\tC\tT\t.\t.\tGAS_KNOWN_ID=rs1;GAS_AF=0.1\n"
                    "1\t20\t.\tC\tT\t.\t.\t.\n"  # its copy: gains the ID, the rsID and AF
                    "1\t30\t.\tG\tA\t.\t.\tBCSQ=x\n")
    text = share_known(read_annotated(path, {}))
    gained = "GAS_KNOWN_ID=rs1;GAS_AF=0.1"
    for ours, copy in ((["GAS_GENE=A", None, None], gained),
                       (["GAS_GENE=A", "GAS_GENE=B", None], f"{gained};GAS_GENE=B")):
        spans = [v.decode() for v in new_texts(text, pa.array(ours, pa.string())).to_pylist()]
        assert spans == [f"{gained};GAS_GENE=A", f"rs1\tC\tT\t.\t.\t{copy}", "BCSQ=x"]
