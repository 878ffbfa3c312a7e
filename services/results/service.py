"""Domain rules of the results service: pools and allocation, promotions, development plans,
collaboration awards and report, and publishing through the transactional outbox.

Functions are keyword-only and never commit; routes commit, so a change and its
outbox event always land in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingItem, PendingReport, Stage
from contracts.evaluation import CollaborationMatrix, CycleResults
from contracts.goals import GoalExport
from contracts.results import (
    MAX_LINES_PER_EVENT,
    RESULTS_PUBLISHED,
    DepartmentBonusTotal,
    PublishedResultLine,
    ResultsPublishedPayload,
)
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.common.participants import OrgView, load_org
from services.results.allocation import Candidate, allocate_pool
from services.results.models import (
    Allocation,
    AllocationLine,
    BonusPool,
    CollaborationCellRow,
    DevelopmentItem,
    DevelopmentPlan,
    EmployeeResultRow,
    Nomination,
    Publication,
    ResultsCycle,
    ResultsDepartment,
    ResultsOutbox,
    ResultsParticipant,
    SharedGoal,
)
from services.results.policy import BonusCaps, Curve, ResultsPolicy
from services.results.report import AwardCandidate, Cell, CollaborationReport, build_report, collaboration_awards

__all__ = [
    "AllocationRequest",
    "add_plan_item",
    "allocate",
    "awards",
    "collaboration_report",
    "create_plan",
    "current_allocation",
    "find_allocation",
    "find_publication",
    "generate_plans",
    "get_plan",
    "get_policy",
    "list_bonuses",
    "list_nominations",
    "list_plans",
    "list_pools",
    "nominate_promotions",
    "org_view",
    "pending_report",
    "publish",
    "put_collaboration",
    "put_goals",
    "put_results",
    "set_policy",
    "set_pool",
    "update_plan",
    "update_plan_item",
]

SERVICE = "results"


async def org_view(session: AsyncSession, cycle_id: str) -> OrgView:
    return await load_org(session, ResultsParticipant, ResultsDepartment, cycle_id)


async def _cycle(session: AsyncSession, cycle_id: str, *, create: bool = False) -> ResultsCycle:
    cycle = await session.get(ResultsCycle, cycle_id)
    if cycle is None:
        if not create:
            raise DomainError(f"cycle {cycle_id!r} has no result data yet", status_code=404, field="cycle_id")
        cycle = ResultsCycle(cycle_id=cycle_id)
        session.add(cycle)
    return cycle


def _require_results(cycle: ResultsCycle) -> None:
    if cycle.results_received_at is None:
        raise DomainError(
            f"cycle {cycle.cycle_id!r} has no calibrated results yet (evaluation pushes them after calibration)",
            status_code=409,
        )


def _me(principal: Principal) -> str:
    if not principal.employee_id:
        raise DomainError("this action needs a token with an employee_id claim", status_code=403)
    return principal.employee_id


def _department_scope(principal: Principal, org: OrgView, department_id: str) -> None:
    """HR and ops see every department; a department head only their own (and sub-departments)."""
    if principal.has(Role.HR_ADMIN, Role.OPS):
        return
    departments = org.headed_by(principal.employee_id) if principal.employee_id else set()
    if principal.department_id:
        departments |= org.department_tree(principal.department_id)
    if department_id not in departments:
        raise DomainError(f"department {department_id!r} is not in your scope", status_code=403)


# -- inputs --------------------------------------------------------------------------------------
async def put_results(session: AsyncSession, *, results: CycleResults, now: datetime) -> int:
    cycle = await _cycle(session, results.cycle_id, create=True)
    ids = [r.employee_id for r in results.results]
    if len(ids) != len(set(ids)):
        raise DomainError("an employee appears twice in results", field="results")
    await session.execute(delete(EmployeeResultRow).where(EmployeeResultRow.cycle_id == results.cycle_id))
    session.add_all(
        EmployeeResultRow(
            cycle_id=results.cycle_id,
            employee_id=r.employee_id,
            department_id=r.department_id,
            manager_id=r.manager_id,
            final_score=r.final_score,
            rating=r.rating,
        )
        for r in results.results
    )
    cycle.scale_min, cycle.scale_max = results.scale_min, results.scale_max
    cycle.results_received_at = now
    return len(ids)


async def put_collaboration(
    session: AsyncSession, *, matrix: CollaborationMatrix, previous_cycle_id: str | None, now: datetime
) -> int:
    cycle = await _cycle(session, matrix.cycle_id, create=True)
    if previous_cycle_id == matrix.cycle_id:
        raise DomainError("previous_cycle_id must name another cycle", field="previous_cycle_id")
    keys = [(c.rater_department_id, c.rated_department_id) for c in matrix.cells]
    if len(keys) != len(set(keys)):
        raise DomainError("a (rater, rated) department pair appears twice in the matrix", field="cells")
    await session.execute(delete(CollaborationCellRow).where(CollaborationCellRow.cycle_id == matrix.cycle_id))
    session.add_all(CollaborationCellRow(cycle_id=matrix.cycle_id, **c.model_dump()) for c in matrix.cells)
    cycle.collaboration_received_at = now
    if previous_cycle_id is not None:
        cycle.previous_cycle_id = previous_cycle_id
    return len(matrix.cells)


async def put_goals(session: AsyncSession, *, export: GoalExport, now: datetime) -> int:
    """Keep the goals shared by two or more departments (owner plus contributors)."""
    cycle = await _cycle(session, export.cycle_id, create=True)
    await session.execute(delete(SharedGoal).where(SharedGoal.cycle_id == export.cycle_id))
    shared = 0
    for goal in export.goals:
        departments = set(goal.contributing_department_ids)
        if goal.department_id:
            departments.add(goal.department_id)
        if len(departments) >= 2:
            session.add(
                SharedGoal(
                    cycle_id=export.cycle_id, goal_id=goal.goal_id, name=goal.name, department_ids=sorted(departments)
                )
            )
            shared += 1
    cycle.goals_received_at = now
    return shared


async def get_policy(session: AsyncSession, *, cycle_id: str) -> ResultsPolicy:
    cycle = await session.get(ResultsCycle, cycle_id)
    if cycle is None or cycle.policy is None:
        return ResultsPolicy()
    return ResultsPolicy.model_validate(cycle.policy)


async def set_policy(session: AsyncSession, *, cycle_id: str, policy: ResultsPolicy) -> ResultsPolicy:
    cycle = await _cycle(session, cycle_id, create=True)
    cycle.policy = policy.model_dump(mode="json")
    return policy


# -- pools and allocation ------------------------------------------------------------------------
async def set_pool(
    session: AsyncSession,
    *,
    cycle_id: str,
    department_id: str,
    amount_cents: int,
    currency: str,
    source: str,
    principal: Principal,
    now: datetime,
) -> BonusPool:
    await _cycle(session, cycle_id, create=True)
    org = await org_view(session, cycle_id)
    if org.departments and department_id not in org.departments:
        raise DomainError(
            f"department {department_id!r} is not part of cycle {cycle_id!r}; known: {sorted(org.departments)}",
            field="department_id",
        )
    pool = await session.get(BonusPool, (cycle_id, department_id))
    if pool is None:
        pool = BonusPool(cycle_id=cycle_id, department_id=department_id)
        session.add(pool)
    elif pool.currency != currency and await current_allocation(
        session, cycle_id=cycle_id, department_id=department_id
    ):
        raise DomainError(
            f"the pool is already allocated in {pool.currency}; re-allocate after changing the currency",
            status_code=409,
            field="currency",
        )
    pool.amount_cents, pool.currency, pool.source = amount_cents, currency, source
    pool.updated_at, pool.updated_by = now, principal.sub
    return pool


async def list_pools(session: AsyncSession, *, cycle_id: str, principal: Principal) -> list[BonusPool]:
    pools = list(
        (
            await session.scalars(
                select(BonusPool).where(BonusPool.cycle_id == cycle_id).order_by(BonusPool.department_id)
            )
        ).all()
    )
    if principal.has(Role.HR_ADMIN, Role.OPS):
        return pools
    org = await org_view(session, cycle_id)
    visible = []
    for pool in pools:
        try:
            _department_scope(principal, org, pool.department_id)
        except DomainError:
            continue
        visible.append(pool)
    return visible


@dataclass(frozen=True)
class AllocationRequest:
    curve: Curve | None
    caps: BonusCaps | None
    fixed_cents: dict[str, int]

    def fingerprint(self, pool: BonusPool) -> str:
        body = {
            "curve": self.curve.model_dump(mode="json") if self.curve else None,
            "caps": self.caps.model_dump(mode="json") if self.caps else None,
            "fixed": dict(sorted(self.fixed_cents.items())),
            "pool": [pool.amount_cents, pool.currency],
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


async def find_allocation(
    session: AsyncSession, *, cycle_id: str, department_id: str, idempotency_key: str
) -> Allocation | None:
    return await session.scalar(
        select(Allocation).where(
            Allocation.cycle_id == cycle_id,
            Allocation.department_id == department_id,
            Allocation.idempotency_key == idempotency_key,
        )
    )


async def current_allocation(session: AsyncSession, *, cycle_id: str, department_id: str) -> Allocation | None:
    return await session.scalar(
        select(Allocation).where(
            Allocation.cycle_id == cycle_id, Allocation.department_id == department_id, Allocation.current.is_(True)
        )
    )


async def allocate(
    session: AsyncSession,
    *,
    cycle_id: str,
    department_id: str,
    request: AllocationRequest,
    idempotency_key: str | None,
    principal: Principal,
    now: datetime,
) -> tuple[Allocation, bool]:
    """Allocate a department's pool; returns ``(allocation, replayed)``.

    With an ``Idempotency-Key`` a retry returns the stored allocation and never allocates twice;
    reusing a key for a different request is refused. A new allocation supersedes the previous one.
    """
    cycle = await _cycle(session, cycle_id)
    _require_results(cycle)
    pool = await session.get(BonusPool, (cycle_id, department_id))
    if pool is None:
        raise DomainError(
            f"department {department_id!r} has no bonus pool in cycle {cycle_id!r}; "
            "PUT /v1/cycles/{cycle_id}/pools/{department_id} first",
            status_code=409,
        )
    fingerprint = request.fingerprint(pool)
    if idempotency_key is not None:
        existing = await find_allocation(
            session, cycle_id=cycle_id, department_id=department_id, idempotency_key=idempotency_key
        )
        if existing is not None:
            if existing.request_fingerprint != fingerprint:
                raise DomainError(
                    "this Idempotency-Key was already used for a different allocation request (or the pool changed); "
                    "use a new key",
                    status_code=422,
                    field="Idempotency-Key",
                )
            return existing, True
    policy = await get_policy(session, cycle_id=cycle_id)
    curve = request.curve or policy.curve
    caps = request.caps or policy.caps
    rows = (
        await session.scalars(
            select(EmployeeResultRow).where(
                EmployeeResultRow.cycle_id == cycle_id, EmployeeResultRow.department_id == department_id
            )
        )
    ).all()
    outcome = allocate_pool(
        pool_cents=pool.amount_cents,
        candidates=[Candidate(r.employee_id, r.final_score, r.rating) for r in rows],
        curve=curve,
        caps=caps,
        scale_min=cycle.scale_min if cycle.scale_min is not None else 0.0,
        fixed_cents=request.fixed_cents,
    )
    await session.execute(
        update(Allocation)
        .where(Allocation.cycle_id == cycle_id, Allocation.department_id == department_id, Allocation.current.is_(True))
        .values(current=False)
    )
    allocation = Allocation(
        cycle_id=cycle_id,
        department_id=department_id,
        idempotency_key=idempotency_key,
        request_fingerprint=fingerprint,
        pool_cents=pool.amount_cents,
        currency=pool.currency,
        allocated_cents=outcome.allocated_cents,
        unallocated_cents=outcome.unallocated_cents,
        curve=curve.model_dump(mode="json"),
        caps=caps.model_dump(mode="json"),
        notes=outcome.notes,
        current=True,
        created_at=now,
        created_by=principal.sub,
        lines=[
            AllocationLine(
                employee_id=line.employee_id,
                final_score=line.final_score,
                rating=line.rating,
                weight=line.weight,
                amount_cents=line.amount_cents,
                capped=line.capped,
                fixed=line.fixed,
            )
            for line in outcome.lines
        ],
    )
    session.add(allocation)
    await session.flush()
    return allocation, False


async def get_allocation_in_scope(
    session: AsyncSession, *, cycle_id: str, department_id: str, principal: Principal
) -> Allocation:
    _department_scope(principal, await org_view(session, cycle_id), department_id)
    allocation = await current_allocation(session, cycle_id=cycle_id, department_id=department_id)
    if allocation is None:
        raise DomainError(f"department {department_id!r} has no allocation yet", status_code=404)
    return allocation


@dataclass(frozen=True)
class BonusLine:
    employee_id: str
    department_id: str
    amount_cents: int
    currency: str
    rating: str
    final_score: float


async def list_bonuses(
    session: AsyncSession, *, cycle_id: str, principal: Principal, limit: int, offset: int
) -> list[BonusLine]:
    """Allocated bonuses in the caller's scope; people other than HR/ops see them once published."""
    query = (
        select(AllocationLine, Allocation.department_id, Allocation.currency)
        .join(Allocation, Allocation.id == AllocationLine.allocation_id)
        .where(Allocation.cycle_id == cycle_id, Allocation.current.is_(True))
    )
    if not principal.has(Role.HR_ADMIN, Role.OPS):
        if await session.get(Publication, cycle_id) is None:
            return []
        visible = (await org_view(session, cycle_id)).visible_employee_ids(principal) or set()
        query = query.where(AllocationLine.employee_id.in_(sorted(visible)))
    rows = (await session.execute(query.order_by(AllocationLine.employee_id).limit(limit).offset(offset))).all()
    return [
        BonusLine(
            employee_id=line.employee_id,
            department_id=dept,
            amount_cents=line.amount_cents,
            currency=currency,
            rating=line.rating,
            final_score=line.final_score,
        )
        for line, dept, currency in rows
    ]


