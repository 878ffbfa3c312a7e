"""The approval chain: who may submit a goal, who approves or returns each step, and the transition itself.

A submission opens the first step of the goal's chain (``contracts.goals.ApprovalChains``, from the
cycle's settings); each approval closes the current step and opens the next, and the last one
approves the goal. A return sends it back to its owner and a resubmission starts the chain again.
Where the goal stands (the chain, the current step, who approved each) is kept on the goal
(``GoalRead.approval``); each act is a domain event and, like every change, in the audit log.
Separation of duties (``services/goals/chain.py``): nobody approves what they own, submitted, or
approved at an earlier step; hr_admin may act at any step, under the same rule.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.domain_events import GoalTransition
from contracts.goals import ApprovalChains, ApprovalRole, GoalLevel
from services.common.auth import Principal
from services.common.clock import utc_now
from services.common.errors import DomainError
from services.common.participants import OrgView
from services.goals.chain import department_line, escalation_target, people_of, resolve_approver, step_timing
from services.goals.models import GoalsGoal
from services.goals.rules import Action, GoalStatus, TransitionError, next_status
from services.goals.schemas import ApprovalEntry, ApprovalStepState, GoalApproval, StepState
from services.goals.service.cycle import chains_of, cycle_row, ensure_open
from services.goals.service.goals import visible_goal
from services.goals.service.records import emit_event
from services.goals.service.scope import Scope
from services.goals.service.weights import owner_weight

__all__ = ["EVENT_TYPES", "STEP_COMPLETED", "current_approval", "transition_goal"]

EVENT_TYPES = {Action.SUBMIT: "GoalSubmitted", Action.APPROVE: "GoalApproved", Action.RETURN: "GoalReturned"}
STEP_COMPLETED = "GoalApprovalStepCompleted"
"""An approval that closes a step but not the chain."""


def _what(goal: GoalsGoal) -> str:
    return "goal" if goal.level == GoalLevel.INDIVIDUAL else f"{goal.level} KPI"


def _who(approver_id: str | None) -> str:
    return f"'{approver_id}'" if approver_id else "hr_admin"


# -- the chain of one submission -------------------------------------------------------------------
def _excluded(goal: GoalsGoal, approval: GoalApproval) -> set[str]:
    """Employees who may not act at the open step: the owner, the submitter and earlier approvers."""
    people = {goal.employee_id, approval.submitted_by_employee_id}
    people |= {e.actor_employee_id for e in approval.history if e.round == approval.round and e.action == "approve"}
    return {p for p in people if p}


def _open_step(org: OrgView, goal: GoalsGoal, approval: GoalApproval, number: int, now: datetime) -> None:
    step = approval.chain.steps[number - 1]
    people = people_of(org, level=GoalLevel(goal.level), employee_id=goal.employee_id, department_id=goal.department_id)
    excluded = _excluded(goal, approval)
    approver = resolve_approver(people, step.approver, excluded)
    timing = step_timing(step, now)
    approval.current_step = number
    approval.steps[number - 1] = ApprovalStepState(
        step=number,
        approver_role=step.approver,
        approver_id=approver,
        state=StepState.WAITING,
        opened_at=now,
        deadline=timing.deadline,
        reminders=timing.reminders,
        escalate_to_id=escalation_target(people, step.approver, approver, excluded),
        escalate_to_hr_at=timing.escalate_to_hr_at,
    )


def _submitted(
    org: OrgView, goal: GoalsGoal, chains: ApprovalChains, *, by: str, by_employee: str | None, at: datetime
) -> GoalApproval:
    """A new submission round of ``goal``: its chain as the cycle defines it now, the first step open."""
    department = goal.department_id
    if goal.level == GoalLevel.INDIVIDUAL and goal.employee_id in org.participants:
        department = org.participants[goal.employee_id].department_id
    chain = chains.for_goal(GoalLevel(goal.level), department_line(org, department))
    previous = GoalApproval.model_validate(goal.approval) if goal.approval else None
    number = (previous.round + 1) if previous else 1
    approval = GoalApproval(
        round=number,
        chain=chain,
        submitted_by=by,
        submitted_by_employee_id=by_employee,
        submitted_at=at,
        current_step=None,
        steps=[
            ApprovalStepState(step=i, approver_role=s.approver, approver_id=None, state=StepState.NOT_OPEN)
            for i, s in enumerate(chain.steps, start=1)
        ],
        history=[
            *(previous.history if previous else []),
            ApprovalEntry(round=number, action="submit", actor=by, actor_employee_id=by_employee, at=at),
        ],
    )
    _open_step(org, goal, approval, 1, at)
    return approval


def current_approval(org: OrgView, goal: GoalsGoal, chains: ApprovalChains) -> GoalApproval | None:
    """The goal's submission round; for a goal submitted before chains existed, one read as submitted then
    (by whoever last changed its status) with the default chain of its level."""
    if goal.approval:
        return GoalApproval.model_validate(goal.approval)
    if goal.status != GoalStatus.SUBMITTED:
        return None
    by = goal.status_changed_by or goal.created_by
    return _submitted(org, goal, chains, by=by, by_employee=by if by in org.participants else None, at=goal.updated_at)


# -- who may act -------------------------------------------------------------------------------------
def _authorise_submit(scope: Scope, goal: GoalsGoal) -> None:
    me = scope.principal.employee_id
    if scope.is_admin:
        return
    if goal.level == GoalLevel.COMPANY:
        raise DomainError("only hr_admin can submit company KPIs", status_code=403)
    if goal.level == GoalLevel.DEPARTMENT:
        if goal.department_id not in scope.headed:
            raise DomainError(
                f"only the head of department '{goal.department_id}' (or hr_admin) can submit its KPIs",
                status_code=403,
            )
        return
    if me != goal.employee_id:
        raise DomainError(
            f"only employee '{goal.employee_id}' (or hr_admin) can submit their goal '{goal.goal_id}'",
            status_code=403,
        )


def _authorise_step(
    scope: Scope, goal: GoalsGoal, approval: GoalApproval, action: Action, now: datetime
) -> ApprovalStepState:
    """The open step, if the caller may approve or return it; else 403 saying who may, and why not them."""
    principal = scope.principal
    me = principal.employee_id
    if goal.level == GoalLevel.INDIVIDUAL and me is not None and me == goal.employee_id:
        raise DomainError(
            f"you cannot {action.value} your own goal '{goal.goal_id}'; your manager does", status_code=403
        )
    number = approval.current_step or 1
    step = approval.steps[number - 1]
    where = f"step {number} of {len(approval.steps)} ({step.approver_role.value})"
    if principal.sub == approval.submitted_by or (me is not None and me == approval.submitted_by_employee_id):
        raise DomainError(
            f"you submitted {_what(goal)} '{goal.goal_id}', so you cannot {action.value} it: nobody approves "
            f"what they submitted; {where} is for {_who(step.approver_id)}",
            status_code=403,
        )
    for earlier in (e for e in approval.history if e.round == approval.round and e.action == "approve"):
        if earlier.actor == principal.sub or (me is not None and me == earlier.actor_employee_id):
            raise DomainError(
                f"you approved step {earlier.step} of {_what(goal)} '{goal.goal_id}', so you cannot "
                f"{action.value} step {number} too: each step needs a different person; {where} is for "
                f"{_who(step.approver_id)}",
                status_code=403,
            )
    if scope.is_admin or (me is not None and me == step.approver_id):
        return step
    if me is not None and me == step.escalate_to_id and step.deadline is not None and now >= step.deadline:
        return step  # the step missed its deadline and went up the approver's line: the next one up acts
    if goal.level == GoalLevel.INDIVIDUAL and len(approval.steps) == 1 and step.approver_role is ApprovalRole.MANAGER:
        raise DomainError(
            f"goal '{goal.goal_id}' of employee '{goal.employee_id}' is approved or returned by "
            + (f"their manager '{step.approver_id}'" if step.approver_id else "hr_admin"),
            status_code=403,
        )
    escalation = (
        f" (or, after its deadline {step.deadline.isoformat()}, by {_who(step.escalate_to_id)})"
        if step.deadline is not None and step.escalate_to_id is not None
        else ""
    )
    raise DomainError(
        f"{_what(goal)} '{goal.goal_id}' waits at {where}: it is approved or returned by "
        f"{_who(step.approver_id)}{escalation}",
        status_code=403,
    )


# -- the transition ----------------------------------------------------------------------------------
def _payload(
    goal: GoalsGoal,
    approval: GoalApproval,
    previous: GoalStatus,
    acted: int | None,
    principal: Principal,
    comment: str | None,
) -> GoalTransition:
    waiting = approval.steps[approval.current_step - 1] if approval.current_step else None
    return GoalTransition(
        goal_id=goal.goal_id,
        level=GoalLevel(goal.level),
        employee_id=goal.employee_id,
        department_id=goal.department_id,
        from_status=previous,
        to_status=GoalStatus(goal.status),
        actor=principal.sub,
        comment=comment,
        step=acted,
        step_role=approval.steps[acted - 1].approver_role if acted else None,
        steps=len(approval.steps),
        next_step=waiting.step if waiting else None,
        next_approver_id=waiting.approver_id if waiting else None,
    )


async def transition_goal(
    *,
    session: AsyncSession,
    cycle_id: str,
    goal_id: str,
    action: Action,
    principal: Principal,
    comment: str | None = None,
    now: datetime | None = None,
) -> GoalsGoal:
    now = now or utc_now()
    await ensure_open(session, cycle_id)
    goal, scope = await visible_goal(session, cycle_id, goal_id, principal)
    chains = chains_of(await cycle_row(session, cycle_id))
    approval = current_approval(scope.org, goal, chains) if action is not Action.SUBMIT else None
    if action is Action.SUBMIT:
        _authorise_submit(scope, goal)
    elif approval is not None and approval.current_step is not None:  # else nothing waits: 409 below
        _authorise_step(scope, goal, approval, action, now)
    previous = GoalStatus(goal.status)
    try:
        status = next_status(previous, action)
    except TransitionError as exc:
        raise DomainError(f"goal '{goal_id}': {exc}", status_code=409) from exc
    if action in (Action.SUBMIT, Action.APPROVE):
        weights = await owner_weight(session, goal)
        if not weights.ok:
            raise DomainError(f"cannot {action.value} goal '{goal_id}': {weights.message}", field="weight")
    me = principal.employee_id
    acted: int | None = None
    event_type = EVENT_TYPES[action]
    if action is Action.SUBMIT:
        approval = _submitted(scope.org, goal, chains, by=principal.sub, by_employee=me, at=now)
    else:
        assert approval is not None and approval.current_step is not None  # submitted goals have an open step
        acted = approval.current_step
        done = approval.steps[acted - 1]
        done.state = StepState.APPROVED if action is Action.APPROVE else StepState.RETURNED
        done.acted_by, done.acted_at, done.comment = principal.sub, now, comment
        approval.history.append(
            ApprovalEntry(
                round=approval.round, action=action.value, step=acted, actor=principal.sub,
                actor_employee_id=me, at=now, comment=comment,
            )
        )  # fmt: skip
        approval.current_step = None
        if action is Action.APPROVE and acted < len(approval.steps):
            status, event_type = GoalStatus.SUBMITTED, STEP_COMPLETED
            _open_step(scope.org, goal, approval, acted + 1, now)
    goal.status = status.value
    goal.status_comment = comment
    goal.status_changed_by = principal.sub
    goal.approval = approval.model_dump(mode="json")
    goal.updated_at = now
    goal.version += 1
    emit_event(
        session,
        type=event_type,
        cycle_id=cycle_id,
        subject_id=goal_id,
        payload=_payload(goal, approval, previous, acted, principal, comment),
    )
    await session.commit()
    return goal
