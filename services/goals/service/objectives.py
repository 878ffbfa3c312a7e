"""Strategy objectives: what company KPIs align to."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.clock import utc_now
from services.common.errors import DomainError
from services.goals.models import GoalsObjective
from services.goals.schemas import ObjectiveCreate, ObjectiveUpdate
from services.goals.service.cycle import ensure_open
from services.goals.service.records import delete_unless_aligned, new_id, stored

__all__ = ["create_objective", "delete_objective", "get_objective", "list_objectives", "update_objective"]


async def list_objectives(*, session: AsyncSession, cycle_id: str, limit: int, offset: int) -> Sequence[GoalsObjective]:
    return (
        await session.scalars(
            select(GoalsObjective)
            .where(GoalsObjective.cycle_id == cycle_id)
            .order_by(GoalsObjective.created_at, GoalsObjective.objective_id)
            .limit(limit)
            .offset(offset)
        )
    ).all()


async def get_objective(*, session: AsyncSession, cycle_id: str, objective_id: str) -> GoalsObjective:
    objective = await session.get(GoalsObjective, (cycle_id, objective_id))
    if objective is None:
        raise DomainError(f"no objective '{objective_id}' in cycle '{cycle_id}'", status_code=404)
    return objective


async def create_objective(*, session: AsyncSession, cycle_id: str, data: ObjectiveCreate) -> GoalsObjective:
    await ensure_open(session, cycle_id)
    objective_id = data.objective_id or new_id("obj")
    if await session.get(GoalsObjective, (cycle_id, objective_id)) is not None:
        raise DomainError(
            f"objective '{objective_id}' already exists in cycle '{cycle_id}'", status_code=409, field="objective_id"
        )
    objective = GoalsObjective(
        cycle_id=cycle_id,
        objective_id=objective_id,
        name=data.name,
        description=data.description,
        perspective=data.perspective.value,
        created_at=utc_now(),
    )
    session.add(objective)
    await session.commit()
    return objective


async def update_objective(
    *, session: AsyncSession, cycle_id: str, objective_id: str, data: ObjectiveUpdate
) -> GoalsObjective:
    await ensure_open(session, cycle_id)
    objective = await get_objective(session=session, cycle_id=cycle_id, objective_id=objective_id)
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is None:
            raise DomainError(f"{name} cannot be null", field=name)
        setattr(objective, name, stored(value))
    await session.commit()
    return objective


async def delete_objective(*, session: AsyncSession, cycle_id: str, objective_id: str) -> None:
    await ensure_open(session, cycle_id)
    objective = await get_objective(session=session, cycle_id=cycle_id, objective_id=objective_id)
    await delete_unless_aligned(session, objective)
