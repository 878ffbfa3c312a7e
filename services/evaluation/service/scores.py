"""Scores: every participant's components put on the rating scale, the configured formula over them,
and the stored results with their breakdown. ``score_cycle`` is pure over loaded ``CycleInputs``,
so what-if re-scores with another configuration without writing anything.

Peer and cross-department components count whole batches of the anonymity threshold
(``services.evaluation.anonymity``), as the review summary does; the collaboration component
counts ratings along confirmed links only and never moves a score by more than its weight's share
of the scale (``scoring.bound_component``). Nobody reads their own result here: it reaches them
through the feedback service once released."""

from __future__ import annotations

import json
import statistics
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.evaluation import UNSCORED, EvaluationConfig, GoalKey, LookupRow, Relation
from contracts.goals import ExportedGoal
from contracts.scoring import ScoringComponent, parse_formula
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.participants import OrgView
from services.evaluation.anonymity import counted
from services.evaluation.models import EvaluationAssignment, EvaluationResult
from services.evaluation.schemas import ComputeSummary, ResultRead
from services.evaluation.scoring import (
    FinalScore,
    GoalScore,
    bound_component,
    distribution_report,
    final_score,
    goal_attainment,
    goal_score,
    scale_value,
)
from services.evaluation.service.collaboration import confirmed_ratings
from services.evaluation.service.records import (
    ANONYMOUS_RELATIONS,
    as_utc,
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
    "own_result_refused",
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
    for row in await confirmed_ratings(session, cycle_id):
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
    submitted: dict[tuple[str, str], list[EvaluationAssignment]] = defaultdict(list)
    for row in inputs.reviews:
        submitted[(row.reviewee_id, row.relation)].append(row)
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
            if relation in UNSCORED:  # feedback for the reviewee, never part of a score
                continue
            rows = submitted.get((employee_id, relation.value), [])
            # Anonymous relations count whole batches of the threshold, as the summary shows them.
            kept = counted(rows, config.peer_anonymity_threshold) if relation.value in ANONYMOUS_RELATIONS else rows
            if rows and not kept:
                statuses[relation.value] = "below_anonymity_threshold"
                counts[relation.value] = len(rows)
                continue
            scores = [s for s in (review_score(json.loads(r.ratings or "{}"), config) for r in kept) if s is not None]
            counts[relation.value] = len(scores)
            if scores:
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
        if values[ScoringComponent.COLLABORATION] is not None:
            without = {**values, ScoringComponent.COLLABORATION.value: None}
            alone = final_score(
                formula=formula, values=without, statuses=statuses, ratings=counts, weights=config.weights, scale=scale
            )
            final = bound_component(
                final,
                without=alone,
                component=ScoringComponent.COLLABORATION.value,
                weight=config.weights.get(ScoringComponent.COLLABORATION, 0.0),
                scale=scale,
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


def own_result_refused(cycle_id: str, employee_id: str) -> DomainError:
    """Nobody reads their own result in evaluation, before or after calibration closes: it is final for
    them only once the feedback service releases it (evaluation does not know when that happens)."""
    return DomainError(
        f"your own result is not shown by the evaluation service; it reaches you through the feedback service "
        f"once released (GET /v1/cycles/{cycle_id}/results/{employee_id} there)",
        status_code=403,
        field="employee_id",
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
    """Results in the caller's scope, never the caller's own (see ``own_result_refused``)."""
    org = await org_for(session, cycle_id)
    visible = org.visible_employee_ids(principal)
    me = principal.acting_employee_id
    query = select(EvaluationResult).where(EvaluationResult.cycle_id == cycle_id)
    if visible is not None:
        query = query.where(EvaluationResult.employee_id.in_(visible))
    if me:
        query = query.where(EvaluationResult.employee_id != me)
    if department_id:
        query = query.where(EvaluationResult.department_id == department_id)
    rows = await session.scalars(query.order_by(EvaluationResult.employee_id).limit(limit).offset(offset))
    return [_result_read(r) for r in rows]


async def read_result(*, session: AsyncSession, cycle_id: str, employee_id: str, principal: Principal) -> ResultRead:
    if principal.acting_employee_id == employee_id:
        raise own_result_refused(cycle_id, employee_id)
    org = await org_for(session, cycle_id)
    row = await session.get(EvaluationResult, (cycle_id, employee_id))
    if row is None or not org.can_see(principal, employee_id):
        raise DomainError(f"no result for {employee_id!r} in cycle {cycle_id!r}", status_code=404)
    return _result_read(row)
