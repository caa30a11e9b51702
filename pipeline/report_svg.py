"""Inline SVG plots for the run report: no script, no external file, readable offline."""
from __future__ import annotations

import math
from html import escape

COLOURS = ("#3b6ea8", "#d08c2f", "#5a9a5a", "#a84a4a", "#7d5fa8", "#6b6b6b")
_FONT = 'font-family="system-ui, sans-serif" font-size="11"'


def _svg(width: int, height: int, label: str, body: list[str]) -> str:
    return (f'<svg class="plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'viewBox="0 0 {width} {height}" role="img" aria-label="{escape(label)}" {_FONT}>'
            f"<title>{escape(label)}</title>{''.join(body)}</svg>")


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:.3g}"


def legend(names: list[str]) -> str:
    return "".join(f'<span class="key"><i style="background:{COLOURS[i % len(COLOURS)]}"></i>{escape(n)}</span>'
                   for i, n in enumerate(names))


def bars(rows: list[tuple[str, list[float]]], label: str, series: list[str] | None = None,
         as_share: bool = False, width: int = 640) -> str:
    """Horizontal bars, one group per row, one bar per series; values as counts or shares."""
    count = max((len(v) for _, v in rows), default=1)
    bar, gap = 12, 8
    label_width = min(300, 8 + 7 * max((len(name) for name, _ in rows), default=4))
    plot_width = width - label_width - 70
    top = max((x for _, values in rows for x in values), default=0) or 1
    height = max(len(rows), 1) * (count * bar + gap) + 10
    body = []
    y = 5
    for name, values in rows:
        body.append(f'<text x="{label_width - 6}" y="{y + count * bar / 2 + 4}" text-anchor="end">'
                    f"{escape(name[:40])}</text>")
        for i, value in enumerate(values):
            length = plot_width * value / top
            shown = f"{value:.1%}" if as_share else _number(value)
            who = f"{series[i]}: " if series else ""
            body.append(f'<rect x="{label_width}" y="{y + i * bar}" width="{length:.1f}" height="{bar - 2}" '
                        f'fill="{COLOURS[i % len(COLOURS)]}"><title>{escape(name)}: {escape(who)}{shown}</title></rect>'
                        f'<text x="{label_width + length + 4:.1f}" y="{y + i * bar + bar - 3}">{shown}</text>')
        y += count * bar + gap
    return _svg(width, height, label, body)


def histogram(counts: list[int], label: str, low: float = 0.0, high: float = 1.0, marker: float | None = None,
              marker_label: str = "", width: int = 640, height: int = 180) -> str:
    """Vertical bars over [low, high], with an optional vertical marker (the threshold)."""
    left, bottom, top_pad = 46, 24, 10
    plot_w, plot_h = width - left - 10, height - bottom - top_pad
    peak = max(counts, default=0) or 1
    step = plot_w / max(len(counts), 1)
    body = [f'<line x1="{left}" y1="{top_pad + plot_h}" x2="{left + plot_w}" y2="{top_pad + plot_h}" stroke="#999"/>',
            f'<text x="{left - 6}" y="{top_pad + 8}" text-anchor="end">{_number(peak)}</text>',
            f'<text x="{left - 6}" y="{top_pad + plot_h}" text-anchor="end">0</text>']
    for i, count in enumerate(counts):
        h = plot_h * count / peak
        a, b = low + (high - low) * i / len(counts), low + (high - low) * (i + 1) / len(counts)
        body.append(f'<rect x="{left + i * step + 1:.1f}" y="{top_pad + plot_h - h:.1f}" width="{step - 2:.1f}" '
                    f'height="{h:.1f}" fill="{COLOURS[0]}"><title>{a:.2f}-{b:.2f}: {count:,}</title></rect>')
    for tick in range(0, 11, 2):
        x = left + plot_w * tick / 10
        body.append(f'<text x="{x:.1f}" y="{height - 6}" text-anchor="middle">{low + (high - low) * tick / 10:.1f}</text>')
    if marker is not None:
        x = left + plot_w * (marker - low) / (high - low)
        body.append(f'<line x1="{x:.1f}" y1="{top_pad}" x2="{x:.1f}" y2="{top_pad + plot_h}" stroke="{COLOURS[3]}" '
                    f'stroke-dasharray="4 3"/><text x="{x - 4:.1f}" y="{top_pad + 10}" text-anchor="end" '
                    f'fill="{COLOURS[3]}">{escape(marker_label)}</text>')
    return _svg(width, height, label, body)


