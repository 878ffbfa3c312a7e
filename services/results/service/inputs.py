"""Inputs pushed by the workflow (calibrated results, the collaboration matrix, the goal export)
and the cycle's result-application policy. Each push replaces the previous one.

The policy is versioned with its source: the template's (pushed by the workflow) until HR changes
it, HR's from then on (template pushes no longer replace it)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.evaluation import CollaborationCell, CollaborationMatrix, CycleResults
from contracts.goals import GoalExport
from contracts.results import PolicyFromTemplate, ResultsPolicy
from contracts.templates import SettingsPushed, SettingsSource
from services.common.errors import DomainError
from services.results.models import CollaborationCellRow, EmployeeResultRow, Publication, ResultsCycle, SharedGoal
from services.results.schemas import Accepted
from services.results.service.appeals import follow_results
from services.results.service.records import get_cycle, policy_version, rating_labels, same_cycle

__all__ = ["push_template_policy", "put_collaboration", "put_goals", "put_results", "set_policy"]


def _changed(cycle_id: str, rows: list[EmployeeResultRow], results: CycleResults) -> list[str]:
    """Employees whose result this push adds, removes or changes (score, rating, department, manager)."""
    before = {r.employee_id: (r.department_id, r.manager_id, r.final_score, r.rating) for r in rows}
    after = {r.employee_id: (r.department_id, r.manager_id, r.final_score, r.rating) for r in results.results}
    return sorted(e for e in before.keys() | after.keys() if before.get(e) != after.get(e))


async def put_results(
    *, session: AsyncSession, cycle_id: str, results: CycleResults, actor: str, now: datetime
) -> Accepted:
    """Replace the cycle's results (the workflow pushes the calibrated ones when evaluation ends and the
    final, appeal-adjusted ones when result application opens). What follows from a result that changed
    is brought up to date: its department's allocation, its nomination and its development plan. Once
    published, results change only through appeal adjustments (which publish a correction)."""
    same_cycle("results are", results.cycle_id, cycle_id)
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    ids = [r.employee_id for r in results.results]
    if len(ids) != len(set(ids)):
        raise DomainError("an employee appears twice in results", field="results")
    rows = list((await session.scalars(select(EmployeeResultRow).where(EmployeeResultRow.cycle_id == cycle_id))).all())
    changed = _changed(cycle_id, rows, results)
    published = await session.get(Publication, cycle_id)
    if published is not None and changed:
        raise DomainError(
            f"cycle {cycle_id!r} results were published at {published.published_at.isoformat()}; this push changes "
            f"{len(changed)} of them (e.g. {changed[:5]}): after publication a result changes only by an adjusted "
            "appeal, which publishes a correction",
            status_code=409,
        )
    labels = [b.label for b in results.bands] if results.bands else cycle.rating_labels
    same = (cycle.scale_min, cycle.scale_max, cycle.rating_labels) == (results.scale_min, results.scale_max, labels)
    if rows and not changed and same:
        return Accepted(cycle_id=cycle_id, received=len(ids))  # a repeated push (a retried handoff): no change
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
    if results.bands:
        cycle.rating_labels = [b.label for b in results.bands]
    cycle.results_received_at = now
    if rows and changed:  # a re-push that moved someone: what was derived from the old results follows
        note = f"allocated again: results pushed again by {actor} changed {len(changed)} result(s)"
        await follow_results(session, cycle=cycle, employee_ids=changed, actor=actor, now=now, note=note)
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
    query = select(CollaborationCellRow).where(CollaborationCellRow.cycle_id == cycle_id)
    stored = (await session.scalars(query)).all()
    fields = list(CollaborationCell.model_fields)
    unchanged = cycle.collaboration_received_at is not None and sorted(
        tuple(getattr(row, f) for f in fields) for row in stored
    ) == sorted(tuple(getattr(cell, f) for f in fields) for cell in matrix.cells)
    if unchanged and previous_cycle_id in (None, cycle.previous_cycle_id):
        return Accepted(cycle_id=cycle_id, received=len(matrix.cells))  # a repeated push: no change
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
    wanted: dict[str, tuple[str, list[str]]] = {}
    for goal in export.goals:
        departments = set(goal.contributing_department_ids)
        if goal.department_id:
            departments.add(goal.department_id)
        if len(departments) >= 2:
            wanted[goal.goal_id] = (goal.name, sorted(departments))
    stored = (await session.scalars(select(SharedGoal).where(SharedGoal.cycle_id == cycle_id))).all()
    if cycle.goals_received_at is not None and {g.goal_id: (g.name, g.department_ids) for g in stored} == wanted:
        return Accepted(cycle_id=cycle_id, received=len(wanted))  # a repeated push: no change
    await session.execute(delete(SharedGoal).where(SharedGoal.cycle_id == cycle_id))
    session.add_all(
        SharedGoal(cycle_id=cycle_id, goal_id=goal_id, name=name, department_ids=departments)
        for goal_id, (name, departments) in wanted.items()
    )
    shared = len(wanted)
    cycle.goals_received_at = now
    await session.commit()
    return Accepted(cycle_id=cycle_id, received=shared)


async def set_policy(
    *, session: AsyncSession, cycle_id: str, policy: ResultsPolicy, actor: str, now: datetime
) -> ResultsPolicy:
    """HR's policy: checked against the cycle's rating bands (when known), a new version with source 'hr';
    from then on the workflow's template pushes leave it as HR set it."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    _check_labels(cycle, policy)
    _store_policy(cycle, policy, source=SettingsSource.HR, actor=actor, now=now)
    await session.commit()
    return policy


async def push_template_policy(
    *, session: AsyncSession, cycle_id: str, pushed: PolicyFromTemplate, actor: str, now: datetime
) -> SettingsPushed:
    """The workflow's push of the template's policy (its labels resolved against the template's scale):
    applied unless HR has changed the policy of this cycle. The template's bands are kept, so HR's later
    changes are checked against them."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id, create=True)
    if not cycle.rating_labels:
        cycle.rating_labels = list(pushed.rating_labels)
    policy = pushed.policy
    if cycle.policy_source == SettingsSource.HR.value:
        kept = policy_version(cycle).pushed(applied=False)
        await session.commit()
        return kept
    _check_labels(cycle, policy)
    _store_policy(cycle, policy, source=SettingsSource.TEMPLATE, actor=actor, now=now)
    applied = policy_version(cycle).pushed(applied=True)
    await session.commit()
    return applied


def _check_labels(cycle: ResultsCycle, policy: ResultsPolicy) -> None:
    """422 naming the rule whose labels are not the cycle's bands (nothing to check while they are unknown)."""
    problems = policy.problems(rating_labels(cycle))
    if problems:
        raise DomainError("; ".join(problems), field=problems[0].split(":", 1)[0])


def _store_policy(
    cycle: ResultsCycle, policy: ResultsPolicy, *, source: SettingsSource, actor: str, now: datetime
) -> None:
    """``policy`` as a new version from ``source`` (the same policy again changes nothing)."""
    stored = policy.model_dump(mode="json")
    if cycle.policy == stored:
        return
    cycle.policy = stored
    cycle.policy_version = (cycle.policy_version or 0) + 1
    cycle.policy_source, cycle.policy_changed_by, cycle.policy_changed_at = source.value, actor, now
