"""What a department still owes in the evaluation stage, for the department workflow's reminders."""

from __future__ import annotations

from collections import defaultdict

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingItem, PendingReport, Stage
from contracts.evaluation import Relation
from contracts.org import Participant
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.evaluation.models import EvaluationAssignment
from services.evaluation.service.records import heads_department, load_input, org_for, parse_config

__all__ = ["pending_report"]

_PENDING_KIND = {
    Relation.SELF.value: "self_review",
    Relation.MANAGER.value: "manager_review",
    Relation.PEER.value: "peer_review",
    Relation.CROSS_DEPARTMENT.value: "cross_department_review",
    Relation.UPWARD.value: "upward_review",
}


async def pending_report(
    *, session: AsyncSession, cycle_id: str, department_id: str, stage: Stage, principal: Principal
) -> PendingReport:
    """What the department still owes: reviews its raters have not submitted, and nominations
    its managers still owe (a reviewee below the configured minimum of peer or cross-department
    raters). A caller never sees items about themselves."""
    if stage != Stage.EVALUATION:
        raise DomainError(f"the evaluation service reports stage 'evaluation', not {stage.value!r}", field="stage")
    org = await org_for(session, cycle_id)
    if department_id not in org.departments:
        raise DomainError(f"department {department_id!r} is not in cycle {cycle_id!r}", status_code=404)
    if not (principal.has(Role.HR_ADMIN, Role.OPS) or heads_department(principal, org, department_id)):
        raise DomainError("you may only see pending reviews of departments you head", status_code=403)
    members = [p for p in org.participants.values() if p.department_id == department_id]
    query = select(EvaluationAssignment).where(
        EvaluationAssignment.cycle_id == cycle_id,
        EvaluationAssignment.rater_id.in_([p.employee_id for p in members]),
    )
    if principal.acting_employee_id:
        query = query.where(EvaluationAssignment.reviewee_id != principal.acting_employee_id)
    rows = (
        await session.scalars(query.order_by(EvaluationAssignment.created_at, EvaluationAssignment.assignment_id))
    ).all()
    items = [
        PendingItem(item_id=r.assignment_id, kind=_PENDING_KIND.get(r.relation, r.relation), owner_id=r.rater_id)
        for r in rows
        if r.status != "submitted"
    ]
    total, done = len(rows), sum(1 for r in rows if r.status == "submitted")
    owed, satisfied = await _nominations_owed(session, cycle_id=cycle_id, members=members, principal=principal)
    return PendingReport(
        cycle_id=cycle_id,
        stage=Stage.EVALUATION,
        department_id=department_id,
        total=total + len(owed) + satisfied,
        done=done + satisfied,
        pending=[*items, *owed][:500],
    )


async def _nominations_owed(
    session: AsyncSession, *, cycle_id: str, members: list[Participant], principal: Principal
) -> tuple[list[PendingItem], int]:
    """Nominations managers owe for ``members`` below the configured minimum of peer and
    cross-department raters, and how many minimums are already met (none before the config)."""
    payload = await load_input(session, cycle_id, "config")
    if payload is None:
        return [], 0
    limits = parse_config(payload, cycle_id).rater_limits
    counts: dict[tuple[str, str], int] = defaultdict(int)
    assigned = select(EvaluationAssignment.reviewee_id, EvaluationAssignment.relation).where(
        EvaluationAssignment.cycle_id == cycle_id,
        EvaluationAssignment.reviewee_id.in_([p.employee_id for p in members]),
    )
    for reviewee_id, relation in (await session.execute(assigned)).all():
        counts[(reviewee_id, relation)] += 1
    owed: list[PendingItem] = []
    satisfied = 0
    for member in sorted(members, key=lambda p: p.employee_id):
        if member.employee_id == principal.acting_employee_id or not member.manager_id:
            continue
        for relation in (Relation.PEER, Relation.CROSS_DEPARTMENT):
            limit = limits.get(relation)
            if limit is None or limit.min == 0:
                continue
            if counts[(member.employee_id, relation.value)] >= limit.min:
                satisfied += 1
            else:
                owed.append(
                    PendingItem(
                        item_id=f"{member.employee_id}:{relation.value}",
                        kind=f"{relation.value}_nomination",
                        owner_id=member.manager_id,
                    )
                )
    return owed, satisfied
