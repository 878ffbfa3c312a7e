"""Actual values from tracking, and the goal tree with progress rolled up from them."""

from __future__ import annotations

import math
from collections import defaultdict
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.goals import Direction, GoalLevel
from contracts.tracking import ProgressExport
from services.common.auth import Principal
from services.common.errors import DomainError
from services.goals.models import GoalsActual, GoalsGoal, GoalsObjective
from services.goals.rules import Perspective, attainment, weighted_mean
from services.goals.schemas import (
    GoalNode,
    GoalTree,
    ObjectiveNode,
    ProgressAccepted,
    Scorecard,
    ScorecardObjective,
    ScorecardPerspective,
)
from services.goals.service.records import goal_columns
from services.goals.service.scope import load_scope

__all__ = ["goal_tree", "store_progress"]


async def store_progress(*, session: AsyncSession, cycle_id: str, export: ProgressExport) -> ProgressAccepted:
    """Store the latest actuals (keyed by kpi_id = goal_id). Accepted after the freeze too.

    Two writers send them: tracking's live roll-up during the stage (only the actuals that changed)
    and the workflow's handoff at its end (all of them). Each KPI keeps the newer by ``as_of``, so an
    export that arrives late never moves a KPI back (``superseded_kpi_ids``). An actual that did not
    change is not rewritten: a repeated export (a retried handoff) changes nothing.

    A NaN or infinite actual is refused (422 naming it): JSON parsers accept ``NaN`` and
    ``Infinity``, and one of them would make every score rolled up from it NaN.
    """
    if export.cycle_id != cycle_id:
        raise DomainError(
            f"progress export is for cycle '{export.cycle_id}' but the URL names '{cycle_id}'", field="cycle_id"
        )
    for index, item in enumerate(export.actuals):
        if item.actual_value is not None and not math.isfinite(item.actual_value):
            raise DomainError(
                f"actual_value of kpi '{item.kpi_id}' is {item.actual_value}; actuals must be finite numbers "
                "(or null when no data arrived)",
                field=f"actuals.{index}.actual_value",
            )
    known = set((await session.scalars(select(GoalsGoal.goal_id).where(GoalsGoal.cycle_id == cycle_id))).all())
    current = {
        a.goal_id: a for a in (await session.scalars(select(GoalsActual).where(GoalsActual.cycle_id == cycle_id))).all()
    }
    as_of = _utc(export.as_of)
    unknown: list[str] = []
    superseded: list[str] = []
    updated = 0
    for item in export.actuals:
        if item.kpi_id not in known:
            unknown.append(item.kpi_id)
            continue
        row = current.get(item.kpi_id)
        if row is None:
            row = GoalsActual(cycle_id=cycle_id, goal_id=item.kpi_id)
            session.add(row)
            current[item.kpi_id] = row
        elif _utc(row.as_of) > as_of:
            superseded.append(item.kpi_id)
            continue
        elif (row.actual_value, row.event_count, row.stale) == (item.actual_value, item.event_count, item.stale) and (
            _same_instant(row.last_event_at, item.last_event_at)
        ):
            continue  # unchanged: a repeated export (a retried handoff) writes nothing, not even an audit entry
        row.actual_value = item.actual_value
        row.event_count = item.event_count
        row.last_event_at = item.last_event_at
        row.stale = item.stale
        row.as_of = as_of
        updated += 1
    await session.commit()
    return ProgressAccepted(cycle_id=cycle_id, updated=updated, unknown_kpi_ids=unknown, superseded_kpi_ids=superseded)


def _same_instant(a: datetime | None, b: datetime | None) -> bool:
    return a is None and b is None or (a is not None and b is not None and _utc(a) == _utc(b))


