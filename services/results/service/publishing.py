"""Publishing: ``ResultsPublished`` for payroll, written to the outbox with the publication row
in one transaction, once per cycle (an ``Idempotency-Key`` reads it back)."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.results import (
    MAX_LINES_PER_EVENT,
    RESULTS_PUBLISHED,
    DepartmentBonusTotal,
    PublishedResultLine,
    ResultsPublishedPayload,
)
from services.common.auth import Principal
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.results.models import Allocation, BonusPool, EmployeeResultRow, Nomination, Publication, ResultsOutbox
from services.results.schemas import PublicationRead
from services.results.service.award import record_award
from services.results.service.records import SERVICE, commit_once, get_cycle, require_results

__all__ = ["find_publication", "parts", "publish", "result_lines"]

T = TypeVar("T")


async def find_publication(*, session: AsyncSession, cycle_id: str) -> Publication | None:
    return await session.get(Publication, cycle_id)


async def result_lines(
    session: AsyncSession, cycle_id: str, departments: Collection[str] | None = None
) -> tuple[list[PublishedResultLine], list[DepartmentBonusTotal]]:
    """What payroll receives, now: each result with its current allocation's bonus and its nomination,
    and each allocated department's totals (of ``departments`` only, when given)."""
    results = select(EmployeeResultRow).where(EmployeeResultRow.cycle_id == cycle_id)
    current = select(Allocation).where(Allocation.cycle_id == cycle_id, Allocation.current.is_(True))
    if departments is not None:
        results = results.where(EmployeeResultRow.department_id.in_(sorted(departments)))
        current = current.where(Allocation.department_id.in_(sorted(departments)))
    allocations = {a.department_id: a for a in (await session.scalars(current)).all()}
    bonus = {line.employee_id: (line.amount_cents, a.currency) for a in allocations.values() for line in a.lines}
    nominated = set(
        (await session.scalars(select(Nomination.employee_id).where(Nomination.cycle_id == cycle_id))).all()
    )
    lines = [
        PublishedResultLine(
            employee_id=r.employee_id,
            department_id=r.department_id,
            final_score=r.final_score,
            rating=r.rating,
            bonus_cents=bonus.get(r.employee_id, (0, None))[0],
            currency=bonus.get(r.employee_id, (0, None))[1],
            promotion_nominated=r.employee_id in nominated,
        )
        for r in (await session.scalars(results.order_by(EmployeeResultRow.employee_id))).all()
    ]
    totals = [
        DepartmentBonusTotal(
            department_id=d, pool_cents=a.pool_cents, allocated_cents=a.allocated_cents, currency=a.currency
        )
        for d, a in sorted(allocations.items())
    ]
    return lines, totals


def parts(lines: Sequence[T]) -> list[Sequence[T]]:
    """``lines`` in parts of at most ``MAX_LINES_PER_EVENT`` (one empty part when there are none)."""
    return [lines[i : i + MAX_LINES_PER_EVENT] for i in range(0, len(lines), MAX_LINES_PER_EVENT)] or [lines]


async def publish(
    *, session: AsyncSession, cycle_id: str, idempotency_key: str | None, principal: Principal, now: datetime
) -> PublicationRead:
    """Publish once; a concurrent publish that commits first is answered as a retry would be."""

    async def attempt() -> tuple[Publication, bool]:
        return await _publish(
            session=session, cycle_id=cycle_id, idempotency_key=idempotency_key, principal=principal, now=now
        )

    publication, replayed = await commit_once(session, attempt)
    read = PublicationRead.model_validate(publication)
    read.replayed = replayed
    return read


async def _publish(
    *, session: AsyncSession, cycle_id: str, idempotency_key: str | None, principal: Principal, now: datetime
) -> tuple[Publication, bool]:
    """Write ``ResultsPublished`` to the outbox with the publication row; returns ``(publication, replayed)``."""
    existing = await find_publication(session=session, cycle_id=cycle_id)
    if existing is not None:
        if idempotency_key is not None and existing.idempotency_key == idempotency_key:
            return existing, True
        raise DomainError(
            f"cycle {cycle_id!r} results were already published at {existing.published_at.isoformat()} "
            f"(publication {existing.publication_id}); repeat with the same Idempotency-Key to read it back",
            status_code=409,
        )
    require_results(await get_cycle(session=session, cycle_id=cycle_id))
    pools = {
        p.department_id: p
        for p in (await session.scalars(select(BonusPool).where(BonusPool.cycle_id == cycle_id))).all()
    }
    current = select(Allocation).where(Allocation.cycle_id == cycle_id, Allocation.current.is_(True))
    allocations = {a.department_id: a for a in (await session.scalars(current)).all()}
    missing = sorted(set(pools) - set(allocations))
    if missing:
        raise DomainError(
            f"departments with a bonus pool but no allocation: {missing}; allocate them before publishing",
            status_code=409,
        )
    stale = sorted(d for d, a in allocations.items() if a.pool_cents != pools[d].amount_cents)
    if stale:
        raise DomainError(
            f"the pool changed after allocation for {stale}; allocate again before publishing", status_code=409
        )
    lines, totals = await result_lines(session, cycle_id)
    publication_id = str(uuid.uuid4())
    chunks = parts(lines)
    event_ids = []
    for part, chunk in enumerate(chunks, start=1):
        payload = ResultsPublishedPayload(
            cycle_id=cycle_id,
            publication_id=publication_id,
            part=part,
            parts=len(chunks),
            departments=totals,
            lines=list(chunk),
        )
        event = new_event(
            service=SERVICE,
            type=RESULTS_PUBLISHED,
            cycle_id=cycle_id,
            subject_id=publication_id,
            payload=payload,
        )
        add_event(session, ResultsOutbox, event)
        event_ids.append(str(event.event_id))
    await record_award(session=session, cycle_id=cycle_id, actor=principal.sub, now=now)  # announced with it
    publication = Publication(
        cycle_id=cycle_id,
        publication_id=publication_id,
        idempotency_key=idempotency_key,
        event_ids=event_ids,
        lines=len(lines),
        published_at=now,
        published_by=principal.sub,
    )
    session.add(publication)
    return publication, False