# -- promotions ----------------------------------------------------------------------------------
async def nominate_promotions(session: AsyncSession, *, cycle_id: str, now: datetime) -> list[Nomination]:
    """Recompute the nominations from the cycle's promotion rule (replaces the previous ones)."""
    cycle = await _cycle(session, cycle_id)
    _require_results(cycle)
    rule = (await get_policy(session, cycle_id=cycle_id)).promotion
    org = await org_view(session, cycle_id)
    if not org.participants:
        raise DomainError(f"cycle {cycle_id!r} has no participants (grades) yet", status_code=409)
    await session.execute(delete(Nomination).where(Nomination.cycle_id == cycle_id))
    rows = (
        await session.scalars(
            select(EmployeeResultRow)
            .where(EmployeeResultRow.cycle_id == cycle_id)
            .order_by(EmployeeResultRow.employee_id)
        )
    ).all()
    nominations = []
    ratings = set(rule.ratings)
    for r in rows:
        person = org.participants.get(r.employee_id)
        if person is None or r.rating not in ratings:
            continue
        reasons = [f"rating '{r.rating}' is in the promotion band {sorted(ratings)}"]
        if rule.min_score is not None:
            if r.final_score < rule.min_score:
                continue
            reasons.append(f"score {r.final_score:g} >= {rule.min_score:g}")
        if rule.grade_ladder:
            if person.grade not in rule.grade_ladder or person.grade == rule.grade_ladder[-1]:
                continue
            reasons.append(f"grade {person.grade} is below the top grade {rule.grade_ladder[-1]}")
        nominations.append(
            Nomination(
                cycle_id=cycle_id,
                employee_id=r.employee_id,
                department_id=r.department_id,
                grade=person.grade,
                rating=r.rating,
                final_score=r.final_score,
                reasons=reasons,
                created_at=now,
            )
        )
    session.add_all(nominations)
    return nominations


