"""Cross-department collaboration: the report (JSON, CSV, HTML heatmap) and the collaboration award.

Everything here is pure: it takes the matrix cells, department names and shared-goal
contributions and returns plain data or text, so it is tested without HTTP.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from services.results.policy import AwardRule

__all__ = [
    "DIMENSIONS",
    "AwardCandidate",
    "Cell",
    "CollaborationReport",
    "DepartmentPair",
    "PairChange",
    "PairScore",
    "Suggestion",
    "build_report",
    "collaboration_awards",
    "render_csv",
    "render_html",
    "spreadsheet_safe",
]

DIMENSIONS = ("responsiveness", "data_quality", "reliability")

_DIMENSION_ACTIONS = {
    "responsiveness": (
        "Agree a response-time service level between {a} and {b} (first answer within two working days) "
        "and name one contact on each side."
    ),
    "data_quality": (
        "Write down shared definitions and validation checks for the data {a} and {b} exchange, "
        "and review data quality in a monthly joint check."
    ),
    "reliability": (
        "Make commitments between {a} and {b} explicit: a joint plan with owners and due dates, "
        "reviewed every two weeks."
    ),
}

_KEYWORD_ACTIONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (
        ("late", "slow", "delay", "wait", "respon", "ignor", "chas"),
        "Route requests through one shared queue with visible turnaround times.",
    ),
    (
        ("error", "wrong", "incorrect", "inconsisten", "missing", "mismatch", "quality"),
        "Run a joint root-cause review of the recurring data errors and fix them at the source.",
    ),
    (
        ("unclear", "communicat", "handover", "handoff", "inform", "surprise", "meeting"),
        "Hold a short recurring cross-team sync and agree a handover checklist.",
    ),
    (
        ("priorit", "conflict", "ownership", "owner", "responsib", "blame"),
        "Clarify ownership of the shared work (who decides, who delivers) and escalate priority "
        "conflicts to both department heads.",
    ),
)

_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True)
class Cell:
    rater_department_id: str
    rated_department_id: str
    responsiveness: float
    data_quality: float
    reliability: float
    overall: float
    ratings: int
    comments: tuple[str, ...] = ()


@dataclass(frozen=True)
class DepartmentPair:
    """Two departments (ids sorted) with their names: what every pair-level finding is about."""

    department_ids: tuple[str, str]
    department_names: tuple[str, str]


@dataclass(frozen=True)
class PairScore(DepartmentPair):
    overall: float
    responsiveness: float
    data_quality: float
    reliability: float
    ratings: int


@dataclass(frozen=True)
class PairChange(DepartmentPair):
    previous_overall: float | None
    overall: float | None
    change: float | None


@dataclass(frozen=True)
class Suggestion(DepartmentPair):
    overall: float
    weakest_dimension: str
    weakest_dimension_score: float
    matched_keywords: list[str]
    actions: list[str]


@dataclass(frozen=True)
class CollaborationReport:
    cycle_id: str
    previous_cycle_id: str | None
    departments: dict[str, str]
    cells: list[Cell]
    previous_overall: dict[tuple[str, str], float]
    strongest: list[PairScore]
    weakest: list[PairScore]
    changes: list[PairChange]
    suggestions: list[Suggestion]
    rating_scale: tuple[float, float] = (1.0, 5.0)
    notes: list[str] = field(default_factory=list)


def _weighted(values: Iterable[tuple[float, int]]) -> float:
    pairs = list(values)
    total = sum(n for _, n in pairs)
    if total == 0:
        return sum(v for v, _ in pairs) / len(pairs)
    return sum(v * n for v, n in pairs) / total


def _by_pair(cells: Sequence[Cell]) -> dict[tuple[str, str], list[Cell]]:
    """The cells between two different departments, both directions together (ids sorted)."""
    grouped: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for c in cells:
        if c.rater_department_id != c.rated_department_id:
            a, b = sorted((c.rater_department_id, c.rated_department_id))
            grouped[(a, b)].append(c)
    return grouped


def _pairs(cells: Sequence[Cell], names: Mapping[str, str]) -> dict[tuple[str, str], PairScore]:
    return {
        (a, b): PairScore(
            department_ids=(a, b),
            department_names=(names.get(a, a), names.get(b, b)),
            overall=round(_weighted((c.overall, c.ratings) for c in group), 3),
            responsiveness=round(_weighted((c.responsiveness, c.ratings) for c in group), 3),
            data_quality=round(_weighted((c.data_quality, c.ratings) for c in group), 3),
            reliability=round(_weighted((c.reliability, c.ratings) for c in group), 3),
            ratings=sum(c.ratings for c in group),
        )
        for (a, b), group in _by_pair(cells).items()
    }


def _suggest(pair: PairScore, comments: Sequence[str]) -> Suggestion:
    scores = {d: getattr(pair, d) for d in DIMENSIONS}
    weakest = min(DIMENSIONS, key=lambda d: (scores[d], DIMENSIONS.index(d)))
    a, b = pair.department_names
    actions = [_DIMENSION_ACTIONS[weakest].format(a=a, b=b)]
    words = {w for comment in comments for w in _WORD.findall(comment.lower())}
    matched: list[str] = []
    for stems, action in _KEYWORD_ACTIONS:
        hits = sorted(w for w in words if any(w.startswith(s) for s in stems))
        if hits:
            matched += hits
            actions.append(action)
    return Suggestion(
        department_ids=pair.department_ids,
        department_names=pair.department_names,
        overall=pair.overall,
        weakest_dimension=weakest,
        weakest_dimension_score=scores[weakest],
        matched_keywords=matched,
        actions=actions,
    )


def build_report(
    *,
    cycle_id: str,
    cells: Sequence[Cell],
    names: Mapping[str, str],
    previous_cycle_id: str | None = None,
    previous_cells: Sequence[Cell] = (),
    top: int = 3,
    rating_scale: tuple[float, float] = (1.0, 5.0),
) -> CollaborationReport:
    current = _pairs(cells, names)
    ranked = sorted(current.values(), key=lambda p: (-p.overall, p.department_ids))
    k = min(top, max(1, len(ranked) // 2)) if ranked else 0
    strongest = ranked[:k]
    weakest = sorted(ranked, key=lambda p: (p.overall, p.department_ids))[:k]
    comments = {key: [text for c in group for text in c.comments] for key, group in _by_pair(cells).items()}
    changes: list[PairChange] = []
    notes: list[str] = []
    if previous_cycle_id is not None:
        previous = _pairs(previous_cells, names)
        if not previous_cells:
            notes.append(f"previous cycle {previous_cycle_id!r} has no collaboration matrix here; no change shown")
        for key in sorted(set(current) | set(previous)):
            now_pair, before = current.get(key), previous.get(key)
            ref = now_pair or before
            assert ref is not None
            changes.append(
                PairChange(
                    department_ids=key,
                    department_names=ref.department_names,
                    previous_overall=before.overall if before else None,
                    overall=now_pair.overall if now_pair else None,
                    change=round(now_pair.overall - before.overall, 3) if now_pair and before else None,
                )
            )
    return CollaborationReport(
        cycle_id=cycle_id,
        previous_cycle_id=previous_cycle_id,
        departments=dict(names),
        cells=sorted(cells, key=lambda c: (c.rater_department_id, c.rated_department_id)),
        previous_overall={(c.rater_department_id, c.rated_department_id): c.overall for c in previous_cells},
        strongest=strongest,
        weakest=weakest,
        changes=changes,
        suggestions=[_suggest(p, comments.get(p.department_ids, [])) for p in weakest],
        rating_scale=rating_scale,
        notes=notes,
    )


CSV_COLUMNS = (
    "rater_department_id",
    "rater_department",
    "rated_department_id",
    "rated_department",
    "responsiveness",
    "data_quality",
    "reliability",
    "overall",
    "ratings",
    "previous_overall",
    "change",
    "comments",
)


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""What makes Excel, LibreOffice and Google Sheets read a cell as a formula (OWASP, CSV injection)."""


