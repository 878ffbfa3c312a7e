"""Bonus pools and their allocation: a department's budget from finance, split to the cent by
``allocation.allocate_pool``; an ``Idempotency-Key`` makes a retried allocation answer, not repeat."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import partial

from pydantic import TypeAdapter
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.results import BonusCaps, Curve, PoolApproval, ResultsPolicy
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.scoping import in_scope, sees_all
from services.results.allocation import Candidate, allocate_pool
from services.results.models import (
    Allocation,
    AllocationLine,
    BonusPool,
    EmployeeResultRow,
    Publication,
    ResultsCycle,
)
from services.results.schemas import AllocationCreate, AllocationRead, BonusRead, PoolUpdate
from services.results.service.records import commit_once, get_cycle, get_policy, require_results
from services.results.service.scope import check_department, org_view

__all__ = [
    "allocate",
    "approval_missing",
    "approve_pool",
    "current_allocation",
    "find_allocation",
    "get_allocation",
    "list_bonuses",
    "list_pools",
    "reallocate",
    "request_fingerprint",
    "set_pool",
]

_CURVE: TypeAdapter[Curve] = TypeAdapter(Curve)
"""Reads a stored allocation's curve back (a discriminated union)."""


async def set_pool(
    *,
    session: AsyncSession,
    cycle_id: str,
    department_id: str,
    budget: PoolUpdate,
    principal: Principal,
    now: datetime,
) -> BonusPool:
    await get_cycle(session=session, cycle_id=cycle_id, create=True)
    org = await org_view(session=session, cycle_id=cycle_id)
    if org.departments and department_id not in org.departments:
        raise DomainError(
            f"department {department_id!r} is not part of cycle {cycle_id!r}; known: {sorted(org.departments)}",
            field="department_id",
        )
    pool = await session.get(BonusPool, (cycle_id, department_id))
    if pool is None:
        pool = BonusPool(cycle_id=cycle_id, department_id=department_id)
        session.add(pool)
    elif pool.currency != budget.currency and await current_allocation(
        session=session, cycle_id=cycle_id, department_id=department_id
    ):
        raise DomainError(
            f"the pool is already allocated in {pool.currency}; re-allocate after changing the currency",
            status_code=409,
            field="currency",
        )
    if (pool.amount_cents, pool.currency) != (budget.amount_cents, budget.currency):
        pool.approved_by = pool.approved_at = None  # finance signed another amount off
    pool.amount_cents, pool.currency, pool.source = budget.amount_cents, budget.currency, budget.source
    pool.updated_at, pool.updated_by = now, principal.sub
    await session.commit()
    return pool


async def approve_pool(
    *, session: AsyncSession, cycle_id: str, department_id: str, principal: Principal, now: datetime
) -> BonusPool:
    """Finance signs the pool's current amount and currency off (again: a no-op, the first approval stands)."""
    pool = await session.get(BonusPool, (cycle_id, department_id))
    if pool is None:
        raise DomainError(
            f"department {department_id!r} has no bonus pool in cycle {cycle_id!r} to approve; set it first",
            status_code=404,
            field="department_id",
        )
    if pool.approved_at is None:
        pool.approved_by, pool.approved_at = principal.sub, now
        await session.commit()
    return pool


def approval_missing(pool: BonusPool, policy: ResultsPolicy) -> bool:
    """True when the cycle's policy wants finance's approval and the pool's current amount lacks it."""
    return policy.pool_approval == PoolApproval.FINANCE and pool.approved_at is None


async def list_pools(*, session: AsyncSession, cycle_id: str, principal: Principal) -> list[BonusPool]:
    query = select(BonusPool).where(BonusPool.cycle_id == cycle_id).order_by(BonusPool.department_id)
    pools = list((await session.scalars(query)).all())
    if sees_all(principal) or principal.has(Role.FINANCE):  # finance sets every department's budget
        return pools
    org = await org_view(session=session, cycle_id=cycle_id)
    visible = []
    for pool in pools:
        try:
            check_department(principal, org, pool.department_id)
        except DomainError:
            continue
        visible.append(pool)
    return visible


