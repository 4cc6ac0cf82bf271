"""Server-side SVG charts (no external CDN, no JavaScript): bars with threshold lines."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape


@dataclass(frozen=True)
class Threshold:
    value: float
    label: str
    color: str


def bar_chart(
    values: list[tuple[str, float | None]],
    *,
    title: str,
    max_value: float | None = None,
    thresholds: tuple[Threshold, ...] = (),
    percent: bool = False,
    width: int = 760,
    height: int = 220,
    color: str = "#417690",
    compare: list[float | None] | None = None,
    legend: tuple[str, str, str] = ("now", "gained since", "as measured then"),
    compare_color: str = "#c58a00",
    empty: str = "",
) -> str:
    """An SVG bar chart; None values are drawn as gaps ("no data").

    `compare`: a second value per label (same order; conversion as measured then), drawn as
    a mark on each bar, the part of the bar above the mark in `compare_color` (gained since);
    `legend` names the three (the bar, the part above the mark, the mark).
    `empty`: why there is nothing to draw, said in the chart instead of bars (the caller
    knows why: no sessions, no orphans, ...)."""
    # Long on purpose: the SVG is drawn in one pass, top to bottom, as it reads.
    left, right, top, bottom = 48, 12, 28, 36
    plot_w, plot_h = width - left - right, height - top - bottom
    numbers = [v for _, v in values if v is not None]
    top_value = (
        max_value if max_value is not None else max([*numbers, *(t.value for t in thresholds), 1.0])
    )
    top_value = top_value or 1.0

    def y(v: float) -> float:
        return top + plot_h - (v / top_value) * plot_h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img"'
        f' aria-label="{escape(title)}" class="chart" viewBox="0 0 {width} {height}">',
        f'<text x="{left}" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
        f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#999"/>',
    ]
    for frac in (0, 0.5, 1):
        tick = top_value * frac
        tick_label = f"{tick:.0%}" if percent else f"{tick:g}"
        parts.append(
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" font-size="10" text-anchor="end">{tick_label}</text>'
        )
    if empty:
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{top + plot_h / 2:.1f}" font-size="13"'
            f' text-anchor="middle" class="chart-empty">{escape(empty)}</text>'
        )
        values = []
    if compare is not None:
        legend_y = height - 6
        for k, (name, fill, h) in enumerate(
            zip(legend, (color, compare_color, "#333"), (8, 8, 3), strict=True)
        ):
            lx = left + 130 * k
            parts.append(
                f'<rect x="{lx}" y="{legend_y - 4 - h / 2}" width="10" height="{h}" fill="{fill}"/>'
                f'<text x="{lx + 14}" y="{legend_y}" font-size="10">{escape(name)}</text>'
            )
    n = max(len(values), 1)
    slot = plot_w / n
    bar_w = max(1.0, slot * 0.75)

    def shown(v: float | None) -> str:
        return "no data" if v is None else (f"{v:.1%}" if percent else f"{v:g}")

    for i, (label, v) in enumerate(values):
        x = left + i * slot + (slot - bar_w) / 2
        name = f"{label} {legend[0]}" if compare is not None else label
        if v is not None:
            parts.append(
                f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w:.1f}" height="{top + plot_h - y(v):.1f}"'
                f' fill="{color}"><title>{escape(name)}: {shown(v)}</title></rect>'
            )
        then = compare[i] if compare is not None else None
        if then is not None:
            # The figure then: a mark at its height, and the part of the bar above it (what
            # was gained since) in the compare colour, so a recovered outage stands out.
            if v is not None and v > then:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y(v):.1f}" width="{bar_w:.1f}" height="{y(then) - y(v):.1f}"'
                    f' fill="{compare_color}" class="gained"><title>{escape(label)}: {shown(then)}'
                    f" {escape(legend[2])}, {shown(v)} {escape(legend[0])}</title></rect>"
                )
            parts.append(
                f'<rect x="{x - 1:.1f}" y="{y(then) - 1.5:.1f}" width="{bar_w + 2:.1f}" height="3"'
                f' fill="#333" class="then"><title>{escape(label)} {escape(legend[2])}:'
                f" {shown(then)}</title></rect>"
            )
        if n <= 31 and (i % max(1, n // 10) == 0):
            parts.append(
                f'<text x="{x + bar_w / 2:.1f}" y="{top + plot_h + 14}" font-size="9"'
                f' text-anchor="middle">{escape(label)}</text>'
            )
    for t in thresholds:
        ty = y(t.value)
        parts.append(
            f'<line x1="{left}" y1="{ty:.1f}" x2="{left + plot_w}" y2="{ty:.1f}" stroke="{t.color}"'
            f' stroke-dasharray="5,3" class="threshold"/>'
            f'<text x="{left + plot_w - 2}" y="{ty - 3:.1f}" font-size="10" text-anchor="end" fill="{t.color}">'
            f"{escape(t.label)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


CONVERSION_THRESHOLDS = (
    Threshold(0.90, "90 % target", "#2b7a2b"),
    Threshold(0.85, "85 % alert", "#c58a00"),
    Threshold(0.75, "75 % page", "#ba2121"),
)
