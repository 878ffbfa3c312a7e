"""Create, read, list, change and delete company KPIs, department KPIs and individual goals."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.goals import GoalLevel
from services.common.auth import Principal
from services.common.clock import utc_now
from services.common.errors import DomainError
from services.goals.models import GoalsGoal
from services.goals.rules import EDITABLE_STATUSES, GoalStatus
from services.goals.schemas import GoalCreate, GoalTemplate, GoalUpdate
from services.goals.service.cycle import ensure_open
from services.goals.service.records import delete_unless_aligned, new_id, stored
from services.goals.service.scope import Scope, load_scope
from services.goals.service.validation import authorise_create, check_fields, check_level, individual_owner

__all__ = ["create_goal", "delete_goal", "get_goal", "list_goals", "update_goal", "visible_goal"]


async def create_goal(*, session: AsyncSession, cycle_id: str, data: GoalCreate, principal: Principal) -> GoalsGoal:
    await ensure_open(session, cycle_id)
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    department_id = data.department_id
    employee_id = data.employee_id
    if data.level is GoalLevel.INDIVIDUAL:
        employee_id, employee_department = individual_owner(scope, cycle_id, data.employee_id)
        if department_id is not None and department_id != employee_department:
            raise DomainError(
                f"department_id '{department_id}' does not match employee '{employee_id}'s department "
                f"'{employee_department}'; leave it empty",
                field="department_id",
            )
        department_id = employee_department
    authorise_create(scope, data.level, department_id)
    check_fields(scope, cycle_id, data, data.contributing_department_ids)
    await check_level(
        session,
        scope,
        cycle_id,
        level=data.level,
        objective_id=data.objective_id,
        parent_id=data.parent_id,
        department_id=department_id,
        employee_id=employee_id,
        contributing=data.contributing_department_ids,
    )
    goal_id = data.goal_id or new_id("g")
    if await session.get(GoalsGoal, (cycle_id, goal_id)) is not None:
        raise DomainError(f"goal '{goal_id}' already exists in cycle '{cycle_id}'", status_code=409, field="goal_id")
    now = utc_now()
    values = data.model_dump(
        exclude={"goal_id", "level", "department_id", "employee_id", "contributing_department_ids"}
    )
    goal = GoalsGoal(
        cycle_id=cycle_id,
        goal_id=goal_id,
        level=data.level.value,
        department_id=department_id,
        employee_id=employee_id,
        contributing_department_ids=list(data.contributing_department_ids),
        status=GoalStatus.DRAFT.value,
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
        version=1,
        **{k: stored(v) for k, v in values.items()},
    )
    session.add(goal)
    await session.commit()
    return goal


async def get_goal(*, session: AsyncSession, cycle_id: str, goal_id: str, principal: Principal) -> GoalsGoal:
    goal, _ = await visible_goal(session, cycle_id, goal_id, principal)
    return goal


async def visible_goal(
    session: AsyncSession, cycle_id: str, goal_id: str, principal: Principal
) -> tuple[GoalsGoal, Scope]:
    """The goal and the caller's scope; 404 when the caller may not see it (its existence is not revealed)."""
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    goal = await session.get(GoalsGoal, (cycle_id, goal_id))
    if goal is None or not scope.sees(goal):
        raise DomainError(f"no goal '{goal_id}' in cycle '{cycle_id}' within your scope", status_code=404)
    return goal, scope


def _require_edit(scope: Scope, goal: GoalsGoal, verb: str) -> None:
    if not scope.may_edit(goal):
        if goal.level == GoalLevel.COMPANY:
            who = "hr_admin"
        elif goal.level == GoalLevel.DEPARTMENT:
            who = f"the head of department '{goal.department_id}' or hr_admin"
        else:
            who = f"employee '{goal.employee_id}', their managers, their department head or hr_admin"
        raise DomainError(f"only {who} can {verb} {goal.level} goal '{goal.goal_id}'", status_code=403)
    if goal.status not in EDITABLE_STATUSES:
        raise DomainError(
            f"goal '{goal.goal_id}' is {goal.status}; it can be changed only while draft or returned",
            status_code=409,
        )


async def list_goals(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    level: GoalLevel | None,
    department_id: str | None,
    employee_id: str | None,
    status: GoalStatus | None,
    parent_id: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[GoalsGoal], int]:
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    conditions: list[ColumnElement[bool]] = [GoalsGoal.cycle_id == cycle_id]
    visible = scope.goal_filter()
    if visible is not None:
        conditions.append(visible)
    if level is not None:
        conditions.append(GoalsGoal.level == level.value)
    if department_id is not None:
        conditions.append(GoalsGoal.department_id == department_id)
    if employee_id is not None:
        conditions.append(GoalsGoal.employee_id == employee_id)
    if status is not None:
        conditions.append(GoalsGoal.status == status.value)
    if parent_id is not None:
        conditions.append(GoalsGoal.parent_id == parent_id)
    total = await session.scalar(select(func.count()).select_from(GoalsGoal).where(*conditions)) or 0
    rows = (
        await session.scalars(
            select(GoalsGoal)
            .where(*conditions)
            .order_by(GoalsGoal.level, GoalsGoal.department_id, GoalsGoal.employee_id, GoalsGoal.goal_id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return rows, total


async def update_goal(
    *, session: AsyncSession, cycle_id: str, goal_id: str, data: GoalUpdate, principal: Principal
) -> GoalsGoal:
    await ensure_open(session, cycle_id)
    goal, scope = await visible_goal(session, cycle_id, goal_id, principal)
    _require_edit(scope, goal, "change")
    changes = data.model_dump(exclude_unset=True)
    nullable = {"threshold_value", "stretch_value", "metric", "data_owner_department_id", "parent_id", "objective_id"}
    for name, value in changes.items():
        if value is None and name not in nullable:
            raise DomainError(f"{name} cannot be null", field=name)
    merged = _editable_fields(goal) | {k: stored(v) for k, v in changes.items()}
    template = GoalTemplate.model_validate({k: merged[k] for k in GoalTemplate.model_fields})
    contributing = list(merged["contributing_department_ids"] or [])
    check_fields(scope, cycle_id, template, contributing)
    await check_level(
        session,
        scope,
        cycle_id,
        level=GoalLevel(goal.level),
        objective_id=merged["objective_id"],
        parent_id=merged["parent_id"],
        department_id=goal.department_id,
        employee_id=goal.employee_id,
        contributing=contributing,
    )
    for name in changes:
        setattr(goal, name, merged[name])
    goal.updated_at = utc_now()
    goal.version += 1
    await session.commit()
    return goal


def _editable_fields(goal: GoalsGoal) -> dict[str, Any]:
    """The editable fields of a stored goal, as plain values."""
    names = set(GoalTemplate.model_fields) | {"objective_id", "contributing_department_ids"}
    return {name: getattr(goal, name) for name in names}


async def delete_goal(*, session: AsyncSession, cycle_id: str, goal_id: str, principal: Principal) -> None:
    await ensure_open(session, cycle_id)
    goal, scope = await visible_goal(session, cycle_id, goal_id, principal)
    _require_edit(scope, goal, "delete")
    await delete_unless_aligned(session, goal)