def spreadsheet_safe(value: object) -> object:
    """``value`` as a CSV cell a spreadsheet shows as text: strings starting a formula get a leading
    ``'``. Names and comments are typed by people; numbers are ours and stay numbers."""
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def render_csv(report: CollaborationReport) -> str:
    out = io.StringIO()
    # CRLF rows (RFC 4180): the writer then quotes any cell holding a CR or LF, so a comment with a
    # carriage return cannot start a new row whose first cell is a formula.
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for c in report.cells:
        before = report.previous_overall.get((c.rater_department_id, c.rated_department_id))
        cells = [
            c.rater_department_id,
            report.departments.get(c.rater_department_id, c.rater_department_id),
            c.rated_department_id,
            report.departments.get(c.rated_department_id, c.rated_department_id),
            c.responsiveness,
            c.data_quality,
            c.reliability,
            c.overall,
            c.ratings,
            "" if before is None else before,
            "" if before is None else round(c.overall - before, 3),
            " | ".join(c.comments),
        ]
        writer.writerow([spreadsheet_safe(value) for value in cells])
    return out.getvalue()


def _heat(value: float, scale: tuple[float, float]) -> str:
    """Red (low) through yellow to green (high), as an HSL background."""
    lo, hi = scale
    ratio = min(1.0, max(0.0, (value - lo) / (hi - lo)))
    return f"hsl({round(120 * ratio)}, 65%, 78%)"


