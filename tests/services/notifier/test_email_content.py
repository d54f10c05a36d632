"""What the emails say: the counts a researcher wants, labelled for people, never the
summary's internal keys; a failure's reason; a SYNTHETIC warning for demo results."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gas_core.events import JobFailed
from gas_core.jobs import Job, JobStatus
from gas_core.settings import Tier
from tests.services.archiver.lifecycle_support import Lifecycle

# The summary's shape as the engine writes it (compacted onto the job), with `counts`.
SUMMARY: dict[str, Any] = {
    "schema": 1,
    "input": {"file_name": "sample.vcf.gz", "format": "vcf.gz", "records": 1300, "samples": 1},
    "variants": {"input_records": 1300, "annotated": 1234, "split_from_multiallelic": 3,
                 "left_aligned": 0, "excluded_ref_mismatch": 0, "tsv_rows": 5678},
    "impacts": {"HIGH": 9, "MODERATE": 40, "LOW": 60, "MODIFIER": 1125},
    "genes_total": 77,
    "known": 1000,
    "novel": 234,
    "ti_tv": 2.1,
    "clinvar_pathogenic_count": 4,
    "reference": {"name": "gas-grch38", "version": "115", "assembly": "GRCh38",
                  "synthetic": False},
    "counts": {"variants": 1234, "high_impact_variants": 7, "clinvar_plp_variants": 3,
               "carrier_variants": 2},
}
DEMO_EXAMPLE = (Path(__file__).resolve().parents[3]
                / "services/web/gas_web/static/demo/example.vcf")
INTERNAL = ("tsv_rows", "Tsv rows", "Schema", "genes_total", "Genes total", "Ti tv",
            "clinvar_pathogenic_count", "{", "}")


def _completed_with(life: Lifecycle, user_id: str, summary: dict[str, Any]) -> Job:
    job = life.completed_job(user_id)
    return life.repository.update_job(life.job(job), summary=summary)


def _sent_parts(life: Lifecycle) -> tuple[str, str]:
    [email] = life.ses.sent
    body = email["Message"]["Body"]
    return body["Text"]["Data"], body["Html"]["Data"]


def test_the_completion_email_lists_variants_high_impact_and_clinvar_counts(
    life: Lifecycle, user_id: str
) -> None:
    job = _completed_with(life, user_id, SUMMARY)
    assert life.notify(life.completed_event(job)) == "sent"

    text, html = _sent_parts(life)
    assert "Variants annotated: 1,234" in text
    assert "HIGH-impact variants: 7" in text
    assert "ClinVar pathogenic or likely pathogenic variants: 3" in text
    assert "Variants carried by the sample(s): 2" in text
    for label, value in (("Variants annotated", "1,234"), ("HIGH-impact variants", "7"),
                         ("ClinVar pathogenic or likely pathogenic variants", "3")):
        assert f">{label}</td>" in html and f">{value}</td>" in html
    for key in INTERNAL:
        assert key not in text, key
    assert "tsv_rows" not in html and "Tsv rows" not in html and "Schema" not in html
    assert "SYNTHETIC" not in text and "SYNTHETIC" not in html


def test_the_completion_email_reads_summaries_written_before_counts_existed(
    life: Lifecycle, user_id: str
) -> None:
    older = {k: v for k, v in SUMMARY.items() if k != "counts"}
    job = _completed_with(life, user_id, older)
    life.notify(life.completed_event(job))

    text, _html = _sent_parts(life)
    assert "Variants annotated: 1,234" in text
    assert "HIGH-impact variants: 9" in text
    assert "ClinVar pathogenic or likely pathogenic variants: 4" in text
    assert "carried" not in text  # not known without counts


def test_results_on_the_synthetic_demo_reference_are_labelled_synthetic(
    life: Lifecycle, user_id: str
) -> None:
    demo = dict(SUMMARY, reference={"name": "gas-demo", "assembly": "demo", "synthetic": True})
    job = _completed_with(life, user_id, demo)
    life.notify(life.completed_event(job))

    text, html = _sent_parts(life)
    assert "SYNTHETIC" in text and "not for research" in text
    assert "SYNTHETIC" in html


def test_a_failed_job_email_gives_the_event_reason_when_the_job_has_none(
    life: Lifecycle, user_id: str
) -> None:
    job = life.completed_job(user_id)
    failed = life.repository.create_job(job.model_copy(update={
        "job_id": "01J00000000000000000000004", "status": JobStatus.FAILED, "error": None,
        "summary": None}))
    reason = "line 3: contig 'chr21' is not in the reference gas-demo"
    life.notify(JobFailed(user_id=user_id, job_id=failed.job_id, user_tier=Tier.FREE,
                          error=reason))

    text, html = _sent_parts(life)
    assert reason in text
    assert "contig &#39;chr21&#39; is not in the reference gas-demo" in html
    assert "could not be completed" in text


def test_the_email_of_a_real_engine_run_lists_its_counts_and_no_internal_keys(
    life: Lifecycle, user_id: str, tmp_path: Path
) -> None:
    # The engine on the demo example, its summary stored on the job as the annotator does.
    from gas_annotator.engine import annotate
    from gas_annotator.handler import compact_summary
    from gas_annotator.reference import build_demo_bundle

    build_demo_bundle(tmp_path / "demo")
    result = annotate(DEMO_EXAMPLE, reference_dir=tmp_path / "demo", out_dir=tmp_path / "out")
    summary = compact_summary(result.summary_data)
    job = _completed_with(life, user_id, summary)
    life.notify(life.completed_event(job))

    text, html = _sent_parts(life)
    counts = summary.get("counts") or {"variants": summary["variants"]["annotated"]}
    assert f"Variants annotated: {counts['variants']:,}" in text
    assert "HIGH-impact variants: " in text
    assert "ClinVar pathogenic or likely pathogenic variants: " in text
    assert "SYNTHETIC" in text and "SYNTHETIC" in html
    for key in INTERNAL:
        assert key not in text, key
