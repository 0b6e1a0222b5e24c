"""Server-rendered SVG of a campaign's progress for the staff monitoring page (no script, no style attribute)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from annotate.selectors import VoteBucket


def _nice_max(value: int) -> int:
    """The smallest 1/2/5 x 10^k at or above ``value`` (at least 1)."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if m * step >= value:
                return m * step
        step *= 10


def progress_svg(buckets: Sequence[VoteBucket], *, unit: str, wanted: int, width: int = 720, height: int = 240) -> str:
    """Votes per ``unit`` as bars (left axis) and the cumulative total as a line (right axis, up to ``wanted``
    votes, the campaign's target, drawn dashed). An accessible SVG: role="img" with a <title> that states the
    totals; each bar has its own <title>."""
    left, right, top, bottom = 44, 52, 24, 40
    plot_w, plot_h = width - left - right, height - top - bottom
    total = buckets[-1].cumulative if buckets else 0
    title = f"Votes per {unit} and cumulative votes: {total} of {wanted} wanted" + (
        f", {len(buckets)} {unit}s from {buckets[0].start:%Y-%m-%d %H:%M}" if buckets else ", no vote yet"
    )
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="progress-plot-title" class="mon-plot">',
        f'<title id="progress-plot-title">{escape(title)}</title>',
    ]
    if not buckets:
        parts.append(
            f'<text x="{width / 2:.0f}" y="{height / 2:.0f}" text-anchor="middle" font-size="14" fill="#5a5a66">'
            "No vote yet</text></svg>"
        )
        return "".join(parts)
    bar_max = _nice_max(max(b.votes for b in buckets))
    cum_max = _nice_max(max(total, wanted, 1))
    n = len(buckets)
    slot = plot_w / n
    base = top + plot_h

    def y_bar(v: float) -> float:
        return base - plot_h * v / bar_max

    def y_cum(v: float) -> float:
        return base - plot_h * v / cum_max

    for frac in (0, 0.5, 1):
        y = base - plot_h * frac
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e4e4ea"/>')
        parts.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="11" text-anchor="end" fill="#1f4fd1">'
            f"{bar_max * frac:g}</text>"
            f'<text x="{width - right + 6}" y="{y + 4:.1f}" font-size="11" fill="#0a7d32">{cum_max * frac:g}</text>'
        )
    fmt = {"minute": "%H:%M", "10 minutes": "%H:%M", "hour": "%m-%d %H:%M"}.get(unit, "%Y-%m-%d")
    for i, b in enumerate(buckets):
        h = base - y_bar(b.votes)
        parts.append(
            f'<rect x="{left + i * slot + slot * 0.1:.1f}" y="{y_bar(b.votes):.1f}" width="{max(slot * 0.8, 1):.1f}" '
            f'height="{h:.1f}" fill="#9db4f0"><title>{b.start:{fmt}}: {b.votes} vote(s), '
            f"{b.cumulative} in all</title></rect>"
        )
    labels = sorted({0, n - 1} | set(range(0, n, max(1, n // 4))))
    for i in labels:
        if i != n - 1 and n - 1 - i < max(1, n // 8):
            continue  # keep the last label clear of its neighbour
        parts.append(
            f'<text x="{left + (i + 0.5) * slot:.1f}" y="{base + 16}" font-size="11" text-anchor="middle" '
            f'fill="#5a5a66">{buckets[i].start:{fmt}}</text>'
        )
    points = " ".join(f"{left + (i + 1) * slot:.1f},{y_cum(b.cumulative):.1f}" for i, b in enumerate(buckets))
    parts.append(f'<polyline points="{left:.1f},{base:.1f} {points}" fill="none" stroke="#0a7d32" stroke-width="2.5"/>')
    if wanted:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y_cum(wanted):.1f}" y2="{y_cum(wanted):.1f}" '
            f'stroke="#0a7d32" stroke-dasharray="4 4"/>'
            f'<text x="{width - right - 4}" y="{y_cum(wanted) - 5:.1f}" font-size="11" text-anchor="end" '
            f'fill="#0a7d32">wanted {wanted}</text>'
        )
    parts.append(
        f'<text x="{left}" y="14" font-size="12" fill="#1f4fd1">bars: votes per {unit}</text>'
        f'<text x="{width - right}" y="14" font-size="12" text-anchor="end" fill="#0a7d32">line: cumulative</text>'
    )
    parts.append("</svg>")
    return "".join(parts)
