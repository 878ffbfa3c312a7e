"""Who may see and change what: the caller and the cycle's org snapshot."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, or_
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.goals import GoalLevel
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.participants import OrgView, load_org
from services.goals.models import GoalsDepartment, GoalsGoal, GoalsParticipant

__all__ = ["Scope", "load_scope", "no_snapshot"]


@dataclass
class Scope:
    """The caller and the cycle's org snapshot: what they may see and change."""

    principal: Principal
    org: OrgView
    visible: set[str] | None = field(init=False)
    headed: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.visible = self.org.visible_employee_ids(self.principal)
        headed: set[str] = set()
        if self.principal.has(Role.DEPT_HEAD):
            if self.principal.employee_id:
                headed |= self.org.headed_by(self.principal.employee_id)
            if self.principal.department_id:
                headed |= self.org.department_tree(self.principal.department_id)
        self.headed = headed

    @property
    def is_admin(self) -> bool:
        return self.principal.has(Role.HR_ADMIN)

    def sees_employee(self, employee_id: str) -> bool:
        return self.visible is None or employee_id in self.visible

    def sees(self, goal: GoalsGoal) -> bool:
        if goal.level != GoalLevel.INDIVIDUAL:
            return True
        return goal.employee_id is not None and self.sees_employee(goal.employee_id)

    def may_edit(self, goal: GoalsGoal) -> bool:
        if self.is_admin:
            return True
        if goal.level == GoalLevel.COMPANY:
            return False
        if goal.level == GoalLevel.DEPARTMENT:
            return goal.department_id in self.headed
        return self.sees(goal)

    def goal_filter(self) -> ColumnElement[bool] | None:
        """SQL filter for the goals this caller may see (None: all)."""
        if self.visible is None:
            return None
        return or_(GoalsGoal.level != GoalLevel.INDIVIDUAL.value, GoalsGoal.employee_id.in_(sorted(self.visible)))


async def load_scope(*, session: AsyncSession, cycle_id: str, principal: Principal) -> Scope:
    org = await load_org(session, GoalsParticipant, GoalsDepartment, cycle_id)
    return Scope(principal=principal, org=org)


def no_snapshot(cycle_id: str) -> DomainError:
    return DomainError(
        f"cycle '{cycle_id}' has no org snapshot in the goals service yet; the cycles service sends it when "
        f"the cycle starts (PUT /v1/cycles/{cycle_id}/participants)",
        status_code=409,
    )
