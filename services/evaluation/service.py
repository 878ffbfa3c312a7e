"""Domain rules of the evaluation service, as keyword-only functions over a session.

Routes call these and commit nothing themselves; each mutating function stages its
outbox event in the caller's transaction and the route commits once. Scoring maths
lives in ``scoring.py`` (pure); this module loads inputs, applies the rules on who
may do what, and stores results and the calibration audit trail.
"""

from __future__ import annotations

import json
import statistics
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import combinations
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, false, func, not_, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingItem, PendingReport, Stage
from contracts.evaluation import (
    COMPONENTS,
    CalibrationAdjustment,
    CollaborationCell,
    CollaborationMatrix,
    CycleResults,
    EmployeeResult,
    LookupRow,
    Relation,
    ScoringConfig,
)
from contracts.goals import Direction, ExportedGoal, GoalExport
from contracts.tracking import ProgressExport
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.common.participants import OrgView, load_org
from services.evaluation.models import (
    EvaluationAdjustment,
    EvaluationAssignment,
    EvaluationCollaborationLink,
    EvaluationCollaborationRating,
    EvaluationCycleState,
    EvaluationDepartment,
    EvaluationInput,
    EvaluationOutbox,
    EvaluationParticipant,
    EvaluationResult,
)
from services.evaluation.schemas import (
    AssignmentsGenerated,
    CollaborationLinkRead,
    ComputeSummary,
    DeviationReport,
    RelationSummary,
    ResultRead,
    ReviewSummary,
    WhatIfChange,
    WhatIfRequest,
    WhatIfResult,
)
from services.evaluation.scoring import (
    DistributionReport,
    FinalScore,
    FormulaError,
    GoalScore,
    band_for,
    deviation_report,
    distribution_report,
    final_score,
    goal_attainment,
    goal_score,
    parse_formula,
    scale_value,
)

__all__ = [
    "ANONYMOUS_RELATIONS",
    "as_utc",
    "as_utc_or_none",
    "CycleInputs",
    "EmployeeScore",
    "adjust_rating",
    "appeal_adjustment",
    "close_calibration",
    "collaboration_links",
    "collaboration_matrix",
    "compute_scores",
    "declare_collaboration",
    "deviation",
    "distribution",
    "final_results",
    "generate_assignments",
    "goal_breakdown",
    "get_assignment",
    "list_adjustments",
    "list_assignments",
    "list_results",
    "load_config",
    "nominate_rater",
    "org_for",
    "pending_report",
    "put_actuals",
    "put_config",
    "put_goals",
    "rate_collaboration",
    "read_result",
    "review_summary",
    "score_cycle",
    "submit_review",
    "what_if",
]

SERVICE = "evaluation"
ANONYMOUS_RELATIONS = frozenset({Relation.PEER.value, Relation.CROSS_DEPARTMENT.value})
COLLABORATION_SCALE = (1.0, 5.0)


def _now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    """SQLite hands timestamps back without their zone; they were written in UTC."""
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def as_utc_or_none(value: datetime | None) -> datetime | None:
    return None if value is None else as_utc(value)


# -- inputs -----------------------------------------------------------------------------------
async def org_for(session: AsyncSession, cycle_id: str) -> OrgView:
    return await load_org(session, EvaluationParticipant, EvaluationDepartment, cycle_id)


async def _store_input(session: AsyncSession, *, cycle_id: str, kind: str, payload: str, actor: str) -> None:
    row = await session.get(EvaluationInput, (cycle_id, kind))
    if row is None:
        session.add(
            EvaluationInput(cycle_id=cycle_id, kind=kind, payload=payload, received_at=_now(), received_by=actor)
        )
    else:
        row.payload, row.received_at, row.received_by = payload, _now(), actor


async def _load_input(session: AsyncSession, cycle_id: str, kind: str) -> str | None:
    row = await session.get(EvaluationInput, (cycle_id, kind))
    return None if row is None else row.payload


async def _state(session: AsyncSession, cycle_id: str) -> EvaluationCycleState:
    state = await session.get(EvaluationCycleState, cycle_id)
    if state is None:
        state = EvaluationCycleState(cycle_id=cycle_id)
        session.add(state)
    return state


async def _ensure_open(session: AsyncSession, cycle_id: str, what: str) -> EvaluationCycleState:
    state = await _state(session, cycle_id)
    if state.calibration_closed_at is not None:
        raise DomainError(f"calibration of cycle {cycle_id!r} is closed; {what} is no longer possible", status_code=409)
    return state


def _check_cycle(url_cycle_id: str, body_cycle_id: str) -> None:
    if url_cycle_id != body_cycle_id:
        raise DomainError(
            f"the body is for cycle {body_cycle_id!r} but the URL names {url_cycle_id!r}", field="cycle_id"
        )


def _validate_goal(goal: ExportedGoal, index: int) -> None:
    sign = 1.0 if goal.direction == Direction.HIGHER_IS_BETTER else -1.0
    where = f"goals[{index}] ({goal.goal_id})"
    better = "above" if sign > 0 else "below"
    if sign * (goal.target_value - goal.start_value) < 0:
        raise DomainError(
            f"{where}: target_value must not be {'below' if sign > 0 else 'above'} start_value "
            f"for a {goal.direction.value} goal",
            field=f"goals.{index}.target_value",
        )
    if goal.threshold_value is not None and sign * goal.threshold_value >= sign * goal.target_value:
        raise DomainError(
            f"{where}: threshold_value must be worse than target_value (for {goal.direction.value}, "
            f"the target must be {better} the threshold)",
            field=f"goals.{index}.threshold_value",
        )
    if goal.stretch_value is not None and sign * goal.stretch_value <= sign * goal.target_value:
        raise DomainError(
            f"{where}: stretch_value must be {better} target_value for a {goal.direction.value} goal",
            field=f"goals.{index}.stretch_value",
        )


async def put_goals(session: AsyncSession, *, cycle_id: str, export: GoalExport, actor: str) -> int:
    _check_cycle(cycle_id, export.cycle_id)
    await _ensure_open(session, cycle_id, "replacing goals")
    seen: set[str] = set()
    for index, goal in enumerate(export.goals):
        if goal.goal_id in seen:
            raise DomainError(f"goal id {goal.goal_id!r} appears twice", field=f"goals.{index}.goal_id")
        seen.add(goal.goal_id)
        _validate_goal(goal, index)
    await _store_input(session, cycle_id=cycle_id, kind="goals", payload=export.model_dump_json(), actor=actor)
    await session.commit()
    return len(export.goals)


async def put_actuals(session: AsyncSession, *, cycle_id: str, export: ProgressExport, actor: str) -> int:
    _check_cycle(cycle_id, export.cycle_id)
    await _ensure_open(session, cycle_id, "replacing actuals")
    await _store_input(session, cycle_id=cycle_id, kind="actuals", payload=export.model_dump_json(), actor=actor)
    await session.commit()
    return len(export.actuals)


