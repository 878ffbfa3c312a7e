"""Data-owner SLAs: which KPIs are stale (no event within frequency + grace), as reports for people
and the workflow (each stale KPI with the person who answers for its data), and the evaluation that
records the changes as ``KpiStale`` / ``KpiFresh`` events."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingItem, PendingReport, Stage
from contracts.tracking import StaleKpi, StaleKpiDepartment, StaleKpiReport
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.tracking.models import TrackingCatalog, TrackingKpi, TrackingOutbox
from services.tracking.rules import as_utc, fed_by_check_ins
from services.tracking.schemas import StalenessEvaluation
from services.tracking.service.catalog import as_of, get_catalog
from services.tracking.service.data_owners import load_data_owners
from services.tracking.service.progress import cycle_kpis, kpi_due_at, kpi_is_stale

__all__ = ["SERVICE", "evaluate_staleness", "pending_report", "stale_report"]

SERVICE = "tracking"
"""The service named on the domain events it writes."""


def _stale_kpi(kpi: TrackingKpi, header: TrackingCatalog) -> StaleKpi:
    return StaleKpi(
        kpi_id=kpi.kpi_id,
        name=kpi.name,
        metric=kpi.metric,
        owner_department_id=kpi.owner_department_id,
        update_frequency_hours=kpi.update_frequency_hours,
        last_event_at=as_utc(kpi.last_received_at) if kpi.last_received_at else None,
        due_at=kpi_due_at(kpi, header),
    )


async def stale_report(*, session: AsyncSession, cycle_id: str, now: datetime | None = None) -> StaleKpiReport:
    now = as_of(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    groups: dict[str, list[StaleKpi]] = defaultdict(list)
    for kpi in await cycle_kpis(session=session, cycle_id=cycle_id):
        if kpi_is_stale(kpi, header, now):
            groups[kpi.owner_department_id].append(_stale_kpi(kpi, header))
    return StaleKpiReport(
        cycle_id=cycle_id,
        as_of=now,
        departments=[StaleKpiDepartment(department_id=d, kpis=groups[d]) for d in sorted(groups)],
    )


async def pending_report(
    *,
    session: AsyncSession,
    cycle_id: str,
    department_id: str,
    stage: Stage = Stage.TRACKING,
    now: datetime | None = None,
) -> PendingReport:
    """Tracking's answer to the workflow: the KPIs fed by metrics that this department's workflow
    answers for (``data_owners``: those its sub-departments own too, and those it relies on whose
    owner is outside the cycle), and which are stale, each owned by the person who must send the
    data (the owner department's data steward, else its head).

    Tracking reports only its own stage; asking it for another is a mistake of the caller's.
    """
    if stage != Stage.TRACKING:
        raise DomainError(f"the tracking service reports only stage 'tracking', not {stage.value!r}", field="stage")
    now = as_of(now)
    header = await get_catalog(session=session, cycle_id=cycle_id)
    owners = await load_data_owners(session=session, cycle_id=cycle_id)
    mine = [
        k
        for k in await cycle_kpis(session=session, cycle_id=cycle_id)
        if not fed_by_check_ins(k.metric) and owners.responsible(k) == department_id
    ]
    stale = [k for k in mine if kpi_is_stale(k, header, now)]
    return PendingReport(
        cycle_id=cycle_id,
        stage=Stage.TRACKING,
        department_id=department_id,
        total=len(mine),
        done=len(mine) - len(stale),
        pending=[
            PendingItem(item_id=k.kpi_id, kind="stale_kpi", owner_id=owners.contact(k.owner_department_id))
            for k in stale[:500]
        ],
    )


async def evaluate_staleness(
    *, session: AsyncSession, cycle_id: str | None = None, now: datetime | None = None
) -> StalenessEvaluation:
    """Persist staleness changes and write a ``KpiStale`` / ``KpiFresh`` domain event for each. Commits.

    With ``cycle_id``, that cycle only (404 when it has no catalog); without, every cycle.
    """
    now = as_of(now)
    if cycle_id is not None:
        await get_catalog(session=session, cycle_id=cycle_id)
    headers = {
        h.cycle_id: h
        for h in (
            await session.scalars(
                select(TrackingCatalog).where(TrackingCatalog.cycle_id == cycle_id)
                if cycle_id
                else select(TrackingCatalog)
            )
        ).all()
    }
    query = (
        select(TrackingKpi)
        .where(TrackingKpi.cycle_id.in_(list(headers)))
        .order_by(TrackingKpi.cycle_id, TrackingKpi.kpi_id)
    )
    kpis = (await session.scalars(query)).all()
    result = StalenessEvaluation(evaluated=len(kpis), became_stale=[], became_fresh=[])
    for kpi in kpis:
        header = headers[kpi.cycle_id]
        stale = kpi_is_stale(kpi, header, now)
        if stale == kpi.stale:
            continue
        kpi.stale = stale
        kpi.stale_since = now if stale else None
        (result.became_stale if stale else result.became_fresh).append(f"{kpi.cycle_id}/{kpi.kpi_id}")
        add_event(
            session,
            TrackingOutbox,
            new_event(
                service=SERVICE,
                type="KpiStale" if stale else "KpiFresh",
                cycle_id=kpi.cycle_id,
                subject_id=kpi.kpi_id,
                payload={
                    "kpi_id": kpi.kpi_id,
                    "owner_department_id": kpi.owner_department_id,
                    "metric": kpi.metric,
                    "last_event_at": as_utc(kpi.last_received_at).isoformat() if kpi.last_received_at else None,
                    "due_at": kpi_due_at(kpi, header).isoformat(),
                },
            ),
        )
    await session.commit()
    return result
