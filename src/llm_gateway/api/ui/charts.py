"""Charts as inline SVG, drawn on the server: no chart library, no script, nothing fetched.

A chart is a row of bars over labelled slots (minutes, hours, days, or groups); each bar has
a `<title>` (the browser's tooltip, read by screen readers) with its label and value. Labels
are escaped here, because the result is inserted into pages as markup.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from markupsafe import Markup, escape

WIDTH, HEIGHT, PAD_LEFT, PAD_BOTTOM, PAD_TOP = 640, 180, 74, 22, 10


def bars(
    points: Sequence[tuple[str, float]],
    title: str,
    fmt: Callable[[float], str] = lambda value: f"{value:,.0f}",
    tone: str = "a",
) -> Markup:
    """A bar chart of `points` ((label, value), in order), titled `title` for assistive tech."""
    top = max((value for _, value in points), default=0.0) or 1.0
    plot_w, plot_h = WIDTH - PAD_LEFT - 4, HEIGHT - PAD_BOTTOM - PAD_TOP
    slot = plot_w / max(len(points), 1)
    parts = [
        f'<svg class="chart tone-{escape(tone)}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" preserveAspectRatio="none">',
        f"<title>{escape(title)}</title>",
        f'<line class="axis" x1="{PAD_LEFT}" y1="{PAD_TOP + plot_h}" '
        f'x2="{WIDTH - 4}" y2="{PAD_TOP + plot_h}"/>',
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{PAD_TOP + 8}" '
        f'text-anchor="end">{escape(fmt(top))}</text>',
        f'<text class="tick" x="{PAD_LEFT - 6}" y="{PAD_TOP + plot_h}" text-anchor="end">0</text>',
    ]
    for index, (label, value) in enumerate(points):
        height = plot_h * (value / top) if value > 0 else 0.0
        x = PAD_LEFT + index * slot + slot * 0.1
        y = PAD_TOP + plot_h - height
        parts.append(
            f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{max(slot * 0.8, 0.5):.1f}" '
            f'height="{height:.1f}"><title>{escape(label)}: {escape(fmt(value))}</title></rect>'
        )
    for index in sorted({0, len(points) // 2, len(points) - 1} if points else set()):
        x = PAD_LEFT + index * slot + slot / 2
        anchor = "start" if index == 0 else "end" if index == len(points) - 1 else "middle"
        parts.append(
            f'<text class="tick" x="{x:.1f}" y="{HEIGHT - 6}" text-anchor="{anchor}">'
            f"{escape(points[index][0])}</text>"
        )
    parts.append("</svg>")
    return Markup("".join(parts))


def spans(segments: Sequence[tuple[str, float, float, str]], total: float, title: str) -> Markup:
    """A timeline: each (label, start, length, outcome) a bar on its own row, from 0 to `total`
    seconds (a request's attempts and their time to first token)."""
    total = total or 1.0
    row, label_w = 26, 180
    height = row * max(len(segments), 1) + 24
    plot_w = WIDTH - label_w - 8
    parts = [
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
    ]
    for index, (label, start, length, outcome) in enumerate(segments):
        y = index * row + 4
        x = label_w + plot_w * min(start / total, 1.0)
        w = max(plot_w * min(length / total, 1.0), 2.0)
        parts.append(
            f'<text class="tick" x="{label_w - 8}" y="{y + 15}" '
            f'text-anchor="end">{escape(label[:28])}</text>'
            f'<rect class="span {escape(outcome)}" x="{x:.1f}" y="{y}" '
            f'width="{w:.1f}" height="{row - 8}"><title>{escape(label)}: '
            f"{start * 1000:.1f} ms + {length * 1000:.1f} ms ({escape(outcome)})</title></rect>"
        )
    axis_y = row * max(len(segments), 1) + 18
    parts.append(
        f'<text class="tick" x="{label_w}" y="{axis_y}">0 ms</text>'
        f'<text class="tick" x="{WIDTH - 8}" y="{axis_y}" '
        f'text-anchor="end">{total * 1000:,.1f} ms</text></svg>'
    )
    return Markup("".join(parts))
