"""The variant table's API on results in the issue-13 layout (picked rows, AF fields,
genotypes): views, AF filtering, carriers and samples, rows, summary, detail, presets, and the
archived-job rules. Expectations are computed from the Python records the files were made of."""

from __future__ import annotations

import random
from typing import Any

import duckdb
import numpy as np
import pytest
from fastapi.testclient import TestClient

from gas_core.jobs import Job, JobRepository, StorageState
from gas_web.app.variants import orders, paging
from tests.services.web import variants_parquet as vp
from tests.services.web.conftest import MakeJob, bearer


@pytest.fixture(scope="module")
def multi(make_job: MakeJob) -> tuple[Job, list[vp.Variant]]:
    return make_job("multi-reader")


@pytest.fixture(scope="module")
def single(make_job: MakeJob) -> tuple[Job, list[vp.Variant]]:
    return make_job("single-reader", samples=1)


@pytest.fixture(scope="module")
def sites(make_job: MakeJob) -> tuple[Job, list[vp.Variant]]:
    return make_job("sites-reader", samples=0)


def get(client: TestClient, job: Job, path: str = "", **params: Any) -> Any:
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants{path}", params=params,
                          headers=bearer(job.user_id))
    assert response.status_code == 200, response.text
    return response.json()


def everything(client: TestClient, job: Job, **params: Any) -> list[dict[str, Any]]:
    return get(client, job, limit=500, **params)["items"]  # type: ignore[no-any-return]


