"""The approval chain: who may submit, approve or return a goal, and the transition itself."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.goals import GoalLevel
from services.common.auth import Principal
from services.common.clock import utc_now
from services.common.errors import DomainError
from services.common.participants import OrgView
from services.goals.models import GoalsGoal
from services.goals.rules import Action, GoalStatus, TransitionError, next_status
from services.goals.service.cycle import ensure_open
from services.goals.service.goals import visible_goal
from services.goals.service.records import emit_event
from services.goals.service.scope import Scope
from services.goals.service.weights import owner_weight

__all__ = ["EVENT_TYPES", "goal_approver", "transition_goal"]

EVENT_TYPES = {Action.SUBMIT: "GoalSubmitted", Action.APPROVE: "GoalApproved", Action.RETURN: "GoalReturned"}


def _authorise_transition(scope: Scope, goal: GoalsGoal, action: Action) -> None:
    me = scope.principal.employee_id
    if goal.level == GoalLevel.INDIVIDUAL and me is not None and me == goal.employee_id and action is not Action.SUBMIT:
        raise DomainError(
            f"you cannot {action.value} your own goal '{goal.goal_id}'; your manager does", status_code=403
        )
    if scope.is_admin:
        return
    if goal.level == GoalLevel.COMPANY:
        raise DomainError(f"only hr_admin can {action.value} company KPIs", status_code=403)
    if goal.level == GoalLevel.DEPARTMENT:
        if goal.department_id not in scope.headed:
            raise DomainError(
                f"only the head of department '{goal.department_id}' (or hr_admin) can {action.value} its KPIs",
                status_code=403,
            )
        return
    if action is Action.SUBMIT:
        if me != goal.employee_id:
            raise DomainError(
                f"only employee '{goal.employee_id}' (or hr_admin) can submit their goal '{goal.goal_id}'",
                status_code=403,
            )
        return
    approver = goal_approver(scope.org, goal)
    if me is None or me != approver:
        who = f"their manager '{approver}'" if approver else "hr_admin"
        raise DomainError(
            f"goal '{goal.goal_id}' of employee '{goal.employee_id}' is approved or returned by {who}",
            status_code=403,
        )


def goal_approver(org: OrgView, goal: GoalsGoal) -> str | None:
    """Who approves an individual goal: the manager, else the department head (never the employee)."""
    participant = org.participants.get(goal.employee_id or "")
    if participant is None:
        return None
    if participant.manager_id:
        return participant.manager_id
    department = org.departments.get(participant.department_id)
    head = department.head_employee_id if department else None
    return head if head != goal.employee_id else None


async def transition_goal(
    *,
    session: AsyncSession,
    cycle_id: str,
    goal_id: str,
    action: Action,
    principal: Principal,
    comment: str | None = None,
) -> GoalsGoal:
    await ensure_open(session, cycle_id)
    goal, scope = await visible_goal(session, cycle_id, goal_id, principal)
    _authorise_transition(scope, goal, action)
    previous = GoalStatus(goal.status)
    try:
        status = next_status(previous, action)
    except TransitionError as exc:
        raise DomainError(f"goal '{goal_id}': {exc}", status_code=409) from exc
    if action in (Action.SUBMIT, Action.APPROVE):
        weights = await owner_weight(session, goal)
        if not weights.ok:
            raise DomainError(f"cannot {action.value} goal '{goal_id}': {weights.message}", field="weight")
    goal.status = status.value
    goal.status_comment = comment
    goal.status_changed_by = principal.sub
    goal.updated_at = utc_now()
    goal.version += 1
    emit_event(
        session,
        type=EVENT_TYPES[action],
        cycle_id=cycle_id,
        subject_id=goal_id,
        payload={
            "goal_id": goal_id,
            "level": goal.level,
            "employee_id": goal.employee_id,
            "department_id": goal.department_id,
            "from_status": previous.value,
            "to_status": status.value,
            "actor": principal.sub,
            "comment": comment,
        },
    )
    await session.commit()
    return goal
