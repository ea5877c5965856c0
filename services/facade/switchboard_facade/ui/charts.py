"""Charts as inline SVG drawn on the server: no script, no chart library, nothing loaded from elsewhere.

Horizontal positions are percentages of the plot's width and vertical ones are
pixels of its fixed height, so a chart stretches to its card at 390 px as at
1280 px while its text keeps its size; the value axis is a narrow SVG of its
own beside the plot. Colours are CSS classes (``c0`` … ``c7``), so the page's
style sheet decides them and no inline style is needed (the Content-Security-Policy
forbids it). Every bucket has a tooltip (its ``<title>``) listing each series'
value, the chart has an accessible name summing it up, and the same numbers
are in a table under it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from markupsafe import Markup, escape

#: Plot height and the band under it for the bucket labels, pixels.
HEIGHT = 150
TOP = 8
LABEL_BAND = 22
AXIS_WIDTH = 58
#: Colours the style sheet defines (c0 … c7); the last one is for "Other".
TONES = 8
MAX_LABELS = 6


@dataclass(frozen=True, slots=True)
class Series:
    label: str
    #: One value per bucket; None where there is nothing to show (a line is broken there).
    values: Sequence[float | None]
    tone: int = 0


@dataclass(frozen=True, slots=True)
class Chart:
    title: str
    #: The buckets' full names (tooltips, the table) and their short labels under the plot.
    buckets: Sequence[str]
    ticks: Sequence[str]
    series: Sequence[Series]
    #: "bars" (stacked) or "lines".
    kind: str
    #: A value as text (tooltips, table) and as an axis label.
    value: Callable[[float], str]
    axis: Callable[[float], str]
    empty: str = "Nothing in this range."
    ident: str = ""
    note: str = ""
    legend: bool = field(default=True)


def scale(peak: float) -> tuple[float, list[float]]:
    """The axis top and its ticks (0 included): a 1-2-2.5-5 step that needs at most four intervals."""
    if peak <= 0 or not math.isfinite(peak):
        return 1.0, [0.0, 0.5, 1.0]
    raw = peak / 4
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    intervals = max(1, math.ceil(peak / step - 1e-9))
    return step * intervals, [step * i for i in range(intervals + 1)]


def _y(value: float, top: float) -> float:
    return TOP + (HEIGHT - TOP) * (1 - value / top)


def _pct(x: float) -> str:
    return f"{x:.3f}%"


def _stack_peak(series: Sequence[Series], buckets: int) -> float:
    return max((sum(s.values[i] or 0 for s in series) for i in range(buckets)), default=0.0)


def _line_peak(series: Sequence[Series]) -> float:
    return max((v for s in series for v in s.values if v is not None), default=0.0)


def _summary(chart: Chart) -> str:
    if chart.kind == "bars":
        totals = [sum(s.values[i] or 0 for s in chart.series) for i in range(len(chart.buckets))]
        if not any(totals):
            return chart.empty
        peak = max(range(len(totals)), key=totals.__getitem__)
        return (f"total {chart.value(sum(totals))}; highest {chart.value(totals[peak])} "
                f"({chart.buckets[peak]})")
    parts = []
    for s in chart.series:
        known = [v for v in s.values if v is not None]
        if known:
            parts.append(f"{s.label} from {chart.value(min(known))} to {chart.value(max(known))}")
    return "; ".join(parts) or chart.empty


def render(chart: Chart) -> Markup:
    n = len(chart.buckets)
    peak = _stack_peak(chart.series, n) if chart.kind == "bars" else _line_peak(chart.series)
    top, ticks = scale(peak)
    label = f"{chart.title}: {_summary(chart)}"
    out: list[str] = [f'<figure class="chart"{_id(chart.ident)}>',
                      f'<figcaption><span class="chart-title">{escape(chart.title)}</span>']
    if chart.note:
        out.append(f' <small>{escape(chart.note)}</small>')
    if chart.legend and chart.series:
        out.append(f'<ul class="legend {chart.kind}">')
        out.extend(f'<li><span class="swatch c{s.tone % TONES}" aria-hidden="true"></span>{escape(s.label)}</li>'
                   for s in chart.series)
        out.append("</ul>")
    out.append("</figcaption>")
    out.append('<div class="plot">')
    out.append(f'<svg class="yaxis" width="{AXIS_WIDTH}" height="{HEIGHT + LABEL_BAND}" aria-hidden="true">')
    out.extend(f'<text x="{AXIS_WIDTH - 6}" y="{_y(t, top) + 4:.1f}">{escape(chart.axis(t))}</text>' for t in ticks)
    out.append("</svg>")
    out.append(f'<svg class="area" width="100%" height="{HEIGHT + LABEL_BAND}" role="img" '
               f'aria-label="{escape(label)}">')
    out.extend(f'<line class="grid" x1="0" x2="100%" y1="{_y(t, top):.1f}" y2="{_y(t, top):.1f}"/>' for t in ticks)
    has_data = peak > 0
    if has_data and n:
        out.append(_bars(chart, top) if chart.kind == "bars" else _lines(chart, top))
    elif not has_data:
        out.append(f'<text class="empty" x="50%" y="{HEIGHT / 2:.0f}">{escape(chart.empty)}</text>')
    out.append(_labels(chart))
    out.append(_hits(chart))
    out.append("</svg></div>")
    out.append(_table(chart))
    out.append("</figure>")
    return Markup("".join(out))


def _id(ident: str) -> str:
    return f' id="{escape(ident)}"' if ident else ""


def _bars(chart: Chart, top: float) -> str:
    n = len(chart.buckets)
    slot = 100 / n
    gap = slot * (0.12 if n > 40 else 0.18)
    parts = []
    bottoms = [0.0] * n
    for s in chart.series:
        parts.append(f'<g class="c{s.tone % TONES}">')
        for i, value in enumerate(s.values):
            if not value or value <= 0:
                continue
            y_top, y_bottom = _y(bottoms[i] + value, top), _y(bottoms[i], top)
            height = max(1.0, y_bottom - y_top)
            parts.append(f'<rect x="{_pct(i * slot + gap)}" width="{_pct(slot - 2 * gap)}" '
                         f'y="{y_bottom - height:.1f}" height="{height:.1f}"/>')
            bottoms[i] += value
        parts.append("</g>")
    return "".join(parts)


def _lines(chart: Chart, top: float) -> str:
    n = len(chart.buckets)
    slot = 100 / n
    parts = []
    for s in chart.series:
        parts.append(f'<g class="c{s.tone % TONES}">')
        points = [(i, v) for i, v in enumerate(s.values) if v is not None]
        for (i, v), (j, w) in zip(points, points[1:], strict=False):
            if j == i + 1:
                parts.append(f'<line x1="{_pct((i + 0.5) * slot)}" y1="{_y(v, top):.1f}" '
                             f'x2="{_pct((j + 0.5) * slot)}" y2="{_y(w, top):.1f}"/>')
        parts.extend(f'<circle cx="{_pct((i + 0.5) * slot)}" cy="{_y(v, top):.1f}" r="2.5"/>' for i, v in points)
        parts.append("</g>")
    return "".join(parts)


def _labels(chart: Chart) -> str:
    n = len(chart.ticks)
    if not n:
        return ""
    every = max(1, math.ceil(n / MAX_LABELS))
    slot = 100 / n
    return "".join(f'<text class="tick" x="{_pct((i + 0.5) * slot)}" y="{HEIGHT + 16}">{escape(text)}</text>'
                   for i, text in enumerate(chart.ticks) if text and i % every == 0)


def _hits(chart: Chart) -> str:
    """A transparent column per bucket whose tooltip lists every series' value there."""
    n = len(chart.buckets)
    if not n:
        return ""
    slot = 100 / n
    parts = []
    for i, bucket in enumerate(chart.buckets):
        lines = [bucket] + [f"{s.label}: {chart.value(v) if (v := s.values[i]) is not None else '—'}"
                            for s in chart.series]
        parts.append(f'<rect class="hit" x="{_pct(i * slot)}" width="{_pct(slot)}" y="0" height="{HEIGHT}">'
                     f'<title>{escape(chr(10).join(lines))}</title></rect>')
    return "".join(parts)


def _table(chart: Chart) -> str:
    head = "".join(f"<th scope=\"col\">{escape(s.label)}</th>" for s in chart.series)
    rows = []
    for i, bucket in enumerate(chart.buckets):
        cells = "".join(f"<td>{escape(chart.value(v)) if (v := s.values[i]) is not None else '—'}</td>"
                        for s in chart.series)
        rows.append(f"<tr><th scope=\"row\">{escape(bucket)}</th>{cells}</tr>")
    return (f'<details class="chart-data"><summary>{escape(chart.title)} as a table</summary>'
            f'<div class="scroll"><table class="data compact"><thead><tr><th scope="col">Time (UTC)</th>{head}</tr>'
            f'</thead><tbody>{"".join(rows)}</tbody></table></div></details>')
