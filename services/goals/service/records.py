"""Rows of the goals service as its modules share them: new ids, stored values, outbox events,
guarded deletes, and a goal read into a model."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.goals.models import GoalsGoal, GoalsObjective, GoalsOutbox

__all__ = ["SERVICE", "delete_unless_aligned", "emit_event", "goal_columns", "new_id", "stored"]

SERVICE = "goals"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def stored(value: Any) -> Any:
    """A value as its column holds it: enum members by their value."""
    return value.value if hasattr(value, "value") else value


def goal_columns(goal: GoalsGoal, model: type[BaseModel]) -> dict[str, Any]:
    """The goal's columns that ``model`` has a field of the same name for (read models name fields after
    columns); a null list of contributing departments reads as empty."""
    columns = GoalsGoal.__table__.columns
    values = {name: getattr(goal, name) for name in model.model_fields if name in columns}
    if "contributing_department_ids" in values:
        values["contributing_department_ids"] = list(goal.contributing_department_ids or [])
    return values


def emit_event(session: AsyncSession, *, type: str, cycle_id: str, subject_id: str, payload: BaseModel) -> None:
    """Add a domain event to the outbox in the caller's unit of work (the relay publishes it once committed);
    ``payload`` is the type's model in ``contracts.domain_events``, checked before it is written."""
    event = new_event(service=SERVICE, type=type, cycle_id=cycle_id, subject_id=subject_id, payload=payload)
    add_event(session, GoalsOutbox, event)


async def delete_unless_aligned(session: AsyncSession, row: GoalsObjective | GoalsGoal) -> None:
    """Delete an objective or goal and commit, unless goals still align to it (409: they would align to nothing)."""
    if isinstance(row, GoalsObjective):
        aligned = GoalsGoal.objective_id == row.objective_id
        what, children, remedy = f"objective '{row.objective_id}'", "company KPI(s)", "move"
    else:
        aligned = GoalsGoal.parent_id == row.goal_id
        what, children, remedy = f"goal '{row.goal_id}'", "goal(s)", "re-align"
    count = await session.scalar(
        select(func.count()).select_from(GoalsGoal).where(GoalsGoal.cycle_id == row.cycle_id, aligned)
    )
    if count:
        raise DomainError(
            f"{what} still has {count} {children} aligned to it; delete or {remedy} them first", status_code=409
        )
    await session.delete(row)
    await session.commit()