def test_the_variant_view_shows_one_row_per_variant_and_the_transcript_view_every_row(
    client: TestClient, sites: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = sites
    by_variant = get(client, job, limit=500)
    assert by_variant["total"] == len(data)
    assert [r["variant_key"] for r in by_variant["items"]] == [v.key for v in data]
    assert all(r["picked"] for r in by_variant["items"])
    by_transcript = get(client, job, view="transcript", limit=500)
    assert by_transcript["total"] == sum(len(v.rows) for v in data)


def test_a_result_without_picked_rows_still_shows_one_row_per_variant(
    client: TestClient, make_job: MakeJob
) -> None:
    job, data = make_job("old-reader", samples=0, picked=False)
    items = everything(client, job)
    assert [r["variant_key"] for r in items] == [v.key for v in data]
    # The MANE Select row is each variant's row, as the annotator would pick it.
    assert items[0]["transcript"] == "TA1" and items[2]["transcript"] == "TB1"
    assert get(client, job, view="transcript")["total"] == sum(len(v.rows) for v in data)


def test_max_af_drops_variants_without_a_frequency_unless_kept(
    client: TestClient, sites: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = sites
    rare = [v.key for v in data if v.af_gnomade is not None and v.af_gnomade <= 0.01]
    assert [r["variant_key"] for r in everything(client, job, max_af=0.01)] == rare
    kept = [v.key for v in data if v.af_gnomade is None or v.af_gnomade <= 0.01]
    assert [r["variant_key"] for r in everything(client, job, max_af=0.01,
                                                 keep_no_af="true")] == kept
    assert len(kept) > len(rare)


def test_af_field_names_the_population_column_max_af_uses(
    client: TestClient, sites: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = sites
    items = everything(client, job, max_af=0.01, af_field="af_kg_global")
    expected = [v.key for v in data if v.af_kg_global is not None and v.af_kg_global <= 0.01]
    assert [r["variant_key"] for r in items] == expected
    assert [r["af"] for r in items] == [v.af_kg_global for v in data if v.key in expected]


@pytest.mark.parametrize("params", [
    {"sort": "allele_frequency"}, {"sort": "allele_frequency", "order": "desc"},
    {"sort": "impact", "view": "transcript"}, {"sort": "gene", "order": "desc"}, {},
    {"sample": "S1", "sort": "allele_frequency", "order": "desc", "carriers": "all"},
    {"order": "desc", "view": "transcript"}, {"sort": "consequence", "view": "transcript"},
    {"sort": "clinvar", "order": "desc", "carriers": "all"},
    {"gene": "GENEA,GENEB", "sort": "allele_frequency", "order": "desc", "view": "transcript"},
])
@pytest.mark.parametrize("top_n_rows", [0, 20])
def test_paging_through_any_sort_gives_every_row_once_in_order(
    client: TestClient, multi: tuple[Job, list[vp.Variant]], params: dict[str, str],
    top_n_rows: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A key sort's pages come from the job's sorted row order, read a slice at a time (here
    # of 5 rows, so pages start and end inside slices); file order's from per-row-range
    # counts or (near the start) a top-N, read from the end past the middle: the same rows
    # either way. Several ranges, and counted reads from the first page on (0) or from row
    # 20 on, in this small file.
    monkeypatch.setattr(orders, "SLICE_ROWS", 5)
    monkeypatch.setattr(paging, "BUCKET_ROWS", 16)
    monkeypatch.setattr(paging, "TOP_N_ROWS", top_n_rows)
    job, _ = multi
    client.app.state.variants.forget_totals()  # type: ignore[attr-defined]
    opened = get(client, job, limit=9, **params)  # a new filter: counted with its first page
    whole = everything(client, job, **params)
    assert opened["items"] == whole[:9] and opened["total"] == len(whole)
    collected: list[Any] = []
    cursor = None
    while True:
        page = get(client, job, limit=9, **params, **({"cursor": cursor} if cursor else {}))
        assert page["total"] == len(whole)  # counted with the page, for a deep first request
        collected += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [r["variant_key"] for r in collected] == [r["variant_key"] for r in whole]
    assert collected == whole
    # And that order is the sort's: by its value (NULLs last), ties in file order.
    in_file_order = everything(client, job, **{k: v for k, v in params.items()
                                               if k not in ("sort", "order")})
    assert _sorted(in_file_order, params) == whole


IMPACT_RANK = {"HIGH": 0, "MODERATE": 1, "LOW": 2, "MODIFIER": 3}


def _sorted(rows: list[dict[str, Any]], params: dict[str, str]) -> list[dict[str, Any]]:
    sort, descending = params.get("sort", "position"), params.get("order") == "desc"
    if sort == "position":
        return rows[::-1] if descending else rows

    def value(row: dict[str, Any]) -> Any:
        if sort == "impact":
            return IMPACT_RANK.get(row["impact"], 4)
        return row["af"] if sort == "allele_frequency" else row[sort]

    known = sorted((r for r in rows if value(r) is not None), key=value, reverse=descending)
    return known + [r for r in rows if value(r) is None]  # stable: ties stay in file order


def test_an_unknown_af_field_is_a_400_problem_naming_the_fields(
    client: TestClient, sites: tuple[Job, list[vp.Variant]]
) -> None:
    job, _ = sites
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants",
                          params={"max_af": 0.1, "af_field": "af_nowhere"},
                          headers=bearer(job.user_id))
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert "af_gnomade" in response.json()["detail"]


def test_fields_list_the_af_fields_and_samples(
    client: TestClient, multi: tuple[Job, list[vp.Variant]]
) -> None:
    job, _ = multi
    fields = get(client, job, "/fields")
    assert [f["column"] for f in fields["af_fields"]] == ["allele_frequency", "af_gnomade",
                                                          "af_kg_global"]
    assert fields["af_fields"][2]["label"] == "1000 Genomes global"
    assert fields["samples"] == vp.SAMPLES and fields["has_picked"]


def test_carrier_sites_are_the_default_and_all_sites_a_toggle(
    client: TestClient, multi: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = multi
    carried = [v.key for v in data if v.carriers > 0]
    assert 0 < len(carried) < len(data)
    assert [r["variant_key"] for r in everything(client, job)] == carried
    assert get(client, job, carriers="all")["total"] == len(data)


def test_a_selected_sample_shows_its_own_carrier_sites_and_zygosity(
    client: TestClient, multi: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = multi
    s3_sites = [v.key for v in data if vp.ZYGOSITY[v.gts[2]] in ("het", "hom_alt")]
    assert [r["variant_key"] for r in everything(client, job, sample="S3")] == s3_sites
    hom = [v.key for v in data if vp.ZYGOSITY[v.gts[0]] == "hom_alt"]
    assert [r["variant_key"] for r in everything(client, job, sample="S1",
                                                 zygosity="hom_alt")] == hom
    missing = [v.key for v in data if vp.ZYGOSITY[v.gts[2]] == "missing"]
    assert [r["variant_key"] for r in everything(client, job, sample="S3", carriers="all",
                                                 zygosity="missing")] == missing


@pytest.mark.parametrize(("params", "words"), [
    ({"zygosity": "het"}, "Choose a sample"),
    ({"sample": "NOBODY"}, "Unknown sample"),
])
def test_sample_filters_this_file_cannot_answer_are_400_problems(
    client: TestClient, multi: tuple[Job, list[vp.Variant]], params: dict[str, str], words: str
) -> None:
    job, _ = multi
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants", params=params,
                          headers=bearer(job.user_id))
    assert response.status_code == 400
    assert words in response.json()["detail"]


def test_multi_sample_rows_carry_carriers_and_per_sample_genotypes(
    client: TestClient, multi: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = multi
    row = everything(client, job)[0]
    first = data[0]
    assert row["variant_key"] == first.key and row["carriers"] == first.carriers
    assert [(g["sample"], g["gt"], g["zygosity"]) for g in row["genotypes"]] == [
        (name, gt, vp.ZYGOSITY[gt]) for name, gt in zip(vp.SAMPLES, first.gts, strict=True)]
    assert row["genotypes"][1]["depth"] == 31 and row["genotypes"][1]["gq"] == 98
    assert row["zygosity"] is None  # per sample only


def test_single_sample_rows_carry_zygosity_genotype_depth_and_gq(
    client: TestClient, single: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = single
    items = everything(client, job)
    assert [r["variant_key"] for r in items] == [v.key for v in data if v.carriers]
    assert {r["zygosity"] for r in items} <= {"het", "hom_alt"}
    assert items[0]["genotype"] == data[0].gts[0] and items[0]["depth"] == 30
    hom_ref = everything(client, job, zygosity="hom_ref", carriers="all")
    assert [r["variant_key"] for r in hom_ref] == [v.key for v in data
                                                   if v.gts[0] == "0/0"]


def test_comma_lists_match_any_listed_impact_or_consequence(
    client: TestClient, sites: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = sites
    items = everything(client, job, view="transcript", impact="HIGH,MODERATE")
    assert len(items) == sum(r["impact"] in ("HIGH", "MODERATE") for v in data for r in v.rows)
    lof = everything(client, job, consequence="stop_gained,frameshift_variant",
                     view="transcript")
    assert {r["consequence"] for r in lof} == {"stop_gained", "frameshift_variant"}


def test_user_text_is_never_sql(client: TestClient, sites: tuple[Job, list[vp.Variant]]) -> None:
    job, _ = sites
    assert get(client, job, gene="x' OR 1=1 --")["total"] == 0
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants",
                          params={"consequence": "x') OR true OR ('"}, headers=bearer(job.user_id))
    assert response.status_code == 400  # not a consequence term


# -- presets -----------------------------------------------------------------------------


def test_presets_are_listed_with_their_parameters(client: TestClient, user_id: str) -> None:
    response = client.get("/api/v1/presets", headers=bearer(user_id))
    assert response.status_code == 200
    presets = {p["id"]: p for p in response.json()}
    assert set(presets) == {"clinvar-plp", "rare-coding", "lof"}
    assert presets["rare-coding"]["params"] == {"impact": "HIGH,MODERATE", "max_af": "0.01"}
    assert "frameshift_variant" in presets["lof"]["params"]["consequence"]


def test_a_preset_filters_and_explicit_parameters_override_it(
    client: TestClient, sites: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = sites
    plp = [v.key for v in data if v.clinvar and "pathogenic" in v.clinvar]
    assert [r["variant_key"] for r in everything(client, job, preset="clinvar-plp")] == plp
    rare = everything(client, job, preset="rare-coding", view="transcript")
    assert rare and all(r["impact"] in ("HIGH", "MODERATE") and r["af"] <= 0.01 for r in rare)
    overridden = everything(client, job, preset="rare-coding", max_af=0.5, view="transcript")
    assert len(overridden) > len(rare)
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants", params={"preset": "nope"},
                          headers=bearer(job.user_id))
    assert response.status_code == 400


# -- summary -----------------------------------------------------------------------------


def test_the_summary_follows_the_filter_and_lists_every_consequence(
    client: TestClient, sites: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = sites
    summary = get(client, job, "/summary")
    picked = [(v, next(r for r in v.rows if r["picked"])) for v in data]
    assert summary["totals"] == {
        "variants": len(data), "rows": len(data),
        "high_impact": sum(r["impact"] == "HIGH" for _, r in picked),
        "clinvar_plp": sum(bool(v.clinvar and "pathogenic" in v.clinvar) for v in data)}
    terms = {c["term"]: c["count"] for c in summary["consequences"]}
    assert terms["frameshift_variant"] == 1 and terms["splice_donor_variant"] == 1
    assert "stop_gained" not in terms  # only on a transcript the variant view does not show
    assert [h["variant_key"] for h in summary["clinvar_plp"]] == ["1-100-A-G", "1-300-G-A"]
    assert summary["clinvar_plp"][0]["protein_change"] == "p.Arg5Gly"
    filtered = get(client, job, "/summary", gene="GENEB", view="transcript")
    assert filtered["totals"] == {"variants": 1, "rows": 3, "high_impact": 1, "clinvar_plp": 1}
    assert {c["term"] for c in filtered["consequences"]} == {
        "splice_donor_variant", "synonymous_variant", "intron_variant",
        "non_coding_transcript_variant"}
    assert filtered["genes"] == [{"gene": "GENEB", "count": 1}]


@pytest.fixture(scope="module")
def two_genes(make_job: MakeJob) -> tuple[Job, list[vp.Variant]]:
    """The sites, and variants lying in two genes (an intron of one, an antisense non-coding
    gene's exon), as csq reports APP and AP001442.2 on chr21."""
    data = vp.variants(samples=0)
    for at, pos in ((3, 350), (4, 360)):
        data.insert(at, vp.Variant("1", pos, "G", "T", [
            vp._row("GENEA", "TA1", "intron_variant", "MODIFIER", mane=True, picked=True),
            vp._row("GENEA", "TA2", "missense_variant", "MODERATE", protein="p.Gly7Val"),
            vp._row("GENED", "TD1", "non_coding_transcript_exon_variant", "MODIFIER",
                    biotype="lncRNA")]))
    return make_job("two-genes-reader", samples=0, data=data)


@pytest.mark.parametrize("params", [{}, {"clinvar": "pathogenic"}, {"impact": "HIGH,MODIFIER"},
                                    {"impact": "MODIFIER"}, {"consequence": "intron_variant"},
                                    {"known": "true"}, {"gene": "GENEA"}])
@pytest.mark.parametrize("result", ["sites", "two_genes"])
def test_the_transcript_view_summary_counts_each_variant_once_whatever_the_filter(
    client: TestClient, request: pytest.FixtureRequest, result: str, params: dict[str, str]
) -> None:
    # A filter on the variant's own fields is counted from its picked rows, one on its
    # transcripts' fields by distinct variants: the same counts either way, and a variant in
    # two genes is one variant in all and one in each gene.
    job, _ = request.getfixturevalue(result)
    rows = everything(client, job, view="transcript", **params)
    summary = get(client, job, "/summary", view="transcript", **params)
    assert summary["totals"]["rows"] == len(rows)
    assert summary["totals"]["variants"] == len({r["variant_key"] for r in rows})
    assert summary["totals"]["high_impact"] == len(
        {r["variant_key"] for r in rows if r["impact"] == "HIGH"})
    genes: dict[str, set[str]] = {}
    for r in rows:
        if r["gene"]:
            genes.setdefault(r["gene"], set()).add(r["variant_key"])
    assert {g["gene"]: g["count"] for g in summary["genes"]} == {
        gene: len(keys) for gene, keys in genes.items()}
    assert summary["totals"]["clinvar_plp"] == len(
        {r["variant_key"] for r in rows if r["clinvar"] and "pathogenic" in r["clinvar"]})


def test_paging_or_sorting_a_filtered_view_reuses_its_summary(
    client: TestClient, sites: tuple[Job, list[vp.Variant]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from gas_web.app.variants import store as store_module

    job, _ = sites
    calls: list[str] = []
    summarize = store_module.summary_module.summarize

    def counted(*args: Any) -> dict[str, Any]:
        calls.append(args[2].view)
        return summarize(*args)

    monkeypatch.setattr(store_module.summary_module, "summarize", counted)
    first = get(client, job, "/summary", impact="HIGH,LOW", view="transcript")
    again = get(client, job, "/summary", impact="HIGH,LOW", view="transcript",
                sort="gene", order="desc")
    assert again == first and calls == ["transcript"]
    get(client, job, "/summary", impact="HIGH,LOW")  # another view: its own summary
    assert calls == ["transcript", "variant"]


# -- detail ------------------------------------------------------------------------------


def test_variant_detail_has_every_transcript_af_genotype_and_link(
    client: TestClient, multi: tuple[Job, list[vp.Variant]]
) -> None:
    job, data = multi
    variant = data[2]  # 1-300-G-A: three transcripts, rs300
    detail = get(client, job, f"/{variant.key}")
    assert [t["transcript"] for t in detail["transcripts"]] == ["TB1", "TB2", "TB3"]
    assert [t["picked"] for t in detail["transcripts"]] == [True, False, False]
    assert {f["column"]: f["value"] for f in detail["frequencies"]} == {
        "af_gnomade": 0.2, "af_kg_global": None}
    assert detail["clinvar_plp"] and detail["known_ids"] == ["rs300"]
    assert [g["zygosity"] for g in detail["genotypes"]] == ["hom_alt", "het", "hom_ref"]
    links = {link["name"]: link["url"] for link in detail["links"]}
    assert links == {
        "dbsnp": "https://www.ncbi.nlm.nih.gov/snp/rs300",
        "clinvar": "https://www.ncbi.nlm.nih.gov/clinvar/?term=rs300",
        "ensembl": "https://www.ensembl.org/Homo_sapiens/Variation/Explore?v=rs300",
        "gnomad": "https://gnomad.broadinstitute.org/variant/1-300-G-A?dataset=gnomad_r4",
    }


def test_a_variant_without_an_rsid_links_to_ensembls_location_view(
    client: TestClient, multi: tuple[Job, list[vp.Variant]]
) -> None:
    job, _ = multi
    links = {link["name"]: link["url"] for link in get(client, job, "/1-400-T-C")["links"]}
    assert links["ensembl"] == "https://www.ensembl.org/Homo_sapiens/Location/View?r=1:400-400"
    assert "dbsnp" not in links


def test_a_variant_key_of_another_job_is_not_found_in_this_one(
    client: TestClient, multi: tuple[Job, list[vp.Variant]], make_job: MakeJob,
    other_user: str,
) -> None:
    job, _ = multi
    other, _ = make_job(other_user, data=[vp.Variant("7", 777, "G", "C", [
        vp._row("GENEX", "TX1", "missense_variant", "MODERATE", picked=True)],
        gts=["0/1", "0/0", "0/0"])])
    assert get(client, other, "/7-777-G-C")["variant_key"] == "7-777-G-C"
    for key in ("7-777-G-C", "1-300-G-T", "not-a-key"):
        response = client.get(f"/api/v1/jobs/{job.job_id}/variants/{key}",
                              headers=bearer(job.user_id))
        assert response.status_code == 404, key
        assert response.headers["content-type"] == "application/problem+json"
    # Another user's job is a 404 as everywhere, whatever the key.
    response = client.get(f"/api/v1/jobs/{other.job_id}/variants/7-777-G-C",
                          headers=bearer(job.user_id))
    assert response.status_code == 404
    assert "GENEX" not in response.text


# -- archived jobs -----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["", "/summary", "/export", "/fields", "/1-100-A-G"])
def test_the_variant_table_of_an_archived_job_is_a_409_saying_why(
    client: TestClient, make_job: MakeJob, repository: JobRepository, user_id: str, path: str,
) -> None:
    job, _ = make_job(user_id)
    archiving = repository.transition_storage(job, StorageState.ARCHIVING)
    repository.transition_storage(archiving, StorageState.ARCHIVED, archive_key="a/b")
    response = client.get(f"/api/v1/jobs/{job.job_id}/variants{path}", headers=bearer(user_id))
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["state"] == "archived"


def test_a_page_without_genotypes_is_the_same_rows_without_the_per_sample_list(
    client: TestClient, multi: tuple[Job, list[vp.Variant]]
) -> None:
    from gas_web.app.variants import query_from_params

    job, _ = multi
    store = client.app.state.variants  # type: ignore[attr-defined]
    query = query_from_params({"carriers": "all", "sort": "gene"})
    full = store.page(job, query, limit=500).items
    narrow = store.page(job, query, limit=500, genotypes=False).items
    assert full and all(row["genotypes"] for row in full)
    assert narrow == [{k: v for k, v in row.items() if k != "genotypes"} for row in full]


@pytest.mark.parametrize("rows", [1, 7, 8, 9, 20, 64, 1001])
def test_a_filters_rows_come_back_as_one_bit_per_row(rows: int) -> None:
    # The filter's scan answers with DuckDB's bitstring_agg cast to BLOB; its layout (a first
    # byte of rows % 8 bits) is read by orders.bits_of, so a change in DuckDB fails here.
    kept = sorted(random.Random(rows).sample(range(rows), max(1, rows // 3)))
    with duckdb.connect() as db:
        blob = db.execute(f"SELECT bitstring_agg(x, 0, {rows - 1})::BLOB FROM unnest(?) t(x)",
                          [kept]).fetchone()[0]
    assert np.flatnonzero(orders.bits_of(blob, rows)).tolist() == kept


@pytest.mark.parametrize("range_rows", [1, 7, 1000])
def test_a_sorted_row_order_is_a_stable_sort_of_the_ranks_placed_range_by_range(
    range_rows: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orders, "RANGE_ROWS", range_rows)
    ranks = np.array(random.Random(range_rows).choices(range(5), k=500), np.uint16)
    expected = np.argsort(ranks, kind="stable")
    assert orders._stable_order(ranks, 5).tolist() == expected.tolist()
