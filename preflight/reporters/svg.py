"""Small inline SVG charts for the HTML report: lines, min/max bands, markers. No JavaScript, no fonts
or files from elsewhere: the page must open on an air-gapped login node.

Every label goes through ``esc`` (the text may come from a log). Coordinates are rounded to one
decimal so that a chart of a few thousand points stays a few tens of KiB.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

from preflight.reporters import clean
from preflight.units import duration

W, H = 440, 150  # viewBox of one chart
PAD_L, PAD_R, PAD_T, PAD_B = 52, 10, 20, 22


def esc(text: object) -> str:
    return html.escape(clean(text), quote=True)


@dataclass
class Line:
    xs: list[float]
    ys: list[float]
    css: str  # class name: the page's stylesheet gives the colour
    lo: list[float] | None = None  # a min/max band drawn under the line
    hi: list[float] | None = None
    dots: bool = False  # points instead of a line (sparse series: validation)


@dataclass
class Marker:
    x: float
    css: str
    label: str = ""


@dataclass
class Chart:
    title: str
    lines: list[Line] = field(default_factory=list)
    markers: list[Marker] = field(default_factory=list)
    x_max: float | None = None  # the planned last step: a run that stopped early ends mid-axis
    unit: str = ""
    empty: str = "no points logged"


def _step(v: float) -> str:
    return f"{v / 1e3:.1f}k".replace(".0k", "k") if abs(v) >= 1e4 else f"{v:.0f}"


def _fmt(v: float, span: float = 0.0) -> str:
    """A tick label with as many decimals as the axis span needs (1.0012 vs 1.0018, not 1 and 1)."""
    scale, suffix = (1e6, "M") if abs(v) >= 1e6 else (1e3, "k") if abs(v) >= 1e4 else (1.0, "")
    step = span / scale / 2 if span > 0 else abs(v / scale) or 1.0
    decimals = max(0, min(6, 1 - math.floor(math.log10(step)))) if step > 0 else 0
    return f"{v / scale:.{decimals}f}{suffix}"


def render(chart: Chart, css: str = "chart") -> str:
    ys = [y for ln in chart.lines for y in (ln.lo or []) + (ln.hi or []) + ln.ys if math.isfinite(y)]
    xs = [x for ln in chart.lines for x in ln.xs]
    head = (
        f'<svg class="{css}" viewBox="0 0 {W} {H}" role="img" aria-label="{esc(chart.title)}" '
        f'xmlns="http://www.w3.org/2000/svg"><title>{esc(chart.title)}</title>'
        f'<text class="ct" x="{PAD_L}" y="13">{esc(chart.title)}</text>'
    )
    if not ys or not xs:
        return (
            head + f'<text class="empty" x="{W / 2}" y="{H / 2}" text-anchor="middle">{esc(chart.empty)}</text></svg>'
        )
    x0 = min(0.0, min(xs))
    x1 = max([*xs, chart.x_max or 0, *(m.x for m in chart.markers)])
    if x1 <= x0:
        x1 = x0 + 1
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-12:
        y0, y1 = y0 - (abs(y0) * 0.05 or 0.5), y1 + (abs(y1) * 0.05 or 0.5)
    pad = (y1 - y0) * 0.05
    y0, y1 = y0 - pad, y1 + pad
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def px(x: float) -> float:
        return round(PAD_L + (x - x0) / (x1 - x0) * pw, 1)

    def py(y: float) -> float:
        return round(PAD_T + (y1 - y) / (y1 - y0) * ph, 1)

    def pts(xs: list[float], ys: list[float]) -> str:  # "x,y x,y ...": the bulk of a page, one format call a point
        sx, sy = pw / (x1 - x0), ph / (y1 - y0)
        return " ".join(
            map("{:.1f},{:.1f}".format, [PAD_L + (x - x0) * sx for x in xs], [PAD_T + (y1 - y) * sy for y in ys])
        )

    out = [head, f'<rect class="plot" x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}"/>']
    for frac in (0.0, 0.5, 1.0):  # y ticks: bottom, middle, top
        v = y0 + pad + (y1 - y0 - 2 * pad) * frac
        out.append(
            f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{py(v)}" y2="{py(v)}"/>'
            f'<text class="tick" x="{PAD_L - 4}" y="{py(v) + 3}" text-anchor="end">{esc(_fmt(v, y1 - y0 - 2 * pad))}</text>'
        )
    for v, anchor in ((x0, "start"), (x1, "end")):
        out.append(f'<text class="tick" x="{px(v)}" y="{H - 6}" text-anchor="{anchor}">{esc(_step(v))}</text>')
    out.append(f'<text class="tick" x="{PAD_L + pw / 2}" y="{H - 6}" text-anchor="middle">step{esc(chart.unit)}</text>')
    for m in chart.markers:
        out.append(
            f'<line class="{esc(m.css)}" x1="{px(m.x)}" x2="{px(m.x)}" y1="{PAD_T}" y2="{PAD_T + ph}">'
            f"<title>{esc(m.label)}</title></line>"
        )
        if m.label and m.css in ("stop", "nan"):  # where a phase stopped or went NaN: said in words too
            anchor = "end" if px(m.x) > PAD_L + pw * 0.6 else "start"
            dx = -3 if anchor == "end" else 3
            y = PAD_T + (10 if m.css == "stop" else 22)
            out.append(
                f'<text class="stoplabel" x="{px(m.x) + dx}" y="{y}" text-anchor="{anchor}">{esc(m.label)}</text>'
            )
    for ln in chart.lines:
        if ln.lo is not None and ln.hi is not None and len(ln.xs) > 1:
            out.append(f'<polygon class="band {ln.css}" points="{pts(ln.xs, ln.hi)} {pts(ln.xs[::-1], ln.lo[::-1])}"/>')
        finite = [(x, y) for x, y in zip(ln.xs, ln.ys, strict=False) if math.isfinite(y)]
        if ln.dots or len(finite) == 1:
            out += [f'<circle class="{ln.css}" cx="{px(x)}" cy="{py(y)}" r="2.2"/>' for x, y in finite]
        elif finite:
            out.append(f'<polyline class="{ln.css}" points="{pts([x for x, _ in finite], [y for _, y in finite])}"/>')
    out.append("</svg>")
    return "".join(out)


def timeline(rows: list[tuple[str, float | None, float | None, str]], total: float | None = None) -> str:
    """Horizontal bars: (phase, start s, end s, status css) per phase, on one time axis."""
    known = [(n, a, b, c) for n, a, b, c in rows if a is not None and b is not None]
    if not known:
        return ""
    end = max([total or 0.0, *(b for _, _, b, _ in known)]) or 1.0
    h = 18 * len(rows) + 24
    out = [
        f'<svg class="timeline" viewBox="0 0 {W} {h}" role="img" aria-label="timeline of the job" '
        f'xmlns="http://www.w3.org/2000/svg"><title>timeline of the job</title>'
    ]
    pw = W - 70 - PAD_R
    for i, (name, a, b, css) in enumerate(rows):
        y = 6 + 18 * i
        out.append(f'<text class="tick" x="64" y="{y + 11}" text-anchor="end">{esc(name)}</text>')
        if a is None or b is None:
            out.append(f'<text class="empty" x="72" y="{y + 11}">no timing</text>')
            continue
        x = 70 + a / end * pw
        out.append(
            f'<rect class="bar {esc(css)}" x="{x:.1f}" y="{y}" width="{max(1.5, (b - a) / end * pw):.1f}" '
            f'height="13"><title>{esc(name)}: {esc(duration(a))} to {esc(duration(b))}</title></rect>'
        )
    out.append(
        f'<text class="tick" x="70" y="{h - 4}">0</text>'
        f'<text class="tick" x="{W - PAD_R}" y="{h - 4}" text-anchor="end">{esc(duration(end))}</text></svg>'
    )
    return "".join(out)
