"""The meeting agenda, generated from the cycle's data by explicit rules.

Pure: :func:`build_agenda` takes what the services answered (``AgendaFacts``) and the committee's
thresholds (``AgendaRules``) and returns the items in a fixed order, each with the numbers it
stands on (``evidence``) and links to them:

1. **blocked stages**: the cycle's stage cannot end (``blocked``), a handoff was refused
   (``incident``), a department has done less than ``lagging_share`` of its stage's work;
2. **KPIs off track**, by department: KPIs with data whose attainment is below ``off_track_pct``;
3. **stale data**, by data-owner department;
4. **the weakest collaboration pairs**: the ``weakest_pairs`` pairs whose overall score (both
   directions, weighted by the number of ratings) is below ``weak_pair_overall``, with the change
   since the committee's previous meeting;
5. **calibration**: the rating distribution's violations of the guideline, then each lenient or
   strict department and manager;
6. **open appeals**, and how many are past HR's deadline;
7. **overdue decisions** of the committee;
8. every source that could not be read, so a missing section is never silent.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.evaluation import CollaborationCell, CollaborationMatrix
from contracts.tracking import StaleKpiReport
from contracts.workflow_io import CycleStatus
from services.committee.evidence import Link, Value
from services.committee.facts import AppealFact, DecisionFact, DeviationFact, DistributionFact, KpiFact
from services.committee.texts import Text, term, text

__all__ = [
    "DIMENSIONS",
    "AgendaFacts",
    "AgendaItem",
    "AgendaKind",
    "AgendaRules",
    "PairScore",
    "build_agenda",
    "pair_key",
    "pair_scores",
    "weighted_mean",
]

DIMENSIONS = ("responsiveness", "data_quality", "reliability")


class AgendaRules(BaseModel):
    """The committee's thresholds (each committee may set its own)."""

    model_config = ConfigDict(extra="forbid")

    off_track_pct: float = Field(
        default=70, ge=0, le=200, description="A KPI with data below this attainment (% of target) is off track."
    )
    kpi_levels: list[str] = Field(
        default_factory=lambda: ["company", "department"],
        description="KPI levels counted by department (individual goals are the managers' business).",
    )
    weakest_pairs: int = Field(default=3, ge=0, le=20, description="At most this many collaboration pairs.")
    weak_pair_overall: float = Field(default=3.5, ge=1, le=5, description="Pairs below this overall score (1-5).")
    lagging_share: float = Field(
        default=0.5, ge=0, le=1, description="A department that has done less than this share of its stage lags."
    )


class AgendaKind(StrEnum):
    BLOCKED_STAGE = "blocked_stage"
    INCIDENT = "incident"
    LAGGING_DEPARTMENT = "lagging_department"
    KPI_OFF_TRACK = "kpi_off_track"
    STALE_DATA = "stale_data"
    WEAK_COLLABORATION = "weak_collaboration"
    CALIBRATION_DISTRIBUTION = "calibration_distribution"
    RATER_DEVIATION = "rater_deviation"
    OPEN_APPEALS = "open_appeals"
    OVERDUE_DECISION = "overdue_decision"
    SOURCE_UNAVAILABLE = "source_unavailable"


class AgendaItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item_id: str = Field(description="Stable within a meeting: kind and subject, e.g. 'kpi_off_track:sales'.")
    kind: AgendaKind
    title: Text
    department_ids: list[str] = Field(default_factory=list)
    evidence: dict[str, Value | list[Value] | list[dict[str, Value]]] = Field(default_factory=dict)
    links: list[Link] = Field(default_factory=list)


@dataclass
class AgendaFacts:
    """What the services answered for one meeting; ``None`` where a source could not be read."""

    cycle_id: str
    held_at: datetime
    departments: Mapping[str, str] = field(default_factory=dict)
    """Department id -> name (from the org snapshot), for readable titles."""
    status: CycleStatus | None = None
    kpis: list[KpiFact] | None = None
    stale: StaleKpiReport | None = None
    matrix: CollaborationMatrix | None = None
    distribution: DistributionFact | None = None
    deviation: DeviationFact | None = None
    appeals: list[AppealFact] | None = None
    decisions: list[DecisionFact] = field(default_factory=list)
    previous_pairs: Mapping[str, float] = field(default_factory=dict)
    """Pair key -> overall score at the committee's previous meeting (for the trend)."""
    unavailable: Mapping[str, str] = field(default_factory=dict)
    """Source -> why it could not be read."""


