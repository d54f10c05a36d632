"""A variant query (filters, view, sort) and its translation to SQL over one job's Parquet.

The same parameter names are used by the results page, the API and the CLI. SQL is assembled
only from fragments written here and column names read from the job's own file
(gas_web.app.variants.info); every value a user typed is a query parameter.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from typing import Any, Literal

from gas_web.app.core.errors import Problem
from gas_web.app.variants.info import AF_COLUMN, DEFAULT_AF, ResultInfo

# The columns every API row starts with (the TSV's first columns), in this order.
COLUMNS = ("chrom", "pos", "id", "ref", "alt", "gene", "transcript", "consequence", "impact",
           "protein_change", "known_id", "clinvar", "allele_frequency")
# More of the annotator's columns, after COLUMNS in API rows.
EXTRA_COLUMNS = ("biotype", "mane_select", "nearest_gene", "distance")
# The annotator's TSV columns (the filtered TSV export has the same layout).
TSV_COLUMNS = ("chrom", "pos", "id", "ref", "alt", "gene", "transcript", "biotype", "consequence",
               "impact", "protein_change", "mane_select", "known_id", "clinvar",
               "allele_frequency", "nearest_gene", "distance")
SINGLE_SAMPLE_COLUMNS = ("genotype", "zygosity", "depth", "gq")
IMPACTS = ("HIGH", "MODERATE", "LOW", "MODIFIER")
VIEWS = ("variant", "transcript")
CARRIERS = ("only", "all")
ZYGOSITIES = ("het", "hom_alt", "hom_ref", "missing")
CARRIER_ZYGOSITIES = ("het", "hom_alt")
IMPACT_RANK = ("CASE impact WHEN 'HIGH' THEN 0 WHEN 'MODERATE' THEN 1 WHEN 'LOW' THEN 2 "
               "WHEN 'MODIFIER' THEN 3 ELSE 4 END")
# ClinVar pathogenic or likely pathogenic, as the annotator counts it (any listed term).
PATHOGENIC_REGEX = r"(^|[,/|&;])\s*(likely_)?pathogenic\s*($|[,/|&;])"
PATHOGENIC_SQL = f"coalesce(regexp_matches(clinvar, '{PATHOGENIC_REGEX}', 'i'), false)"
# A ClinVar value's terms, lower case: CLNSIG joins terms with ',' '/' '|' '&' or ';'. The filter
# matches on these and the browser's menu offers these, so every offered term finds rows.
CLINVAR_TERMS_SQL = "regexp_split_to_array(trim(lower(clinvar)), '\\s*[,/|&;]\\s*')"
VARIANT_KEY_SQL = "concat_ws('-', chrom, pos, ref, alt)"
VARIANT_HASH_SQL = "hash(chrom, pos, ref, alt)"
# Sort keys offered to users -> SQL expressions (never user text in SQL). `allele_frequency`
# sorts by the AF field the query filters on.
SORTS: dict[str, str] = {
    "position": "file_row_number",  # the annotator writes rows in genomic order
    "gene": "gene",
    "consequence": "consequence",
    "impact": IMPACT_RANK,
    "allele_frequency": "allele_frequency",
    "clinvar": "clinvar",
}
# The sorts on a key (VariantQuery.sort_expression), not on file order.
KEY_SORTS = frozenset(SORTS) - {"position"}
MAX_PAGE = 500
ZYGOSITY_PREFIX = "gas_z"
# Far beyond any result's row count (the annotator's inputs are capped in bytes).
MAX_OFFSET = 2**31 - 1
_TERM = re.compile(r"^[A-Za-z0-9_./ -]{1,64}$")
_VARIANT_KEY = re.compile(r"^(?P<chrom>[^\s/]{1,100})-(?P<pos>[0-9]{1,10})-"
                          r"(?P<ref>[A-Za-z*.]{1,500})-(?P<alt>[A-Za-z*.<>:_0-9\[\]]{1,500})$")


def split_values(value: str | None) -> tuple[str, ...]:
    """A comma list (`HIGH,MODERATE`) as its non-empty, stripped items."""
    if not value:
        return ()
    return tuple(item.strip() for item in value.split(",") if item.strip())


@dataclass(frozen=True)
class VariantQuery:
    """Filters, view and sort of the variant browser. Multi-valued filters (`impact`,
    `consequence`, `clinvar`) take comma lists and match any listed value."""

    gene: str | None = None
    consequence: str | None = None
    impact: str | None = None
    clinvar: str | None = None
    known: bool | None = None
    max_af: float | None = None
    # An AF column of this job (`af_gnomade`...); None: `allele_frequency` (the bundle default).
    af_field: str | None = None
    # With max_af: keep variants that have no frequency in af_field (default: drop them).
    keep_no_af: bool = False
    # variant: one row per variant (its picked transcript); transcript: every row.
    view: Literal["variant", "transcript"] = "variant"
    # only: sites where a sample (or the selected sample) carries the ALT; None: `only` when
    # the file has samples.
    carriers: Literal["only", "all"] | None = None
    zygosity: str | None = None
    sample: str | None = None
    sort: str = "position"
    descending: bool = False

    def where(self, info: ResultInfo) -> tuple[str, list[Any]]:
        """The WHERE clause (or "") and its parameters; a Problem (400) for a value this job's
        file cannot answer (an unknown AF field or sample)."""
        compiled = compile_query(self, info)
        return compiled.where, compiled.params

    def order_by(self, info: ResultInfo | None = None, *, reverse: bool = False) -> str:
        """ORDER BY for the query's sort; `reverse`: exactly the opposite order (a page near
        the end is read from the end: a smaller top-N)."""
        terms = self._order_terms(info, reverse=reverse)
        return " ORDER BY " + ", ".join(f"{term} {direction}" for term, direction in terms)

    def sort_expression(self, info: ResultInfo | None = None) -> str:
        """The SQL expression rows are sorted on (file order as the tie-break)."""
        expression = SORTS.get(self.sort, SORTS["position"])
        if self.sort == "allele_frequency" and info is not None:
            expression = af_column(self, info)
        return expression

    def _order_terms(self, info: ResultInfo | None, *, reverse: bool = False
                     ) -> list[tuple[str, str]]:
        """The sort's key and direction, then file order as the tie-break."""
        expression = self.sort_expression(info)
        if reverse:
            direction = "ASC NULLS FIRST" if self.descending else "DESC NULLS FIRST"
            return [(expression, direction), ("file_row_number", "DESC")]
        direction = "DESC" if self.descending else "ASC"
        return [(expression, f"{direction} NULLS LAST"), ("file_row_number", "ASC")]

    @property
    def in_file_order(self) -> bool:
        """Rows come in file (genomic) order: no sort needed, the scan's own order is kept."""
        return self.sort not in SORTS or (self.sort == "position" and not self.descending)


