"""Development plans: drafted for everyone below the cycle's threshold (redrafted for whoever an
adjusted appeal moves across it) or created by a manager,
with items that have an owner and a due date. HR, the plan's owner and the employee's managers
edit a plan; an item's owner may mark it done."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.action_items import ActionItemUpdate
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.participants import OrgView
from services.common.scoping import in_scope
from services.results.models import DevelopmentItem, DevelopmentPlan, EmployeeResultRow, ResultsCycle
from services.results.schemas import GenerateRead, ItemCreate, PlanCreate, PlanUpdate
from services.results.service.records import get_cycle, get_policy, rating_labels, require_results
from services.results.service.scope import my_employee_id, org_view

__all__ = [
    "add_plan_item",
    "create_plan",
    "generate_plans",
    "get_plan",
    "list_plans",
    "replan",
    "update_plan",
    "update_plan_item",
]


def _new_plan(
    *,
    cycle_id: str,
    employee_id: str,
    department_id: str,
    owner_id: str,
    result: EmployeeResultRow | None,
    summary: str,
    auto_created: bool,
    now: datetime,
) -> DevelopmentPlan:
    """A draft plan, with the rating and score it answers to (when the employee has a result)."""
    return DevelopmentPlan(
        cycle_id=cycle_id,
        employee_id=employee_id,
        department_id=department_id,
        owner_id=owner_id,
        status="draft",
        rating=result.rating if result else None,
        final_score=result.final_score if result else None,
        summary=summary,
        auto_created=auto_created,
        created_at=now,
        updated_at=now,
        items=[],
    )


def _auto_plan(r: EmployeeResultRow, now: datetime) -> DevelopmentPlan:
    return _new_plan(
        cycle_id=r.cycle_id,
        employee_id=r.employee_id,
        department_id=r.department_id,
        owner_id=r.manager_id or r.employee_id,
        result=r,
        summary=f"Development plan after a '{r.rating}' rating ({r.final_score:g}).",
        auto_created=True,
        now=now,
    )


async def _qualifies(session: AsyncSession, cycle: ResultsCycle) -> Callable[[EmployeeResultRow], bool]:
    """Who the cycle's development rule gives a plan: a rating in its bands (by default the lowest band of
    the cycle's scale) or a score below its threshold."""
    policy = await get_policy(session=session, cycle_id=cycle.cycle_id)
    ratings, below_score = set(policy.development_ratings(rating_labels(cycle))), policy.development.below_score
    return lambda r: r.rating in ratings or (below_score is not None and r.final_score < below_score)


