"""Inputs pushed by the workflow (calibrated results, the collaboration matrix, the goal export)
and the cycle's result-application policy. Each push replaces the previous one."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.evaluation import CollaborationMatrix, CycleResults
from contracts.goals import GoalExport
from services.common.errors import DomainError
from services.results.models import CollaborationCellRow, EmployeeResultRow, SharedGoal
from services.results.policy import ResultsPolicy
from services.results.schemas import Accepted
from services.results.service.records import get_cycle, same_cycle

__all__ = ["put_collaboration", "put_goals", "put_results", "set_policy"]


async def put_results(*, session: AsyncSession, cycle_id: str, results: CycleResults, now: datetime) -> Accepted:
    same_cycle("results are", results.cycle_id, cycle_id)
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    ids = [r.employee_id for r in results.results]
    if len(ids) != len(set(ids)):
        raise DomainError("an employee appears twice in results", field="results")
    await session.execute(delete(EmployeeResultRow).where(EmployeeResultRow.cycle_id == cycle_id))
    session.add_all(
        EmployeeResultRow(
            cycle_id=cycle_id,
            employee_id=r.employee_id,
            department_id=r.department_id,
            manager_id=r.manager_id,
            final_score=r.final_score,
            rating=r.rating,
        )
        for r in results.results
    )
    cycle.scale_min, cycle.scale_max = results.scale_min, results.scale_max
    cycle.results_received_at = now
    await session.commit()
    return Accepted(cycle_id=cycle_id, received=len(ids))


async def put_collaboration(
    *,
    session: AsyncSession,
    cycle_id: str,
    matrix: CollaborationMatrix,
    previous_cycle_id: str | None,
    now: datetime,
) -> Accepted:
    same_cycle("matrix is", matrix.cycle_id, cycle_id)
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    if previous_cycle_id == cycle_id:
        raise DomainError("previous_cycle_id must name another cycle", field="previous_cycle_id")
    keys = [(c.rater_department_id, c.rated_department_id) for c in matrix.cells]
    if len(keys) != len(set(keys)):
        raise DomainError("a (rater, rated) department pair appears twice in the matrix", field="cells")
    await session.execute(delete(CollaborationCellRow).where(CollaborationCellRow.cycle_id == cycle_id))
    session.add_all(CollaborationCellRow(cycle_id=cycle_id, **c.model_dump()) for c in matrix.cells)
    cycle.collaboration_received_at = now
    if previous_cycle_id is not None:
        cycle.previous_cycle_id = previous_cycle_id
    await session.commit()
    return Accepted(cycle_id=cycle_id, received=len(matrix.cells))


async def put_goals(*, session: AsyncSession, cycle_id: str, export: GoalExport, now: datetime) -> Accepted:
    """Keep the goals shared by two or more departments (owner plus contributors)."""
    same_cycle("goals are", export.cycle_id, cycle_id)
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    await session.execute(delete(SharedGoal).where(SharedGoal.cycle_id == cycle_id))
    shared = 0
    for goal in export.goals:
        departments = set(goal.contributing_department_ids)
        if goal.department_id:
            departments.add(goal.department_id)
        if len(departments) >= 2:
            session.add(
                SharedGoal(cycle_id=cycle_id, goal_id=goal.goal_id, name=goal.name, department_ids=sorted(departments))
            )
            shared += 1
    cycle.goals_received_at = now
    await session.commit()
    return Accepted(cycle_id=cycle_id, received=shared)


async def set_policy(*, session: AsyncSession, cycle_id: str, policy: ResultsPolicy) -> ResultsPolicy:
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    cycle.policy = policy.model_dump(mode="json")
    await session.commit()
    return policy
