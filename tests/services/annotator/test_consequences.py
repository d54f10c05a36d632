"""csq's short names and amino-acid notation, mapped to Sequence Ontology and HGVS."""

from __future__ import annotations

import re

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
        # Two entries of one transcript, merged: each term once.
        ("feature_elongation&feature_elongation", "feature_elongation", "MODIFIER"),
        ("missense&splice_region&missense", "missense_variant&splice_region_variant", "MODERATE"),
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


# csq's own strings for in-frame insertions, from real chr21 transcripts (bundle of the shared
# chr21 data): the chr21 known variants (10L>10LL, 101Q>101PQ), a synthetic codon inserted on
# the minus strand of MRPL39 (277Q>277PQ), and complex records that change a codon synonymously
# and insert one (JAM2, GABPA), so csq's string shows the residues on both sides.
@pytest.mark.parametrize(
    ("aa", "consequence", "hgvs"),
    [
        # The residue after the insertion point is not shown: a delins of the one csq shows,
        # written in protein order (the inserted residue comes before Gln101, not after it).
        ("101Q>101PQ", "inframe_insertion", "p.Gln101delinsProGln"),
        ("277Q>277PQ", "inframe_insertion", "p.Gln277delinsProGln"),
        # A repeat whose end csq does not show (Leu10..Leu14 here, HGVS p.Leu14dup): no dup.
        ("10L>10LL", "inframe_insertion", "p.Leu10delinsLeuLeu"),
        ("163A>163AP", "inframe_insertion", "p.Ala163delinsAlaPro"),
        # Both sides shown: a duplication of the residue before, or an insertion between two.
        ("20AL>20AAL", "feature_elongation", "p.Ala20dup"),
        ("169AL>169AWL", "feature_elongation", "p.Ala169_Leu170insTrp"),
    ],
)
def test_inframe_insertions_use_dup_or_ins_when_csq_shows_both_sides_else_delins_in_order(
    aa: str, consequence: str, hgvs: str
) -> None:
    assert cq.protein_change(aa, consequence) == hgvs
    assert re.match(cq.HGVS_P_REGEX, hgvs)


def test_columnar_protein_changes_agree_with_the_scalar_function() -> None:
    aa = ["717V>717I", "315K", "12Q>12*", "453IYNT>453LQ*", "3GLGLW>3W", "", "1M>1I", "4W>4W",
          "339*>339Q", "354*>354?", "339*", "12*>12*", "101Q>101PQ", "20AL>20AAL"]  # fmt: skip
    so = ["missense_variant", "synonymous_variant", "stop_gained", "frameshift_variant",
          "inframe_deletion", "intron_variant", "start_lost", "stop_retained_variant",
          "stop_lost", "stop_lost", "stop_retained_variant", "stop_retained_variant",
          "inframe_insertion", "feature_elongation"]  # fmt: skip
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