def _validate_formula(config: ScoringConfig) -> None:
    try:
        parse_formula(config.formula)
    except FormulaError as exc:
        raise DomainError(str(exc), field="formula") from exc


async def put_config(session: AsyncSession, *, cycle_id: str, config: ScoringConfig, actor: str) -> None:
    _validate_formula(config)
    await _ensure_open(session, cycle_id, "changing the scoring configuration")
    await _store_input(session, cycle_id=cycle_id, kind="config", payload=config.model_dump_json(), actor=actor)
    await session.commit()


async def load_config(session: AsyncSession, cycle_id: str) -> ScoringConfig:
    payload = await _load_input(session, cycle_id, "config")
    if payload is None:
        raise DomainError(
            f"cycle {cycle_id!r} has no scoring configuration yet; PUT /v1/cycles/{cycle_id}/config first",
            status_code=409,
        )
    return ScoringConfig.model_validate_json(payload)


async def _load_goals(session: AsyncSession, cycle_id: str) -> list[ExportedGoal]:
    payload = await _load_input(session, cycle_id, "goals")
    return [] if payload is None else GoalExport.model_validate_json(payload).goals


async def _load_actuals(session: AsyncSession, cycle_id: str) -> dict[str, float | None]:
    payload = await _load_input(session, cycle_id, "actuals")
    if payload is None:
        return {}
    return {a.kpi_id: a.actual_value for a in ProgressExport.model_validate_json(payload).actuals}


def _require_participant(org: OrgView, employee_id: str, field: str) -> None:
    if employee_id not in org.participants:
        raise DomainError(f"{field} {employee_id!r} does not take part in this cycle", status_code=404, field=field)


# -- cross-department links -------------------------------------------------------------------
async def _commit_unique(session: AsyncSession, conflict: str) -> None:
    """Commit; a unique-constraint race becomes a 409 with ``conflict`` as the message."""
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise DomainError(conflict, status_code=409) from exc


def _pair(a: str, b: str) -> tuple[str, str]:
    return (a, b) if a < b else (b, a)


async def collaboration_links(session: AsyncSession, *, cycle_id: str, org: OrgView) -> list[CollaborationLinkRead]:
    """Department pairs that may rate each other: shared goals plus declared collaborations."""
    links: dict[tuple[str, str], str] = {}
    for goal in await _load_goals(session, cycle_id):
        departments = set(goal.contributing_department_ids)
        if goal.department_id:
            departments.add(goal.department_id)
        owner = org.participants.get(goal.employee_id) if goal.employee_id else None
        if owner is not None and departments:
            departments.add(owner.department_id)
        for a, b in combinations(sorted(departments), 2):
            links.setdefault((a, b), "shared_goal")
    declared = await session.scalars(
        select(EvaluationCollaborationLink).where(EvaluationCollaborationLink.cycle_id == cycle_id)
    )
    for link in declared:
        links[(link.department_a, link.department_b)] = "declared"
    return [CollaborationLinkRead(department_a=a, department_b=b, source=s) for (a, b), s in sorted(links.items())]


async def _linked(session: AsyncSession, *, cycle_id: str, org: OrgView, a: str, b: str) -> bool:
    pair = _pair(a, b)
    return any(
        (link.department_a, link.department_b) == pair
        for link in await collaboration_links(session, cycle_id=cycle_id, org=org)
    )


def _heads_department(principal: Principal, org: OrgView, department_id: str) -> bool:
    if principal.has(Role.HR_ADMIN):
        return True
    if not principal.has(Role.DEPT_HEAD):
        return False
    departments = org.headed_by(principal.employee_id) if principal.employee_id else set()
    if principal.department_id:
        departments |= org.department_tree(principal.department_id)
    return department_id in departments


async def declare_collaboration(
    session: AsyncSession, *, cycle_id: str, principal: Principal, department_a: str, department_b: str
) -> CollaborationLinkRead:
    org = await org_for(session, cycle_id)
    for field, dep in (("department_a", department_a), ("department_b", department_b)):
        if dep not in org.departments:
            raise DomainError(f"{field} {dep!r} is not a department of this cycle", status_code=404, field=field)
    if department_a == department_b:
        raise DomainError("a department cannot declare collaboration with itself", field="department_b")
    if not (_heads_department(principal, org, department_a) or _heads_department(principal, org, department_b)):
        raise DomainError("only HR or the head of one of the two departments may declare it", status_code=403)
    await _ensure_open(session, cycle_id, "declaring collaboration")
    a, b = _pair(department_a, department_b)
    if await session.get(EvaluationCollaborationLink, (cycle_id, a, b)) is None:
        session.add(
            EvaluationCollaborationLink(
                cycle_id=cycle_id, department_a=a, department_b=b, declared_by=principal.sub, created_at=_now()
            )
        )
    await session.commit()
    return CollaborationLinkRead(department_a=a, department_b=b, source="declared")


# -- assignments and reviews ------------------------------------------------------------------
async def _count_assignments(session: AsyncSession, *, cycle_id: str, reviewee_id: str, relation: str) -> int:
    count = await session.scalar(
        select(func.count()).where(
            EvaluationAssignment.cycle_id == cycle_id,
            EvaluationAssignment.reviewee_id == reviewee_id,
            EvaluationAssignment.relation == relation,
        )
    )
    return int(count or 0)


def _new_assignment(
    *, cycle_id: str, reviewee_id: str, rater_id: str, relation: str, actor: str
) -> EvaluationAssignment:
    return EvaluationAssignment(
        assignment_id=str(uuid.uuid4()),
        cycle_id=cycle_id,
        reviewee_id=reviewee_id,
        rater_id=rater_id,
        relation=relation,
        status="pending",
        nominated_by=actor,
        created_at=_now(),
    )


async def generate_assignments(session: AsyncSession, *, cycle_id: str, actor: str) -> AssignmentsGenerated:
    """Create the self review of everyone and the manager review of everyone with a manager."""
    await _ensure_open(session, cycle_id, "creating assignments")
    org = await org_for(session, cycle_id)
    if not org.participants:
        raise DomainError(f"cycle {cycle_id!r} has no participants yet; PUT the org snapshot first", status_code=409)
    existing = {
        (a.reviewee_id, a.rater_id, a.relation)
        for a in await session.scalars(
            select(EvaluationAssignment).where(
                EvaluationAssignment.cycle_id == cycle_id,
                EvaluationAssignment.relation.in_([Relation.SELF.value, Relation.MANAGER.value]),
            )
        )
    }
    wanted = [(p.employee_id, p.employee_id, Relation.SELF.value) for p in org.participants.values()]
    wanted += [
        (p.employee_id, p.manager_id, Relation.MANAGER.value)
        for p in org.participants.values()
        if p.manager_id and p.manager_id in org.participants and p.manager_id != p.employee_id
    ]
    created = 0
    for reviewee, rater, relation in wanted:
        if (reviewee, rater, relation) not in existing:
            session.add(
                _new_assignment(cycle_id=cycle_id, reviewee_id=reviewee, rater_id=rater, relation=relation, actor=actor)
            )
            created += 1
    await session.commit()
    return AssignmentsGenerated(cycle_id=cycle_id, created=created, existing=len(wanted) - created)


