"""The workflow's view of the feedback stage: what a department still has to do."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingItem, PendingReport, Stage
from services.common.errors import DomainError
from services.feedback.models import Appeal, ReleasedResult
from services.feedback.service.records import OPEN_APPEAL_STATUSES, count

__all__ = ["pending_report"]


async def pending_report(
    *, session: AsyncSession, cycle_id: str, department_id: str, stage: Stage = Stage.FEEDBACK
) -> PendingReport:
    """Feedback stage: released results not yet acknowledged, and appeals HR has not resolved."""
    if stage != Stage.FEEDBACK:
        raise DomainError(f"the feedback service reports only stage 'feedback', not {stage.value!r}", field="stage")
    released = ReleasedResult.status == "released"
    in_dept = ReleasedResult.department_id == department_id
    results_total = await count(session, ReleasedResult, ReleasedResult.cycle_id == cycle_id, in_dept, released)
    acknowledged = await count(
        session,
        ReleasedResult,
        ReleasedResult.cycle_id == cycle_id,
        in_dept,
        released,
        ReleasedResult.acknowledged_at.is_not(None),
    )
    in_appeal_dept = (Appeal.cycle_id == cycle_id, Appeal.department_id == department_id)
    appeals_total = await count(session, Appeal, *in_appeal_dept)
    still_open = Appeal.status.in_(OPEN_APPEAL_STATUSES)
    open_appeals = (
        await session.scalars(select(Appeal).where(*in_appeal_dept, still_open).order_by(Appeal.id).limit(500))
    ).all()
    unacknowledged = (
        await session.scalars(
            select(ReleasedResult.employee_id)
            .where(ReleasedResult.cycle_id == cycle_id, in_dept, released, ReleasedResult.acknowledged_at.is_(None))
            .order_by(ReleasedResult.employee_id)
            .limit(500)
        )
    ).all()
    items = [PendingItem(item_id=f"appeal-{a.id}", kind="appeal_resolution", owner_id=None) for a in open_appeals]
    items += [PendingItem(item_id=e, kind="result_acknowledgement", owner_id=e) for e in unacknowledged]
    open_count = await count(session, Appeal, *in_appeal_dept, still_open)
    return PendingReport(
        cycle_id=cycle_id,
        stage=Stage.FEEDBACK,
        department_id=department_id,
        total=results_total + appeals_total,
        done=acknowledged + (appeals_total - open_count),
        pending=items[:500],
    )