async def list_nominations(
    session: AsyncSession, *, cycle_id: str, principal: Principal, limit: int, offset: int
) -> Sequence[Nomination]:
    query = select(Nomination).where(Nomination.cycle_id == cycle_id)
    if not principal.has(Role.HR_ADMIN, Role.OPS):
        visible = (await org_view(session, cycle_id)).visible_employee_ids(principal) or set()
        query = query.where(Nomination.employee_id.in_(sorted(visible)))
    return (await session.scalars(query.order_by(Nomination.employee_id).limit(limit).offset(offset))).all()


# -- development plans ---------------------------------------------------------------------------
async def generate_plans(session: AsyncSession, *, cycle_id: str, now: datetime) -> tuple[int, int]:
    """Draft a plan for everyone below the development threshold; returns ``(created, already_had_one)``."""
    cycle = await _cycle(session, cycle_id)
    _require_results(cycle)
    rule = (await get_policy(session, cycle_id=cycle_id)).development
    existing = set(
        (await session.scalars(select(DevelopmentPlan.employee_id).where(DevelopmentPlan.cycle_id == cycle_id))).all()
    )
    rows = (await session.scalars(select(EmployeeResultRow).where(EmployeeResultRow.cycle_id == cycle_id))).all()
    created = kept = 0
    for r in rows:
        below = r.rating in rule.ratings or (rule.below_score is not None and r.final_score < rule.below_score)
        if not below:
            continue
        if r.employee_id in existing:
            kept += 1
            continue
        session.add(
            DevelopmentPlan(
                cycle_id=cycle_id,
                employee_id=r.employee_id,
                department_id=r.department_id,
                owner_id=r.manager_id or r.employee_id,
                status="draft",
                rating=r.rating,
                final_score=r.final_score,
                summary=f"Development plan after a '{r.rating}' rating ({r.final_score:g}).",
                auto_created=True,
                created_at=now,
                updated_at=now,
                items=[],
            )
        )
        created += 1
    return created, kept