async def nominate_rater(
    session: AsyncSession,
    *,
    cycle_id: str,
    principal: Principal,
    reviewee_id: str,
    rater_id: str,
    relation: Relation,
) -> EvaluationAssignment:
    """A manager nominates a rater for one of their reports (HR for anyone)."""
    org = await org_for(session, cycle_id)
    _require_participant(org, reviewee_id, "reviewee_id")
    # Scope first: nothing below may tell a caller about raters of someone they do not manage.
    if principal.employee_id == reviewee_id:
        raise DomainError("you cannot nominate your own raters", status_code=403, field="reviewee_id")
    if not principal.has(Role.HR_ADMIN):
        if relation not in (Relation.PEER, Relation.CROSS_DEPARTMENT):
            raise DomainError(
                "managers nominate peer and cross_department raters; self and manager reviews are generated",
                field="relation",
            )
        if not principal.employee_id or reviewee_id not in org.reports_of(principal.employee_id):
            raise DomainError(
                f"you can nominate raters only for your reports; {reviewee_id!r} is not one",
                status_code=403,
                field="reviewee_id",
            )
    _require_participant(org, rater_id, "rater_id")
    if rater_id == reviewee_id and relation != Relation.SELF:
        raise DomainError("nobody rates themselves outside the self review", field="rater_id")
    if relation == Relation.SELF and rater_id != reviewee_id:
        raise DomainError("a self review is written by the reviewee", field="rater_id")
    reviewee, rater = org.participants[reviewee_id], org.participants[rater_id]
    if relation == Relation.MANAGER and reviewee.manager_id != rater_id:
        raise DomainError(f"{rater_id!r} is not the manager of {reviewee_id!r}", field="rater_id")
    if relation == Relation.CROSS_DEPARTMENT:
        if rater.department_id == reviewee.department_id:
            raise DomainError(
                "a cross_department rater must come from another department; use relation 'peer'", field="rater_id"
            )
        if not await _linked(session, cycle_id=cycle_id, org=org, a=rater.department_id, b=reviewee.department_id):
            raise DomainError(
                f"departments {rater.department_id!r} and {reviewee.department_id!r} share no goal and have no "
                "declared collaboration; declare one at POST /v1/cycles/{id}/collaborations first",
                field="rater_id",
            )
    await _ensure_open(session, cycle_id, "nominating raters")
    config = await load_config(session, cycle_id)
    limit = config.rater_limits.get(relation)
    count = await _count_assignments(session, cycle_id=cycle_id, reviewee_id=reviewee_id, relation=relation.value)
    if limit is not None and count >= limit.max:
        raise DomainError(
            f"{reviewee_id!r} already has {count} {relation.value} rater(s); the maximum is {limit.max}",
            status_code=409,
            field="relation",
        )
    duplicate = await session.scalar(
        select(EvaluationAssignment).where(
            EvaluationAssignment.cycle_id == cycle_id,
            EvaluationAssignment.reviewee_id == reviewee_id,
            EvaluationAssignment.rater_id == rater_id,
            EvaluationAssignment.relation == relation.value,
        )
    )
    if duplicate is not None:
        raise DomainError(f"{rater_id!r} is already a {relation.value} rater of {reviewee_id!r}", status_code=409)
    assignment = _new_assignment(
        cycle_id=cycle_id, reviewee_id=reviewee_id, rater_id=rater_id, relation=relation.value, actor=principal.sub
    )
    session.add(assignment)
    await _commit_unique(session, f"{rater_id!r} is already a {relation.value} rater of {reviewee_id!r}")
    return assignment


def _visibility_clause(principal: Principal, visible: set[str] | None) -> Any:
    """Rows the caller may see: their own as rater; rows about people they can see, except
    the peer and cross-department rows about themselves (those would name their raters)."""
    me = principal.employee_id
    about_others: Any = EvaluationAssignment.reviewee_id.in_(visible) if visible is not None else True
    if visible is not None and not visible:
        about_others = false()
    if me:
        hidden = and_(
            EvaluationAssignment.reviewee_id == me, EvaluationAssignment.relation.in_(sorted(ANONYMOUS_RELATIONS))
        )
        return or_(EvaluationAssignment.rater_id == me, and_(about_others, not_(hidden)))
    return about_others


async def list_assignments(
    session: AsyncSession,
    *,
    cycle_id: str,
    principal: Principal,
    reviewee_id: str | None,
    rater_id: str | None,
    relation: Relation | None,
    status: str | None,
    limit: int,
    offset: int,
) -> list[EvaluationAssignment]:
    org = await org_for(session, cycle_id)
    query = select(EvaluationAssignment).where(
        EvaluationAssignment.cycle_id == cycle_id, _visibility_clause(principal, org.visible_employee_ids(principal))
    )
    if reviewee_id:
        query = query.where(EvaluationAssignment.reviewee_id == reviewee_id)
    if rater_id:
        query = query.where(EvaluationAssignment.rater_id == rater_id)
    if relation:
        query = query.where(EvaluationAssignment.relation == relation.value)
    if status:
        query = query.where(EvaluationAssignment.status == status)
    query = query.order_by(EvaluationAssignment.created_at, EvaluationAssignment.assignment_id)
    return list((await session.scalars(query.limit(limit).offset(offset))).all())


def _may_read(principal: Principal, org: OrgView, row: EvaluationAssignment) -> bool:
    me = principal.employee_id
    if me is not None and row.rater_id == me:
        return True
    if me is not None and row.reviewee_id == me:
        return row.relation not in ANONYMOUS_RELATIONS
    return org.can_see(principal, row.reviewee_id)


async def get_assignment(
    session: AsyncSession, *, cycle_id: str, assignment_id: str, principal: Principal
) -> EvaluationAssignment:
    row = await session.get(EvaluationAssignment, assignment_id)
    org = await org_for(session, cycle_id)
    # 404 for rows the caller may not read, so their existence is not revealed either.
    if row is None or row.cycle_id != cycle_id or not _may_read(principal, org, row):
        raise DomainError(f"assignment {assignment_id!r} not found in cycle {cycle_id!r}", status_code=404)
    return row


