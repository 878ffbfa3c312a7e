"""Check-ins: a comment and a confidence level on a KPI or goal, by the people it concerns, at the
cycle's cadence; for a KPI without a metric (an OKR key result), also its current value, which counts
like a metric event. Overdue check-ins become reminders (``overdue_check_ins``), one per person per
cadence round."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import Stage
from contracts.workflow_io import NotificationRequest
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.participants import OrgView
from services.tracking.ingest.aggregates import apply_bucket_deltas, apply_kpi_deltas
from services.tracking.ingest.catalog import bucket_seconds_for
from services.tracking.models import TrackingCatalog, TrackingCheckIn, TrackingKpi
from services.tracking.rules import (
    Aggregate,
    as_utc,
    bucket_start,
    check_in_due_at,
    check_in_round,
    fed_by_check_ins,
    period_bounds,
)
from services.tracking.schemas import CheckInCreate, CheckInList, CheckInRead
from services.tracking.service.catalog import as_of, check_in_event_id, get_catalog
from services.tracking.service.progress import cycle_org, find_kpi

__all__ = ["CHECK_IN_REMINDER", "add_check_in", "list_check_ins", "overdue_check_ins"]

CHECK_IN_REMINDER = "check_in_reminder"
"""The kind of the notification that reminds a person of their overdue check-ins."""


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
    on_value: Callable[[], None] | None = None,
) -> CheckInRead:
    """Record a check-in (comment + confidence 1-5) on a KPI or goal. Commits.

    A ``value`` is the current value of a KPI without a metric: it is merged into the KPI's
    aggregate and trend like a metric event (in the same transaction), then ``on_value`` is called
    (the live roll-up to goals). A KPI fed by a metric takes no value from a check-in (422).
    """
    now = as_of(now)
    org = await cycle_org(session=session, cycle_id=cycle_id)
    await get_catalog(session=session, cycle_id=cycle_id)
    kpi = await find_kpi(session=session, cycle_id=cycle_id, kpi_id=body.kpi_id)
    if body.value is not None and not fed_by_check_ins(kpi.metric):
        raise DomainError(
            f"KPI {kpi.kpi_id!r} is fed by metric {kpi.metric!r}: its value comes from metric events; "
            "leave value out (a check-in gives the value of a KPI without a metric only)",
            field="value",
        )
    row = TrackingCheckIn(
        cycle_id=cycle_id,
        kpi_id=body.kpi_id,
        author_sub=principal.sub,
        author_employee_id=principal.employee_id,
        author_role=_author_role(principal, kpi, org),
        comment=body.comment,
        confidence=body.confidence,
        value=body.value,
        created_at=now,
    )
    session.add(row)
    if body.value is not None:
        await session.flush()  # the row's id names the value in the aggregate
        await _count_value(session, kpi, body.value, now, check_in_event_id(row.id))
    await session.commit()
    if body.value is not None and on_value is not None:
        on_value()
    return _check_in_read(row)


async def _count_value(session: AsyncSession, kpi: TrackingKpi, value: float, at: datetime, event_id: str) -> None:
    """Merge one check-in value into the KPI's aggregate and trend bucket, as ingestion merges events."""
    delta = Aggregate()
    delta.add(value, at, event_id)
    conn = await session.connection()
    await apply_kpi_deltas(conn, {(kpi.cycle_id, kpi.kpi_id): delta}, received_at=at)
    start = bucket_start(at, bucket_seconds_for(kpi.update_frequency_hours))
    await apply_bucket_deltas(conn, {(kpi.cycle_id, kpi.kpi_id, start): delta})


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
    next_due = check_in_due_at(
        last_check_in_at=last_at, registered_at=kpi.registered_at, cadence_days=header.check_in_cadence_days
    )
    return CheckInList(
        cycle_id=cycle_id,
        kpi_id=kpi_id,
        cadence_days=header.check_in_cadence_days,
        last_check_in_at=last_at,
        next_due_at=next_due,
        overdue=now > next_due,
        items=[_check_in_read(r) for r in rows],
    )