def _can_edit_plan(principal: Principal, org: OrgView, plan: DevelopmentPlan) -> bool:
    if principal.has(Role.HR_ADMIN):
        return True
    me = principal.employee_id
    return bool(me) and (
        plan.owner_id == me or (principal.has(Role.MANAGER) and plan.employee_id in org.reports_of(me or ""))
    )


async def get_plan(
    session: AsyncSession, *, plan_id: int, principal: Principal, write: bool = False
) -> DevelopmentPlan:
    plan = await session.get(DevelopmentPlan, plan_id)
    if plan is None:
        raise DomainError(f"development plan {plan_id} does not exist", status_code=404)
    org = await org_view(session, plan.cycle_id)
    if write and not _can_edit_plan(principal, org, plan):
        raise DomainError("only HR, the plan's owner or the employee's manager may change this plan", status_code=403)
    if not org.can_see(principal, plan.employee_id) and principal.employee_id != plan.owner_id:
        raise DomainError(f"development plan {plan_id} is not in your scope", status_code=403)
    return plan


async def list_plans(
    session: AsyncSession, *, cycle_id: str, principal: Principal, limit: int, offset: int
) -> Sequence[DevelopmentPlan]:
    query = select(DevelopmentPlan).where(DevelopmentPlan.cycle_id == cycle_id)
    if not principal.has(Role.HR_ADMIN, Role.OPS):
        visible = (await org_view(session, cycle_id)).visible_employee_ids(principal) or set()
        query = query.where(DevelopmentPlan.employee_id.in_(sorted(visible)))
    return (await session.scalars(query.order_by(DevelopmentPlan.id).limit(limit).offset(offset))).all()


