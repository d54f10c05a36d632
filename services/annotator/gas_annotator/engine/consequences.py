"""Sequence Ontology names, impacts and protein-change notation for bcftools csq output.

bcftools csq writes short consequence names (``missense``, ``5_prime_utr``) joined with ``&``;
users, filters and the web expect Sequence Ontology terms as VEP and snpEff print them. The
impact classes and the severity order follow Ensembl VEP's table, so "most severe consequence"
means the same thing here as in the tools users compare us with.
"""

from __future__ import annotations

import re
from typing import Final

# csq short name -> Sequence Ontology term.
CSQ_TO_SO: Final[dict[str, str]] = {
    "intron": "intron_variant",
    "5_prime_utr": "5_prime_UTR_variant",
    "3_prime_utr": "3_prime_UTR_variant",
    "splice_acceptor": "splice_acceptor_variant",
    "splice_donor": "splice_donor_variant",
    "splice_region": "splice_region_variant",
    "stop_lost": "stop_lost",
    "stop_gained": "stop_gained",
    "start_lost": "start_lost",
    "frameshift": "frameshift_variant",
    "inframe_deletion": "inframe_deletion",
    "inframe_insertion": "inframe_insertion",
    "inframe_altering": "protein_altering_variant",
    "missense": "missense_variant",
    "synonymous": "synonymous_variant",
    "stop_retained": "stop_retained_variant",
    "start_retained": "start_retained_variant",
    "non_coding": "non_coding_transcript_exon_variant",
    "coding_sequence": "coding_sequence_variant",
    "feature_elongation": "feature_elongation",
}

UPSTREAM = "upstream_gene_variant"
DOWNSTREAM = "downstream_gene_variant"
INTERGENIC = "intergenic_variant"
# A variant inside a gene's span but outside all of its modelled transcripts (or a gene whose
# transcripts csq does not model): SO's intragenic_variant, as snpEff reports it.
GENE_BODY = "intragenic_variant"

# Most severe first (Ensembl VEP's order).
SEVERITY: Final[tuple[str, ...]] = (
    "splice_acceptor_variant",
    "splice_donor_variant",
    "stop_gained",
    "frameshift_variant",
    "stop_lost",
    "start_lost",
    "inframe_insertion",
    "inframe_deletion",
    "missense_variant",
    "protein_altering_variant",
    "splice_region_variant",
    "start_retained_variant",
    "stop_retained_variant",
    "synonymous_variant",
    "coding_sequence_variant",
    "5_prime_UTR_variant",
    "3_prime_UTR_variant",
    "non_coding_transcript_exon_variant",
    "intron_variant",
    "non_coding_transcript_variant",
    "intragenic_variant",
    "feature_elongation",
    UPSTREAM,
    DOWNSTREAM,
    INTERGENIC,
)
RANK: Final[dict[str, int]] = {term: i for i, term in enumerate(SEVERITY)}
UNKNOWN_RANK: Final[int] = len(SEVERITY)

IMPACTS: Final[tuple[str, ...]] = ("HIGH", "MODERATE", "LOW", "MODIFIER")
IMPACT: Final[dict[str, str]] = {
    "splice_acceptor_variant": "HIGH",
    "splice_donor_variant": "HIGH",
    "stop_gained": "HIGH",
    "frameshift_variant": "HIGH",
    "stop_lost": "HIGH",
    "start_lost": "HIGH",
    "inframe_insertion": "MODERATE",
    "inframe_deletion": "MODERATE",
    "missense_variant": "MODERATE",
    "protein_altering_variant": "MODERATE",
    "splice_region_variant": "LOW",
    "start_retained_variant": "LOW",
    "stop_retained_variant": "LOW",
    "synonymous_variant": "LOW",
}


def impact_of(term: str) -> str:
    return IMPACT.get(term, "MODIFIER")


