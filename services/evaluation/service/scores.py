"""Scores: every participant's components put on the rating scale, the configured formula over them,
and the stored results with their breakdown. ``score_cycle`` is pure over loaded ``CycleInputs``,
so what-if re-scores with another configuration without writing anything."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.evaluation import EvaluationConfig, GoalKey, LookupRow, Relation
from contracts.goals import ExportedGoal
from contracts.scoring import ScoringComponent, parse_formula
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.participants import OrgView
from services.evaluation.models import EvaluationAssignment, EvaluationResult
from services.evaluation.schemas import ComputeSummary, ResultRead
from services.evaluation.scoring import (
    FinalScore,
    GoalScore,
    distribution_report,
    final_score,
    goal_attainment,
    goal_score,
    scale_value,
)
from services.evaluation.service.records import (
    ANONYMOUS_RELATIONS,
    as_utc,
    collaboration_rows,
    cycle_state,
    ensure_open,
    load_actuals,
    load_config,
    load_goal_keys,
    load_goals,
    now,
    org_for,
    read_model,
    result_rows,
    review_score,
    submitted_reviews,
)

__all__ = [
    "COLLABORATION_SCALE",
    "CycleInputs",
    "EmployeeScore",
    "compute_scores",
    "goal_breakdown",
    "list_results",
    "load_inputs",
    "read_result",
    "score_cycle",
]

COLLABORATION_SCALE = (1.0, 5.0)
"""Departments rate each other's responsiveness, data quality and reliability from 1 to 5."""


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
    collaboration: dict[str, list[float]]
    """Department -> the overall collaboration rating each rating department gave it."""
    goal_keys: dict[str, GoalKey]
    """Goal id -> its KPI template key and metric (for lookup tables)."""


async def load_inputs(session: AsyncSession, cycle_id: str) -> CycleInputs:
    org = await org_for(session, cycle_id)
    if not org.participants:
        raise DomainError(f"cycle {cycle_id!r} has no participants yet; PUT the org snapshot first", status_code=409)
    received: dict[str, list[float]] = defaultdict(list)
    for row in await collaboration_rows(session, cycle_id):
        received[row.rated_department_id].append((row.responsiveness + row.data_quality + row.reliability) / 3)
    return CycleInputs(
        org=org,
        goals=await load_goals(session, cycle_id),
        actuals=await load_actuals(session, cycle_id),
        reviews=await submitted_reviews(session, cycle_id),
        collaboration=dict(received),
        goal_keys=await load_goal_keys(session, cycle_id),
    )


def _lookup_for(config: EvaluationConfig, goal: ExportedGoal, keys: dict[str, GoalKey]) -> list[LookupRow] | None:
    """A goal's lookup table: by its goal (or KPI) id, then its KPI template key, then its metric."""
    key = keys.get(goal.goal_id)
    table = config.table_for(
        goal_ids=[i for i in (goal.goal_id, goal.kpi_id) if i],
        template_key=key.template_key if key else None,
        metric=key.metric if key else None,
    )
    return table.rows if table else None


def _goal_score(
    goals: list[ExportedGoal], actuals: dict[str, float | None], config: EvaluationConfig, keys: dict[str, GoalKey]
) -> GoalScore:
    return goal_score(
        [
            goal_attainment(
                g,
                actual=actuals.get(g.kpi_id) if g.kpi_id else None,
                cap=config.attainment_cap,
                scale=config.rating_scale,
                lookup=_lookup_for(config, g, keys),
            )
            for g in goals
        ]
    )


def score_cycle(inputs: CycleInputs, config: EvaluationConfig) -> dict[str, EmployeeScore]:
    """Score every participant from the loaded inputs (pure: nothing is written)."""
    formula = parse_formula(config.formula)
    scale = config.rating_scale
    goals_by_owner: dict[str, list[ExportedGoal]] = defaultdict(list)
    for goal in inputs.goals:
        if goal.employee_id:
            goals_by_owner[goal.employee_id].append(goal)
    reviews: dict[tuple[str, str], list[float]] = defaultdict(list)
    for row in inputs.reviews:
        score = review_score(json.loads(row.ratings or "{}"), config)
        if score is not None:
            reviews[(row.reviewee_id, row.relation)].append(score)
    out: dict[str, EmployeeScore] = {}
    for employee_id, person in sorted(inputs.org.participants.items()):
        values: dict[str, float | None] = {c.value: None for c in ScoringComponent}
        statuses: dict[str, str] = {}
        counts: dict[str, int] = {}
        goals: GoalScore | None = None
        own_goals = goals_by_owner.get(employee_id, [])
        if own_goals:
            goals = _goal_score(own_goals, inputs.actuals, config, inputs.goal_keys)
            if goals.score is not None:
                values[ScoringComponent.KPI] = scale_value(
                    goals.score, 0.0, config.attainment_cap, scale.min, scale.max
                )
        for relation in Relation:
            scores = reviews.get((employee_id, relation.value), [])
            counts[relation.value] = len(scores)
            if not scores:
                continue
            if relation.value in ANONYMOUS_RELATIONS and len(scores) < config.peer_anonymity_threshold:
                statuses[relation.value] = "below_anonymity_threshold"
                continue
            values[relation.value] = statistics.fmean(scores)
        received = inputs.collaboration.get(person.department_id, [])
        counts[ScoringComponent.COLLABORATION.value] = len(received)
        if len(received) >= config.collaboration.min_rater_departments:
            values[ScoringComponent.COLLABORATION] = scale_value(
                statistics.fmean(received), *COLLABORATION_SCALE, scale.min, scale.max
            )
        elif received:
            statuses[ScoringComponent.COLLABORATION.value] = "below_min_rater_departments"
        final = final_score(
            formula=formula, values=values, statuses=statuses, ratings=counts, weights=config.weights, scale=scale
        )
        hidden = [n for n, s in statuses.items() if s == "below_anonymity_threshold"]
        if hidden:
            final.notes.append(
                f"{', '.join(hidden)} left out: fewer than {config.peer_anonymity_threshold} ratings submitted"
            )
        if ScoringComponent.COLLABORATION.value in statuses:
            final.notes.append(
                f"collaboration left out: {len(received)} department(s) rated {person.department_id!r}, "
                f"fewer than {config.collaboration.min_rater_departments}"
            )
        if goals is not None:
            final.notes.extend(goals.notes)
        out[employee_id] = EmployeeScore(employee_id=employee_id, goals=goals, final=final)
    return out