async def create_plan(
    session: AsyncSession, *, cycle_id: str, employee_id: str, summary: str, principal: Principal, now: datetime
) -> DevelopmentPlan:
    org = await org_view(session, cycle_id)
    person = org.participants.get(employee_id)
    if person is None:
        raise DomainError(f"{employee_id!r} is not a participant of cycle {cycle_id!r}", field="employee_id")
    if not principal.has(Role.HR_ADMIN) and employee_id not in org.reports_of(_me(principal)):
        raise DomainError("you can create development plans only for your reports", status_code=403)
    if await session.scalar(
        select(DevelopmentPlan.id).where(
            DevelopmentPlan.cycle_id == cycle_id, DevelopmentPlan.employee_id == employee_id
        )
    ):
        raise DomainError(f"{employee_id!r} already has a development plan in this cycle", status_code=409)
    result = await session.get(EmployeeResultRow, (cycle_id, employee_id))
    plan = DevelopmentPlan(
        cycle_id=cycle_id,
        employee_id=employee_id,
        department_id=person.department_id,
        owner_id=person.manager_id or employee_id,
        status="draft",
        rating=result.rating if result else None,
        final_score=result.final_score if result else None,
        summary=summary,
        auto_created=False,
        created_at=now,
        updated_at=now,
        items=[],
    )
    session.add(plan)
    await session.flush()
    return plan