def so_terms(csq: str) -> tuple[str, str, int]:
    """Map one csq consequence (``missense&splice_region``) to (SO terms, impact, rank).

    A leading ``*`` (csq's mark for a consequence downstream of a frameshift or stop in the same
    haplotype) is dropped; csq runs here with ``--local-csq`` so it should not appear.
    """
    # Each term once: two entries of one transcript are merged by joining their terms, and
    # both may carry the same one (feature_elongation&feature_elongation).
    terms = list(dict.fromkeys(
        CSQ_TO_SO.get(t.lstrip("*"), t.lstrip("*") + "_variant") for t in csq.split("&") if t))
    terms.sort(key=lambda t: RANK.get(t, UNKNOWN_RANK))
    if not terms:
        return "", "MODIFIER", UNKNOWN_RANK
    best = terms[0]
    return "&".join(terms), impact_of(best), RANK.get(best, UNKNOWN_RANK)


AA3: Final[dict[str, str]] = {
    "A": "Ala", "R": "Arg", "N": "Asn", "D": "Asp", "C": "Cys", "Q": "Gln", "E": "Glu",
    "G": "Gly", "H": "His", "I": "Ile", "L": "Leu", "K": "Lys", "M": "Met", "F": "Phe",
    "P": "Pro", "S": "Ser", "T": "Thr", "W": "Trp", "Y": "Tyr", "V": "Val", "*": "Ter",
    "U": "Sec", "O": "Pyl", "X": "Xaa",
}  # fmt: skip

_AA_CHANGE = re.compile(r"^(\d+)([A-Z*]+)(?:>(\d+)([A-Z*?]+))?$")

# Every protein change we write matches this (HGVS p. short forms, three-letter codes).
_AA3_RE = (
    "(?:Ala|Arg|Asn|Asp|Cys|Gln|Glu|Gly|His|Ile|Leu|Lys|Met|Phe|Pro|Ser|Thr|Trp|Tyr|Val|Ter|Sec|"
    "Pyl|Xaa)"
)
HGVS_P_REGEX: Final[str] = (
    rf"^p\.(?:\?|{_AA3_RE}\d+(?:="
    rf"|\?"
    rf"|{_AA3_RE}"
    rf"|{_AA3_RE}?fs(?:Ter(?:\d+|\?))?"
    rf"|{_AA3_RE}ext(?:Ter(?:\d+|\?))"
    rf"|(?:_{_AA3_RE}\d+)?(?:del|dup|delins(?:{_AA3_RE})+)"
    rf"|_{_AA3_RE}\d+ins(?:{_AA3_RE})+"
    rf"))$"
)


def _three(seq: str) -> str:
    return "".join(AA3.get(a, "Xaa") for a in seq)


def protein_change(aa: str, consequence: str) -> str:  # noqa: PLR0911, PLR0912 - one return per HGVS form
    """csq's amino-acid field (``717V>717I``, ``315K``, ``3GLGLW>3W``) as HGVS p. notation.

    Follows the HGVS short forms: ``p.Val717Ile``, ``p.Lys315=``, ``p.Gln12Ter``,
    ``p.Ile453fs``, ``p.Gly3_Leu6del``, ``p.Lys5delinsLysLeu`` (insertions: see _insertion);
    a lost stop ``p.Ter339GlnextTer?`` (csq names the residue replacing the stop, not where the
    new one is) or ``p.Ter354?`` when csq cannot say (``354*>354?``); a lost start ``p.Met1?``
    (translation may start elsewhere: HGVS's form, as VEP writes it). csq shortens long
    sequences with ``..``; what does not parse becomes ``p.?`` (effect on the protein unknown):
    csq's own notation never reaches the outputs.
    """
    if ".." in aa and "frameshift" not in consequence:
        return "p.?"  # a shortened sequence: the changed residues are not all known
    match = _AA_CHANGE.match(aa.replace("..", ""))
    if not match:
        return "p.?"
    pos = int(match.group(1))
    ref = match.group(2)
    alt = match.group(4)
    if alt is None:
        return f"p.{_three(ref[:1])}{pos}="
    if ref[0] == "*" and alt[0] != "*":
        # Stop lost: csq gives the residue now at the stop's place, and the rest of the new
        # tail up to the next stop when it reached one.
        if "?" in alt:
            return f"p.Ter{pos}?"
        stop = alt.find("*")
        return f"p.Ter{pos}{_three(alt[0])}ext" + (f"Ter{stop}" if stop > 0 else "Ter?")
    if "?" in alt:
        return f"p.{_three(ref[:1])}{pos}?"
    if "start_lost" in consequence and pos == 1:
        return "p.Met1?"
    if "frameshift" in consequence:
        return _frameshift(pos, ref, alt)
    if len(ref) == 1 and len(alt) == 1:
        if ref == alt:
            return f"p.{_three(ref)}{pos}="
        return f"p.{_three(ref)}{pos}{_three(alt)}"
    # Trim the shared prefix and suffix so the change names only the residues that differ.
    start = 0
    while start < min(len(ref), len(alt)) and ref[start] == alt[start]:
        start += 1
    end = 0
    while end < min(len(ref), len(alt)) - start and ref[-1 - end] == alt[-1 - end]:
        end += 1
    r = ref[start : len(ref) - end]
    a = alt[start : len(alt) - end]
    first = pos + start
    if not r and not a:
        return f"p.{_three(ref[:1])}{pos}="
    if len(r) == 1 and len(a) == 1:
        return f"p.{_three(r)}{first}{_three(a)}"
    span = f"{_three(r[0])}{first}" if len(r) == 1 else ""
    if len(r) > 1:
        span = f"{_three(r[0])}{first}_{_three(r[-1])}{first + len(r) - 1}"
    if not a:
        return f"p.{span}del"
    if not r:
        return _insertion(ref, a, pos, start)
    return f"p.{span}delins{_three(a)}"


