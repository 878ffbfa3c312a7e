"""Pure approval-chain rules: who approves a step, who a missed step escalates to, and the step's timing.

Separation of duties is the invariant: nobody approves (or returns) a step of a goal they own,
submitted, or approved at an earlier step of the same submission. A step's role names a person
(the owner's manager, the department head); when that person is excluded, the step goes up the
department line (the head of the parent department, and so on) and, at the top, to HR (any
hr_admin who is not excluded either). No I/O: the org is the cycle's snapshot, passed in.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from contracts.goals import ApprovalRole, ApprovalStep, GoalLevel
from services.common.participants import OrgView

__all__ = [
    "GoalPeople",
    "StepTiming",
    "department_line",
    "escalation_target",
    "people_of",
    "resolve_approver",
    "step_timing",
]


@dataclass(frozen=True)
class GoalPeople:
    """The people around one goal that a chain can name."""

    owner_id: str | None
    """The employee of an individual goal (none for KPIs)."""
    manager_id: str | None
    """The owner's direct manager."""
    heads: tuple[str, ...]
    """Heads of the goal's department, its parent, and up to the top (departments without a head left out)."""

    def line(self, role: ApprovalRole) -> list[str]:
        """Who the role names, then who is above them: the candidates for the step, in order."""
        if role is ApprovalRole.HR:
            return []
        first = [self.manager_id] if role is ApprovalRole.MANAGER and self.manager_id else []
        return list(dict.fromkeys([*first, *self.heads]))


def department_line(org: OrgView, department_id: str | None) -> list[str]:
    """The department, its parent, and up to the top."""
    line: list[str] = []
    while department_id and department_id not in line and department_id in org.departments:
        line.append(department_id)
        department_id = org.departments[department_id].parent_id
    return line


def people_of(org: OrgView, *, level: GoalLevel, employee_id: str | None, department_id: str | None) -> GoalPeople:
    owner = org.participants.get(employee_id or "") if level is GoalLevel.INDIVIDUAL else None
    line = department_line(org, owner.department_id if owner is not None else department_id)
    heads = [head for d in line if (head := org.departments[d].head_employee_id)]
    return GoalPeople(
        owner_id=owner.employee_id if owner else None,
        manager_id=owner.manager_id if owner else None,
        heads=tuple(heads),
    )


def resolve_approver(people: GoalPeople, role: ApprovalRole, excluded: Iterable[str]) -> str | None:
    """The employee who approves a step for ``role``; ``None``: any hr_admin (the top of every line)."""
    barred = set(excluded)
    return next((person for person in people.line(role) if person not in barred), None)


def escalation_target(
    people: GoalPeople, role: ApprovalRole, approver_id: str | None, excluded: Iterable[str]
) -> str | None:
    """Whom a missed step goes to first: the next one up the line after the approver; ``None``: HR."""
    line = people.line(role)
    if approver_id is None or approver_id not in line:
        return None
    barred = {*excluded, approver_id}
    above = line[line.index(approver_id) + 1 :]
    return next((person for person in above if person not in barred), None)


@dataclass(frozen=True)
class StepTiming:
    deadline: datetime | None
    reminders: list[datetime]
    escalate_to_hr_at: datetime | None


def step_timing(step: ApprovalStep, opened_at: datetime, day: timedelta = timedelta(days=1)) -> StepTiming:
    """The step's deadline (``deadline_days`` after it opens), reminders before it and the escalation to HR
    after it, in the grammar of ``contracts.timing``; without ``deadline_days`` only the stage's apply."""
    if step.deadline_days is None:
        return StepTiming(deadline=None, reminders=[], escalate_to_hr_at=None)
    deadline = opened_at + step.deadline_days * day
    reminders = sorted(deadline - d * day for d in step.reminder_days_before if d > 0)
    return StepTiming(
        deadline=deadline,
        reminders=[r for r in reminders if r > opened_at],
        escalate_to_hr_at=deadline + step.escalate_days_after_deadline * day,
    )
