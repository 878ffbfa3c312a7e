"""Cross-department collaboration: the report and the award, computed by ``report`` from the stored matrix."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.errors import DomainError
from services.results.models import CollaborationCellRow, ResultsCycle, ResultsDepartment, SharedGoal
from services.results.report import AwardCandidate, Cell, CollaborationReport, build_report, collaboration_awards
from services.results.service.records import get_cycle, get_policy

__all__ = ["awards", "collaboration_report"]


async def _cycle_with_matrix(session: AsyncSession, cycle_id: str) -> ResultsCycle:
    cycle = await get_cycle(session=session, cycle_id=cycle_id)
    if cycle.collaboration_received_at is None:
        raise DomainError(f"cycle {cycle_id!r} has no collaboration matrix yet", status_code=409)
    return cycle


async def _cells(session: AsyncSession, cycle_id: str) -> list[Cell]:
    rows = (await session.scalars(select(CollaborationCellRow).where(CollaborationCellRow.cycle_id == cycle_id))).all()
    return [
        Cell(
            rater_department_id=r.rater_department_id,
            rated_department_id=r.rated_department_id,
            responsiveness=r.responsiveness,
            data_quality=r.data_quality,
            reliability=r.reliability,
            overall=r.overall,
            ratings=r.ratings,
            comments=tuple(r.comments or ()),
        )
        for r in rows
    ]


async def _names(session: AsyncSession, cycle_ids: Sequence[str]) -> dict[str, str]:
    rows = (await session.scalars(select(ResultsDepartment).where(ResultsDepartment.cycle_id.in_(cycle_ids)))).all()
    names: dict[str, str] = {}
    for r in sorted(rows, key=lambda d: d.cycle_id != cycle_ids[0]):  # the current cycle's names win
        names.setdefault(r.department_id, r.name)
    return names


async def collaboration_report(
    *, session: AsyncSession, cycle_id: str, previous_cycle_id: str | None
) -> CollaborationReport:
    cycle = await _cycle_with_matrix(session, cycle_id)
    policy = await get_policy(session=session, cycle_id=cycle_id)
    previous_id = previous_cycle_id or cycle.previous_cycle_id
    previous_cells = await _cells(session, previous_id) if previous_id else []
    return build_report(
        cycle_id=cycle_id,
        cells=await _cells(session, cycle_id),
        names=await _names(session, [cycle_id] + ([previous_id] if previous_id else [])),
        previous_cycle_id=previous_id,
        previous_cells=previous_cells,
        top=policy.report_top_pairs,
        rating_scale=(policy.awards.rating_scale_min, policy.awards.rating_scale_max),
    )


async def awards(*, session: AsyncSession, cycle_id: str) -> list[AwardCandidate]:
    await _cycle_with_matrix(session, cycle_id)
    goals: dict[str, list[tuple[str, str]]] = defaultdict(list)
    shared = select(SharedGoal).where(SharedGoal.cycle_id == cycle_id).order_by(SharedGoal.goal_id)
    for g in (await session.scalars(shared)).all():
        for d in g.department_ids:
            goals[d].append((g.goal_id, g.name))
    policy = await get_policy(session=session, cycle_id=cycle_id)
    return collaboration_awards(
        cells=await _cells(session, cycle_id),
        shared_goals=goals,
        names=await _names(session, [cycle_id]),
        rule=policy.awards,
    )