@dataclass(frozen=True)
class PairScore:
    department_ids: tuple[str, str]
    overall: float
    dimensions: dict[str, float]
    ratings: int
    comments: tuple[str, ...]


def pair_key(a: str, b: str) -> str:
    first, second = sorted((a, b))
    return f"{first}|{second}"


def weighted_mean(cells: list[CollaborationCell], attribute: str) -> float:
    """A dimension's mean over cells, each weighted by its number of ratings (at least one)."""
    weight = sum(max(c.ratings, 1) for c in cells)
    return sum(float(getattr(c, attribute)) * max(c.ratings, 1) for c in cells) / weight


def pair_scores(cells: Iterable[CollaborationCell]) -> dict[str, PairScore]:
    """Both directions of each department pair together, weighted by their number of ratings."""
    grouped: dict[str, list[CollaborationCell]] = defaultdict(list)
    for cell in cells:
        if cell.rater_department_id != cell.rated_department_id:
            grouped[pair_key(cell.rater_department_id, cell.rated_department_id)].append(cell)
    scores: dict[str, PairScore] = {}
    for key, group in grouped.items():
        first, second = key.split("|")
        scores[key] = PairScore(
            department_ids=(first, second),
            overall=round(weighted_mean(group, "overall"), 4),
            dimensions={d: round(weighted_mean(group, d), 4) for d in DIMENSIONS},
            ratings=sum(c.ratings for c in group),
            comments=tuple(comment for c in group for comment in c.comments),
        )
    return scores


def build_agenda(facts: AgendaFacts, rules: AgendaRules) -> list[AgendaItem]:
    """Every agenda item, in the order of the module docstring."""
    return [
        *_stage_items(facts, rules),
        *_kpi_items(facts, rules),
        *_stale_items(facts),
        *_pair_items(facts, rules),
        *_calibration_items(facts),
        *_appeal_items(facts),
        *_decision_items(facts),
        *(
            AgendaItem(
                item_id=f"source_unavailable:{source}",
                kind=AgendaKind.SOURCE_UNAVAILABLE,
                title=text("agenda.source_unavailable", source=source, reason=reason),
                evidence={"source": source, "reason": reason},
            )
            for source, reason in sorted(facts.unavailable.items())
        ),
    ]


def _name(facts: AgendaFacts, department_id: str) -> str:
    return facts.departments.get(department_id, department_id)


def _cycle_path(facts: AgendaFacts, tail: str) -> str:
    return f"/v1/cycles/{facts.cycle_id}{tail}"


# -- 1. blocked stages ----------------------------------------------------------------------------
def _stage_items(facts: AgendaFacts, rules: AgendaRules) -> list[AgendaItem]:
    status = facts.status
    if status is None:
        return []
    stage = str(status.stage)
    stage_term = term(stage)
    status_link = Link(service="cycles", path=_cycle_path(facts, "/status"))
    items: list[AgendaItem] = []
    if status.blocked is not None:
        blocked = status.blocked
        items.append(
            AgendaItem(
                item_id=f"blocked_stage:{stage}",
                kind=AgendaKind.BLOCKED_STAGE,
                title=text(
                    "agenda.blocked_stage",
                    stage=stage_term,
                    reason=blocked.reason,
                    unblock_by=blocked.unblock_by,
                    action=f": {blocked.action}" if blocked.action else "",
                ),
                evidence={"stage": stage, "service": blocked.service, "unblock_by": blocked.unblock_by},
                links=[status_link],
            )
        )
    if status.incident is not None:
        incident = status.incident
        items.append(
            AgendaItem(
                item_id=f"incident:{incident.handoff}",
                kind=AgendaKind.INCIDENT,
                title=text("agenda.incident", handoff=incident.handoff, reason=incident.error),
                evidence={"stage": incident.stage, "handoff": incident.handoff, "opened_at": incident.opened_at},
                links=[status_link],
            )
        )
    for progress in status.departments:
        if progress.total == 0 or progress.outcome is not None or progress.done / progress.total >= rules.lagging_share:
            continue
        items.append(
            AgendaItem(
                item_id=f"lagging_department:{progress.department_id}",
                kind=AgendaKind.LAGGING_DEPARTMENT,
                title=text(
                    "agenda.lagging_department",
                    department=_name(facts, progress.department_id),
                    done=progress.done,
                    total=progress.total,
                    stage=stage_term,
                ),
                department_ids=[progress.department_id],
                evidence={
                    "stage": stage,
                    "done": progress.done,
                    "total": progress.total,
                    "pending": progress.pending,
                    "lagging_share": rules.lagging_share,
                },
                links=[status_link],
            )
        )
    return items


