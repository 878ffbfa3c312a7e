"""Bulk assignment: one goal template to everyone in a department and/or with a job title."""

from __future__ import annotations

from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.domain_events import GoalsBulkAssignedPayload
from contracts.goals import GoalLevel
from services.common.auth import Principal
from services.common.clock import utc_now
from services.common.errors import DomainError
from services.goals.models import GoalsGoal
from services.goals.rules import GoalStatus
from services.goals.schemas import BulkAssignRequest, BulkAssignResult, BulkSkip
from services.goals.service.cycle import ensure_open
from services.goals.service.records import emit_event, new_id, stored
from services.goals.service.scope import load_scope, no_snapshot
from services.goals.service.validation import aligned_to, check_department, check_fields, parent_kpi

__all__ = ["bulk_assign"]


async def bulk_assign(
    *, session: AsyncSession, cycle_id: str, request: BulkAssignRequest, principal: Principal
) -> BulkAssignResult:
    """One template to everyone matching, in one INSERT; people who already have it are skipped."""
    await ensure_open(session, cycle_id)
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    if not scope.org.participants:
        raise no_snapshot(cycle_id)
    if request.department_id is not None:
        check_department(scope, cycle_id, request.department_id, "department_id")
    template = request.template
    check_fields(scope, cycle_id, template, [])
    parent = await parent_kpi(session, cycle_id, template.parent_id, GoalLevel.INDIVIDUAL)
    departments: set[str] | None = None
    if request.department_id is not None:
        departments = (
            scope.org.department_tree(request.department_id)
            if request.include_subdepartments
            else {request.department_id}
        )
    matched = sorted(
        (
            p
            for p in scope.org.participants.values()
            if (departments is None or p.department_id in departments)
            and (request.job_title is None or p.job_title == request.job_title)
            and scope.sees_employee(p.employee_id)
        ),
        key=lambda p: p.employee_id,
    )
    existing = set(
        (
            await session.scalars(
                select(GoalsGoal.employee_id).where(
                    GoalsGoal.cycle_id == cycle_id, GoalsGoal.template_key == request.template_key
                )
            )
        ).all()
    )
    skipped: list[BulkSkip] = []
    rows: list[dict[str, Any]] = []
    now = utc_now()
    values = {k: stored(v) for k, v in template.model_dump().items()}
    for participant in matched:
        if participant.employee_id in existing:
            skipped.append(BulkSkip(employee_id=participant.employee_id, reason="already_assigned"))
        elif not aligned_to(scope.org, parent, participant.department_id):
            skipped.append(
                BulkSkip(
                    employee_id=participant.employee_id,
                    reason=f"not_aligned: in department '{participant.department_id}'",
                )
            )
        else:
            rows.append(
                values
                | {
                    "cycle_id": cycle_id,
                    "goal_id": new_id("g"),
                    "level": GoalLevel.INDIVIDUAL.value,
                    "objective_id": None,
                    "department_id": participant.department_id,
                    "employee_id": participant.employee_id,
                    "contributing_department_ids": [],
                    "template_key": request.template_key,
                    "status": GoalStatus.DRAFT.value,
                    "status_comment": None,
                    "status_changed_by": None,
                    "created_by": principal.sub,
                    "created_at": now,
                    "updated_at": now,
                    "version": 1,
                }
            )
    if rows:
        await session.execute(insert(GoalsGoal), rows)
        emit_event(
            session,
            type="GoalsBulkAssigned",
            cycle_id=cycle_id,
            subject_id=request.template_key,
            payload=GoalsBulkAssignedPayload(
                template_key=request.template_key,
                parent_id=parent.goal_id,
                department_id=request.department_id,
                job_title=request.job_title,
                created=len(rows),
                skipped=len(skipped),
            ),
        )
        try:
            await session.commit()
        except IntegrityError as exc:
            await session.rollback()
            raise DomainError(
                f"a concurrent assignment of template '{request.template_key}' got there first; "
                "re-run the call (it skips who already has the goal)",
                status_code=409,
            ) from exc
    return BulkAssignResult(
        cycle_id=cycle_id,
        template_key=request.template_key,
        matched=len(matched),
        created=len(rows),
        created_goal_ids=[r["goal_id"] for r in rows],
        skipped=len(skipped),
        skipped_items=skipped,
    )