@dataclass(frozen=True)
class Compiled:
    where: str
    params: list[Any] = field(default_factory=list)
    sample_index: int | None = None  # 1-based index into `genotypes` of the selected sample

    def where_also(self, *conditions: str) -> str:
        """The WHERE clause with more conditions (our own SQL fragments) ANDed on."""
        parts = [self.where.removeprefix(" WHERE ")] if self.where else []
        return " WHERE " + " AND ".join([*(f"({p})" for p in parts), *conditions])


def af_column(query: VariantQuery, info: ResultInfo) -> str:
    """The quoted AF column the query filters and sorts on (checked against the file)."""
    name = query.af_field or DEFAULT_AF
    if name not in info.af_columns() or (name != DEFAULT_AF and not AF_COLUMN.match(name)):
        known = ", ".join(info.af_columns())
        raise Problem(400, f"Unknown af_field {name!r}: this job has {known}.",
                      title="Unknown AF field")
    if name not in info.columns:
        return "CAST(NULL AS DOUBLE)"  # a file without frequencies at all
    return f'"{name}"'


def sample_index(query: VariantQuery, info: ResultInfo) -> int | None:
    """1-based position of the selected sample in `genotypes`, None for single-sample files
    (flat columns) or no selection."""
    if not query.sample:
        return None
    if not info.has_samples:
        raise Problem(400, "This job's input has no samples.", title="Unknown sample")
    if query.sample not in info.samples:
        raise Problem(400, f"Unknown sample {query.sample!r}.", title="Unknown sample")
    if info.single_sample:
        return None
    if not info.has_genotypes:
        raise Problem(400, "Per-sample genotypes are kept only for inputs of at most 100 "
                           "samples; this one has more.", title="Sample genotypes not kept")
    return info.samples.index(query.sample) + 1