# -- reminders -------------------------------------------------------------------------------------
async def overdue_check_ins(
    *, session: AsyncSession, now: datetime | None = None, cycle_id: str | None = None
) -> list[NotificationRequest]:
    """The reminders owed now for overdue check-ins, in every cycle whose period covers ``now``.

    Who owes a check-in: the person of a per-person KPI, else the head of the KPI's department (its
    data owner's when it has none), else HR (a company KPI). One reminder per person, department and
    day a cadence round began, listing their KPIs; its idempotency key names the day, so it is sent
    once however often this is asked, and again a cadence later while still overdue.
    """
    now = as_of(now)
    query = (
        select(TrackingCatalog)
        if cycle_id is None
        else select(TrackingCatalog).where(TrackingCatalog.cycle_id == cycle_id)
    )
    reminders: list[NotificationRequest] = []
    for header in (await session.scalars(query.order_by(TrackingCatalog.cycle_id))).all():
        start, end = period_bounds(header.period_start, header.period_end)
        if start <= now < end:
            reminders += await _cycle_reminders(session, header, now)
    return reminders


async def _cycle_reminders(session: AsyncSession, header: TrackingCatalog, now: datetime) -> list[NotificationRequest]:
    org = await cycle_org(session=session, cycle_id=header.cycle_id)
    rows = await session.execute(
        select(TrackingCheckIn.kpi_id, func.max(TrackingCheckIn.created_at))
        .where(TrackingCheckIn.cycle_id == header.cycle_id)
        .group_by(TrackingCheckIn.kpi_id)
    )
    last: dict[str, datetime | None] = {kpi_id: at for kpi_id, at in rows.all()}
    cadence = header.check_in_cadence_days
    owed: dict[tuple[str, str, str], list[tuple[TrackingKpi, datetime]]] = defaultdict(list)
    kpis = await session.scalars(
        select(TrackingKpi).where(TrackingKpi.cycle_id == header.cycle_id).order_by(TrackingKpi.kpi_id)
    )
    for kpi in kpis.all():
        due = check_in_due_at(
            last_check_in_at=last.get(kpi.kpi_id), registered_at=kpi.registered_at, cadence_days=cadence
        )
        round_ = check_in_round(now=now, due_at=due, cadence_days=cadence)
        if round_ is None:
            continue
        person, department = _who_checks_in(kpi, org)
        began = due + timedelta(days=cadence * round_)
        owed[(person, department, began.date().isoformat())].append((kpi, due))
    return [_reminder(header, key, items) for key, items in sorted(owed.items())]


def _who_checks_in(kpi: TrackingKpi, org: OrgView) -> tuple[str, str]:
    """(who is reminded, their department): the KPI's person, else its department's head, else HR."""
    if kpi.employee_id is not None:
        person = org.participants.get(kpi.employee_id)
        return kpi.employee_id, person.department_id if person else (kpi.department_id or kpi.owner_department_id)
    department_id = kpi.department_id or kpi.owner_department_id
    department = org.departments.get(department_id)
    head = department.head_employee_id if department else None
    return head or "hr", department_id


def _reminder(
    header: TrackingCatalog, key: tuple[str, str, str], items: list[tuple[TrackingKpi, datetime]]
) -> NotificationRequest:
    person, department, day = key
    names = ", ".join(kpi.name for kpi, _due in items[:20]) + (
        f" and {len(items) - 20} more" if len(items) > 20 else ""
    )
    values = any(fed_by_check_ins(kpi.metric) for kpi, _due in items)
    earliest = min(due for _kpi, due in items)
    return NotificationRequest(
        idempotency_key=f"{header.cycle_id}/{department}/{Stage.TRACKING.value}/check-in-{person}-{day}",
        cycle_id=header.cycle_id,
        department_id=department,
        stage=Stage.TRACKING,
        kind=CHECK_IN_REMINDER,
        recipients=[person],
        pending=len(items),
        deadline=earliest,
        message=(
            f"{len(items)} check-in(s) overdue since {earliest.date().isoformat()} (one every "
            f"{header.check_in_cadence_days} days): {names}. Post a check-in with your confidence"
            + (", and the current value of each key result without a metric." if values else ".")
        )[:2000],
    )