def request_fingerprint(request: AllocationCreate, pool: BonusPool) -> str:
    """What a replay must match: the request and the pool it was made against (stored with the allocation)."""
    body = {
        "curve": request.curve.model_dump(mode="json") if request.curve else None,
        "caps": request.caps.model_dump(mode="json") if request.caps else None,
        "fixed": dict(sorted(request.fixed.items())),
        "pool": [pool.amount_cents, pool.currency],
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def find_allocation(
    *, session: AsyncSession, cycle_id: str, department_id: str, idempotency_key: str
) -> Allocation | None:
    return await session.scalar(
        select(Allocation).where(
            Allocation.cycle_id == cycle_id,
            Allocation.department_id == department_id,
            Allocation.idempotency_key == idempotency_key,
        )
    )


async def current_allocation(*, session: AsyncSession, cycle_id: str, department_id: str) -> Allocation | None:
    return await session.scalar(
        select(Allocation).where(
            Allocation.cycle_id == cycle_id, Allocation.department_id == department_id, Allocation.current.is_(True)
        )
    )


async def allocate(
    *,
    session: AsyncSession,
    cycle_id: str,
    department_id: str,
    request: AllocationCreate,
    idempotency_key: str | None,
    principal: Principal,
    now: datetime,
) -> AllocationRead:
    """Allocate a department's pool (``replayed`` tells a retry's answer from a new allocation).

    With an ``Idempotency-Key`` a retry returns the stored allocation and never allocates twice,
    even when the retry races the first request; reusing a key for a different request is refused.
    A new allocation supersedes the previous one.
    """

    async def attempt() -> tuple[Allocation, bool]:
        cycle = await get_cycle(session=session, cycle_id=cycle_id)
        require_results(cycle)
        pool = await session.get(BonusPool, (cycle_id, department_id))
        if pool is None:
            raise DomainError(
                f"department {department_id!r} has no bonus pool in cycle {cycle_id!r}; "
                "PUT /v1/cycles/{cycle_id}/pools/{department_id} first",
                status_code=409,
            )
        if approval_missing(pool, await get_policy(session=session, cycle_id=cycle_id)):
            raise DomainError(
                f"the bonus pool of {department_id!r} waits for finance's approval (the cycle's policy has "
                "pool_approval 'finance'): finance approves it with POST "
                f"/v1/cycles/{cycle_id}/pools/{department_id}/approval",
                status_code=409,
                field="pool_approval",
            )
        fingerprint = request_fingerprint(request, pool)
        if idempotency_key is not None:
            existing = await find_allocation(
                session=session, cycle_id=cycle_id, department_id=department_id, idempotency_key=idempotency_key
            )
            if existing is not None:
                if existing.request_fingerprint != fingerprint:
                    raise DomainError(
                        "this Idempotency-Key was already used for a different allocation request "
                        "(or the pool changed); use a new key",
                        status_code=422,
                        field="Idempotency-Key",
                    )
                return existing, True
        allocation = await _new_allocation(
            session, cycle=cycle, pool=pool, request=request, key=idempotency_key, actor=principal.sub, now=now
        )
        return allocation, False

    allocation, replayed = await commit_once(session, attempt, replayable=idempotency_key is not None)
    read = AllocationRead.model_validate(allocation)
    read.replayed = replayed
    return read


async def _new_allocation(
    session: AsyncSession,
    *,
    cycle: ResultsCycle,
    pool: BonusPool,
    request: AllocationCreate,
    key: str | None,
    actor: str,
    now: datetime,
) -> Allocation:
    """Split the pool by the request (or the cycle's policy) and make it the department's current allocation."""
    policy = await get_policy(session=session, cycle_id=cycle.cycle_id)
    curve = request.curve or policy.curve
    caps = request.caps or policy.caps
    in_department = (EmployeeResultRow.cycle_id == pool.cycle_id, EmployeeResultRow.department_id == pool.department_id)
    rows = (await session.scalars(select(EmployeeResultRow).where(*in_department))).all()
    outcome = allocate_pool(
        pool_cents=pool.amount_cents,
        candidates=[Candidate(r.employee_id, r.final_score, r.rating) for r in rows],
        curve=curve,
        caps=caps,
        scale_min=cycle.scale_min if cycle.scale_min is not None else 0.0,
        fixed_cents=request.fixed,
    )
    current = (Allocation.cycle_id == pool.cycle_id, Allocation.department_id == pool.department_id)
    await session.execute(update(Allocation).where(*current, Allocation.current.is_(True)).values(current=False))
    allocation = Allocation(
        cycle_id=pool.cycle_id,
        department_id=pool.department_id,
        idempotency_key=key,
        request_fingerprint=request_fingerprint(request, pool),
        pool_cents=pool.amount_cents,
        currency=pool.currency,
        allocated_cents=outcome.allocated_cents,
        unallocated_cents=outcome.unallocated_cents,
        curve=curve.model_dump(mode="json"),
        caps=caps.model_dump(mode="json"),
        notes=outcome.notes,
        current=True,
        created_at=now,
        created_by=actor,
        lines=[AllocationLine(**line.model_dump()) for line in outcome.lines],
    )
    session.add(allocation)
    return allocation


async def reallocate(
    session: AsyncSession, *, cycle: ResultsCycle, department_id: str, actor: str, now: datetime, note: str
) -> Allocation | None:
    """Allocate the department's pool again the way its current allocation did (same curve, caps and
    fixed amounts) after its results changed; None when it has no allocation yet (not committed)."""
    current = await current_allocation(session=session, cycle_id=cycle.cycle_id, department_id=department_id)
    pool = await session.get(BonusPool, (cycle.cycle_id, department_id))
    if current is None or pool is None:
        return None
    if approval_missing(pool, await get_policy(session=session, cycle_id=cycle.cycle_id)):
        return None  # the pool changed since finance approved it: HR allocates again once it is approved
    members = set(
        (
            await session.scalars(
                select(EmployeeResultRow.employee_id).where(
                    EmployeeResultRow.cycle_id == cycle.cycle_id, EmployeeResultRow.department_id == department_id
                )
            )
        ).all()
    )
    request = AllocationCreate(
        curve=_CURVE.validate_python(current.curve),
        caps=BonusCaps.model_validate(current.caps),
        fixed={
            line.employee_id: line.amount_cents for line in current.lines if line.fixed and line.employee_id in members
        },
    )
    allocation = await _new_allocation(session, cycle=cycle, pool=pool, request=request, key=None, actor=actor, now=now)
    allocation.notes = [*allocation.notes, note]
    return allocation


async def get_allocation(
    *, session: AsyncSession, cycle_id: str, department_id: str, principal: Principal
) -> AllocationRead:
    """The department's current allocation, for HR, ops, finance and the department's head."""
    if not principal.has(Role.FINANCE):  # finance pays every department
        check_department(principal, await org_view(session=session, cycle_id=cycle_id), department_id)
    allocation = await current_allocation(session=session, cycle_id=cycle_id, department_id=department_id)
    if allocation is None:
        raise DomainError(f"department {department_id!r} has no allocation yet", status_code=404)
    return AllocationRead.model_validate(allocation)


async def list_bonuses(
    *, session: AsyncSession, cycle_id: str, principal: Principal, limit: int, offset: int
) -> list[BonusRead]:
    """Allocated bonuses in the caller's scope; people other than HR, ops and finance see them once published."""
    query = (
        select(AllocationLine, Allocation.department_id, Allocation.currency)
        .join(Allocation, Allocation.id == AllocationLine.allocation_id)
        .where(Allocation.cycle_id == cycle_id, Allocation.current.is_(True))
    )
    if not principal.has(Role.FINANCE):  # finance pays everyone: every line, also before publication
        if not sees_all(principal) and await session.get(Publication, cycle_id) is None:
            return []
        org = partial(org_view, session=session, cycle_id=cycle_id)
        query = await in_scope(query, AllocationLine.employee_id, principal=principal, org=org)
    rows = (await session.execute(query.order_by(AllocationLine.employee_id).limit(limit).offset(offset))).all()
    return [
        BonusRead(
            employee_id=line.employee_id,
            department_id=department_id,
            amount_cents=line.amount_cents,
            currency=currency,
            rating=line.rating,
            final_score=line.final_score,
        )
        for line, department_id, currency in rows
    ]