def compile_query(query: VariantQuery, info: ResultInfo) -> Compiled:  # noqa: PLR0912
    clauses: list[str] = []
    params: list[Any] = []
    if query.gene:
        # Exact match keeps the Parquet min/max pushdown; symbols are usually upper case.
        clauses.append("gene IN (?, ?)")
        params += [query.gene.strip(), query.gene.strip().upper()]
    if terms := split_values(query.consequence):
        clauses.append("list_has_any(string_split(consequence, '&'), ?::VARCHAR[])")
        params.append(list(terms))
    if impacts := split_values(query.impact):
        clauses.append(f"impact IN ({', '.join('?' * len(impacts))})")
        params += [impact.upper() for impact in impacts]
    if terms := split_values(query.clinvar):
        clauses.append(f"list_has_any({CLINVAR_TERMS_SQL}, ?::VARCHAR[])")
        params.append([term.lower() for term in terms])
    if query.known is True:
        clauses.append("coalesce(known_id, '') <> ''")
    elif query.known is False:
        clauses.append("coalesce(known_id, '') = ''")
    af = af_column(query, info)
    if query.max_af is not None:
        if query.keep_no_af:
            clauses.append(f"({af} IS NULL OR {af} <= ?)")
        else:
            # Rare-variant filtering: a variant with no frequency is not known to be rare.
            clauses.append(f"{af} <= ?")
        params.append(query.max_af)
    if query.view == "variant":
        clauses.append("picked")
    index = sample_index(query, info)
    # The selected sample's zygosity: a flat column of the per-job zygosity file
    # (gas_web.app.variants.scan), not a list element read from every row's genotypes.
    zygosity = "zygosity" if info.single_sample else (
        f"{ZYGOSITY_PREFIX}{index}" if index is not None else None)
    carriers = query.carriers or ("only" if info.has_samples else "all")
    if carriers == "only" and info.has_samples:
        if zygosity is not None:
            clauses.append(f"{zygosity} IN ('het', 'hom_alt')")
        else:
            clauses.append("carriers > 0")
    if query.zygosity:
        if not info.has_samples:
            raise Problem(400, "This job's input has no samples, so no zygosity.",
                          title="No genotypes")
        if zygosity is None:
            raise Problem(400, "Choose a sample to filter on zygosity (this input has "
                               f"{len(info.samples)} samples).", title="Sample needed")
        clauses.append(f"{zygosity} = ?")
        params.append(query.zygosity)
    return Compiled(" WHERE " + " AND ".join(clauses) if clauses else "", params, index)


# -- parsing request parameters ----------------------------------------------------------


def parse_bool(name: str, value: str | bool | None) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if not lowered:
        return None
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off"):
        return False
    raise _invalid(name, "must be true or false")


def _invalid(name: str, message: str) -> Problem:
    return Problem(400, f"{name} {message}.", title="Invalid filter",
                   errors=[{"field": name, "message": message}])


def _choice(name: str, value: str | None, allowed: tuple[str, ...]) -> str | None:
    if not value:
        return None
    if value.lower() not in allowed:
        raise _invalid(name, f"must be one of {', '.join(allowed)}")
    return value.lower()


def _terms(name: str, value: str | None) -> str | None:
    items = split_values(value)
    for item in items:
        if not _TERM.match(item):
            raise _invalid(name, "has a value that is not a term")
    return ",".join(items) or None


