"""Server-rendered SVG of the leaderboard: agreement with its 95% interval per model, the human ceiling."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape


def agreement_svg(
    rows: Sequence[dict], *, ceiling: float | None, width: int = 720, compact: bool = False,
    key: str = "agreement", chance: float = 0.5, label: str = "Agreement", ceiling_key: str | None = None,
    ceiling_label: str = "human ceiling", id_prefix: str = "agreement-plot",
) -> str:
    """An accessible SVG (role="img", a <title>) with one horizontal interval per row that has a value at ``key``
    (its interval at ``key_low``/``key_high``).

    The axis spans 0.4-1.0 (widened to fit every interval, the ceiling and chance); the dotted line at ``chance``,
    labelled "chance" under the axis, is what a model scoring the two sets at random gets. With ``ceiling_key``,
    each row also gets a hollow marker at that value: the figure in the ceiling's units.
    """
    rows = [
        {**r, "agreement": r[key], "agreement_low": r.get(f"{key}_low"), "agreement_high": r.get(f"{key}_high"),
         "marker": r.get(ceiling_key) if ceiling_key else None}
        for r in rows if r.get(key) is not None
    ]
    row_h, top, left, right = 26, 50, 190, 30
    height = top + row_h * max(len(rows), 1) + 48
    values = [chance, 1.0] + [r["agreement_low"] or r["agreement"] for r in rows]
    values += [r["marker"] for r in rows if r["marker"] is not None]
    if ceiling is not None:
        values.append(ceiling)
    lo = min(0.4, min(values) - 0.02)
    hi = 1.0
    if compact:  # a phone: the model's name above its interval, so the axis takes the whole width
        height += (40 - row_h) * max(len(rows), 1)
        row_h, left, right = 40, 14, 18

    def x(v: float) -> float:
        return left + (width - left - right) * (v - lo) / (hi - lo)

    title_id = f"{id_prefix}-compact-title" if compact else f"{id_prefix}-title"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'aria-labelledby="{title_id}" class="agreement-plot{" agreement-plot-compact" if compact else ""}">',
        f'<title id="{title_id}">{escape(label)} per model, with 95% intervals; chance {chance:.3f}'
        + (f"; {escape(ceiling_label)} {ceiling:.3f}" if ceiling is not None else "") + "</title>",
        f'<text x="{left}" y="16" font-size="12" fill="#5a5a66">{escape(label)}; bars: 95% bootstrap interval'
        + ("; ○ against the ceiling's majorities" if ceiling_key else "") + "</text>"
        if not compact else
        f'<text x="{left}" y="16" font-size="12" fill="#5a5a66">{escape(label)} ↑; bars: 95% interval</text>',
    ]
    axis_y = top + row_h * max(len(rows), 1) + 4
    tick = lo - (lo % 0.1) + (0.1 if lo % 0.1 > 1e-9 else 0)
    while tick <= hi + 1e-9:
        parts.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top - 6}" y2="{axis_y}" stroke="#e4e4ea"/>')
        parts.append(
            f'<text x="{x(tick):.1f}" y="{axis_y + 16}" font-size="11" text-anchor="middle" '
            f'fill="#5a5a66">{tick:.1f}</text>'
        )
        tick += 0.1
    parts.append(
        f'<line x1="{x(chance):.1f}" x2="{x(chance):.1f}" y1="{top - 6}" y2="{axis_y}" stroke="#9a9aa6" '
        'stroke-dasharray="2 3" class="chance-line"/>'
        f'<text x="{x(chance):.1f}" y="{axis_y + 30}" font-size="11" text-anchor="middle" fill="#5a5a66">'
        + ("chance" if chance == 0.5 else f"chance {chance:.3f}") + "</text>"
    )
    for i, row in enumerate(rows):
        cy = top + row_h * i + row_h / 2
        low = row["agreement_low"] if row["agreement_low"] is not None else row["agreement"]
        high = row["agreement_high"] if row["agreement_high"] is not None else row["agreement"]
        color = "#8a5a00" if row.get("is_baseline") else "#1f4fd1"
        label = escape(row["model"]) + (" (baseline)" if row.get("is_baseline") else "")
        room = 46 if compact else 27  # characters that fit the label's space at 12 px
        shown = escape(_shorten(row["model"], room - (11 if row.get("is_baseline") else 0))) + (
            " (baseline)" if row.get("is_baseline") else "")
        name = (f'<text x="{left}" y="{cy - 9:.1f}" font-size="12">{shown}</text>' if compact else
                f'<text x="{left - 8}" y="{cy + 4:.1f}" font-size="12" text-anchor="end">{shown}</text>')
        if compact:
            cy += 6
        parts.append(
            name +
            f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{cy:.1f}" y2="{cy:.1f}" stroke="{color}" '
            'stroke-width="3"/>'
            f'<circle cx="{x(row["agreement"]):.1f}" cy="{cy:.1f}" r="5" fill="{color}">'
            f'<title>{label}: {row["agreement"]:.3f} [{low:.3f}, {high:.3f}]</title></circle>'
        )
        if row["marker"] is not None:
            parts.append(
                f'<circle cx="{x(row["marker"]):.1f}" cy="{cy:.1f}" r="4" fill="none" stroke="{color}" '
                f'stroke-width="1.5"><title>{label}: {row["marker"]:.3f} against the leave-one-out majorities'
                "</title></circle>"
            )
    if ceiling is not None:
        parts.append(
            f'<line x1="{x(ceiling):.1f}" x2="{x(ceiling):.1f}" y1="{top - 10}" y2="{axis_y}" stroke="#c0392b" '
            'stroke-width="2" stroke-dasharray="6 4"/>'
            f'<text x="{x(ceiling) - 4:.1f}" y="{top - 14}" font-size="11" fill="#c0392b" text-anchor="end">'
            f"{escape(ceiling_label)} {ceiling:.3f}</text>"
        )
    if not rows:
        parts.append(f'<text x="{left}" y="{top + 16}" font-size="13" fill="#5a5a66">No scores yet.</text>')
    parts.append("</svg>")
    return "".join(parts)


def _shorten(name: str, room: int) -> str:
    """``name`` cut to ``room`` characters with an ellipsis (the full name stays in the point's tooltip)."""
    return name if len(name) <= room else name[: max(room - 1, 1)] + "…"