async def submit_review(
    session: AsyncSession,
    *,
    cycle_id: str,
    assignment_id: str,
    principal: Principal,
    ratings: dict[str, float],
    comment: str | None,
) -> EvaluationAssignment:
    row = await session.get(EvaluationAssignment, assignment_id)
    if row is None or row.cycle_id != cycle_id or row.rater_id != principal.employee_id:
        raise DomainError(
            f"assignment {assignment_id!r} not found among your reviews in cycle {cycle_id!r}", status_code=404
        )
    if row.status == "submitted":
        raise DomainError("this review was already submitted", status_code=409)
    await _ensure_open(session, cycle_id, "submitting reviews")
    config = await load_config(session, cycle_id)
    competencies = {c.competency_id: c for c in config.competencies}
    unknown = sorted(set(ratings) - set(competencies))
    if unknown:
        raise DomainError(f"unknown competencies {unknown}; the form has {sorted(competencies)}", field="ratings")
    missing = sorted(set(competencies) - set(ratings))
    if missing:
        raise DomainError(f"rate every competency; missing {missing}", field="ratings")
    for key, value in ratings.items():
        c = competencies[key]
        if not c.scale_min <= value <= c.scale_max:
            raise DomainError(
                f"rating of {key!r} must be between {c.scale_min:g} and {c.scale_max:g}, got {value:g}",
                field=f"ratings.{key}",
            )
    row.ratings = json.dumps(ratings, sort_keys=True)
    row.comment = comment
    row.status = "submitted"
    row.submitted_at = _now()
    # No rater id in the event: it travels to systems that may show it to the reviewee.
    add_event(
        session,
        EvaluationOutbox,
        new_event(
            service=SERVICE,
            type="ReviewSubmitted",
            cycle_id=cycle_id,
            subject_id=assignment_id,
            payload={"relation": row.relation, "reviewee_id": row.reviewee_id},
        ),
    )
    await session.commit()
    return row


def _review_score(ratings: dict[str, float], config: ScoringConfig) -> float | None:
    scale = config.rating_scale
    values = [
        scale_value(ratings[c.competency_id], c.scale_min, c.scale_max, scale.min, scale.max)
        for c in config.competencies
        if c.competency_id in ratings
    ]
    return statistics.fmean(values) if values else None


async def _submitted_reviews(session: AsyncSession, cycle_id: str) -> list[EvaluationAssignment]:
    return list(
        (
            await session.scalars(
                select(EvaluationAssignment).where(
                    EvaluationAssignment.cycle_id == cycle_id, EvaluationAssignment.status == "submitted"
                )
            )
        ).all()
    )


async def review_summary(
    session: AsyncSession, *, cycle_id: str, employee_id: str, principal: Principal
) -> ReviewSummary:
    """Aggregates per relation for one reviewee; anonymous relations only at the threshold."""
    org = await org_for(session, cycle_id)
    if employee_id not in org.participants or not org.can_see(principal, employee_id):
        raise DomainError(f"employee {employee_id!r} not found in cycle {cycle_id!r}", status_code=404)
    config = await load_config(session, cycle_id)
    rows = (
        await session.scalars(
            select(EvaluationAssignment).where(
                EvaluationAssignment.cycle_id == cycle_id, EvaluationAssignment.reviewee_id == employee_id
            )
        )
    ).all()
    relations = []
    for relation in Relation:
        of_relation = [r for r in rows if r.relation == relation.value]
        submitted = [r for r in of_relation if r.status == "submitted" and r.ratings]
        threshold = config.peer_anonymity_threshold if relation.value in ANONYMOUS_RELATIONS else 1
        if len(submitted) < threshold:
            reason = (
                f"shown once at least {threshold} ratings are submitted"
                if relation.value in ANONYMOUS_RELATIONS
                else "not submitted yet"
            )
            relations.append(
                RelationSummary(
                    relation=relation,
                    assigned=len(of_relation),
                    submitted=len(submitted),
                    visible=False,
                    hidden_reason=reason,
                )
            )
            continue
        parsed = [json.loads(r.ratings or "{}") for r in submitted]
        scores = [s for s in (_review_score(p, config) for p in parsed) if s is not None]
        per_competency = {
            c.competency_id: round(statistics.fmean([p[c.competency_id] for p in parsed if c.competency_id in p]), 4)
            for c in config.competencies
            if any(c.competency_id in p for p in parsed)
        }
        relations.append(
            RelationSummary(
                relation=relation,
                assigned=len(of_relation),
                submitted=len(submitted),
                visible=True,
                score=round(statistics.fmean(scores), 4) if scores else None,
                competencies=per_competency,
                comments=sorted(r.comment for r in submitted if r.comment),
            )
        )
    return ReviewSummary(
        cycle_id=cycle_id,
        employee_id=employee_id,
        anonymity_threshold=config.peer_anonymity_threshold,
        relations=relations,
    )


# -- collaboration ratings --------------------------------------------------------------------
async def rate_collaboration(
    session: AsyncSession,
    *,
    cycle_id: str,
    principal: Principal,
    rater_department_id: str,
    rated_department_id: str,
    responsiveness: int,
    data_quality: int,
    reliability: int,
    comment: str | None,
) -> EvaluationCollaborationRating:
    org = await org_for(session, cycle_id)
    for field, dep in (("rater_department_id", rater_department_id), ("rated_department_id", rated_department_id)):
        if dep not in org.departments:
            raise DomainError(f"{field} {dep!r} is not a department of this cycle", status_code=404, field=field)
    if rater_department_id == rated_department_id:
        raise DomainError("a department does not rate itself", field="rated_department_id")
    if not _heads_department(principal, org, rater_department_id):
        raise DomainError(
            f"only the head of {rater_department_id!r} (or HR) may rate on its behalf",
            status_code=403,
            field="rater_department_id",
        )
    if not await _linked(session, cycle_id=cycle_id, org=org, a=rater_department_id, b=rated_department_id):
        raise DomainError(
            f"{rater_department_id!r} and {rated_department_id!r} share no goal and have no declared "
            "collaboration; a department rates only the departments it works with",
            field="rated_department_id",
        )
    await _ensure_open(session, cycle_id, "rating collaboration")
    row = await session.get(EvaluationCollaborationRating, (cycle_id, rater_department_id, rated_department_id))
    if row is None:
        row = EvaluationCollaborationRating(
            cycle_id=cycle_id, rater_department_id=rater_department_id, rated_department_id=rated_department_id
        )
        session.add(row)
    row.responsiveness, row.data_quality, row.reliability = responsiveness, data_quality, reliability
    row.comment, row.rated_by, row.updated_at = comment, principal.sub, _now()
    await session.commit()
    return row


