"""Geometry of the console's inline-SVG charts; ``templates/charts.html`` draws it.

The numbers here are the numbers the pages' tables show: a chart is built from the same rows
as the table next to it, never from a second query, so the two cannot disagree. No script runs
in the browser: each bar carries a ``<title>`` with its exact value.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "Bar",
    "BarChart",
    "GroupedBarChart",
    "Sparkline",
    "bar_chart",
    "grouped_bar_chart",
    "heat_colour",
    "sparkline",
]


@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    note: str = ""


@dataclass(frozen=True)
class BarRow:
    bar: Bar
    y: float
    width: float
    colour: str
    clipped: bool = False


@dataclass(frozen=True)
class BarChart:
    """Horizontal bars with a dashed target line (attainment against 100%)."""

    title: str
    unit: str
    target: float
    rows: list[BarRow]
    label_width: int
    width: int
    height: int
    target_x: float


LABEL_W, CHART_W, ROW_H, NOTE_W = 230, 420, 24, 260


def _bar_colour(value: float, target: float) -> str:
    if value >= target:
        return "#2e8b57"
    if value >= 0.7 * target:
        return "#d79a17"
    return "#c0392b"


SCALE_CAP = 2.0
"""The axis ends at twice the target at most: one KPI at 2,000% must not squash every other bar to a
sliver. A longer bar is drawn to the end of the axis and marked clipped; its label keeps the true value."""


def bar_chart(bars: Sequence[Bar], *, title: str, target: float = 100.0, unit: str = "%") -> BarChart:
    top = min(max([target, *(b.value or 0.0 for b in bars)]), target * SCALE_CAP) * 1.1 or 1.0
    rows = [
        BarRow(
            bar=bar,
            y=i * ROW_H + 4,
            width=0.0 if bar.value is None else max(1.0, CHART_W * min(max(bar.value, 0.0), top) / top),
            colour="" if bar.value is None else _bar_colour(bar.value, target),
            clipped=bar.value is not None and bar.value > top,
        )
        for i, bar in enumerate(bars)
    ]
    return BarChart(
        title=title,
        unit=unit,
        target=target,
        rows=rows,
        label_width=LABEL_W,
        width=LABEL_W + CHART_W + NOTE_W,
        height=ROW_H * len(bars) + 24,
        target_x=LABEL_W + CHART_W * target / top,
    )


@dataclass(frozen=True)
class Sparkline:
    width: int
    height: int
    points: str
    """SVG polyline points; empty when fewer than two values are known."""


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 28) -> Sparkline:
    """A trend line over the last buckets (gaps skipped)."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(known) < 2:
        return Sparkline(width, height, "")
    low = min(v for _, v in known)
    span = (max(v for _, v in known) - low) or 1.0
    step = width / max(len(values) - 1, 1)
    points = " ".join(f"{i * step:.1f},{height - 3 - (v - low) / span * (height - 6):.1f}" for i, v in known)
    return Sparkline(width, height, points)


@dataclass(frozen=True)
class Column:
    series: str
    colour: str
    value: float
    x: float
    y: float
    height: float


@dataclass(frozen=True)
class Group:
    label: str
    x: float
    columns: list[Column]
    limit_y: float | None
    limit: float | None


@dataclass(frozen=True)
class GroupedBarChart:
    """Vertical bars per group, one per series, with an optional limit marker per group."""

    title: str
    width: int
    height: int
    base: int
    bar_width: int
    span: int
    groups: list[Group]
    legend: list[tuple[str, str, int]]
    """(series name, colour, x) of each legend entry."""


def grouped_bar_chart(
    groups: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    title: str,
    limits: Sequence[float | None] = (),
) -> GroupedBarChart:
    group_w, bar_w, chart_h, base = 110, 28, 170, 200
    top = max([1.0, *(v for _, _, values in series for v in values), *(x for x in limits if x is not None)]) * 1.15
    drawn: list[Group] = []
    for g, label in enumerate(groups):
        x0 = 30 + g * group_w
        columns = []
        for s, (name, colour, values) in enumerate(series):
            value = values[g] if g < len(values) else 0.0
            height = chart_h * value / top
            columns.append(Column(name, colour, value, x0 + s * (bar_w + 4), base - height, height))
        limit = limits[g] if g < len(limits) else None
        limit_y = None if limit is None else base - chart_h * limit / top
        drawn.append(Group(label, x0, columns, limit_y, limit))
    return GroupedBarChart(
        title=title,
        width=group_w * len(groups) + 40,
        height=base + 56,
        base=base,
        bar_width=bar_w,
        span=len(series) * (bar_w + 4),
        groups=drawn,
        legend=[(name, colour, 30 + s * 130) for s, (name, colour, _values) in enumerate(series)],
    )


def heat_colour(value: float | None, low: float = 1.0, high: float = 5.0) -> str:
    """Red (low) -> amber -> green (high), as a CSS colour."""
    if value is None:
        return "#f0f1f4"
    t = max(0.0, min(1.0, (value - low) / ((high - low) or 1.0)))
    return f"hsl({120 * t:.0f},62%,{78 - 10 * abs(t - 0.5):.0f}%)"
