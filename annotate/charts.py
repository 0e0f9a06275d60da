"""Small server-rendered charts: plain coordinates for templates to draw as inline SVG.

No chart library and no script: the strict Content-Security-Policy allows an `<svg>` with
presentation attributes, styled by classes in static/css/preflab.css. Every chart is a dict with
`title` (for `<title>` and the text alternative), `empty` (draw "no data yet" instead) and the
shapes in SVG user units; the template escapes every label, as it does all text.
"""

from __future__ import annotations

from dataclasses import dataclass

# Drawing boxes, in SVG user units (the CSS scales the SVG to its card).
WIDTH = 420
LABEL_W = 175  # the category labels left of horizontal bars
VALUE_W = 72  # the value text right of them
BAR_H, BAR_GAP, TOP = 18, 8, 8
COLUMNS_H, COLUMNS_MARGIN = 170, 30
LINE_W, LINE_H, LINE_MARGIN = 480, 220, 36  # the line chart's own box: it stands alone, not in the plots' grid


@dataclass(frozen=True)
class Bar:
    """One horizontal bar: its label, value and, optionally, an interval drawn as a whisker."""

    label: str
    value: float
    text: str = ""  # the value as shown; the value to 2 places when empty
    low: float | None = None
    high: float | None = None


def hbar_chart(bars: list[Bar], *, title: str, lo: float = 0.0, hi: float | None = None) -> dict:
    """Horizontal bars on one scale from `lo` to `hi` (the largest value or interval end when None).

    A bar starts at 0 (or `lo` when 0 is off the scale), so a negative κ points left.
    """
    if not bars:
        return {"title": title, "empty": True}
    ends = [b.value for b in bars] + [b.high for b in bars if b.high is not None]
    top = hi if hi is not None else max(ends)
    bottom = min(lo, *[b.value for b in bars], *[b.low for b in bars if b.low is not None])
    span = (top - bottom) or 1.0
    inner = WIDTH - LABEL_W - VALUE_W

    def x(value: float) -> float:
        return round(LABEL_W + inner * (value - bottom) / span, 1)

    origin = x(min(max(0.0, bottom), top))
    rows = []
    for i, bar in enumerate(bars):
        y = TOP + i * (BAR_H + BAR_GAP)
        end = x(bar.value)
        row = {
            "label": bar.label,
            "text": bar.text or f"{bar.value:.2f}",
            "x": min(origin, end),
            "y": y,
            "w": round(abs(end - origin), 1),
            "h": BAR_H,
            "mid": y + BAR_H / 2,
            "value_x": WIDTH - VALUE_W + 6,
        }
        if bar.low is not None and bar.high is not None:
            row["whisker"] = {"x1": x(bar.low), "x2": x(bar.high), "low": bar.low, "high": bar.high}
        rows.append(row)
    height = TOP * 2 + len(bars) * (BAR_H + BAR_GAP) + 16
    return {
        "title": title,
        "empty": False,
        "width": WIDTH,
        "height": height,
        "bars": rows,
        "axis": {"x1": LABEL_W, "x2": WIDTH - VALUE_W, "y": height - 18, "origin": origin},
        "ticks": [{"x": x(v), "text": f"{v:.2g}"} for v in sorted({bottom, min(max(0.0, bottom), top), top})],
    }


def column_chart(columns: list[tuple[str, int]], *, title: str) -> dict:
    """Vertical columns of counts (labels per day), with the first, middle and last labels as ticks."""
    if not columns or not any(n for _, n in columns):
        return {"title": title, "empty": True}
    top = max(n for _, n in columns)
    inner_w = WIDTH - 2 * COLUMNS_MARGIN
    inner_h = COLUMNS_H - 2 * COLUMNS_MARGIN
    step = inner_w / len(columns)
    bottom = COLUMNS_H - COLUMNS_MARGIN
    rows = []
    for i, (label, n) in enumerate(columns):
        h = round(inner_h * n / top, 1)
        rows.append(
            {
                "label": label,
                "n": n,
                "x": round(COLUMNS_MARGIN + i * step + 1, 1),
                "w": round(step - 2, 1),
                "y": bottom - h,
                "h": h,
            }
        )
    ticks = [rows[i] for i in sorted({0, len(rows) // 2, len(rows) - 1})]
    return {
        "title": title,
        "empty": False,
        "width": WIDTH,
        "height": COLUMNS_H,
        "columns": rows,
        "ticks": [{"x": round(t["x"] + t["w"] / 2, 1), "text": t["label"]} for t in ticks],
        "left": COLUMNS_MARGIN,
        "right": WIDTH - COLUMNS_MARGIN,
        "top": COLUMNS_MARGIN,
        "bottom": bottom,
        "max": top,
    }


@dataclass(frozen=True)
class Point:
    """One point of a line: where it stands, its interval (drawn as a band) and the words of its tooltip."""

    x: float
    y: float
    text: str
    low: float | None = None  # the interval's ends; y itself where there is none
    high: float | None = None


def line_chart(points: list[Point], *, title: str, y_floor: float, y_top: float = 1.0, x_unit: str) -> dict:
    """A line through `points` over the band of their intervals, x from 0 to the largest x.

    The y axis runs from `y_floor` (or the lowest interval end, if lower) to `y_top`; the x
    axis's one tick says the largest x in `x_unit`s.
    """
    if not points:
        return {"title": title, "empty": True}
    lows = [p.low if p.low is not None else p.y for p in points]
    highs = [p.high if p.high is not None else p.y for p in points]
    y_min = min(y_floor, *lows)
    x_max = max(p.x for p in points) or 1
    inner_w, inner_h = LINE_W - 2 * LINE_MARGIN, LINE_H - 2 * LINE_MARGIN

    def x(value: float) -> float:
        return round(LINE_MARGIN + inner_w * value / x_max, 1)

    def y(value: float) -> float:
        return round(LINE_MARGIN + inner_h * (1 - (value - y_min) / ((y_top - y_min) or 1)), 1)

    upper = [f"{x(p.x)},{y(high)}" for p, high in zip(points, highs, strict=True)]
    lower = [f"{x(p.x)},{y(low)}" for p, low in zip(points, lows, strict=True)]
    return {
        "title": title,
        "empty": False,
        "width": LINE_W,
        "height": LINE_H,
        "line": " ".join(f"{x(p.x)},{y(p.y)}" for p in points),
        "band": " ".join(upper + lower[::-1]),
        "points": [{"x": x(p.x), "y": y(p.y), "text": p.text} for p in points],
        "left": LINE_MARGIN,
        "right": LINE_W - LINE_MARGIN,
        "top": LINE_MARGIN,
        "bottom": LINE_H - LINE_MARGIN,
        "y_min": y_min,
        "y_top": y_top,
        "x_text": f"{x_max} {x_unit}",
    }