async def _collaboration_rows(session: AsyncSession, cycle_id: str) -> list[EvaluationCollaborationRating]:
    return list(
        (
            await session.scalars(
                select(EvaluationCollaborationRating).where(EvaluationCollaborationRating.cycle_id == cycle_id)
            )
        ).all()
    )


async def collaboration_matrix(session: AsyncSession, *, cycle_id: str) -> CollaborationMatrix:
    cells: dict[tuple[str, str], list[EvaluationCollaborationRating]] = defaultdict(list)
    for row in await _collaboration_rows(session, cycle_id):
        cells[(row.rater_department_id, row.rated_department_id)].append(row)
    out = []
    for (rater, rated), rows in sorted(cells.items()):
        responsiveness = statistics.fmean(r.responsiveness for r in rows)
        data_quality = statistics.fmean(r.data_quality for r in rows)
        reliability = statistics.fmean(r.reliability for r in rows)
        out.append(
            CollaborationCell(
                rater_department_id=rater,
                rated_department_id=rated,
                responsiveness=round(responsiveness, 4),
                data_quality=round(data_quality, 4),
                reliability=round(reliability, 4),
                overall=round((responsiveness + data_quality + reliability) / 3, 4),
                ratings=len(rows),
                comments=sorted(r.comment for r in rows if r.comment),
            )
        )
    return CollaborationMatrix(cycle_id=cycle_id, cells=out)


# -- scoring ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class EmployeeScore:
    employee_id: str
    goals: GoalScore | None
    final: FinalScore


@dataclass(frozen=True)
class CycleInputs:
    org: OrgView
    goals: list[ExportedGoal]
    actuals: dict[str, float | None]
    reviews: list[EvaluationAssignment]
    collaboration: dict[str, float]


async def _load_inputs(session: AsyncSession, cycle_id: str) -> CycleInputs:
    org = await org_for(session, cycle_id)
    if not org.participants:
        raise DomainError(f"cycle {cycle_id!r} has no participants yet; PUT the org snapshot first", status_code=409)
    received: dict[str, list[float]] = defaultdict(list)
    for row in await _collaboration_rows(session, cycle_id):
        received[row.rated_department_id].append((row.responsiveness + row.data_quality + row.reliability) / 3)
    return CycleInputs(
        org=org,
        goals=await _load_goals(session, cycle_id),
        actuals=await _load_actuals(session, cycle_id),
        reviews=await _submitted_reviews(session, cycle_id),
        collaboration={dep: statistics.fmean(values) for dep, values in received.items()},
    )


def score_cycle(inputs: CycleInputs, config: ScoringConfig) -> dict[str, EmployeeScore]:
    """Score every participant from the loaded inputs (pure: nothing is written)."""
    formula = parse_formula(config.formula)
    scale = config.rating_scale
    goals_by_owner: dict[str, list[ExportedGoal]] = defaultdict(list)
    for goal in inputs.goals:
        if goal.employee_id:
            goals_by_owner[goal.employee_id].append(goal)
    reviews: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in inputs.reviews:
        score = _review_score(json.loads(row.ratings or "{}"), config)
        if score is not None:
            reviews[(row.reviewee_id, row.relation)].append(score)
    out: dict[str, EmployeeScore] = {}
    for employee_id, person in sorted(inputs.org.participants.items()):
        values: dict[str, float | None] = dict.fromkeys(COMPONENTS)
        statuses: dict[str, str] = {}
        counts: dict[str, int] = {}
        goals: GoalScore | None = None
        own_goals = goals_by_owner.get(employee_id, [])
        if own_goals:
            goals = goal_score(
                [
                    goal_attainment(
                        g,
                        actual=inputs.actuals.get(g.kpi_id) if g.kpi_id else None,
                        cap=config.attainment_cap,
                        scale=scale,
                        lookup=_lookup_for(config, g),
                    )
                    for g in own_goals
                ]
            )
            if goals.score is not None:
                values["goals"] = scale_value(goals.score, 0.0, config.attainment_cap, scale.min, scale.max)
        for relation in Relation:
            scores = reviews.get((employee_id, relation.value), [])
            counts[relation.value] = len(scores)
            if not scores:
                continue
            if relation.value in ANONYMOUS_RELATIONS and len(scores) < config.peer_anonymity_threshold:
                statuses[relation.value] = "below_anonymity_threshold"
                continue
            values[relation.value] = statistics.fmean(scores)
        collaboration = inputs.collaboration.get(person.department_id)
        if collaboration is not None:
            values["collaboration"] = scale_value(collaboration, *COLLABORATION_SCALE, scale.min, scale.max)
        final = final_score(
            formula=formula,
            values=values,
            statuses=statuses,
            ratings=counts,
            weights=config.component_weights,
            scale=scale,
        )
        hidden = [n for n, s in statuses.items() if s == "below_anonymity_threshold"]
        if hidden:
            final.notes.append(
                f"{', '.join(hidden)} left out: fewer than {config.peer_anonymity_threshold} ratings submitted"
            )
        if goals is not None:
            final.notes.extend(goals.notes)
        out[employee_id] = EmployeeScore(employee_id=employee_id, goals=goals, final=final)
    return out


async def goal_breakdown(session: AsyncSession, *, cycle_id: str, employee_id: str, principal: Principal) -> GoalScore:
    """Live goal attainment of one employee from the current goals, actuals and config."""
    org = await org_for(session, cycle_id)
    if employee_id not in org.participants or not org.can_see(principal, employee_id):
        raise DomainError(f"employee {employee_id!r} not found in cycle {cycle_id!r}", status_code=404)
    config = await load_config(session, cycle_id)
    actuals = await _load_actuals(session, cycle_id)
    goals = [g for g in await _load_goals(session, cycle_id) if g.employee_id == employee_id]
    return goal_score(
        [
            goal_attainment(
                g,
                actual=actuals.get(g.kpi_id) if g.kpi_id else None,
                cap=config.attainment_cap,
                scale=config.rating_scale,
                lookup=_lookup_for(config, g),
            )
            for g in goals
        ]
    )


def _lookup_for(config: ScoringConfig, goal: ExportedGoal) -> list[LookupRow] | None:
    """A goal's lookup table: by goal id first, then by KPI id."""
    return config.lookup_tables.get(goal.goal_id) or (config.lookup_tables.get(goal.kpi_id) if goal.kpi_id else None)


def _breakdown_json(score: EmployeeScore) -> str:
    return json.dumps(
        {
            "goals": score.goals.model_dump(mode="json") if score.goals else None,
            "components": [c.model_dump(mode="json") for c in score.final.components],
            "notes": score.final.notes,
        }
    )


async def _results(session: AsyncSession, cycle_id: str) -> list[EvaluationResult]:
    return list(
        (
            await session.scalars(
                select(EvaluationResult)
                .where(EvaluationResult.cycle_id == cycle_id)
                .order_by(EvaluationResult.employee_id)
            )
        ).all()
    )