async def generate_plans(*, session: AsyncSession, cycle_id: str, now: datetime) -> GenerateRead:
    """Draft a plan for everyone below the development threshold (idempotent)."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id)
    require_results(cycle)
    qualifies = await _qualifies(session, cycle)
    existing = set(
        (await session.scalars(select(DevelopmentPlan.employee_id).where(DevelopmentPlan.cycle_id == cycle_id))).all()
    )
    rows = (await session.scalars(select(EmployeeResultRow).where(EmployeeResultRow.cycle_id == cycle_id))).all()
    below = [r for r in rows if qualifies(r)]
    session.add_all(_auto_plan(r, now) for r in below if r.employee_id not in existing)
    cycle.plans_generated_at = now
    await session.commit()
    kept = sum(1 for r in below if r.employee_id in existing)
    return GenerateRead(created=len(below) - kept, already_had_plan=kept)


async def replan(session: AsyncSession, cycle: ResultsCycle, rows: Sequence[EmployeeResultRow], now: datetime) -> None:
    """After results changed (an appeal), if HR has generated plans: a plan for whoever now qualifies, the
    new rating on existing plans, and an untouched draft removed when its person no longer qualifies."""
    if cycle.plans_generated_at is None or not rows:
        return
    qualifies = await _qualifies(session, cycle)
    plans = {
        p.employee_id: p
        for p in (
            await session.scalars(
                select(DevelopmentPlan).where(
                    DevelopmentPlan.cycle_id == cycle.cycle_id,
                    DevelopmentPlan.employee_id.in_([r.employee_id for r in rows]),
                )
            )
        ).all()
    }
    for r in rows:
        plan = plans.get(r.employee_id)
        if plan is None:
            if qualifies(r):
                session.add(_auto_plan(r, now))
        elif not qualifies(r) and plan.auto_created and plan.status == "draft" and not plan.items:
            await session.delete(plan)
        else:
            plan.rating, plan.final_score, plan.updated_at = r.rating, r.final_score, now


def _can_edit_plan(principal: Principal, org: OrgView, plan: DevelopmentPlan) -> bool:
    if principal.has(Role.HR_ADMIN):
        return True
    me = principal.acting_employee_id
    return bool(me) and (
        plan.owner_id == me or (principal.has(Role.MANAGER) and plan.employee_id in org.reports_of(me or ""))
    )


async def get_plan(
    *, session: AsyncSession, plan_id: int, principal: Principal, write: bool = False
) -> DevelopmentPlan:
    # One answer for "missing" and "not yours to see": a 403 would tell that the plan exists.
    not_found = DomainError(f"no development plan {plan_id} within your scope", status_code=404)
    plan = await session.get(DevelopmentPlan, plan_id)
    if plan is None:
        raise not_found
    org = await org_view(session=session, cycle_id=plan.cycle_id)
    if not org.can_see(principal, plan.employee_id) and principal.acting_employee_id != plan.owner_id:
        raise not_found
    if write and not _can_edit_plan(principal, org, plan):
        raise DomainError("only HR, the plan's owner or the employee's manager may change this plan", status_code=403)
    return plan


async def list_plans(
    *, session: AsyncSession, cycle_id: str, principal: Principal, limit: int, offset: int
) -> Sequence[DevelopmentPlan]:
    query = select(DevelopmentPlan).where(DevelopmentPlan.cycle_id == cycle_id)
    org = partial(org_view, session=session, cycle_id=cycle_id)
    query = await in_scope(query, DevelopmentPlan.employee_id, principal=principal, org=org)
    return (await session.scalars(query.order_by(DevelopmentPlan.id).limit(limit).offset(offset))).all()


async def create_plan(
    *, session: AsyncSession, cycle_id: str, plan: PlanCreate, principal: Principal, now: datetime
) -> DevelopmentPlan:
    org = await org_view(session=session, cycle_id=cycle_id)
    employee_id = plan.employee_id
    person = org.participants.get(employee_id)
    if person is None:
        raise DomainError(f"{employee_id!r} is not a participant of cycle {cycle_id!r}", field="employee_id")
    if not principal.has(Role.HR_ADMIN) and employee_id not in org.reports_of(my_employee_id(principal)):
        raise DomainError("you can create development plans only for your reports", status_code=403)
    if await session.scalar(
        select(DevelopmentPlan.id).where(
            DevelopmentPlan.cycle_id == cycle_id, DevelopmentPlan.employee_id == employee_id
        )
    ):
        raise DomainError(f"{employee_id!r} already has a development plan in this cycle", status_code=409)
    row = _new_plan(
        cycle_id=cycle_id,
        employee_id=employee_id,
        department_id=person.department_id,
        owner_id=person.manager_id or employee_id,
        result=await session.get(EmployeeResultRow, (cycle_id, employee_id)),
        summary=plan.summary,
        auto_created=False,
        now=now,
    )
    session.add(row)
    await session.commit()
    return row


async def update_plan(
    *, session: AsyncSession, plan_id: int, principal: Principal, changes: PlanUpdate, now: datetime
) -> DevelopmentPlan:
    plan = await get_plan(session=session, plan_id=plan_id, principal=principal, write=True)
    if changes.status == "active" and not plan.items:
        raise DomainError("a plan needs at least one item before it becomes active", status_code=409, field="status")
    if changes.owner_id is not None:
        org = await org_view(session=session, cycle_id=plan.cycle_id)
        if changes.owner_id not in org.participants:
            raise DomainError(f"owner {changes.owner_id!r} is not a participant", field="owner_id")
    for name, value in changes.model_dump(exclude_none=True).items():
        setattr(plan, name, value)
    plan.updated_at = now
    await session.commit()
    return plan


async def add_plan_item(
    *, session: AsyncSession, plan_id: int, principal: Principal, item: ItemCreate, now: datetime
) -> DevelopmentItem:
    plan = await get_plan(session=session, plan_id=plan_id, principal=principal, write=True)
    org = await org_view(session=session, cycle_id=plan.cycle_id)
    if item.owner_id not in org.participants:
        raise DomainError(f"owner {item.owner_id!r} is not a participant of the cycle", field="owner_id")
    policy = await get_policy(session=session, cycle_id=plan.cycle_id)
    row = DevelopmentItem(
        description=item.description,
        owner_id=item.owner_id,
        due_date=item.due_date or (now + timedelta(days=policy.development.default_due_days)).date(),
        done=False,
    )
    plan.items.append(row)
    plan.updated_at = now
    await session.commit()
    return row


async def update_plan_item(
    *,
    session: AsyncSession,
    plan_id: int,
    item_id: int,
    principal: Principal,
    changes: ActionItemUpdate,
    now: datetime,
) -> DevelopmentItem:
    """Editors change anything; the item's owner may only mark it done."""
    plan = await get_plan(session=session, plan_id=plan_id, principal=principal)
    item = next((i for i in plan.items if i.id == item_id), None)
    if item is None:
        raise DomainError(f"item {item_id} is not part of development plan {plan_id}", status_code=404)
    org = await org_view(session=session, cycle_id=plan.cycle_id)
    owner_marks_done = principal.acting_employee_id == item.owner_id and not changes.model_fields_set - {"done"}
    if not _can_edit_plan(principal, org, plan) and not owner_marks_done:
        raise DomainError("as the item's owner you may only mark it done", status_code=403)
    for name, value in changes.model_dump(exclude_none=True).items():
        setattr(item, name, value)
    plan.updated_at = now
    await session.commit()
    return item
