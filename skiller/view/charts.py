"""Inline SVG bar charts: drawn at build time, so a page needs no script and no download."""
from __future__ import annotations

from typing import Callable

from skiller.view.markup import esc

_LABEL_W, _BAR_W, _VALUE_W, _ROW_H = 210, 240, 64, 22


def _short(label: str, limit: int = 32) -> str:
    return label if len(label) <= limit else label[:limit - 1] + "…"


def bar_chart(title: str, items: list[tuple[str, float]], scale: float | None = None,
              fmt: Callable[[float], str] = lambda v: f"{v:g}", empty: str = "no data yet") -> str:
    """Horizontal bars, one per (label, value), in the given order; `scale` is the value of a full bar
    (default: the largest value). Labels are untrusted text and are escaped."""
    if not items:
        return f'<div class="card"><h3>{esc(title)}</h3><p class="muted">{esc(empty)}</p></div>'
    top = scale if scale else max(v for _, v in items) or 1.0
    width = _LABEL_W + _BAR_W + _VALUE_W
    height = _ROW_H * len(items) + 6
    rows = []
    for i, (label, value) in enumerate(items):
        y = 3 + i * _ROW_H
        w = max(0.0, min(1.0, value / top)) * _BAR_W
        rows.append(
            f'<g><title>{esc(label)}: {esc(fmt(value))}</title>'
            f'<text x="{_LABEL_W - 6}" y="{y + 15}" text-anchor="end">{esc(_short(label))}</text>'
            f'<rect x="{_LABEL_W}" y="{y + 3}" width="{_BAR_W}" height="{_ROW_H - 6}" fill="#eef1f5"/>'
            f'<rect x="{_LABEL_W}" y="{y + 3}" width="{w:.1f}" height="{_ROW_H - 6}" fill="#4a7fd4"/>'
            f'<text x="{_LABEL_W + _BAR_W + 6}" y="{y + 15}">{esc(fmt(value))}</text></g>')
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{esc(title)}" width="{width}" '
           f'height="{height}" style="max-width:100%;height:auto" viewBox="0 0 {width} {height}">{"".join(rows)}</svg>')
    return f'<div class="card"><h3>{esc(title)}</h3>{svg}</div>'


def percent(value: float) -> str:
    return f"{100 * value:.1f}%"