async def compute_scores(session: AsyncSession, *, cycle_id: str) -> ComputeSummary:
    """(Re)compute every participant's score; calibrated scores are kept, computed ones refreshed."""
    state = await _ensure_open(session, cycle_id, "recomputing scores")
    config = await load_config(session, cycle_id)
    inputs = await _load_inputs(session, cycle_id)
    scores = score_cycle(inputs, config)
    existing = {r.employee_id: r for r in await _results(session, cycle_id)}
    now = _now()
    kept = 0
    for employee_id, score in scores.items():
        person = inputs.org.participants[employee_id]
        row = existing.pop(employee_id, None)
        if row is None:
            row = EvaluationResult(cycle_id=cycle_id, employee_id=employee_id, calibrated=False)
            session.add(row)
        row.department_id, row.manager_id = person.department_id, person.manager_id
        row.computed_score, row.computed_rating = score.final.score, score.final.rating
        row.breakdown, row.computed_at = _breakdown_json(score), now
        if row.calibrated:
            kept += 1
        else:
            row.final_score, row.rating = score.final.score, score.final.rating
    for stale in existing.values():  # no longer in the snapshot
        await session.delete(stale)
    state.scored_at = now
    ratings = [s.final.rating for s in scores.values() if s.final.rating is not None]
    unscored = sorted(e for e, s in scores.items() if s.final.score is None)
    await session.commit()
    return ComputeSummary(
        cycle_id=cycle_id,
        scored=len(scores) - len(unscored),
        unscored=unscored[:100],
        kept_calibrated=kept,
        distribution=distribution_report(ratings, scale=config.rating_scale, guideline=config.calibration_guideline),
    )


def _result_read(row: EvaluationResult) -> ResultRead:
    breakdown = json.loads(row.breakdown)
    return ResultRead(
        employee_id=row.employee_id,
        department_id=row.department_id,
        manager_id=row.manager_id,
        computed_score=row.computed_score,
        computed_rating=row.computed_rating,
        final_score=row.final_score,
        rating=row.rating,
        calibrated=row.calibrated,
        goals=GoalScore.model_validate(breakdown["goals"]) if breakdown.get("goals") else None,
        components=breakdown.get("components", []),
        notes=breakdown.get("notes", []),
        computed_at=as_utc(row.computed_at),
    )


async def list_results(
    session: AsyncSession, *, cycle_id: str, principal: Principal, department_id: str | None, limit: int, offset: int
) -> list[ResultRead]:
    org = await org_for(session, cycle_id)
    visible = org.visible_employee_ids(principal)
    me = principal.employee_id
    closed = (await _state(session, cycle_id)).calibration_closed_at is not None
    query = select(EvaluationResult).where(EvaluationResult.cycle_id == cycle_id)
    if visible is not None:
        query = query.where(EvaluationResult.employee_id.in_(visible))
    if me and not closed:  # your own score is not final (nor yours to see) before calibration closes
        query = query.where(EvaluationResult.employee_id != me)
    if department_id:
        query = query.where(EvaluationResult.department_id == department_id)
    rows = await session.scalars(query.order_by(EvaluationResult.employee_id).limit(limit).offset(offset))
    return [_result_read(r) for r in rows]


async def read_result(session: AsyncSession, *, cycle_id: str, employee_id: str, principal: Principal) -> ResultRead:
    org = await org_for(session, cycle_id)
    row = await session.get(EvaluationResult, (cycle_id, employee_id))
    if row is None or not org.can_see(principal, employee_id):
        raise DomainError(f"no result for {employee_id!r} in cycle {cycle_id!r}", status_code=404)
    if principal.employee_id == employee_id and (await _state(session, cycle_id)).calibration_closed_at is None:
        raise DomainError("your result is available once calibration is closed", status_code=409)
    return _result_read(row)


# -- calibration ------------------------------------------------------------------------------
async def distribution(session: AsyncSession, *, cycle_id: str, principal: Principal) -> DistributionReport:
    config = await load_config(session, cycle_id)
    org = await org_for(session, cycle_id)
    visible = org.visible_employee_ids(principal)
    ratings = [
        r.rating
        for r in await _results(session, cycle_id)
        if r.rating is not None and (visible is None or r.employee_id in visible)
    ]
    return distribution_report(ratings, scale=config.rating_scale, guideline=config.calibration_guideline)


async def deviation(session: AsyncSession, *, cycle_id: str, principal: Principal) -> DeviationReport:
    """Department means of computed scores, and each manager's mean manager-review score,
    against the company mean, in company standard deviations (see ``deviation_report``)."""
    config = await load_config(session, cycle_id)
    org = await org_for(session, cycle_id)
    visible = org.visible_employee_ids(principal)
    results = [r for r in await _results(session, cycle_id) if r.computed_score is not None]
    company = [r.computed_score for r in results if r.computed_score is not None]
    by_department: dict[str, list[float]] = defaultdict(list)
    for r in results:
        if r.computed_score is not None:
            by_department[r.department_id].append(r.computed_score)
    manager_reviews = [
        (row.rater_id, score)
        for row in await _submitted_reviews(session, cycle_id)
        if row.relation == Relation.MANAGER.value
        and (score := _review_score(json.loads(row.ratings or "{}"), config)) is not None
    ]
    by_manager: dict[str, list[float]] = defaultdict(list)
    for manager_id, score in manager_reviews:
        by_manager[manager_id].append(score)
    threshold = config.deviation_z_threshold
    departments = deviation_report(by_department, company=company, z_threshold=threshold)
    managers = deviation_report(by_manager, company=[s for _, s in manager_reviews], z_threshold=threshold)
    if visible is not None:  # a department head sees the groups inside their scope
        scoped_departments = {org.participants[e].department_id for e in visible if e in org.participants}
        departments = [d for d in departments if d.group_id in scoped_departments]
        managers = [m for m in managers if m.group_id in visible]
    return DeviationReport(
        cycle_id=cycle_id,
        company_mean=round(statistics.fmean(company), 4) if company else None,
        company_stdev=round(statistics.pstdev(company), 4) if len(company) > 1 else None,
        z_threshold=threshold,
        method=(
            "z = (group mean - company mean) / population standard deviation of the company's scores; "
            f"lenient when z >= {threshold:g}, strict when z <= -{threshold:g}. Departments use computed "
            "final scores; managers use the scores they gave in manager reviews against all manager reviews."
        ),
        by_department=departments,
        by_manager=managers,
    )


