"""What other stages read: the KPI catalog (tracking), approved goals (evaluation), pending work and the
open approval steps (workflow)."""

from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingItem, PendingReport, Stage
from contracts.goals import (
    ApprovalChains,
    ApprovalQueue,
    ApprovalQueueItem,
    ExportedGoal,
    GoalExport,
    GoalLevel,
    KpiCatalog,
    KpiDefinition,
)
from services.common.clock import utc_now
from services.common.errors import DomainError
from services.common.participants import OrgView, load_org
from services.goals.cycle_period import PeriodSource
from services.goals.models import GoalsDepartment, GoalsGoal, GoalsParticipant
from services.goals.rules import COMPANY_OWNER, GoalKind, GoalStatus
from services.goals.schemas import ApprovalStepState
from services.goals.service.approval import current_approval
from services.goals.service.cycle import chains_of, cycle_row, get_or_add_cycle
from services.goals.service.records import goal_columns

__all__ = ["PENDING_LIMIT", "approval_queue", "goal_export", "kpi_catalog", "pending_report"]


async def kpi_catalog(*, session: AsyncSession, cycle_id: str, period_source: PeriodSource | None = None) -> KpiCatalog:
    """Every KPI or goal with a metric key, and every OKR key result (any status), for tracking.

    A key result without a metric is in the catalog with an empty metric: it receives its current
    value through check-ins (value + confidence) and scores like any KPI.

    The period comes from ``PUT /settings``; when it was never set it is read once from the cycles
    service (``period_source``) and kept.
    """
    cycle = await cycle_row(session, cycle_id)
    if cycle is None or cycle.period_start is None or cycle.period_end is None:
        period = await period_source(cycle_id) if period_source is not None else None
        if period is None:
            raise DomainError(
                f"the period of cycle '{cycle_id}' is unknown: the cycles service did not provide it; "
                f"PUT /v1/cycles/{cycle_id}/settings with period_start and period_end",
                status_code=409,
            )
        cycle = await get_or_add_cycle(session, cycle_id)
        cycle.period_start, cycle.period_end = period
        await session.commit()
    assert cycle.period_start is not None and cycle.period_end is not None
    goals = (
        await session.scalars(
            select(GoalsGoal)
            .where(
                GoalsGoal.cycle_id == cycle_id,
                or_(GoalsGoal.metric.is_not(None), GoalsGoal.kind == GoalKind.OKR_KEY_RESULT.value),
            )
            .order_by(GoalsGoal.level, GoalsGoal.goal_id)
        )
    ).all()
    return KpiCatalog(
        cycle_id=cycle_id,
        period_start=cycle.period_start,
        period_end=cycle.period_end,
        kpis=[
            KpiDefinition.model_validate(
                goal_columns(g, KpiDefinition)
                | {
                    "kpi_id": g.goal_id,
                    "metric": g.metric or "",
                    "owner_department_id": g.data_owner_department_id or g.department_id or COMPANY_OWNER,
                }
            )
            for g in goals
        ],
    )


async def goal_export(*, session: AsyncSession, cycle_id: str) -> GoalExport:
    """Every approved goal of the cycle, for evaluation."""
    goals = (
        await session.scalars(
            select(GoalsGoal)
            .where(GoalsGoal.cycle_id == cycle_id, GoalsGoal.status == GoalStatus.APPROVED.value)
            .order_by(GoalsGoal.level, GoalsGoal.goal_id)
        )
    ).all()
    return GoalExport(
        cycle_id=cycle_id,
        goals=[
            ExportedGoal.model_validate(
                goal_columns(g, ExportedGoal)
                | {
                    "kpi_id": g.goal_id if g.metric or g.kind == GoalKind.OKR_KEY_RESULT.value else None,
                }
            )
            for g in goals
        ],
    )


PENDING_LIMIT = 500


