"""Check-ins: a comment and a confidence level on a KPI or goal, by the people it concerns, at the
cycle's cadence."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.participants import OrgView
from services.tracking.models import TrackingCheckIn, TrackingKpi
from services.tracking.rules import as_utc
from services.tracking.schemas import CheckInCreate, CheckInList, CheckInRead
from services.tracking.service.catalog import as_of, get_catalog
from services.tracking.service.progress import cycle_org, find_kpi

__all__ = ["add_check_in", "list_check_ins"]


def _author_role(principal: Principal, kpi: TrackingKpi, org: OrgView) -> str:
    if kpi.employee_id is not None and principal.employee_id == kpi.employee_id:
        return "employee"
    if principal.has(Role.HR_ADMIN):
        return "hr_admin"
    if kpi.employee_id is not None:
        if principal.employee_id and kpi.employee_id in org.reports_of(principal.employee_id):
            return "manager"
        if principal.has(Role.DEPT_HEAD) and org.can_see(principal, kpi.employee_id):
            return "dept_head"
        raise DomainError(
            f"only the employee {kpi.employee_id!r}, their managers or department head may check in on KPI "
            f"{kpi.kpi_id!r}",
            status_code=403,
        )
    department = kpi.department_id or kpi.owner_department_id
    if principal.has(Role.DEPT_HEAD, Role.MANAGER) and (
        principal.department_id == department
        or (principal.employee_id is not None and department in org.headed_by(principal.employee_id))
    ):
        return "dept_head" if principal.has(Role.DEPT_HEAD) else "manager"
    raise DomainError(
        f"only managers or the head of department {department!r} may check in on KPI {kpi.kpi_id!r}",
        status_code=403,
    )


async def add_check_in(
    *,
    session: AsyncSession,
    cycle_id: str,
    body: CheckInCreate,
    principal: Principal,
    now: datetime | None = None,
) -> CheckInRead:
    """Record a check-in (comment + confidence 1-5) on a KPI or goal. Commits."""
    now = as_of(now)
    org = await cycle_org(session=session, cycle_id=cycle_id)
    await get_catalog(session=session, cycle_id=cycle_id)
    kpi = await find_kpi(session=session, cycle_id=cycle_id, kpi_id=body.kpi_id)
    row = TrackingCheckIn(
        cycle_id=cycle_id,
        kpi_id=body.kpi_id,
        author_sub=principal.sub,
        author_employee_id=principal.employee_id,
        author_role=_author_role(principal, kpi, org),
        comment=body.comment,
        confidence=body.confidence,
        created_at=now,
    )
    session.add(row)
    await session.commit()
    return _check_in_read(row)


def _check_in_read(row: TrackingCheckIn) -> CheckInRead:
    read = CheckInRead.model_validate(row, from_attributes=True)
    read.created_at = as_utc(row.created_at)  # SQLite hands back naive UTC values
    return read


async def list_check_ins(
    *,
    session: AsyncSession,
    cycle_id: str,
    kpi_id: str,
    principal: Principal,
    limit: int = 100,
    offset: int = 0,
    now: datetime | None = None,
) -> CheckInList:
    """The KPI's check-ins, newest first, with the cadence: the last one, when the next is due, overdue."""
    now = as_of(now)
    org = await cycle_org(session=session, cycle_id=cycle_id)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    kpi = await find_kpi(session=session, cycle_id=cycle_id, kpi_id=kpi_id, visible_to=(principal, org))
    of_kpi = (TrackingCheckIn.cycle_id == cycle_id, TrackingCheckIn.kpi_id == kpi_id)
    rows = (
        await session.scalars(
            select(TrackingCheckIn)
            .where(*of_kpi)
            .order_by(TrackingCheckIn.created_at.desc(), TrackingCheckIn.id.desc())
            .limit(limit)
            .offset(offset)
        )
    ).all()
    last = (await session.execute(select(func.max(TrackingCheckIn.created_at)).where(*of_kpi))).scalar_one_or_none()
    last_at = as_utc(last) if last is not None else None
    next_due = (last_at or as_utc(kpi.registered_at)) + timedelta(days=header.check_in_cadence_days)
    return CheckInList(
        cycle_id=cycle_id,
        kpi_id=kpi_id,
        cadence_days=header.check_in_cadence_days,
        last_check_in_at=last_at,
        next_due_at=next_due,
        overdue=now > next_due,
        items=[_check_in_read(r) for r in rows],
    )
