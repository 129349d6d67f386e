"""Charts as server-rendered SVG: no script, no chart library, readable on any browser (and in a test)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

_FONT = 'font-family="system-ui, sans-serif" font-size="12"'
# Drawn at its own size, shrinking on a narrow screen: text stays the size of the page's.
_SIZE = 'style="max-width:100%;height:auto" role="img"'


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value * 100:.{digits}f} %"


def uplift_chart(variants: Sequence[Mapping[str, Any]], width: int = 640) -> str:
    """Conversion rate per variant (bars) and, for each compared with the holdout, uplift with its 95 % interval
    (a dot and whiskers around the zero line)."""
    rows = list(variants)
    if not rows:
        return ""
    row_h, top, label_w = 44, 28, 120
    plot_w = (width - label_w - 20) // 2
    height = top + row_h * len(rows) + 24
    rate_max = max([float(r.get("conversion_rate") or 0) for r in rows] + [0.01])
    spans = [abs(float(r.get(k) or 0)) for r in rows for k in ("uplift", "ci_low", "ci_high")]
    span = max([*spans, 0.01])
    rate_x, uplift_x = label_w, label_w + plot_w + 20
    zero = uplift_x + plot_w / 2
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" {_SIZE} '
        f'aria-label="A/B report" data-chart="uplift" {_FONT}>',
        f'<text x="{rate_x}" y="16" font-weight="600">conversion rate</text>',
        f'<text x="{uplift_x}" y="16" font-weight="600">uplift vs holdout (95 % CI)</text>',
        f'<line x1="{zero}" y1="{top - 6}" x2="{zero}" y2="{height - 18}" stroke="#888" stroke-dasharray="3 3"/>',
    ]
    for index, row in enumerate(rows):
        y = top + index * row_h
        name = escape(str(row.get("variant")))
        rate = float(row.get("conversion_rate") or 0)
        bar = plot_w * rate / rate_max
        holdout = row.get("uplift") is None
        parts.append(f'<text x="4" y="{y + 18}">{name}</text>')
        parts.append(
            f'<rect x="{rate_x}" y="{y + 6}" width="{bar:.1f}" height="16" '
            f'fill="{"#9aa3b5" if holdout else "#2456d6"}" data-variant="{name}"/>'
        )
        parts.append(f'<text x="{rate_x + bar + 4:.1f}" y="{y + 18}">{_pct(rate)}</text>')
        if holdout:
            parts.append(f'<text x="{uplift_x}" y="{y + 18}" fill="#5b6273">baseline</text>')
            continue
        scale = (plot_w / 2 - 8) / span
        low, high = float(row.get("ci_low") or 0), float(row.get("ci_high") or 0)
        uplift = float(row.get("uplift") or 0)
        colour = "#1b7f3b" if low > 0 else "#a3161a" if high < 0 else "#5b6273"
        parts.append(
            f'<line x1="{zero + low * scale:.1f}" y1="{y + 14}" x2="{zero + high * scale:.1f}" y2="{y + 14}" '
            f'stroke="{colour}" stroke-width="2" data-ci="{low:.4f},{high:.4f}"/>'
        )
        parts.append(f'<circle cx="{zero + uplift * scale:.1f}" cy="{y + 14}" r="5" fill="{colour}"/>')
        p_value = row.get("p_value")
        p_text = "–" if p_value is None else f"{float(p_value):.3f}"
        parts.append(
            f'<text x="{uplift_x}" y="{y + 38}" fill="#333">{_pct(uplift, 2)} '
            f"[{_pct(low, 2)}, {_pct(high, 2)}] p = {p_text}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    points: Sequence[tuple[str, float | None]], label: str, *, percent: bool = True, width: int = 640
) -> str:
    """One series over periods; gaps where a value is unknown."""
    known = [value for _, value in points if value is not None]
    if not points or not known:
        return ""
    height, left, bottom, top = 180, 48, 28, 16
    low, high = min([*known, 0.0]), max([*known, 0.0001])
    step = (width - left - 12) / max(len(points) - 1, 1)

    def y_of(value: float) -> float:
        return top + (height - top - bottom) * (1 - (value - low) / (high - low or 1))

    def shown(value: float) -> str:
        return f"{value * 100:.0f} %" if percent else f"{value:,.0f}"

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" {_SIZE} '
        f'aria-label="{escape(label)}" data-chart="line" {_FONT}>',
        f'<text x="{left}" y="12" font-weight="600">{escape(label)}</text>',
        f'<text x="2" y="{y_of(high) + 4:.1f}">{shown(high)}</text>',
        f'<text x="2" y="{y_of(low) + 4:.1f}">{shown(low)}</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 12}" y2="{height - bottom}" stroke="#c4c9d4"/>',
    ]
    segment: list[str] = []
    for index, (period, value) in enumerate(points):
        x = left + index * step
        if index % max(len(points) // 8, 1) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">{escape(period)}</text>')
        if value is None:
            if len(segment) > 1:
                parts.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="#2456d6" stroke-width="2"/>')
            segment = []
            continue
        segment.append(f"{x:.1f},{y_of(value):.1f}")
        parts.append(
            f'<circle cx="{x:.1f}" cy="{y_of(value):.1f}" r="3" fill="#2456d6"><title>{escape(period)}: '
            f"{shown(value)}</title></circle>"
        )
    if len(segment) > 1:
        parts.append(f'<polyline points="{" ".join(segment)}" fill="none" stroke="#2456d6" stroke-width="2"/>')
    parts.append("</svg>")
    return "".join(parts)


def heat_colour(share: float | None) -> str:
    """White (nobody active) to deep blue (everyone): the cohort matrix's cells."""
    if share is None:
        return "#f4f5f7"
    share = min(max(share, 0.0), 1.0)
    red, green, blue = (int(255 - (255 - end) * share) for end in (36, 86, 214))
    return f"#{red:02x}{green:02x}{blue:02x}"


def text_colour(share: float | None) -> str:
    return "#ffffff" if share is not None and share > 0.55 else "#1d2330"