async def update_plan(
    session: AsyncSession, *, plan_id: int, principal: Principal, changes: dict[str, Any], now: datetime
) -> DevelopmentPlan:
    plan = await get_plan(session, plan_id=plan_id, principal=principal, write=True)
    if changes.get("status") == "active" and not plan.items:
        raise DomainError("a plan needs at least one item before it becomes active", status_code=409, field="status")
    if "owner_id" in changes and changes["owner_id"] is not None:
        org = await org_view(session, plan.cycle_id)
        if changes["owner_id"] not in org.participants:
            raise DomainError(f"owner {changes['owner_id']!r} is not a participant", field="owner_id")
    for name in ("status", "summary", "owner_id"):
        if changes.get(name) is not None:
            setattr(plan, name, changes[name])
    plan.updated_at = now
    return plan


async def add_plan_item(
    session: AsyncSession,
    *,
    plan_id: int,
    principal: Principal,
    description: str,
    owner_id: str,
    due_date: date | None,
    now: datetime,
) -> DevelopmentItem:
    plan = await get_plan(session, plan_id=plan_id, principal=principal, write=True)
    org = await org_view(session, plan.cycle_id)
    if owner_id not in org.participants:
        raise DomainError(f"owner {owner_id!r} is not a participant of the cycle", field="owner_id")
    policy = await get_policy(session, cycle_id=plan.cycle_id)
    item = DevelopmentItem(
        description=description,
        owner_id=owner_id,
        due_date=due_date or (now + timedelta(days=policy.development.default_due_days)).date(),
        done=False,
    )
    plan.items.append(item)
    plan.updated_at = now
    await session.flush()
    return item


async def update_plan_item(
    session: AsyncSession, *, plan_id: int, item_id: int, principal: Principal, changes: dict[str, Any], now: datetime
) -> DevelopmentItem:
    """Editors change anything; the item's owner may only mark it done."""
    plan = await get_plan(session, plan_id=plan_id, principal=principal)
    item = next((i for i in plan.items if i.id == item_id), None)
    if item is None:
        raise DomainError(f"item {item_id} is not part of development plan {plan_id}", status_code=404)
    org = await org_view(session, plan.cycle_id)
    owner_marks_done = principal.employee_id == item.owner_id and not set(changes) - {"done"}
    if not _can_edit_plan(principal, org, plan) and not owner_marks_done:
        raise DomainError("as the item's owner you may only mark it done", status_code=403)
    for name in ("description", "owner_id", "due_date", "done"):
        if changes.get(name) is not None:
            setattr(item, name, changes[name])
    plan.updated_at = now
    return item


# -- collaboration -------------------------------------------------------------------------------
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
    session: AsyncSession, *, cycle_id: str, previous_cycle_id: str | None
) -> CollaborationReport:
    cycle = await _cycle(session, cycle_id)
    if cycle.collaboration_received_at is None:
        raise DomainError(f"cycle {cycle_id!r} has no collaboration matrix yet", status_code=409)
    policy = await get_policy(session, cycle_id=cycle_id)
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