def render_html(report: CollaborationReport) -> str:
    """A self-contained page: inline CSS, no JavaScript."""
    e = html.escape
    name = report.departments.get
    ids = sorted(
        {c.rater_department_id for c in report.cells} | {c.rated_department_id for c in report.cells},
        key=lambda d: (name(d, d), d),
    )
    by_pair = {(c.rater_department_id, c.rated_department_id): c for c in report.cells}
    head = "".join(f'<th scope="col">{e(name(d, d))}</th>' for d in ids)
    rows = []
    for rater in ids:
        tds = []
        for rated in ids:
            cell = by_pair.get((rater, rated))
            if cell is None:
                tds.append('<td class="empty">&ndash;</td>')
                continue
            title = (
                f"{name(rater, rater)} rates {name(rated, rated)}: responsiveness {cell.responsiveness}, "
                f"data quality {cell.data_quality}, reliability {cell.reliability} ({cell.ratings} ratings)"
            )
            tds.append(
                f'<td style="background:{_heat(cell.overall, report.rating_scale)}" title="{e(title)}">'
                f"{cell.overall:.2f}</td>"
            )
        rows.append(f'<tr><th scope="row">{e(name(rater, rater))}</th>{"".join(tds)}</tr>')

    def pair_list(pairs: Sequence[PairScore]) -> str:
        items = "".join(
            f"<li>{e(p.department_names[0])} &harr; {e(p.department_names[1])}: <strong>{p.overall:.2f}</strong> "
            f"(responsiveness {p.responsiveness:.2f}, data quality {p.data_quality:.2f}, "
            f"reliability {p.reliability:.2f}; {p.ratings} ratings)</li>"
            for p in pairs
        )
        return f"<ul>{items}</ul>" if items else "<p>No pairs rated.</p>"

    suggestions = "".join(
        f"<li><strong>{e(s.department_names[0])} &harr; {e(s.department_names[1])}</strong> "
        f"(weakest: {e(s.weakest_dimension.replace('_', ' '))} {s.weakest_dimension_score:.2f}"
        + (f"; comments mention {e(', '.join(s.matched_keywords))}" if s.matched_keywords else "")
        + ")<ul>"
        + "".join(f"<li>{e(a)}</li>" for a in s.actions)
        + "</ul></li>"
        for s in report.suggestions
    )
    if report.previous_cycle_id is None:
        changes = "<p>No previous cycle given.</p>"
    else:
        change_rows = "".join(
            f"<tr><td>{e(c.department_names[0])} &harr; {e(c.department_names[1])}</td>"
            f"<td>{'' if c.previous_overall is None else f'{c.previous_overall:.2f}'}</td>"
            f"<td>{'' if c.overall is None else f'{c.overall:.2f}'}</td>"
            f'<td class="{"up" if (c.change or 0) > 0 else "down" if (c.change or 0) < 0 else ""}">'
            f"{'' if c.change is None else f'{c.change:+.2f}'}</td></tr>"
            for c in report.changes
        )
        changes = (
            f"<p>Compared with cycle {e(report.previous_cycle_id)}.</p>"
            f"<table><thead><tr><th>Pair</th><th>Previous</th><th>Now</th><th>Change</th></tr></thead>"
            f"<tbody>{change_rows}</tbody></table>"
        )
    notes = "".join(f"<p class='note'>{e(n)}</p>" for n in report.notes)
    lo, hi = report.rating_scale
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Cross-department collaboration report: {e(report.cycle_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2rem; color: #222; }}
table {{ border-collapse: collapse; margin: 1rem 0; }}
th, td {{ border: 1px solid #ccc; padding: .4rem .6rem; text-align: center; }}
th[scope=row] {{ text-align: left; }}
td.empty {{ background: #f3f3f3; color: #999; }}
td.up {{ color: #176317; }} td.down {{ color: #a11; }}
.legend span {{ display: inline-block; padding: .2rem .6rem; }}
.note {{ color: #666; }}
</style>
</head>
<body>
<h1>Cross-department collaboration: cycle {e(report.cycle_id)}</h1>
{notes}
<h2>Heatmap (rows rate columns, overall score)</h2>
<table class="heatmap"><thead><tr><th>Rater &darr; / Rated &rarr;</th>{head}</tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p class="legend">Scale: <span style="background:{_heat(lo, report.rating_scale)}">{lo:g} low</span>
<span style="background:{_heat((lo + hi) / 2, report.rating_scale)}">{(lo + hi) / 2:g}</span>
<span style="background:{_heat(hi, report.rating_scale)}">{hi:g} high</span></p>
<h2>Strongest pairs</h2>
{pair_list(report.strongest)}
<h2>Weakest pairs</h2>
{pair_list(report.weakest)}
<h2>Suggested improvement actions</h2>
<ul class="suggestions">{suggestions}</ul>
<h2>Change against the previous cycle</h2>
{changes}
</body>
</html>
"""


@dataclass(frozen=True)
class AwardCandidate:
    department_id: str
    department_name: str
    eligible: bool
    score: float
    received_mean_overall: float | None
    rater_departments: int
    shared_goals: int
    evidence: list[str]


def collaboration_awards(
    *,
    cells: Sequence[Cell],
    shared_goals: Mapping[str, list[tuple[str, str]]],
    names: Mapping[str, str],
    rule: AwardRule,
) -> list[AwardCandidate]:
    """Rank departments for 'best collaboration team'; eligible ones first, best first.

    Score = collaboration_weight x (received mean overall, normalised to 0..1 on the rating scale)
          + shared_goals_weight x (shared goals contributed to / the most any department contributed to).
    """
    received: dict[str, list[Cell]] = defaultdict(list)
    for c in cells:
        if c.rater_department_id != c.rated_department_id:
            received[c.rated_department_id].append(c)
    departments = sorted(set(received) | set(shared_goals) | set(names))
    most_goals = max((len(shared_goals.get(d, [])) for d in departments), default=0)
    candidates = []
    for d in departments:
        got = received.get(d, [])
        raters = len({c.rater_department_id for c in got})
        mean = round(_weighted((c.overall, c.ratings) for c in got), 3) if got else None
        goals = shared_goals.get(d, [])
        span = rule.rating_scale_max - rule.rating_scale_min
        normalised = min(1.0, max(0.0, (mean - rule.rating_scale_min) / span)) if mean is not None else 0.0
        goal_part = len(goals) / most_goals if most_goals else 0.0
        score = round(rule.collaboration_weight * normalised + rule.shared_goals_weight * goal_part, 4)
        evidence = [
            f"rated {c.overall:.2f} overall by {names.get(c.rater_department_id, c.rater_department_id)} "
            f"({c.ratings} ratings)"
            for c in sorted(got, key=lambda c: c.rater_department_id)
        ]
        evidence += [f"contributed to shared goal {gid} '{gname}'" for gid, gname in goals]
        eligible = raters >= rule.min_rater_departments
        if not eligible:
            evidence.append(
                f"not eligible: rated by {raters} department(s), the rule needs {rule.min_rater_departments}"
            )
        candidates.append(
            AwardCandidate(
                department_id=d,
                department_name=names.get(d, d),
                eligible=eligible,
                score=score,
                received_mean_overall=mean,
                rater_departments=raters,
                shared_goals=len(goals),
                evidence=evidence,
            )
        )
    return sorted(candidates, key=lambda c: (not c.eligible, -c.score, c.department_id))