# -- 2. KPIs off track ----------------------------------------------------------------------------
def _kpi_items(facts: AgendaFacts, rules: AgendaRules) -> list[AgendaItem]:
    by_department: dict[str, list[KpiFact]] = defaultdict(list)
    for kpi in facts.kpis or []:
        if (
            kpi.level in rules.kpi_levels
            and kpi.attainment_pct is not None
            and kpi.attainment_pct < rules.off_track_pct
        ):
            by_department[kpi.department].append(kpi)
    items = []
    for department_id, kpis in sorted(by_department.items()):
        kpis.sort(key=lambda k: (k.attainment_pct or 0, k.kpi_id))
        items.append(
            AgendaItem(
                item_id=f"kpi_off_track:{department_id}",
                kind=AgendaKind.KPI_OFF_TRACK,
                title=text(
                    "agenda.kpi_off_track",
                    department=_name(facts, department_id),
                    count=len(kpis),
                    floor=rules.off_track_pct,
                ),
                department_ids=[department_id],
                evidence={
                    "off_track_pct": rules.off_track_pct,
                    "kpis": [
                        {"kpi_id": k.kpi_id, "name": k.name, "attainment_pct": k.attainment_pct, "trend": k.trend}
                        for k in kpis
                    ],
                },
                links=[Link(service="tracking", path=_cycle_path(facts, f"/kpis/{k.kpi_id}/progress")) for k in kpis],
            )
        )
    return items


# -- 3. stale data --------------------------------------------------------------------------------
def _stale_items(facts: AgendaFacts) -> list[AgendaItem]:
    if facts.stale is None:
        return []
    link = Link(service="tracking", path=_cycle_path(facts, "/stale-kpis"))
    return [
        AgendaItem(
            item_id=f"stale_data:{group.department_id}",
            kind=AgendaKind.STALE_DATA,
            title=text("agenda.stale_data", department=_name(facts, group.department_id), count=len(group.kpis)),
            department_ids=[group.department_id],
            evidence={
                "kpis": [
                    {"kpi_id": k.kpi_id, "name": k.name, "due_at": k.due_at.isoformat()}
                    for k in sorted(group.kpis, key=lambda k: k.kpi_id)
                ]
            },
            links=[link],
        )
        for group in sorted(facts.stale.departments, key=lambda g: g.department_id)
        if group.kpis
    ]


# -- 4. weakest collaboration pairs ---------------------------------------------------------------
def _pair_items(facts: AgendaFacts, rules: AgendaRules) -> list[AgendaItem]:
    if facts.matrix is None:
        return []
    scores = pair_scores(facts.matrix.cells)
    weak = sorted(
        ((key, score) for key, score in scores.items() if score.overall < rules.weak_pair_overall),
        key=lambda entry: (entry[1].overall, entry[0]),
    )[: rules.weakest_pairs]
    items = []
    for key, score in weak:
        previous = facts.previous_pairs.get(key)
        change = None if previous is None else round(score.overall - previous, 4)
        trend = (
            text("agenda.trend_new")
            if change is None
            else text("agenda.trend_down", change=-change)
            if change < 0
            else text("agenda.trend_up", change=change)
            if change > 0
            else text("agenda.trend_same")
        )
        a, b = score.department_ids
        weakest = min(DIMENSIONS, key=lambda d: score.dimensions[d])
        items.append(
            AgendaItem(
                item_id=f"weak_collaboration:{key}",
                kind=AgendaKind.WEAK_COLLABORATION,
                title=text(
                    "agenda.weak_pair", a=_name(facts, a), b=_name(facts, b), overall=score.overall, trend=trend
                ),
                department_ids=[a, b],
                evidence={
                    "overall": score.overall,
                    "previous_overall": previous,
                    "change": change,
                    "weakest_dimension": weakest,
                    "ratings": score.ratings,
                    "weak_pair_overall": rules.weak_pair_overall,
                    **{d: score.dimensions[d] for d in DIMENSIONS},
                },
                links=[
                    Link(service="evaluation", path=_cycle_path(facts, "/collaboration-matrix")),
                    Link(service="results", path=_cycle_path(facts, "/collaboration-report")),
                ],
            )
        )
    return items


