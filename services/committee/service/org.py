"""The cycle's org snapshot as the committee sees it: its own copy, pulled from cycles on first use.

The cycles service pushes the snapshot to the stage services when a cycle starts
(``PUT /v1/cycles/{id}/participants``, mounted here too). A committee may meet about a cycle whose
snapshot it was not sent (a standing committee created later, or cycles not yet distributing to
it), so the first read pulls it from ``GET /v1/cycles/{id}/snapshot`` and keeps it.
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.committee.models import CommitteeDepartment, CommitteeParticipant
from services.committee.sources import CycleData
from services.common.auth import Principal, Role
from services.common.client import ServiceCallError
from services.common.participants import OrgView, load_org, replace_snapshot

__all__ = ["org_view", "sees_department"]


async def org_view(session: AsyncSession, cycle_id: str, data: CycleData) -> OrgView:
    """The cycle's snapshot (pulled and stored when missing). A cycle that does not exist is a 422 on
    ``cycle_id``; a cycle without a snapshot yet (draft) reads as an empty organisation."""
    held = await session.scalar(
        select(func.count()).select_from(CommitteeParticipant).where(CommitteeParticipant.cycle_id == cycle_id)
    )
    if not held:
        await data.cycle(cycle_id)
        try:
            snapshot = await data.snapshot(cycle_id)
        except ServiceCallError:
            return OrgView([], [])
        await replace_snapshot(session, CommitteeParticipant, CommitteeDepartment, snapshot)
        await session.commit()
    return await load_org(session, CommitteeParticipant, CommitteeDepartment, cycle_id)


def sees_department(principal: Principal, org: OrgView, department_id: str) -> bool:
    """HR and ops: every department; a head: the departments they head or whose tree they belong to."""
    if principal.has(Role.HR_ADMIN, Role.OPS):
        return True
    if not principal.has(Role.DEPT_HEAD):
        return False
    headed = org.headed_by(principal.employee_id) if principal.employee_id else set()
    if principal.department_id:
        headed |= org.department_tree(principal.department_id)
    return department_id in headed