def _target(
    config: ScoringConfig, *, current: float | None, new_score: float | None, new_rating: str | None
) -> tuple[float, str]:
    scale = config.rating_scale
    labels = {b.label: b for b in scale.bands}
    if new_rating is not None and new_rating not in labels:
        raise DomainError(f"new_rating {new_rating!r} is not a band; bands are {sorted(labels)}", field="new_rating")
    if new_score is not None:
        if not scale.min <= new_score <= scale.max:
            raise DomainError(
                f"new_score must be on the rating scale {scale.min:g}..{scale.max:g}, got {new_score:g}",
                field="new_score",
            )
        score = round(new_score, 4)
        rating = band_for(score, scale)
        if new_rating is not None and new_rating != rating:
            raise DomainError(f"new_score {score:g} falls in band {rating!r}, not {new_rating!r}", field="new_rating")
        return score, rating
    assert new_rating is not None
    band = labels[new_rating]
    if current is not None and band_for(current, scale) == new_rating:
        return current, new_rating
    return round((band.min + band.max) / 2, 4), new_rating


def _adjustment_read(row: EvaluationAdjustment) -> CalibrationAdjustment:
    return CalibrationAdjustment(
        adjustment_id=row.adjustment_id,
        cycle_id=row.cycle_id,
        employee_id=row.employee_id,
        kind=row.kind,
        before_score=row.before_score,
        before_rating=row.before_rating,
        after_score=row.after_score,
        after_rating=row.after_rating,
        reason=row.reason,
        actor=row.actor,
        appeal_id=row.appeal_id,
        created_at=as_utc(row.created_at),
    )


async def _apply(
    session: AsyncSession,
    *,
    cycle_id: str,
    employee_id: str,
    new_score: float | None,
    new_rating: str | None,
    reason: str,
    actor: str,
    kind: str,
    appeal_id: str | None,
) -> CalibrationAdjustment:
    config = await load_config(session, cycle_id)
    row = await session.get(EvaluationResult, (cycle_id, employee_id))
    if row is None:
        raise DomainError(
            f"{employee_id!r} has no computed score; POST /v1/cycles/{cycle_id}/scores/compute first",
            status_code=409,
            field="employee_id",
        )
    score, rating = _target(config, current=row.final_score, new_score=new_score, new_rating=new_rating)
    adjustment = EvaluationAdjustment(
        cycle_id=cycle_id,
        employee_id=employee_id,
        kind=kind,
        before_score=row.final_score,
        before_rating=row.rating,
        after_score=score,
        after_rating=rating,
        reason=reason,
        actor=actor,
        appeal_id=appeal_id,
        created_at=_now(),
    )
    session.add(adjustment)
    # The final rating itself moves: results, releases and pools all read these columns.
    row.final_score, row.rating, row.calibrated = score, rating, True
    await session.flush()
    add_event(
        session,
        EvaluationOutbox,
        new_event(
            service=SERVICE,
            type="CalibrationAdjusted",
            cycle_id=cycle_id,
            subject_id=employee_id,
            payload={
                "kind": kind,
                "before_score": adjustment.before_score,
                "before_rating": adjustment.before_rating,
                "after_score": score,
                "after_rating": rating,
                "appeal_id": appeal_id,
                "actor": actor,
            },
        ),
    )
    return _adjustment_read(adjustment)


async def adjust_rating(
    session: AsyncSession,
    *,
    cycle_id: str,
    principal: Principal,
    employee_id: str,
    new_score: float | None,
    new_rating: str | None,
    reason: str,
) -> CalibrationAdjustment:
    org = await org_for(session, cycle_id)
    _require_participant(org, employee_id, "employee_id")
    if principal.employee_id == employee_id:
        raise DomainError("you cannot calibrate your own rating", status_code=403, field="employee_id")
    if not org.can_see(principal, employee_id):
        raise DomainError(f"{employee_id!r} is outside your department", status_code=403, field="employee_id")
    if new_score is None and new_rating is None:
        raise DomainError("give new_score or new_rating", field="new_score")
    await _ensure_open(session, cycle_id, "calibration adjustment (use the appeal path)")
    record = await _apply(
        session,
        cycle_id=cycle_id,
        employee_id=employee_id,
        new_score=new_score,
        new_rating=new_rating,
        reason=reason,
        actor=principal.sub,
        kind="calibration",
        appeal_id=None,
    )
    await session.commit()
    return record


async def appeal_adjustment(
    session: AsyncSession,
    *,
    cycle_id: str,
    principal: Principal,
    employee_id: str,
    appeal_id: str,
    new_score: float | None,
    new_rating: str | None,
    reason: str,
) -> tuple[CalibrationAdjustment, bool]:
    """Apply an appeal resolved as 'adjusted' (after close); returns (record, created)."""
    previous = await session.scalar(
        select(EvaluationAdjustment).where(
            EvaluationAdjustment.cycle_id == cycle_id, EvaluationAdjustment.appeal_id == appeal_id
        )
    )
    if previous is not None:
        if previous.employee_id != employee_id:
            raise DomainError(
                f"appeal {appeal_id!r} was already applied to another employee", status_code=409, field="appeal_id"
            )
        return _adjustment_read(previous), False
    state = await _state(session, cycle_id)
    if state.calibration_closed_at is None:
        raise DomainError(
            "calibration is still open; appeals apply after it closes (use calibration adjustments meanwhile)",
            status_code=409,
        )
    org = await org_for(session, cycle_id)
    _require_participant(org, employee_id, "employee_id")
    if principal.employee_id == employee_id:
        raise DomainError("you cannot adjust your own rating", status_code=403, field="employee_id")
    record = await _apply(
        session,
        cycle_id=cycle_id,
        employee_id=employee_id,
        new_score=new_score,
        new_rating=new_rating,
        reason=reason,
        actor=principal.sub,
        kind="appeal",
        appeal_id=appeal_id,
    )
    await session.commit()
    return record, True


async def list_adjustments(
    session: AsyncSession, *, cycle_id: str, principal: Principal, employee_id: str | None, limit: int, offset: int
) -> list[CalibrationAdjustment]:
    org = await org_for(session, cycle_id)
    visible = org.visible_employee_ids(principal)
    query = select(EvaluationAdjustment).where(EvaluationAdjustment.cycle_id == cycle_id)
    if visible is not None:
        query = query.where(EvaluationAdjustment.employee_id.in_(visible))
    if employee_id:
        query = query.where(EvaluationAdjustment.employee_id == employee_id)
    rows = await session.scalars(query.order_by(EvaluationAdjustment.adjustment_id).limit(limit).offset(offset))
    return [_adjustment_read(r) for r in rows]


