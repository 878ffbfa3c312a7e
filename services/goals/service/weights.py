"""Weight sums per owner and level: the report, and the check made on submit and approve."""

from __future__ import annotations

from sqlalchemy import ColumnElement, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.goals import GoalLevel
from services.common.auth import Principal
from services.goals.models import GoalsGoal
from services.goals.rules import COMPANY_OWNER, WeightSum, sum_weights
from services.goals.schemas import WeightReport, WeightSumRead
from services.goals.service.scope import load_scope

__all__ = ["owner_weight", "weight_report"]


def _owner(level: str, department_id: str | None, employee_id: str | None) -> str:
    if level == GoalLevel.COMPANY:
        return COMPANY_OWNER
    if level == GoalLevel.DEPARTMENT:
        return department_id or ""
    return employee_id or ""


async def owner_weight(session: AsyncSession, goal: GoalsGoal) -> WeightSum:
    """The weight sum of every goal of ``goal``'s owner at its level."""
    conditions: list[ColumnElement[bool]] = [GoalsGoal.cycle_id == goal.cycle_id, GoalsGoal.level == goal.level]
    if goal.level == GoalLevel.DEPARTMENT:
        conditions.append(GoalsGoal.department_id == goal.department_id)
    elif goal.level == GoalLevel.INDIVIDUAL:
        conditions.append(GoalsGoal.employee_id == goal.employee_id)
    weights = (await session.scalars(select(GoalsGoal.weight).where(*conditions))).all()
    level = GoalLevel(goal.level)
    owner = _owner(goal.level, goal.department_id, goal.employee_id)
    [result] = sum_weights((level, owner, w) for w in weights)
    return result


async def weight_report(*, session: AsyncSession, cycle_id: str, principal: Principal) -> WeightReport:
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    query = select(GoalsGoal.level, GoalsGoal.department_id, GoalsGoal.employee_id, GoalsGoal.weight).where(
        GoalsGoal.cycle_id == cycle_id
    )
    visible = scope.goal_filter()
    if visible is not None:
        query = query.where(visible)
    rows = (await session.execute(query)).all()
    sums = sum_weights((GoalLevel(lv), _owner(lv, d, e), w) for lv, d, e, w in rows)
    reads = [
        WeightSumRead(
            level=s.level, owner=s.owner, total=round(s.total, 6), goal_count=s.goal_count, ok=s.ok, message=s.message
        )
        for s in sums
    ]
    problems = [s.message for s in sums if s.message]
    return WeightReport(cycle_id=cycle_id, valid=not problems, problems=problems, sums=reads)
