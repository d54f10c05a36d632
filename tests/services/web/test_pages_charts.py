"""The summary charts (server-rendered SVG): no label is cut, no severe consequence hidden."""

from __future__ import annotations

import re

import pytest

from gas_web.app.charts import bar_chart, consequence_chart, summary_charts, text_width

COMMON = {f"common_term_{i:02d}_variant": 1000 - i for i in range(12)}


def _labels(svg: str) -> list[str]:
    return re.findall(r'<text class="chart-label"[^>]*>([^<]*)</text>', svg)


def test_the_consequence_chart_keeps_every_high_and_moderate_term_past_the_top_ten() -> None:
    counts = {**COMMON, "stop_gained": 1, "splice_donor_variant": 2, "missense_variant": 3,
              "rare_modifier_variant": 1}
    labels = _labels(consequence_chart(counts))
    assert {"stop_gained", "splice_donor_variant", "missense_variant"} <= set(labels)
    assert "rare_modifier_variant" not in labels  # the cut still applies to the rest
    assert len(labels) == 10 + 3
    # Largest first, and the severe bars coloured by their impact.
    assert labels[-1] == "stop_gained"
    svg = consequence_chart(counts)
    assert 'class="impact impact-high"' in svg and 'class="impact impact-moderate"' in svg


@pytest.mark.parametrize("longest", ["non_coding_transcript_exon_variant", "MODERATE",
                                     "DEMOMINUS", "WWWWWWWWWWWW"])
def test_chart_labels_are_never_cut_and_get_a_column_as_wide_as_the_longest(
    longest: str
) -> None:
    svg = str(bar_chart("t", {longest: 5, "intron_variant": 9}))
    assert longest in _labels(svg) and "…" not in svg
    width = int(re.search(r'data-label-width="(\d+)"', svg).group(1))  # type: ignore[union-attr]
    # The label is anchored at the column's right edge: it starts at or right of x=0.
    x = float(re.search(r'<text class="chart-label" x="([\d.]+)"', svg).group(1))  # type: ignore[union-attr]
    assert x <= width and x - text_width(longest) >= 0


def test_upper_case_labels_are_measured_wider_than_lower_case() -> None:
    # "MODERATE" (measured 83 px at 15 px in Chromium here) is wider than "moderate".
    assert text_width("MODERATE") >= 83 > text_width("moderate")


def test_summary_charts_read_mappings_and_lists_of_counts() -> None:
    charts = summary_charts({
        "consequences": [{"consequence": "missense_variant", "count": 3}],
        "impacts": {"HIGH": 1, "MODERATE": 3},
        "genes": [{"gene": "APP", "count": 4}],
    })
    assert [c.key for c in charts] == ["consequences", "impacts", "genes"]
    assert "missense_variant" in charts[0].svg and "APP" in charts[2].svg
    assert summary_charts(None) == [] and summary_charts({}) == []


def test_a_filtered_summary_in_the_transcript_view_says_it_counts_rows() -> None:
    rows = summary_charts({"view": "transcript", "impacts": [{"impact": "HIGH", "count": 2}]})
    assert 'aria-label="Transcript rows by impact"' in rows[0].svg
    variants = summary_charts({"view": "variant", "impacts": [{"impact": "HIGH", "count": 2}]})
    assert 'aria-label="Variants by impact"' in variants[0].svg
