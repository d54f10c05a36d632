"""Summary charts as server-rendered SVG: no chart library, no script, readable without CSS.

Horizontal bars (labels can be long Sequence Ontology terms), sorted by count, with the counts
printed; colours come from CSS classes in app.css so the CSP needs no inline styles.

Labels are never cut: the label column is as wide as the longest label needs (the SVG scales
to its card, so a wider label column only makes the bars shorter). The consequence chart keeps
every HIGH and MODERATE term whatever its count, so the rarest severe consequences (a handful
of stop_gained among thousands of intron variants) are never hidden by a top-N cut.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup, escape

ROW_HEIGHT = 22
FONT_PX = 15
# Advance widths (em) of DejaVu Sans, the widest of the common sans-serif fonts a page falls
# back to (Arial, Liberation Sans and Helvetica are narrower), so a label measured with them
# fits in any of those. Upper case is wider than lower case: "MODERATE" needs 5.7 em, not 4.9.
_EM = {
    **dict(zip("abcdefghijklmnopqrstuvwxyz",
               (.613, .635, .55, .635, .615, .352, .635, .634, .278, .278, .579, .278, .974,
                .634, .612, .635, .635, .411, .521, .392, .634, .592, .818, .592, .592, .525),
               strict=True)),
    **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               (.684, .686, .698, .77, .632, .575, .775, .752, .295, .295, .656, .563, .863,
                .748, .787, .603, .787, .695, .635, .611, .732, .684, .967, .685, .611, .685),
               strict=True)),
    **dict.fromkeys("0123456789", .636),
    "_": .5, "-": .361, ".": .318, " ": .318, ",": .318, "/": .337, "(": .39, ")": .39,
}
WIDEST_EM = 1.0  # any other character (an em is the widest a glyph usually is)
# 5 % more than measured: too wide only leaves white space, too narrow would clip.
SAFETY = 1.05
LABEL_PAD = 10
MIN_LABEL_WIDTH = 60
BAR_WIDTH = 260
VALUE_WIDTH = 70
IMPACT_ORDER = ("HIGH", "MODERATE", "LOW", "MODIFIER")
TOP_CONSEQUENCES = 10
TOP_GENES = 10

# Ensembl VEP's impact classes for the Sequence Ontology terms the engine writes (the web does
# not import the engine): the terms a top-N cut must never hide.
HIGH_TERMS = frozenset({
    "transcript_ablation", "splice_acceptor_variant", "splice_donor_variant", "stop_gained",
    "frameshift_variant", "stop_lost", "start_lost", "transcript_amplification",
})
MODERATE_TERMS = frozenset({
    "inframe_insertion", "inframe_deletion", "missense_variant", "protein_altering_variant",
})
LOW_TERMS = frozenset({
    "splice_region_variant", "start_retained_variant", "stop_retained_variant",
    "synonymous_variant", "splice_donor_5th_base_variant", "splice_donor_region_variant",
    "splice_polypyrimidine_tract_variant", "incomplete_terminal_codon_variant",
})


def impact_of_term(term: str) -> str:
    if term in HIGH_TERMS:
        return "HIGH"
    if term in MODERATE_TERMS:
        return "MODERATE"
    return "LOW" if term in LOW_TERMS else "MODIFIER"


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    svg: Markup


def text_width(text: str) -> float:
    """Pixels `text` takes at FONT_PX in the widest likely font (see _EM)."""
    return sum(_EM.get(char, WIDEST_EM) for char in text) * FONT_PX * SAFETY


def label_width(labels: list[str]) -> int:
    """Pixels the label column needs so that the longest label fits whole."""
    widest = max((text_width(label) for label in labels), default=0.0)
    return max(MIN_LABEL_WIDTH, math.ceil(widest) + LABEL_PAD)


def bar_chart(
    title: str,
    counts: Mapping[str, int | float],
    *,
    max_bars: int | None = 10,
    order: tuple[str, ...] | None = None,
    keep: frozenset[str] = frozenset(),
    css_class: str = "bar",
    classes: Mapping[str, str] | None = None,
) -> Markup:
    """Bars for `counts`: in `order` if given, else the `max_bars` largest (None: all) plus
    every label in `keep`, largest first. `classes` gives a label its own CSS class."""
    if order is not None:
        items = [(label, counts.get(label, 0)) for label in order]
    else:
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        shown = ranked if max_bars is None else ranked[:max_bars]
        chosen = {label for label, _ in shown} | {label for label in counts if label in keep}
        items = [(label, value) for label, value in ranked if label in chosen]
    items = [(str(label), float(value)) for label, value in items]
    if not items:
        return Markup('<p class="text-body-secondary small">Nothing to show.</p>')
    peak = max((value for _, value in items), default=0) or 1
    labels_px = label_width([label for label, _ in items])
    width = labels_px + BAR_WIDTH + VALUE_WIDTH
    height = ROW_HEIGHT * len(items) + 4
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" data-label-width="{labels_px}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, value) in enumerate(items):
        y = index * ROW_HEIGHT + 2
        bar = max(BAR_WIDTH * value / peak, 1 if value else 0)
        shown_value = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
        own = (classes or {}).get(label)
        cls = own if own else f"{css_class} {css_class}-{escape(label.lower())}"
        parts += [
            f'<g class="chart-row"><title>{escape(label)}: {shown_value}</title>',
            f'<text class="chart-label" x="{labels_px - 6}" y="{y + 15}" '
            f'text-anchor="end">{escape(label)}</text>',
            f'<rect class="{cls}" x="{labels_px}" y="{y + 3}" width="{bar:.1f}" '
            f'height="{ROW_HEIGHT - 6}" rx="2"></rect>',
            f'<text class="chart-value" x="{labels_px + bar + 4:.1f}" y="{y + 15}">'
            f"{shown_value}</text></g>",
        ]
    parts.append("</svg>")
    # Every interpolated label and title above went through escape().
    return Markup("".join(parts))  # noqa: S704


def consequence_chart(counts: Mapping[str, int | float],
                      title: str = "Variants by most severe consequence") -> Markup:
    """The top consequences plus every HIGH and MODERATE one, bars coloured by impact."""
    classes = {term: f"impact impact-{impact_of_term(term).lower()}" for term in counts}
    return bar_chart(title, counts, max_bars=TOP_CONSEQUENCES,
                     keep=HIGH_TERMS | MODERATE_TERMS, classes=classes)


def _counts(value: object) -> Mapping[str, int | float] | None:
    """A {label: count} mapping, or a list of {"name"/"term"/"gene", "count"} entries."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items() if isinstance(v, int | float)}
    if isinstance(value, list):
        out: dict[str, int | float] = {}
        for entry in value:
            if not isinstance(entry, Mapping):
                continue
            name = next((entry[k] for k in ("name", "term", "consequence", "impact", "gene")
                         if entry.get(k) is not None), None)
            count = entry.get("count", entry.get("variants"))
            if name is not None and isinstance(count, int | float):
                out[str(name)] = count
        return out
    return None


def summary_charts(summary: Mapping[str, Any] | None) -> list[Chart]:
    """The charts of a summary (consequences, impacts, top genes), where present: the job's
    whole-file summary or the filtered summary of the results browser (same keys)."""
    if not summary:
        return []
    charts: list[Chart] = []
    # A filtered summary says what it counts: in the transcript view, rows (its `view`).
    unit = "Transcript rows" if summary.get("view") == "transcript" else "Variants"
    consequence_title = ("Variants by most severe consequence" if "view" not in summary
                         else f"{unit} by consequence term")
    consequences = _counts(summary.get("consequences"))
    if consequences:
        charts.append(Chart("consequences", "Consequences",
                            consequence_chart(consequences, consequence_title)))
    impacts = _counts(summary.get("impacts"))
    if impacts:
        charts.append(Chart("impacts", "Impact",
                            bar_chart(f"{unit} by impact", impacts, order=IMPACT_ORDER,
                                      css_class="impact")))
    genes = _counts(summary.get("genes"))
    if genes:
        charts.append(Chart("genes", "Top genes",
                            bar_chart(f"Variants per gene (top {TOP_GENES})", genes,
                                      max_bars=TOP_GENES)))
    return charts