async def close_calibration(session: AsyncSession, *, cycle_id: str, principal: Principal) -> EvaluationCycleState:
    state = await _ensure_open(session, cycle_id, "closing it again")
    results = await _results(session, cycle_id)
    if not results:
        raise DomainError(
            f"no scores yet; POST /v1/cycles/{cycle_id}/scores/compute before closing calibration", status_code=409
        )
    unscored = [r.employee_id for r in results if r.final_score is None or r.rating is None]
    if unscored:
        raise DomainError(
            f"{len(unscored)} employee(s) have no score (e.g. {unscored[:5]}); give them one with a calibration "
            "adjustment before closing",
            status_code=409,
        )
    state.calibration_closed_at = _now()
    state.closed_by = principal.sub
    counts: dict[str, int] = defaultdict(int)
    for r in results:
        counts[r.rating or ""] += 1
    add_event(
        session,
        EvaluationOutbox,
        new_event(
            service=SERVICE,
            type="CalibrationClosed",
            cycle_id=cycle_id,
            subject_id=cycle_id,
            payload={"employees": len(results), "ratings": dict(sorted(counts.items())), "closed_by": principal.sub},
        ),
    )
    await session.commit()
    return state


async def final_results(session: AsyncSession, *, cycle_id: str) -> CycleResults:
    state = await session.get(EvaluationCycleState, cycle_id)
    if state is None or state.calibration_closed_at is None:
        raise DomainError(
            f"final results of cycle {cycle_id!r} exist only after calibration is closed", status_code=409
        )
    config = await load_config(session, cycle_id)
    return CycleResults(
        cycle_id=cycle_id,
        scale_min=config.rating_scale.min,
        scale_max=config.rating_scale.max,
        results=[
            EmployeeResult(
                employee_id=r.employee_id,
                department_id=r.department_id,
                manager_id=r.manager_id,
                final_score=r.final_score or 0.0,
                rating=r.rating or "",
                pre_calibration_score=r.computed_score,
                calibrated=r.calibrated,
            )
            for r in await _results(session, cycle_id)
        ],
    )


# -- what-if ----------------------------------------------------------------------------------
async def what_if(session: AsyncSession, *, cycle_id: str, request: WhatIfRequest) -> WhatIfResult:
    """Re-score with alternative weights, formula or guideline; reads only, writes nothing."""
    config = await load_config(session, cycle_id)
    overrides = request.model_dump(exclude_none=True)
    try:
        alternative = ScoringConfig.model_validate({**config.model_dump(), **overrides})
    except ValidationError as exc:
        first = exc.errors()[0]
        raise DomainError(
            str(first.get("msg", "invalid")), field=".".join(str(p) for p in first.get("loc", ()))
        ) from exc
    _validate_formula(alternative)
    inputs = await _load_inputs(session, cycle_id)
    scores = score_cycle(inputs, alternative)
    stored = {r.employee_id: r for r in await _results(session, cycle_id)}
    changes = []
    for employee_id, score in scores.items():
        row = stored.get(employee_id)
        current_score, current_rating = (row.final_score, row.rating) if row else (None, None)
        if current_score != score.final.score or current_rating != score.final.rating:
            changes.append(
                WhatIfChange(
                    employee_id=employee_id,
                    current_score=current_score,
                    current_rating=current_rating,
                    what_if_score=score.final.score,
                    what_if_rating=score.final.rating,
                )
            )
    ratings = [s.final.rating for s in scores.values() if s.final.rating is not None]
    current = [r.rating for r in stored.values() if r.rating is not None]
    return WhatIfResult(
        cycle_id=cycle_id,
        total=len(scores),
        changed=len(changes),
        changes=changes,
        distribution=distribution_report(
            ratings, scale=alternative.rating_scale, guideline=alternative.calibration_guideline
        ),
        current_distribution=distribution_report(
            current, scale=config.rating_scale, guideline=config.calibration_guideline
        ),
    )


# -- pending ----------------------------------------------------------------------------------
_PENDING_KIND = {
    Relation.SELF.value: "self_review",
    Relation.MANAGER.value: "manager_review",
    Relation.PEER.value: "peer_review",
    Relation.CROSS_DEPARTMENT.value: "cross_department_review",
}


async def pending_report(
    session: AsyncSession, *, cycle_id: str, department_id: str, principal: Principal
) -> PendingReport:
    """What the department still owes: reviews its raters have not submitted, and nominations
    its managers still owe (a reviewee below the configured minimum of peer or cross-department
    raters). A caller never sees items about themselves."""
    org = await org_for(session, cycle_id)
    if department_id not in org.departments:
        raise DomainError(f"department {department_id!r} is not in cycle {cycle_id!r}", status_code=404)
    if not (principal.has(Role.HR_ADMIN, Role.OPS) or _heads_department(principal, org, department_id)):
        raise DomainError("you may only see pending reviews of departments you head", status_code=403)
    members = [p for p in org.participants.values() if p.department_id == department_id]
    query = select(EvaluationAssignment).where(
        EvaluationAssignment.cycle_id == cycle_id,
        EvaluationAssignment.rater_id.in_([p.employee_id for p in members]),
    )
    if principal.employee_id:
        query = query.where(EvaluationAssignment.reviewee_id != principal.employee_id)
    rows: Sequence[EvaluationAssignment] = (
        await session.scalars(query.order_by(EvaluationAssignment.created_at, EvaluationAssignment.assignment_id))
    ).all()
    items = [
        PendingItem(item_id=r.assignment_id, kind=_PENDING_KIND.get(r.relation, r.relation), owner_id=r.rater_id)
        for r in rows
        if r.status != "submitted"
    ]
    total, done = len(rows), sum(1 for r in rows if r.status == "submitted")
    config_payload = await _load_input(session, cycle_id, "config")
    if config_payload is not None:
        limits = ScoringConfig.model_validate_json(config_payload).rater_limits
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for reviewee_id, relation in (
            await session.execute(
                select(EvaluationAssignment.reviewee_id, EvaluationAssignment.relation).where(
                    EvaluationAssignment.cycle_id == cycle_id,
                    EvaluationAssignment.reviewee_id.in_([p.employee_id for p in members]),
                )
            )
        ).all():
            counts[(reviewee_id, relation)] += 1
        for member in sorted(members, key=lambda p: p.employee_id):
            if member.employee_id == principal.employee_id or not member.manager_id:
                continue
            for relation in (Relation.PEER, Relation.CROSS_DEPARTMENT):
                limit = limits.get(relation)
                if limit is None or limit.min == 0:
                    continue
                total += 1
                if counts[(member.employee_id, relation.value)] >= limit.min:
                    done += 1
                else:
                    items.append(
                        PendingItem(
                            item_id=f"{member.employee_id}:{relation.value}",
                            kind=f"{relation.value}_nomination",
                            owner_id=member.manager_id,
                        )
                    )
    return PendingReport(
        cycle_id=cycle_id,
        stage=Stage.EVALUATION,
        department_id=department_id,
        total=total,
        done=done,
        pending=items[:500],
    )
