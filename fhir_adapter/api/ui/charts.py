"""Line charts drawn on the server as inline SVG (no script, no library): each point a link to
its value, amended values drawn as squares, withdrawn ones hollow and left out of the line."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from html import escape

__all__ = ["Band", "Chart", "Line", "Point", "Series", "bar_chart", "line_chart"]

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 56, 12, 12, 34
#: colour-blind-safe series colours (Okabe-Ito)
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00")


@dataclass(frozen=True, slots=True)
class Point:
    x: float  # days from Day 0
    y: float
    href: str
    label: str
    status: str = "final"


@dataclass(slots=True)
class Series:
    name: str
    points: list[Point] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Line:
    """A horizontal threshold."""

    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Band:
    """A shaded horizontal band (e.g. a CTCAE grade)."""

    low: float
    high: float
    label: str
    colour: str


@dataclass(slots=True)
class Chart:
    title: str
    unit: str
    series: list[Series]
    lines: list[Line] = field(default_factory=list)
    bands: list[Band] = field(default_factory=list)

    @property
    def points(self) -> int:
        return sum(len(s.points) for s in self.series)


def _num(value: float) -> str:
    return f"{value:.1f}"


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values (1, 2 or 5 times a power of ten apart) covering [low, high]."""
    raw = (high - low or 1.0) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = (round(first + i * step, 10) for i in range(int((high - first) / step) + 1))
    return [t for t in ticks if low <= t <= high]


def line_chart(chart: Chart) -> str:
    """The chart as an ``<svg>`` element with a title and a text alternative."""
    xs = [p.x for s in chart.series for p in s.points] or [0.0, 1.0]
    ys = [p.y for s in chart.series for p in s.points] or [0.0, 1.0]
    ys += [line.y for line in chart.lines]
    x0, x1 = min(min(xs), 0.0), max(xs) + 5
    y0, y1 = min(0.0, min(ys)), max(ys) * 1.1 or 1.0
    if chart.bands:
        y1 = max(y1, min(b.high for b in chart.bands if b.high > max(ys)) if any(
            b.high > max(ys) for b in chart.bands) else y1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * plot_w

    def sy(y: float) -> float:
        return TOP + plot_h - (min(y, y1) - y0) / (y1 - y0) * plot_h

    title = escape(chart.title)
    parts = [f'<svg class="chart" role="img" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" aria-labelledby="t-{id(chart)}">',
             f'<title id="t-{id(chart)}">{title}: {chart.points} values</title>']
    for band in chart.bands:
        if band.low >= y1:
            continue
        top, bottom = sy(min(band.high, y1)), sy(band.low)
        parts.append(f'<rect class="band" x="{LEFT}" y="{_num(top)}" width="{plot_w}" '
                     f'height="{_num(bottom - top)}" fill="{band.colour}" opacity="0.18">'
                     f'<title>{escape(band.label)}</title></rect>')
        parts.append(f'<text x="{WIDTH - RIGHT - 4}" y="{_num(top + 11)}" text-anchor="end" '
                     f'class="band-label">{escape(band.label)}</text>')
    for tick in _ticks(y0, y1):
        y = sy(tick)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y)}" y2="{_num(y)}" '
                     'class="grid"/>')
        parts.append(f'<text x="{LEFT - 6}" y="{_num(y + 4)}" text-anchor="end">{tick:g}</text>')
    for tick in _ticks(x0, x1, 8):
        x = sx(tick)
        parts.append(f'<text x="{_num(x)}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle">'
                     f'{tick:g}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2}" y="{HEIGHT - 4}" text-anchor="middle">'
                 'days from Day 0</text>')
    parts.append(f'<text x="12" y="{TOP + plot_h / 2}" transform="rotate(-90 12 '
                 f'{TOP + plot_h / 2})" text-anchor="middle">{escape(chart.unit)}</text>')
    parts.append(f'<line x1="{_num(sx(0))}" x2="{_num(sx(0))}" y1="{TOP}" y2="{TOP + plot_h}" '
                 'class="day0"><title>Day 0</title></line>')
    for line in chart.lines:
        y = sy(line.y)
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{_num(y)}" y2="{_num(y)}" '
                     f'class="threshold"><title>{escape(line.label)}</title></line>')
        parts.append(f'<text x="{LEFT + 4}" y="{_num(y - 4)}" class="threshold-label">'
                     f'{escape(line.label)}</text>')
    for i, series in enumerate(chart.series):
        colour = COLOURS[i % len(COLOURS)]
        counted = [p for p in series.points if p.status != "entered-in-error"]
        if len(counted) > 1:
            path = " ".join(f"{_num(sx(p.x))},{_num(sy(p.y))}" for p in counted)
            parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" '
                         'stroke-width="1.5"/>')
        for p in series.points:
            parts.append(_marker(p, sx(p.x), sy(p.y), colour, series.name))
    parts.append("</svg>")
    return "".join(parts)


def _marker(p: Point, x: float, y: float, colour: str, name: str) -> str:
    label = escape(f"{name}: {p.label} ({p.status})")
    if p.status == "amended" or p.status == "corrected":
        shape = (f'<rect x="{_num(x - 4)}" y="{_num(y - 4)}" width="8" height="8" '
                 f'fill="{colour}"/>')
    elif p.status == "entered-in-error":
        shape = (f'<circle cx="{_num(x)}" cy="{_num(y)}" r="4.5" fill="white" '
                 f'stroke="{colour}" stroke-width="1.5"/><path d="M{_num(x - 3)},{_num(y - 3)}'
                 f' l6,6 m0,-6 l-6,6" stroke="{colour}"/>')
    else:
        shape = f'<circle cx="{_num(x)}" cy="{_num(y)}" r="4" fill="{colour}"/>'
    return (f'<a class="point" href="{escape(p.href)}" data-status="{escape(p.status)}" '
            f'aria-label="{label}"><title>{label}</title>{shape}</a>')


def bar_chart(title: str, counts: Sequence[tuple[str, int]]) -> str:
    """Small horizontal bars, one per (label, count)."""
    row, label_w, bar_w = 22, 150, 220
    most = max((c for _, c in counts), default=0) or 1
    height = row * len(counts) + 8
    parts = [f'<svg class="bars" role="img" viewBox="0 0 {label_w + bar_w + 40} {height}" '
             f'width="{label_w + bar_w + 40}" height="{height}"><title>{escape(title)}</title>']
    for i, (label, count) in enumerate(counts):
        y = 4 + i * row
        width = bar_w * count / most
        parts.append(f'<text x="{label_w - 6}" y="{y + 14}" text-anchor="end">'
                     f'{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y + 3}" width="{_num(width)}" height="14" '
                     f'fill="{COLOURS[i % len(COLOURS)]}"/>')
        parts.append(f'<text x="{_num(label_w + width + 4)}" y="{y + 14}">{count}</text>')
    parts.append("</svg>")
    return "".join(parts)