def query_from_params(params: dict[str, Any]) -> VariantQuery:
    """A VariantQuery from request parameters (strings, "" or None = not set), after the named
    preset's parameters: explicitly given parameters override the preset's."""
    from gas_web.app.variants.presets import preset_params

    merged: dict[str, Any] = {}
    if params.get("preset"):
        merged.update(preset_params(str(params["preset"])))
    merged.update({k: v for k, v in params.items() if v is not None and v != "" and k != "preset"})
    impacts = split_values(merged.get("impact"))
    for impact in impacts:
        if impact.upper() not in IMPACTS:
            raise _invalid("impact", f"must be one of {', '.join(IMPACTS)} (or a comma list)")
    max_af: float | None = None
    if merged.get("max_af") is not None:
        try:
            max_af = float(merged["max_af"])
        except (TypeError, ValueError):
            raise _invalid("max_af", "must be a number between 0 and 1") from None
        if not 0 <= max_af <= 1:
            raise _invalid("max_af", "must be a number between 0 and 1")
    af_field = merged.get("af_field")
    if af_field is not None and not (af_field == DEFAULT_AF or AF_COLUMN.match(str(af_field))):
        raise _invalid("af_field", "is not an allele-frequency column")
    sort = str(merged.get("sort") or "position")
    if sort not in SORTS:
        raise _invalid("sort", f"must be one of {', '.join(SORTS)}")
    descending = parse_bool("desc", merged.get("desc"))
    if descending is None:
        descending = _choice("order", merged.get("order"), ("asc", "desc")) == "desc"
    gene = merged.get("gene")
    sample = merged.get("sample")
    return VariantQuery(
        gene=str(gene).strip()[:64] if gene else None,
        consequence=_terms("consequence", merged.get("consequence")),
        impact=",".join(i.upper() for i in impacts) or None,
        clinvar=_terms("clinvar", merged.get("clinvar")),
        known=parse_bool("known", merged.get("known")),
        max_af=max_af,
        af_field=str(af_field) if af_field else None,
        keep_no_af=bool(parse_bool("keep_no_af", merged.get("keep_no_af"))),
        view=_choice("view", merged.get("view"), VIEWS) or "variant",  # type: ignore[arg-type]
        carriers=_choice("carriers", merged.get("carriers"), CARRIERS),  # type: ignore[arg-type]
        zygosity=_choice("zygosity", merged.get("zygosity"), ZYGOSITIES),
        sample=str(sample)[:200] if sample else None,
        sort=sort,
        descending=descending,
    )


def query_params(query: VariantQuery) -> dict[str, str]:
    """The request parameters that give `query` back (for links: next page, export, detail)."""
    out: dict[str, str] = {}
    for name in ("gene", "consequence", "impact", "clinvar", "af_field", "zygosity", "sample"):
        if value := getattr(query, name):
            out[name] = str(value)
    if query.known is not None:
        out["known"] = "true" if query.known else "false"
    if query.max_af is not None:
        out["max_af"] = repr(query.max_af)
    if query.keep_no_af:
        out["keep_no_af"] = "true"
    if query.view != "variant":
        out["view"] = query.view
    if query.carriers is not None:
        out["carriers"] = query.carriers
    if query.sort != "position":
        out["sort"] = query.sort
    if query.descending:
        out["order"] = "desc"
    return out


# -- cursors and variant keys -------------------------------------------------------------


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"o": offset}).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int:
    """The offset in a cursor from `encode_cursor`; anything else is a 400, never a 500."""
    if not cursor:
        return 0
    invalid = Problem(400, "The cursor is not valid; start from the first page.",
                      title="Invalid cursor")
    try:
        data = json.loads(base64.b64decode(cursor + "=" * (-len(cursor) % 4), altchars=b"-_",
                                           validate=True))
    except (binascii.Error, ValueError):
        raise invalid from None
    # Exactly {"o": <int>} in range: a bool is an int to Python, and DuckDB takes 64-bit ints.
    if not isinstance(data, dict) or set(data) != {"o"}:
        raise invalid
    offset = data["o"]
    if type(offset) is not int or not 0 <= offset <= MAX_OFFSET:
        raise invalid
    return offset


def variant_key(chrom: str, pos: int, ref: str, alt: str) -> str:
    """gnomAD style: `21-10413612-G-A`."""
    return f"{chrom}-{pos}-{ref}-{alt}"


def parse_variant_key(key: str) -> tuple[str, int, str, str]:
    """(chrom, pos, ref, alt) of a variant key; a 404 for anything that is not one (a key
    that cannot exist in the job is as missing as one that does not)."""
    match = _VARIANT_KEY.match(key)
    if not match:
        raise Problem(404, "No such variant in this job.")
    return match["chrom"], int(match["pos"]), match["ref"], match["alt"]