async def pending_report(*, session: AsyncSession, cycle_id: str, department_id: str, stage: Stage) -> PendingReport:
    """Who in ``department_id`` (and its sub-departments) still owes goal-setting work.

    Items: people without any goal (``goals_missing``, owner: the employee), draft or returned goals
    (owner: the employee, or the head for department KPIs), submitted goals and KPIs (owner: the
    approver of the step they wait at; none when it is HR's, with the step's deadline, reminders and
    escalation for the workflow). ``total`` counts goals plus people without goals; ``done`` the
    approved goals.
    """
    if stage is not Stage.GOAL_SETTING:
        raise DomainError(f"the goals service answers stage 'goal_setting' only, not '{stage.value}'", field="stage")
    org, departments, goals = await _department_goals(session, cycle_id, department_id)
    chains = chains_of(await cycle_row(session, cycle_id))
    members = sorted(p.employee_id for p in org.participants.values() if p.department_id in departments)
    with_goals = {g.employee_id for g in goals if g.level == GoalLevel.INDIVIDUAL}
    items: list[PendingItem] = [
        PendingItem(item_id=emp, kind="goals_missing", owner_id=emp) for emp in members if emp not in with_goals
    ]
    done = 0
    for goal in goals:
        if goal.status == GoalStatus.APPROVED:
            done += 1
            continue
        if goal.status == GoalStatus.SUBMITTED:
            kind = "department_kpi_approval" if goal.level == GoalLevel.DEPARTMENT else "goal_approval"
            step = _waiting_step(org, goal, chains)
            items.append(
                PendingItem(
                    item_id=goal.goal_id,
                    kind=kind,
                    owner_id=step.approver_id,
                    deadline=step.deadline,
                    reminders=step.reminders,
                    escalate_to_id=step.escalate_to_id,
                    escalate_to_hr_at=step.escalate_to_hr_at,
                )
            )
            continue
        if goal.level == GoalLevel.DEPARTMENT:
            kind = "department_kpi_submission"
            owner = org.departments[goal.department_id or department_id].head_employee_id
        else:
            kind = "goal_returned" if goal.status == GoalStatus.RETURNED else "goal_submission"
            owner = goal.employee_id
        items.append(PendingItem(item_id=goal.goal_id, kind=kind, owner_id=owner))
    return PendingReport(
        cycle_id=cycle_id,
        stage=stage,
        department_id=department_id,
        total=len(goals) + (len(members) - len(with_goals & set(members))),
        done=done,
        # the waiting approval steps first: the workflow reminds and escalates them on their own deadlines
        pending=sorted(items, key=lambda i: i.deadline is None)[:PENDING_LIMIT],
    )


async def _department_goals(
    session: AsyncSession, cycle_id: str, department_id: str
) -> tuple[OrgView, set[str], list[GoalsGoal]]:
    """The org, the department with its sub-departments, and their department KPIs and individual goals."""
    org = await load_org(session, GoalsParticipant, GoalsDepartment, cycle_id)
    if department_id not in org.departments:
        raise DomainError(
            f"no department '{department_id}' in cycle '{cycle_id}'", status_code=404, field="department_id"
        )
    # a department includes its sub-departments (people sit in e.g. production-assembly)
    departments = org.department_tree(department_id)
    goals = (
        await session.scalars(
            select(GoalsGoal)
            .where(
                GoalsGoal.cycle_id == cycle_id,
                GoalsGoal.department_id.in_(sorted(departments)),
                GoalsGoal.level.in_([GoalLevel.DEPARTMENT.value, GoalLevel.INDIVIDUAL.value]),
            )
            .order_by(GoalsGoal.level, GoalsGoal.employee_id, GoalsGoal.goal_id)
        )
    ).all()
    return org, departments, list(goals)


def _waiting_step(org: OrgView, goal: GoalsGoal, chains: ApprovalChains) -> ApprovalStepState:
    approval = current_approval(org, goal, chains)
    assert approval is not None and approval.current_step is not None  # a submitted goal waits at a step
    return approval.steps[approval.current_step - 1]


async def approval_queue(*, session: AsyncSession, cycle_id: str, department_id: str) -> ApprovalQueue:
    """Every goal and KPI of ``department_id`` (and its sub-departments) waiting at an approval step, with the
    step's approver, deadline, reminders and escalation: what the department workflow reminds and escalates."""
    org, _departments, goals = await _department_goals(session, cycle_id, department_id)
    chains = chains_of(await cycle_row(session, cycle_id))
    items = []
    for goal in goals:
        if goal.status != GoalStatus.SUBMITTED:
            continue
        approval = current_approval(org, goal, chains)
        assert approval is not None and approval.current_step is not None
        step = approval.steps[approval.current_step - 1]
        assert step.opened_at is not None  # the waiting step was opened
        items.append(
            ApprovalQueueItem(
                goal_id=goal.goal_id,
                level=GoalLevel(goal.level),
                employee_id=goal.employee_id,
                department_id=goal.department_id,
                step=step.step,
                steps=len(approval.steps),
                approver_role=step.approver_role,
                approver_id=step.approver_id,
                opened_at=step.opened_at,
                deadline=step.deadline,
                reminders=step.reminders,
                escalate_to_id=step.escalate_to_id,
                escalate_to_hr_at=step.escalate_to_hr_at,
            )
        )
    return ApprovalQueue(cycle_id=cycle_id, department_id=department_id, as_of=utc_now(), items=items[:PENDING_LIMIT])