def _insertion(ref: str, ins: str, pos: int, start: int) -> str:
    """An in-frame insertion of ``ins`` after ``ref[:start]``, csq's reference residues from
    ``pos`` (the shared prefix is trimmed first: the point is the most 3' the string allows).

    HGVS names an insertion by the residues on both sides (``p.Lys2_Leu3insGln``), or as a
    duplication when ``ins`` repeats the residues just before it, at the last copy of a repeat
    (the 3' rule: ``p.Leu14dup`` in a run Leu10..Leu14). Both need the residue after the point:
    it says whether the repeat goes on. csq's string usually holds one codon, one side of the
    point; then the change is the delins of the residue it shows, in protein order
    (``10L>10LL`` is ``p.Leu10delinsLeuLeu``, ``101Q>101PQ`` is ``p.Gln101delinsProGln``):
    valid HGVS, not the preferred form (docs/annotation.md says why).
    """
    before, after = ref[start - 1 : start], ref[start : start + 1]
    if before and after:
        # The residue after differs from ins[0] (else the prefix would be longer): no shift left.
        n = len(ins)
        if start >= n and ref[start - n : start] == ins:
            span = f"{_three(ins[0])}{pos + start - n}"
            if n > 1:
                span += f"_{_three(ins[-1])}{pos + start - 1}"
            return f"p.{span}dup"
        return f"p.{_three(before)}{pos + start - 1}_{_three(after)}{pos + start}ins{_three(ins)}"
    if before:
        return f"p.{_three(before)}{pos + start - 1}delins{_three(before + ins)}"
    return f"p.{_three(after)}{pos}delins{_three(ins + after)}"


def _frameshift(pos: int, ref: str, alt: str) -> str:
    """HGVS short form of a frameshift, at its first changed residue (``p.Ile453fs``); a shift
    whose first changed residue is a stop is a nonsense change (``p.Trp63Ter``, as HGVS asks)."""
    i = 0
    while i < min(len(ref), len(alt)) and ref[i] == alt[i]:
        i += 1
    if i >= len(ref):
        return f"p.{_three(ref[:1])}{pos}fs"
    if i < len(alt) and alt[i] == "*":
        return f"p.{_three(ref[i])}{pos + i}Ter"
    return f"p.{_three(ref[i])}{pos + i}fs"


_PATHOGENIC = re.compile(r"(^|[,/|&;])\s*(likely_)?pathogenic\s*($|[,/|&;])", re.IGNORECASE)
PATHOGENIC_REGEX: Final[str] = r"(^|[,/|&;])\s*(likely_)?pathogenic\s*($|[,/|&;])"


def is_pathogenic(clnsig: str | None) -> bool:
    """ClinVar pathogenic or likely pathogenic (``Pathogenic/Likely_pathogenic`` included)."""
    return bool(clnsig) and _PATHOGENIC.search(clnsig or "") is not None
