"""The workflow's view of result application: what a department still has to do."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingItem, PendingReport, Stage
from services.common.errors import DomainError
from services.results.models import BonusPool, DevelopmentPlan, EmployeeResultRow
from services.results.service.pools import approval_missing, current_allocation
from services.results.service.records import get_policy

__all__ = ["pending_report"]


async def pending_report(
    *, session: AsyncSession, cycle_id: str, department_id: str, stage: Stage = Stage.RESULT_APPLICATION
) -> PendingReport:
    """Result application: the department's pool allocation, and development plans without items."""
    if stage != Stage.RESULT_APPLICATION:
        raise DomainError(
            f"the results service reports only stage 'result_application', not {stage.value!r}", field="stage"
        )
    items: list[PendingItem] = []
    total = done = 0
    pool = await session.get(BonusPool, (cycle_id, department_id))
    has_results = bool(
        await session.scalar(
            select(func.count())
            .select_from(EmployeeResultRow)
            .where(EmployeeResultRow.cycle_id == cycle_id, EmployeeResultRow.department_id == department_id)
        )
    )
    if pool is not None or has_results:
        total += 1
        allocation = await current_allocation(session=session, cycle_id=cycle_id, department_id=department_id)
        if pool is None:
            items.append(PendingItem(item_id=f"pool-{department_id}", kind="bonus_pool_budget", owner_id=None))
        elif approval_missing(pool, await get_policy(session=session, cycle_id=cycle_id)):
            items.append(PendingItem(item_id=f"approval-{department_id}", kind="bonus_pool_approval", owner_id=None))
        elif allocation is None or allocation.pool_cents != pool.amount_cents:
            items.append(PendingItem(item_id=f"allocation-{department_id}", kind="bonus_allocation", owner_id=None))
        else:
            done += 1
    plans = (
        await session.scalars(
            select(DevelopmentPlan)
            .where(DevelopmentPlan.cycle_id == cycle_id, DevelopmentPlan.department_id == department_id)
            .order_by(DevelopmentPlan.id)
        )
    ).all()
    for plan in plans:
        total += 1
        if plan.items:
            done += 1
        else:
            items.append(PendingItem(item_id=f"plan-{plan.id}", kind="development_plan_items", owner_id=plan.owner_id))
    return PendingReport(
        cycle_id=cycle_id,
        stage=Stage.RESULT_APPLICATION,
        department_id=department_id,
        total=total,
        done=done,
        pending=items[:500],
    )
