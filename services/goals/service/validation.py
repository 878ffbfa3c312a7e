"""Validation of a goal's fields, owner and alignment, shared by create, update and bulk assignment."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.goals import GoalLevel
from services.common.errors import DomainError
from services.common.participants import OrgView
from services.goals.models import GoalsGoal, GoalsObjective
from services.goals.rules import GoalKind, value_problems
from services.goals.schemas import GoalTemplate
from services.goals.service.scope import Scope, no_snapshot

__all__ = [
    "aligned_to",
    "authorise_create",
    "check_department",
    "check_fields",
    "check_level",
    "individual_owner",
    "parent_kpi",
]


def check_department(scope: Scope, cycle_id: str, department_id: str, field_name: str) -> None:
    if not scope.org.departments:
        raise no_snapshot(cycle_id)
    if department_id not in scope.org.departments:
        known = ", ".join(sorted(scope.org.departments))
        raise DomainError(
            f"{field_name}: department '{department_id}' is not in cycle '{cycle_id}' (known: {known})",
            field=field_name,
        )


def check_fields(scope: Scope, cycle_id: str, data: GoalTemplate, contributing: list[str]) -> None:
    """Values, metric and data ownership rules shared by create, update and bulk templates."""
    problems = value_problems(
        direction=data.direction,
        start=data.start_value,
        target=data.target_value,
        threshold=data.threshold_value,
        stretch=data.stretch_value,
    )
    if problems:
        field_name, reason = problems[0]
        raise DomainError(reason, field=field_name)
    if data.kind is GoalKind.KPI and data.metric is None:
        raise DomainError(
            "metric is required for kind 'kpi' (the key tracking receives, e.g. 'sales.revenue'); "
            "use kind 'okr_key_result' for a goal without a metric",
            field="metric",
        )
    if data.metric is not None and data.data_owner_department_id is None:
        raise DomainError(
            f"data_owner_department_id is required with metric '{data.metric}': name the department "
            "that must supply it",
            field="data_owner_department_id",
        )
    if data.data_owner_department_id is not None:
        check_department(scope, cycle_id, data.data_owner_department_id, "data_owner_department_id")
    if len(set(contributing)) != len(contributing):
        raise DomainError("contributing_department_ids lists a department twice", field="contributing_department_ids")
    for department_id in contributing:
        check_department(scope, cycle_id, department_id, "contributing_department_ids")


async def parent_kpi(session: AsyncSession, cycle_id: str, parent_id: str | None, level: GoalLevel) -> GoalsGoal:
    expected = GoalLevel.COMPANY if level is GoalLevel.DEPARTMENT else GoalLevel.DEPARTMENT
    if parent_id is None:
        raise DomainError(
            f"parent_id is required: a {level.value} goal aligns to a {expected.value} KPI", field="parent_id"
        )
    parent = await session.get(GoalsGoal, (cycle_id, parent_id))
    if parent is None:
        raise DomainError(f"parent_id: no {expected.value} KPI '{parent_id}' in cycle '{cycle_id}'", field="parent_id")
    if parent.level != expected:
        raise DomainError(
            f"parent_id: '{parent_id}' is a {parent.level} goal; a {level.value} goal must align to a "
            f"{expected.value} KPI",
            field="parent_id",
        )
    return parent


def _lineage(org: OrgView, department_id: str) -> list[str]:
    """The department and its ancestors, nearest first (stops on a cycle in bad data)."""
    chain: list[str] = []
    current: str | None = department_id
    while current is not None and current not in chain:
        chain.append(current)
        department = org.departments.get(current)
        current = department.parent_id if department else None
    return chain


def aligned_to(org: OrgView, parent: GoalsGoal, department_id: str) -> bool:
    """An individual goal aligns to a KPI of its department or of a parent department, or to a shared
    KPI whose contributing departments include one of those."""
    lineage = set(_lineage(org, department_id))
    contributing = set(parent.contributing_department_ids or [])
    return parent.department_id in lineage or bool(contributing & lineage)


def _misaligned(parent: GoalsGoal, employee_id: str, department_id: str) -> DomainError:
    return DomainError(
        f"parent_id: KPI '{parent.goal_id}' belongs to department '{parent.department_id}'; employee "
        f"'{employee_id}' is in '{department_id}', so their goal must align to a KPI of '{department_id}' "
        f"(or of a parent department) or to a shared KPI listing one of them in contributing_department_ids",
        field="parent_id",
    )


async def check_level(
    session: AsyncSession,
    scope: Scope,
    cycle_id: str,
    *,
    level: GoalLevel,
    objective_id: str | None,
    parent_id: str | None,
    department_id: str | None,
    employee_id: str | None,
    contributing: list[str],
) -> None:
    """Who owns the goal and what it aligns to, per level."""
    if level is GoalLevel.COMPANY:
        for name, value in (("parent_id", parent_id), ("department_id", department_id), ("employee_id", employee_id)):
            if value is not None:
                raise DomainError(f"{name} must be empty for a company KPI (it aligns to an objective)", field=name)
        if objective_id is None:
            raise DomainError(
                "objective_id is required: a company KPI aligns to a strategy objective", field="objective_id"
            )
        if await session.get(GoalsObjective, (cycle_id, objective_id)) is None:
            raise DomainError(
                f"objective_id: no objective '{objective_id}' in cycle '{cycle_id}'", field="objective_id"
            )
        return
    if objective_id is not None:
        raise DomainError("objective_id is only for company KPIs; align through parent_id", field="objective_id")
    parent = await parent_kpi(session, cycle_id, parent_id, level)
    if level is GoalLevel.DEPARTMENT:
        if employee_id is not None:
            raise DomainError("employee_id must be empty for a department KPI", field="employee_id")
        if department_id is None:
            raise DomainError("department_id is required for a department KPI", field="department_id")
        check_department(scope, cycle_id, department_id, "department_id")
        if department_id in contributing:
            raise DomainError(
                f"contributing_department_ids must not list the owning department '{department_id}'",
                field="contributing_department_ids",
            )
        return
    if contributing:
        raise DomainError(
            "contributing_department_ids is for shared company or department KPIs, not individual goals",
            field="contributing_department_ids",
        )
    assert employee_id is not None and department_id is not None
    if not aligned_to(scope.org, parent, department_id):
        raise _misaligned(parent, employee_id, department_id)


def individual_owner(scope: Scope, cycle_id: str, employee_id: str | None) -> tuple[str, str]:
    """The (employee_id, department_id) of an individual goal's owner, within the caller's scope."""
    if employee_id is None:
        raise DomainError("employee_id is required for an individual goal", field="employee_id")
    if not scope.org.participants:
        raise no_snapshot(cycle_id)
    participant = scope.org.participants.get(employee_id)
    if participant is None or not scope.sees_employee(employee_id):
        raise DomainError(
            f"employee_id: no employee '{employee_id}' in cycle '{cycle_id}' within your scope",
            status_code=404,
            field="employee_id",
        )
    return employee_id, participant.department_id


def authorise_create(scope: Scope, level: GoalLevel, department_id: str | None) -> None:
    if scope.is_admin:
        return
    if level is GoalLevel.COMPANY:
        raise DomainError("only hr_admin can create company KPIs", status_code=403)
    if level is GoalLevel.DEPARTMENT and department_id not in scope.headed:
        raise DomainError(
            f"only the head of department '{department_id}' (or hr_admin) can create its KPIs", status_code=403
        )