def loglog_lines(series: dict[str, list[tuple[int, int]]], label: str, width: int = 640, height: int = 260) -> str:
    """Rank-frequency lines on log-log axes."""
    points = [p for values in series.values() for p in values if p[0] > 0 and p[1] > 0]
    if not points:
        return _svg(width, 40, label, ['<text x="10" y="20">no tokens</text>'])
    left, bottom, pad = 62, 28, 10
    plot_w, plot_h = width - left - pad, height - bottom - pad
    x_max = math.log10(max(x for x, _ in points)) or 1
    y_max = math.log10(max(y for _, y in points)) or 1

    def at(x: int, y: int) -> str:
        return f"{left + plot_w * math.log10(x) / x_max:.1f},{pad + plot_h - plot_h * math.log10(y) / y_max:.1f}"
    body = [f'<line x1="{left}" y1="{pad + plot_h}" x2="{left + plot_w}" y2="{pad + plot_h}" stroke="#999"/>',
            f'<line x1="{left}" y1="{pad}" x2="{left}" y2="{pad + plot_h}" stroke="#999"/>',
            f'<text x="{left + plot_w / 2}" y="{height - 4}" text-anchor="middle">word rank (log)</text>',
            f'<text x="10" y="{pad + plot_h / 2}" transform="rotate(-90 10 {pad + plot_h / 2})" '
            f'text-anchor="middle">count (log)</text>']
    for decade in range(0, int(x_max) + 1):
        x = left + plot_w * decade / x_max
        body.append(f'<text x="{x:.1f}" y="{pad + plot_h + 13}" text-anchor="middle">{10 ** decade:,}</text>')
    for decade in range(0, int(y_max) + 1):
        y = pad + plot_h - plot_h * decade / y_max
        body.append(f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end">{10 ** decade:,}</text>')
    for i, (name, values) in enumerate(series.items()):
        line = " ".join(at(x, y) for x, y in values if x > 0 and y > 0)
        body.append(f'<polyline points="{line}" fill="none" stroke="{COLOURS[i % len(COLOURS)]}" stroke-width="2">'
                    f"<title>{escape(name)}</title></polyline>")
    return _svg(width, height, label, body)


def interval(estimate: float, low: float, high: float, flagged: float, label: str, width: int = 640) -> str:
    """A share on a 0-100% axis: the estimate with its interval, and the raw flagged share."""
    left, plot_w, y = 20, width - 40, 30

    def x(v: float) -> float:
        return left + plot_w * min(max(v, 0.0), 1.0)
    body = [f'<line x1="{left}" y1="{y}" x2="{left + plot_w}" y2="{y}" stroke="#999"/>',
            *(f'<text x="{x(t / 10):.1f}" y="{y + 22}" text-anchor="middle">{t * 10}%</text>' for t in range(0, 11, 2)),
            f'<line x1="{x(low):.1f}" y1="{y}" x2="{x(high):.1f}" y2="{y}" stroke="{COLOURS[0]}" stroke-width="6">'
            f"<title>95% interval {low:.1%}-{high:.1%}</title></line>",
            f'<circle cx="{x(estimate):.1f}" cy="{y}" r="6" fill="{COLOURS[0]}"><title>estimate {estimate:.1%}'
            f"</title></circle>",
            f'<path d="M{x(flagged):.1f} {y - 14} l-5 -8 h10 z" fill="{COLOURS[1]}"><title>share at or above the '
            f"threshold {flagged:.1%}</title></path>"]
    return _svg(width, 60, label, body)