# -- 5. calibration -------------------------------------------------------------------------------
def _calibration_items(facts: AgendaFacts) -> list[AgendaItem]:
    items: list[AgendaItem] = []
    if facts.distribution is not None and facts.distribution.violations:
        violations = facts.distribution.violations
        items.append(
            AgendaItem(
                item_id="calibration_distribution",
                kind=AgendaKind.CALIBRATION_DISTRIBUTION,
                title=text("agenda.distribution", violations="; ".join(violations)),
                evidence={"total": facts.distribution.total, "violations": list(violations)},
                links=[Link(service="evaluation", path=_cycle_path(facts, "/calibration/distribution"))],
            )
        )
    if facts.deviation is None:
        return items
    link = Link(service="evaluation", path=_cycle_path(facts, "/calibration/deviation"))
    groups = [("department", g) for g in facts.deviation.by_department] + [
        ("manager", g) for g in facts.deviation.by_manager
    ]
    for group_kind, group in groups:
        if group.flag not in ("lenient", "strict"):
            continue
        name = _name(facts, group.group_id) if group_kind == "department" else group.group_id
        items.append(
            AgendaItem(
                item_id=f"rater_deviation:{group_kind}:{group.group_id}",
                kind=AgendaKind.RATER_DEVIATION,
                title=text("agenda.rater", group=name, flag=term(group.flag), mean=group.mean, z=group.z_score),
                department_ids=[group.group_id] if group_kind == "department" else [],
                evidence={
                    "group": group_kind,
                    "group_id": group.group_id,
                    "flag": group.flag,
                    "mean": group.mean,
                    "company_mean": facts.deviation.company_mean,
                    "z_score": group.z_score,
                    "z_threshold": facts.deviation.z_threshold,
                    "count": group.count,
                },
                links=[link],
            )
        )
    return items


# -- 6. open appeals ------------------------------------------------------------------------------
def _appeal_items(facts: AgendaFacts) -> list[AgendaItem]:
    open_appeals = [a for a in facts.appeals or [] if a.open]
    if not open_appeals:
        return []
    overdue = [a for a in open_appeals if a.hr_due_at <= facts.held_at]
    departments = sorted({a.department_id for a in open_appeals})
    return [
        AgendaItem(
            item_id="open_appeals",
            kind=AgendaKind.OPEN_APPEALS,
            title=text("agenda.open_appeals", count=len(open_appeals), overdue=len(overdue)),
            department_ids=departments,
            evidence={
                "open": len(open_appeals),
                "overdue": len(overdue),
                "appeal_ids": [a.id for a in open_appeals],
            },
            links=[Link(service="feedback", path=_cycle_path(facts, "/appeals"))],
        )
    ]


# -- 7. overdue decisions -------------------------------------------------------------------------
def _decision_items(facts: AgendaFacts) -> list[AgendaItem]:
    return [
        AgendaItem(
            item_id=f"overdue_decision:{d.decision_id}",
            kind=AgendaKind.OVERDUE_DECISION,
            title=text("agenda.overdue_decision", title=d.title, owner=d.owner_id, due=d.due_at.date().isoformat()),
            evidence={"decision_id": d.decision_id, "owner_id": d.owner_id, "due_at": d.due_at.isoformat()},
            links=[Link(service="committee", path=f"/v1/decisions/{d.decision_id}")],
        )
        for d in sorted(facts.decisions, key=lambda d: (d.due_at, d.decision_id))
        if d.due_at <= facts.held_at
    ]
