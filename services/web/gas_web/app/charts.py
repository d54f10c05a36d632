"""Summary charts as server-rendered SVG: no chart library, no script, readable without CSS.

Horizontal bars (labels can be long Sequence Ontology terms), sorted by count, with the counts
printed; colours come from CSS classes in app.css so the CSP needs no inline styles.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from markupsafe import Markup, escape

ROW_HEIGHT = 22
LABEL_WIDTH = 190
BAR_WIDTH = 260
VALUE_WIDTH = 60
IMPACT_ORDER = ("HIGH", "MODERATE", "LOW", "MODIFIER")


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    svg: Markup


def bar_chart(
    title: str,
    counts: Mapping[str, int | float],
    *,
    max_bars: int = 10,
    order: tuple[str, ...] | None = None,
    css_class: str = "bar",
) -> Markup:
    if order is not None:
        items = [(label, counts.get(label, 0)) for label in order]
    else:
        items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:max_bars]
    items = [(str(label), float(value)) for label, value in items]
    if not items:
        return Markup('<p class="text-body-secondary small">Nothing to show.</p>')
    peak = max((value for _, value in items), default=0) or 1
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    height = ROW_HEIGHT * len(items) + 4
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, value) in enumerate(items):
        y = index * ROW_HEIGHT + 2
        bar = max(BAR_WIDTH * value / peak, 1 if value else 0)
        shown = f"{value:,.0f}" if value == int(value) else f"{value:,.2f}"
        short = label if len(label) <= 28 else label[:27] + "…"
        cls = f"{css_class} {css_class}-{escape(label.lower())}"
        parts += [
            f'<g class="chart-row"><title>{escape(label)}: {shown}</title>',
            f'<text class="chart-label" x="{LABEL_WIDTH - 6}" y="{y + 15}" '
            f'text-anchor="end">{escape(short)}</text>',
            f'<rect class="{cls}" x="{LABEL_WIDTH}" y="{y + 3}" width="{bar:.1f}" '
            f'height="{ROW_HEIGHT - 6}" rx="2"></rect>',
            f'<text class="chart-value" x="{LABEL_WIDTH + bar + 4:.1f}" y="{y + 15}">'
            f"{shown}</text></g>",
        ]
    parts.append("</svg>")
    # Every interpolated label and title above went through escape().
    return Markup("".join(parts))  # noqa: S704


def summary_charts(summary: Mapping[str, object] | None) -> list[Chart]:
    """The charts of a job's summary (consequences, impacts, top genes), where present."""
    if not summary:
        return []
    charts: list[Chart] = []
    consequences = summary.get("consequences")
    if isinstance(consequences, Mapping) and consequences:
        charts.append(Chart("consequences", "Consequences",
                            bar_chart("Variants by most severe consequence", consequences)))
    impacts = summary.get("impacts")
    if isinstance(impacts, Mapping) and impacts:
        charts.append(Chart("impacts", "Impact",
                            bar_chart("Variants by impact", impacts, order=IMPACT_ORDER,
                                      css_class="impact")))
    genes = summary.get("genes")
    if isinstance(genes, Mapping) and genes:
        charts.append(Chart("genes", "Top genes",
                            bar_chart("Variants per gene (top 10)", genes, max_bars=10)))
    return charts
