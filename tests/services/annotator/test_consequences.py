"""csq's short names and amino-acid notation, mapped to Sequence Ontology and HGVS."""

from __future__ import annotations

import pyarrow as pa
import pytest

from gas_annotator.engine import consequences as cq
from gas_annotator.engine.rows import protein_changes as _protein_changes


@pytest.mark.parametrize(
    ("csq", "terms", "impact"),
    [
        ("missense", "missense_variant", "MODERATE"),
        ("5_prime_utr", "5_prime_UTR_variant", "MODIFIER"),
        ("splice_region&missense", "missense_variant&splice_region_variant", "MODERATE"),
        ("splice_acceptor&splice_region", "splice_acceptor_variant&splice_region_variant", "HIGH"),
        ("stop_gained&frameshift", "stop_gained&frameshift_variant", "HIGH"),
        ("non_coding", "non_coding_transcript_exon_variant", "MODIFIER"),
        ("inframe_altering", "protein_altering_variant", "MODERATE"),
        ("synonymous", "synonymous_variant", "LOW"),
        ("*missense", "missense_variant", "MODERATE"),
    ],
)
def test_csq_names_become_sequence_ontology_terms_ordered_by_severity(
    csq: str, terms: str, impact: str
) -> None:
    got_terms, got_impact, _ = cq.so_terms(csq)
    assert (got_terms, got_impact) == (terms, impact)


@pytest.mark.parametrize(
    ("aa", "consequence", "hgvs"),
    [
        ("717V>717I", "missense_variant", "p.Val717Ile"),
        ("315K", "synonymous_variant", "p.Lys315="),
        ("12Q>12*", "stop_gained", "p.Gln12Ter"),
        ("453IYNT>453LQ*", "frameshift_variant", "p.Ile453fs"),
        ("3GLGLW>3W", "inframe_deletion", "p.Gly3_Leu6del"),
        ("5K>5KLL", "inframe_insertion", "p.Lys5delinsLysLeuLeu"),
        ("7AG>7AC", "missense_variant", "p.Gly8Cys"),
        ("7AG>7ACW", "inframe_insertion", "p.Gly8delinsCysTrp"),
        # csq notation never passes through: unknown forms are HGVS's "effect unknown".
        ("odd", "missense_variant", "p.?"),
        # A lost stop: csq names the residue at the old stop's place, '?' when it cannot say.
        ("354*>354?", "stop_lost&inframe_deletion&splice_region_variant", "p.Ter354?"),
        ("339*>339Q", "stop_lost", "p.Ter339GlnextTer?"),
        ("339*>339QRS*", "stop_lost", "p.Ter339GlnextTer3"),
        ("339*", "stop_retained_variant", "p.Ter339="),
        ("1M>1I", "start_lost", "p.Met1?"),
        # A frameshift is named at its first changed residue; one that stops at once is nonsense.
        ("344SYLLHGTVSE*>344SVPPPWNSLRV", "frameshift_variant", "p.Tyr345fs"),
        ("63WKKLGRSV*>63*", "frameshift_variant", "p.Trp63Ter"),
    ],
)
def test_amino_acid_changes_become_hgvs_protein_notation(
    aa: str, consequence: str, hgvs: str
) -> None:
    assert cq.protein_change(aa, consequence) == hgvs


def test_columnar_protein_changes_agree_with_the_scalar_function() -> None:
    aa = ["717V>717I", "315K", "12Q>12*", "453IYNT>453LQ*", "3GLGLW>3W", "", "1M>1I", "4W>4W",
          "339*>339Q", "354*>354?", "339*", "12*>12*"]
    so = ["missense_variant", "synonymous_variant", "stop_gained", "frameshift_variant",
          "inframe_deletion", "intron_variant", "start_lost", "stop_retained_variant",
          "stop_lost", "stop_lost", "stop_retained_variant", "stop_retained_variant"]  # fmt: skip
    got = _protein_changes(pa.array(aa), pa.array(so)).to_pylist()
    expected = [cq.protein_change(a, s) if a else None for a, s in zip(aa, so, strict=True)]
    assert got == expected


@pytest.mark.parametrize(
    ("clnsig", "pathogenic"),
    [
        ("pathogenic", True),
        ("not_provided,pathogenic", True),
        ("Pathogenic/Likely_pathogenic", True),
        ("likely_pathogenic", True),
        ("Conflicting_classifications_of_pathogenicity", False),
        ("benign", False),
        (None, False),
    ],
)
def test_clinvar_pathogenic_means_pathogenic_or_likely_pathogenic(
    clnsig: str | None, pathogenic: bool
) -> None:
    assert cq.is_pathogenic(clnsig) is pathogenic