def _utc(value: datetime) -> datetime:
    """Aware at UTC (SQLite hands back naive UTC values)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


async def goal_tree(
    *, session: AsyncSession, cycle_id: str, principal: Principal, department_id: str | None = None
) -> GoalTree:
    """Objectives -> company KPIs -> department KPIs -> individual goals with rolled-up progress.

    Progress is computed over the whole cycle, then the tree is pruned to what the caller may see,
    so every role reads the same numbers.
    """
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    objectives = (
        await session.scalars(
            select(GoalsObjective).where(GoalsObjective.cycle_id == cycle_id).order_by(GoalsObjective.created_at)
        )
    ).all()
    goals = (
        await session.scalars(select(GoalsGoal).where(GoalsGoal.cycle_id == cycle_id).order_by(GoalsGoal.goal_id))
    ).all()
    actuals = {
        a.goal_id: a.actual_value
        for a in (await session.scalars(select(GoalsActual).where(GoalsActual.cycle_id == cycle_id))).all()
    }
    children: dict[str | None, list[GoalsGoal]] = defaultdict(list)
    for goal in goals:
        children[goal.parent_id].append(goal)
    progress: dict[str, float | None] = {}
    own: dict[str, float | None] = {}

    def compute(goal: GoalsGoal) -> float | None:
        actual = actuals.get(goal.goal_id)
        own[goal.goal_id] = (
            None
            if actual is None
            else attainment(
                direction=Direction(goal.direction), start=goal.start_value, target=goal.target_value, actual=actual
            )
        )
        rolled = weighted_mean((c.weight, compute(c)) for c in children.get(goal.goal_id, []))
        progress[goal.goal_id] = rolled if rolled is not None else own[goal.goal_id]
        return progress[goal.goal_id]

    company = [g for g in goals if g.level == GoalLevel.COMPANY]
    for goal in company:
        compute(goal)

    def include(goal: GoalsGoal) -> bool:
        if not scope.sees(goal):
            return False
        return department_id is None or goal.level == GoalLevel.COMPANY or goal.department_id == department_id

    def node(goal: GoalsGoal) -> GoalNode:
        return GoalNode.model_validate(
            goal_columns(goal, GoalNode)
            | {
                "actual_value": actuals.get(goal.goal_id),
                "attainment": own.get(goal.goal_id),
                "progress": progress.get(goal.goal_id),
                "children": [node(c) for c in children.get(goal.goal_id, []) if include(c)],
            }
        )

    objective_nodes = []
    for objective in objectives:
        kpis = [g for g in company if g.objective_id == objective.objective_id]
        objective_nodes.append(
            ObjectiveNode(
                objective_id=objective.objective_id,
                name=objective.name,
                perspective=Perspective(objective.perspective),
                progress=weighted_mean((g.weight, progress[g.goal_id]) for g in kpis),
                kpis=[node(g) for g in kpis],
            )
        )
    return GoalTree(
        cycle_id=cycle_id,
        progress=weighted_mean((g.weight, progress[g.goal_id]) for g in company),
        objectives=objective_nodes,
    )


async def scorecard(
    *, session: AsyncSession, cycle_id: str, principal: Principal, department_id: str | None = None
) -> Scorecard:
    """The goal tree rolled up per balanced-scorecard perspective.

    For the company: each objective's company KPIs, weighted as they weigh in the company score. For a
    department: its department KPIs, each under the perspective of the company KPI it aligns to, weighted
    as they weigh in the department. Same numbers as the tree, for every role that may read them.
    """
    tree = await goal_tree(session=session, cycle_id=cycle_id, principal=principal, department_id=department_id)
    grouped: dict[Perspective, list[tuple[ObjectiveNode, list[tuple[float, float | None]]]]] = {
        p: [] for p in Perspective
    }
    for objective in tree.objectives:
        if department_id is None:
            kpis = [(k.weight, k.progress) for k in objective.kpis]
        else:
            kpis = [
                (d.weight, d.progress)
                for k in objective.kpis
                for d in k.children
                if d.level == GoalLevel.DEPARTMENT and d.department_id == department_id
            ]
        grouped[objective.perspective].append((objective, kpis))
    total = sum(w for entries in grouped.values() for _o, kpis in entries for w, _p in kpis) or 1.0
    perspectives = []
    for perspective, entries in grouped.items():
        kpis = [k for _o, objective_kpis in entries for k in objective_kpis]
        perspectives.append(
            ScorecardPerspective(
                perspective=perspective,
                weight=round(100 * sum(w for w, _p in kpis) / total, 2),
                progress=weighted_mean(kpis),
                objectives=[
                    ScorecardObjective(
                        objective_id=o.objective_id,
                        name=o.name,
                        weight=sum(w for w, _p in objective_kpis),
                        progress=weighted_mean(objective_kpis),
                    )
                    for o, objective_kpis in entries
                    if objective_kpis or department_id is None
                ],
            )
        )
    every = [k for entries in grouped.values() for _o, kpis in entries for k in kpis]
    return Scorecard(
        cycle_id=cycle_id, department_id=department_id, progress=weighted_mean(every), perspectives=perspectives
    )