async def goal_breakdown(*, session: AsyncSession, cycle_id: str, employee_id: str, principal: Principal) -> GoalScore:
    """Live goal attainment of one employee from the current goals, actuals and config."""
    org = await org_for(session, cycle_id)
    if employee_id not in org.participants or not org.can_see(principal, employee_id):
        raise DomainError(f"employee {employee_id!r} not found in cycle {cycle_id!r}", status_code=404)
    config = await load_config(session, cycle_id)
    goals = [g for g in await load_goals(session, cycle_id) if g.employee_id == employee_id]
    return _goal_score(goals, await load_actuals(session, cycle_id), config, await load_goal_keys(session, cycle_id))


def _breakdown_json(score: EmployeeScore) -> str:
    return json.dumps(
        {
            "goals": score.goals.model_dump(mode="json") if score.goals else None,
            "components": [c.model_dump(mode="json") for c in score.final.components],
            "notes": score.final.notes,
        }
    )


async def compute_scores(*, session: AsyncSession, cycle_id: str) -> ComputeSummary:
    """(Re)compute every participant's score; calibrated scores are kept, computed ones refreshed."""
    state = await ensure_open(session, cycle_id, "recomputing scores")
    config = await load_config(session, cycle_id)
    inputs = await load_inputs(session, cycle_id)
    scores = score_cycle(inputs, config)
    existing = {r.employee_id: r for r in await result_rows(session, cycle_id)}
    computed_at = now()
    kept = 0
    for employee_id, score in scores.items():
        person = inputs.org.participants[employee_id]
        row = existing.pop(employee_id, None)
        if row is None:
            row = EvaluationResult(cycle_id=cycle_id, employee_id=employee_id, calibrated=False)
            session.add(row)
        row.department_id, row.manager_id = person.department_id, person.manager_id
        row.computed_score, row.computed_rating = score.final.score, score.final.rating
        row.breakdown, row.computed_at = _breakdown_json(score), computed_at
        if row.calibrated:
            kept += 1
        else:
            row.final_score, row.rating = score.final.score, score.final.rating
    for stale in existing.values():  # no longer in the snapshot
        await session.delete(stale)
    state.scored_at = computed_at
    ratings = [s.final.rating for s in scores.values() if s.final.rating is not None]
    unscored = sorted(e for e, s in scores.items() if s.final.score is None)
    await session.commit()
    return ComputeSummary(
        cycle_id=cycle_id,
        scored=len(scores) - len(unscored),
        unscored=unscored[:100],
        kept_calibrated=kept,
        distribution=distribution_report(ratings, scale=config.rating_scale, guideline=config.calibration),
    )


def _result_read(row: EvaluationResult) -> ResultRead:
    breakdown = json.loads(row.breakdown)
    return read_model(
        ResultRead,
        row,
        goals=breakdown.get("goals"),
        components=breakdown.get("components", []),
        notes=breakdown.get("notes", []),
        computed_at=as_utc(row.computed_at),
    )


async def list_results(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    department_id: str | None,
    limit: int,
    offset: int,
) -> list[ResultRead]:
    org = await org_for(session, cycle_id)
    visible = org.visible_employee_ids(principal)
    me = principal.employee_id
    closed = (await cycle_state(session, cycle_id)).calibration_closed_at is not None
    query = select(EvaluationResult).where(EvaluationResult.cycle_id == cycle_id)
    if visible is not None:
        query = query.where(EvaluationResult.employee_id.in_(visible))
    if me and not closed:  # your own score is not final (nor yours to see) before calibration closes
        query = query.where(EvaluationResult.employee_id != me)
    if department_id:
        query = query.where(EvaluationResult.department_id == department_id)
    rows = await session.scalars(query.order_by(EvaluationResult.employee_id).limit(limit).offset(offset))
    return [_result_read(r) for r in rows]


async def read_result(*, session: AsyncSession, cycle_id: str, employee_id: str, principal: Principal) -> ResultRead:
    org = await org_for(session, cycle_id)
    row = await session.get(EvaluationResult, (cycle_id, employee_id))
    if row is None or not org.can_see(principal, employee_id):
        raise DomainError(f"no result for {employee_id!r} in cycle {cycle_id!r}", status_code=404)
    if principal.employee_id == employee_id and (await cycle_state(session, cycle_id)).calibration_closed_at is None:
        raise DomainError("your result is available once calibration is closed", status_code=409)
    return _result_read(row)