async def awards(session: AsyncSession, *, cycle_id: str) -> list[AwardCandidate]:
    cycle = await _cycle(session, cycle_id)
    if cycle.collaboration_received_at is None:
        raise DomainError(f"cycle {cycle_id!r} has no collaboration matrix yet", status_code=409)
    goals: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for g in (
        await session.scalars(select(SharedGoal).where(SharedGoal.cycle_id == cycle_id).order_by(SharedGoal.goal_id))
    ).all():
        for d in g.department_ids:
            goals[d].append((g.goal_id, g.name))
    policy = await get_policy(session, cycle_id=cycle_id)
    return collaboration_awards(
        cells=await _cells(session, cycle_id),
        shared_goals=goals,
        names=await _names(session, [cycle_id]),
        rule=policy.awards,
    )


# -- publishing ----------------------------------------------------------------------------------
async def find_publication(session: AsyncSession, *, cycle_id: str) -> Publication | None:
    return await session.get(Publication, cycle_id)


async def publish(
    session: AsyncSession, *, cycle_id: str, idempotency_key: str | None, principal: Principal, now: datetime
) -> tuple[Publication, bool]:
    """Write ``ResultsPublished`` to the outbox with the publication row; returns ``(publication, replayed)``."""
    existing = await find_publication(session, cycle_id=cycle_id)
    if existing is not None:
        if idempotency_key is not None and existing.idempotency_key == idempotency_key:
            return existing, True
        raise DomainError(
            f"cycle {cycle_id!r} results were already published at {existing.published_at.isoformat()} "
            f"(publication {existing.publication_id}); repeat with the same Idempotency-Key to read it back",
            status_code=409,
        )
    cycle = await _cycle(session, cycle_id)
    _require_results(cycle)
    pools = {
        p.department_id: p
        for p in (await session.scalars(select(BonusPool).where(BonusPool.cycle_id == cycle_id))).all()
    }
    allocations = {
        a.department_id: a
        for a in (
            await session.scalars(
                select(Allocation).where(Allocation.cycle_id == cycle_id, Allocation.current.is_(True))
            )
        ).all()
    }
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
    bonus = {line.employee_id: (line.amount_cents, a.currency) for a in allocations.values() for line in a.lines}
    nominated = set(
        (await session.scalars(select(Nomination.employee_id).where(Nomination.cycle_id == cycle_id))).all()
    )
    results = (
        await session.scalars(
            select(EmployeeResultRow)
            .where(EmployeeResultRow.cycle_id == cycle_id)
            .order_by(EmployeeResultRow.employee_id)
        )
    ).all()
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
        for r in results
    ]
    totals = [
        DepartmentBonusTotal(
            department_id=d, pool_cents=a.pool_cents, allocated_cents=a.allocated_cents, currency=a.currency
        )
        for d, a in sorted(allocations.items())
    ]
    publication_id = str(uuid.uuid4())
    chunks = [lines[i : i + MAX_LINES_PER_EVENT] for i in range(0, len(lines), MAX_LINES_PER_EVENT)] or [[]]
    event_ids = []
    for part, chunk in enumerate(chunks, start=1):
        payload = ResultsPublishedPayload(
            cycle_id=cycle_id,
            publication_id=publication_id,
            part=part,
            parts=len(chunks),
            departments=totals,
            lines=chunk,
        )
        event = new_event(
            service=SERVICE,
            type=RESULTS_PUBLISHED,
            cycle_id=cycle_id,
            subject_id=publication_id,
            payload=payload.model_dump(mode="json"),
        )
        add_event(session, ResultsOutbox, event)
        event_ids.append(str(event.event_id))
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


# -- workflow view -------------------------------------------------------------------------------
async def pending_report(session: AsyncSession, *, cycle_id: str, department_id: str) -> PendingReport:
    """Result application: the department's pool allocation, and development plans without items."""
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
        allocation = await current_allocation(session, cycle_id=cycle_id, department_id=department_id)
        if pool is None:
            items.append(PendingItem(item_id=f"pool-{department_id}", kind="bonus_pool_budget", owner_id=None))
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
