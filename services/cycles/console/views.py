"""HTML building blocks of the console: the page layout, tables, forms and inline-SVG charts.

Plain Python strings, no template engine and no JavaScript. Every dynamic value goes
through :func:`e` (``html.escape``); helpers that take ``html`` arguments expect markup
that was built here.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

__all__ = [
    "Bar",
    "bar_chart",
    "button_form",
    "e",
    "fmt_dt",
    "fmt_num",
    "grouped_bar_chart",
    "heat_colour",
    "layout",
    "meter",
    "notice",
    "pill",
    "sparkline",
    "table",
]


def e(value: Any) -> str:
    """Escape any value for HTML text or a quoted attribute; None shows as an em dash."""
    return "—" if value is None else html.escape(str(value), quote=True)


def fmt_num(value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:,.0f}"
    return e(value)


def fmt_dt(value: Any) -> str:
    """An ISO timestamp (or datetime) as 'YYYY-MM-DD HH:MM UTC'."""
    if value is None:
        return "—"
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return e(value)
    if isinstance(value, datetime):
        return e(value.strftime("%Y-%m-%d %H:%M") + (" UTC" if value.tzinfo else ""))
    return e(value)


CSS = """
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;
color:#1d2433;background:#f5f6f8}a{color:#1f5fbf;text-decoration:none}a:hover{text-decoration:underline}
header{background:#1d2433;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center;flex-wrap:wrap}
header a{color:#dfe6f3}header .brand{font-weight:700;color:#fff;margin-right:.6rem}header .who{margin-left:auto;
font-size:12px;color:#b9c3d6}header form{display:inline}header button{background:none;border:1px solid #5b6478;
color:#dfe6f3;border-radius:4px;padding:.15rem .5rem;cursor:pointer}main{max-width:1180px;margin:1rem auto;
padding:0 1rem}h1{font-size:1.45rem;margin:.4rem 0 1rem}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
section.card{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:.8rem 1rem;margin-bottom:1rem}
table{border-collapse:collapse;width:100%;background:#fff}th,td{text-align:left;padding:.35rem .5rem;
border-bottom:1px solid #e6e9ef;vertical-align:top}th{font-size:12px;text-transform:uppercase;letter-spacing:.03em;
color:#5b6478}nav.sub{display:flex;gap:.9rem;margin:-.4rem 0 1rem;flex-wrap:wrap}nav.sub a.on{font-weight:700;
color:#1d2433}.pill{display:inline-block;padding:0 .45rem;border-radius:9px;font-size:12px;background:#e6e9ef}
.pill.ok,.pill.active,.pill.approved,.pill.delivered,.pill.completed{background:#d9f2e1;color:#17673a}
.pill.bad,.pill.cancelled,.pill.returned,.pill.pending{background:#fbe0dd;color:#a4271b}
.pill.paused,.pill.submitted,.pill.draft{background:#fdf0cf;color:#7a5a00}
.notice{padding:.55rem .8rem;border-radius:5px;margin:.6rem 0;background:#eef3fb;border:1px solid #c9d8f0}
.notice.error{background:#fdecea;border-color:#f3c1bb;color:#8a1f14}.notice.ok{background:#e6f5ec;
border-color:#b7e0c6;color:#17673a}.muted{color:#6b7385;font-size:12px}form.inline{display:inline}
button,input[type=submit]{background:#1f5fbf;color:#fff;border:0;border-radius:4px;padding:.3rem .7rem;
cursor:pointer;font:inherit}button.secondary{background:#e6e9ef;color:#1d2433}input,select,textarea{font:inherit;
padding:.25rem .4rem;border:1px solid #c5cbd6;border-radius:4px}label{display:block;margin:.35rem 0}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(260px,1fr));gap:1rem}.meter{background:#e6e9ef;
border-radius:3px;height:10px;width:140px;display:inline-block;vertical-align:middle;overflow:hidden}
.meter>span{display:block;height:100%;background:#2e8b57}.tree ul{list-style:none;padding-left:1.2rem;
border-left:1px dashed #c5cbd6;margin:.2rem 0}.tree li{margin:.25rem 0}.heat td{text-align:center;min-width:64px}
.kpi{font-size:1.6rem;font-weight:700}
.pill.overdue,.pill.late,.pill.rejected{background:#fbe0dd;color:#a4271b}.pill.under_review{background:#fdf0cf;
color:#7a5a00}.pill.upheld,.pill.adjusted{background:#d9f2e1;color:#17673a}section.card.overdue{background:#fff6f5;
border-color:#f3c1bb;border-left:4px solid #c0392b}h3{font-size:1rem;margin:.4rem 0}label.inline{display:inline}
"""


def layout(
    *, title: str, body: str, nav: Sequence[tuple[str, str]] = (), who: str | None = None, csrf: str | None = None
) -> str:
    """A whole page: header navigation, the signed-in user with a sign-out button, then ``body``."""
    links = "".join(f'<a href="{e(href)}">{e(label)}</a>' for label, href in nav)
    account = ""
    if who is not None:
        account = (
            f'<span class="who">{e(who)}</span>'
            f'<form method="post" action="/console/sign-out"><input type="hidden" name="csrf" value="{e(csrf)}">'
            '<button type="submit">Sign out</button></form>'
        )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{e(title)} · Tandem</title><style>{CSS}</style></head><body>"
        f'<header><a class="brand" href="/console">Tandem</a>{links}{account}</header>'
        f"<main><h1>{e(title)}</h1>{body}</main></body></html>"
    )


def notice(message: str, kind: str = "") -> str:
    return f'<div class="notice {e(kind)}" role="status">{e(message)}</div>'


def pill(value: Any) -> str:
    text = "—" if value is None else str(value)
    return f'<span class="pill {e(text.lower())}">{e(text)}</span>'


def table(
    headers: Sequence[str], rows: Iterable[Sequence[str]], *, empty: str = "Nothing to show.", cls: str = ""
) -> str:
    """A table; ``rows`` hold markup (escape values with :func:`e`)."""
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{e(empty)}</p>'
    head = "".join(f"<th>{e(h)}</th>" for h in headers)
    return f'<table class="{e(cls)}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def button_form(
    action: str,
    label: str,
    *,
    csrf: str,
    fields: dict[str, str] | None = None,
    secondary: bool = False,
    test_id: str | None = None,
) -> str:
    """A one-button POST form (hidden ``fields`` and the CSRF token)."""
    hidden = "".join(f'<input type="hidden" name="{e(k)}" value="{e(v)}">' for k, v in (fields or {}).items())
    attrs = ' class="secondary"' if secondary else ""
    if test_id:
        attrs += f' data-testid="{e(test_id)}"'
    return (
        f'<form class="inline" method="post" action="{e(action)}"><input type="hidden" name="csrf" value="{e(csrf)}">'
        f'{hidden}<button type="submit"{attrs}>{e(label)}</button></form>'
    )


def meter(percent: float | None) -> str:
    """A small horizontal bar for a completion percentage."""
    if percent is None:
        return '<span class="muted">no data</span>'
    width = max(0.0, min(100.0, percent))
    return f'<span class="meter" title="{width:.0f}%"><span style="width:{width:.1f}%"></span></span> {width:.0f}%'


# -- charts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Bar:
    label: str
    value: float | None
    note: str = ""


def _bar_colour(value: float, target: float) -> str:
    if value >= target:
        return "#2e8b57"
    if value >= 0.7 * target:
        return "#d79a17"
    return "#c0392b"


def bar_chart(bars: Sequence[Bar], *, target: float = 100.0, unit: str = "%", title: str = "") -> str:
    """Horizontal bars with a dashed target line (attainment charts). Inline SVG, no script."""
    if not bars:
        return '<p class="muted">No data yet.</p>'
    label_w, chart_w, row_h, note_w = 230, 420, 24, 260
    top = max([target, *(b.value or 0.0 for b in bars)]) * 1.1 or 1.0
    height = row_h * len(bars) + 24
    parts = [
        f'<svg role="img" aria-label="{e(title or "bar chart")}" width="{label_w + chart_w + note_w}" '
        f'height="{height}" viewBox="0 0 {label_w + chart_w + note_w} {height}" font-size="12">'
    ]
    for i, bar in enumerate(bars):
        y = i * row_h + 4
        parts.append(f'<text x="0" y="{y + 14}">{e(bar.label[:36])}</text>')
        if bar.value is None:
            parts.append(f'<text x="{label_w}" y="{y + 14}" fill="#6b7385">no data {e(bar.note)}</text>')
            continue
        width = max(1.0, chart_w * max(bar.value, 0.0) / top)
        parts.append(
            f'<rect x="{label_w}" y="{y}" width="{width:.1f}" height="{row_h - 8}" rx="2" '
            f'fill="{_bar_colour(bar.value, target)}"><title>{e(bar.label)}: {bar.value:.1f}{e(unit)}</title></rect>'
            f'<text x="{label_w + width + 6:.1f}" y="{y + 14}">{bar.value:.1f}{e(unit)} {e(bar.note)}</text>'
        )
    x = label_w + chart_w * target / top
    parts.append(
        f'<line x1="{x:.1f}" x2="{x:.1f}" y1="0" y2="{height - 16}" stroke="#1d2433" stroke-dasharray="4 3"/>'
        f'<text x="{x + 3:.1f}" y="{height - 4}" fill="#5b6478">target {target:g}{e(unit)}</text></svg>'
    )
    return "".join(parts)


def sparkline(values: Sequence[float | None], *, width: int = 120, height: int = 28) -> str:
    """A trend line over the last buckets (gaps skipped)."""
    points = [(i, v) for i, v in enumerate(values) if v is not None]
    if len(points) < 2:
        return '<span class="muted">—</span>'
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    coords = " ".join(f"{i * step:.1f},{height - 3 - (v - low) / span * (height - 6):.1f}" for i, v in points)
    return (
        f'<svg role="img" aria-label="trend" width="{width}" height="{height}" viewBox="0 0 {width} {height}">'
        f'<polyline points="{coords}" fill="none" stroke="#1f5fbf" stroke-width="1.8"/></svg>'
    )


def grouped_bar_chart(
    groups: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[float]]],
    *,
    limits: Sequence[float | None] = (),
    title: str = "",
) -> str:
    """Vertical bars per group, one per series ``(name, colour, values)``; optional limit markers per group."""
    if not groups:
        return '<p class="muted">No data yet.</p>'
    group_w, bar_w, chart_h, base = 110, 28, 170, 200
    top = max([1.0, *(v for _, _, values in series for v in values), *(x for x in limits if x is not None)]) * 1.15
    width = group_w * len(groups) + 40
    parts = [
        f'<svg role="img" aria-label="{e(title or "distribution")}" width="{width}" height="{base + 56}" '
        f'viewBox="0 0 {width} {base + 56}" font-size="12">',
        f'<line x1="20" x2="{width}" y1="{base}" y2="{base}" stroke="#c5cbd6"/>',
    ]
    for g, group in enumerate(groups):
        x0 = 30 + g * group_w
        for s, (name, colour, values) in enumerate(series):
            value = values[g] if g < len(values) else 0.0
            h = chart_h * value / top
            x = x0 + s * (bar_w + 4)
            parts.append(
                f'<rect x="{x}" y="{base - h:.1f}" width="{bar_w}" height="{h:.1f}" fill="{colour}">'
                f"<title>{e(group)} {e(name)}: {value:g}</title></rect>"
                f'<text x="{x + bar_w / 2}" y="{base - h - 3:.1f}" text-anchor="middle">{value:g}</text>'
            )
        limit = limits[g] if g < len(limits) else None
        if limit is not None:
            y = base - chart_h * limit / top
            parts.append(
                f'<line x1="{x0 - 4}" x2="{x0 + len(series) * (bar_w + 4)}" y1="{y:.1f}" y2="{y:.1f}" '
                f'stroke="#c0392b" stroke-dasharray="3 2"><title>guideline max {limit:g}</title></line>'
            )
        parts.append(f'<text x="{x0}" y="{base + 16}">{e(group[:14])}</text>')
    legend_y = base + 40
    for s, (name, colour, _values) in enumerate(series):
        parts.append(
            f'<rect x="{30 + s * 130}" y="{legend_y - 10}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{46 + s * 130}" y="{legend_y}">{e(name)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def heat_colour(value: float | None, low: float = 1.0, high: float = 5.0) -> str:
    """Red (low) → amber → green (high), as a CSS colour."""
    if value is None:
        return "#f0f1f4"
    t = max(0.0, min(1.0, (value - low) / ((high - low) or 1.0)))
    hue = 120 * t
    return f"hsl({hue:.0f},62%,{78 - 10 * abs(t - 0.5):.0f}%)"
