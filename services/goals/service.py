"""Goal-setting service layer: keyword-only functions over a session, with the domain rules.

Scoping convention (see docs/services/goals.md):

* company and department KPIs are visible to every participant of the cycle (they are the
  context individual goals align to); individual goals follow ``OrgView`` scoping;
* an object the caller cannot see is reported as **404** (its existence is not revealed);
* an object the caller can see but may not change (or transition) is **403**;
* a rule about state (frozen cycle, wrong status, children still aligned) is **409**;
* bad input (values, alignment, weights that do not sum to 100) is **422** naming the field.

Every function here commits its own unit of work.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, func, insert, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingItem, PendingReport, Stage
from contracts.goals import (
    Aggregation,
    Direction,
    ExportedGoal,
    GoalExport,
    GoalLevel,
    KpiCatalog,
    KpiDefinition,
)
from contracts.tracking import ProgressExport
from services.common.auth import Principal, Role
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.common.participants import OrgView, load_org
from services.goals.cycle_period import PeriodSource
from services.goals.models import (
    GoalsActual,
    GoalsCycle,
    GoalsDepartment,
    GoalsGoal,
    GoalsObjective,
    GoalsOutbox,
    GoalsParticipant,
)
from services.goals.rules import (
    COMPANY_OWNER,
    EDITABLE_STATUSES,
    Action,
    GoalKind,
    GoalStatus,
    TransitionError,
    WeightSum,
    attainment,
    next_status,
    sum_weights,
    value_problems,
    weighted_mean,
)
from services.goals.schemas import (
    BulkAssignRequest,
    BulkAssignResult,
    BulkSkip,
    CycleSettingsRead,
    CycleSettingsUpdate,
    FreezeResult,
    GoalCreate,
    GoalNode,
    GoalTemplate,
    GoalTree,
    GoalUpdate,
    ObjectiveCreate,
    ObjectiveNode,
    ObjectiveUpdate,
    ProgressAccepted,
    WeightReport,
    WeightSumRead,
)

__all__ = [
    "SERVICE",
    "Scope",
    "bulk_assign",
    "create_goal",
    "create_objective",
    "delete_goal",
    "delete_objective",
    "freeze_cycle",
    "get_goal",
    "get_objective",
    "get_settings",
    "goal_export",
    "goal_tree",
    "kpi_catalog",
    "list_goals",
    "list_objectives",
    "load_scope",
    "pending_report",
    "put_settings",
    "store_progress",
    "transition_goal",
    "update_goal",
    "update_objective",
    "weight_report",
]

SERVICE = "goals"
EVENT_TYPES = {Action.SUBMIT: "GoalSubmitted", Action.APPROVE: "GoalApproved", Action.RETURN: "GoalReturned"}


def _now() -> datetime:
    return datetime.now(UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


# -- scope ----------------------------------------------------------------------------------------
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


# -- cycle settings and freeze ----------------------------------------------------------------------
async def _cycle_row(session: AsyncSession, cycle_id: str) -> GoalsCycle | None:
    return await session.get(GoalsCycle, cycle_id)


async def _ensure_open(session: AsyncSession, cycle_id: str) -> None:
    cycle = await _cycle_row(session, cycle_id)
    if cycle is not None and cycle.frozen_at is not None:
        raise DomainError(
            f"goal setting of cycle '{cycle_id}' was frozen at {cycle.frozen_at.isoformat()} "
            f"by {cycle.frozen_by}; objectives, KPIs and goals can no longer be changed",
            status_code=409,
        )


def _settings_read(cycle_id: str, cycle: GoalsCycle | None) -> CycleSettingsRead:
    return CycleSettingsRead(
        cycle_id=cycle_id,
        period_start=cycle.period_start if cycle else None,
        period_end=cycle.period_end if cycle else None,
        frozen=bool(cycle and cycle.frozen_at),
        frozen_at=cycle.frozen_at if cycle else None,
        frozen_by=cycle.frozen_by if cycle else None,
    )


async def get_settings(*, session: AsyncSession, cycle_id: str) -> CycleSettingsRead:
    return _settings_read(cycle_id, await _cycle_row(session, cycle_id))


async def put_settings(*, session: AsyncSession, cycle_id: str, data: CycleSettingsUpdate) -> CycleSettingsRead:
    await _ensure_open(session, cycle_id)
    cycle = await _cycle_row(session, cycle_id)
    if cycle is None:
        cycle = GoalsCycle(cycle_id=cycle_id)
        session.add(cycle)
    cycle.period_start = data.period_start
    cycle.period_end = data.period_end
    await session.commit()
    return _settings_read(cycle_id, cycle)


async def freeze_cycle(*, session: AsyncSession, cycle_id: str, principal: Principal) -> FreezeResult:
    """End goal setting: afterwards every edit is refused with 409. Idempotent."""
    cycle = await _cycle_row(session, cycle_id)
    if cycle is None:
        cycle = GoalsCycle(cycle_id=cycle_id)
        session.add(cycle)
    rows = await session.execute(
        select(GoalsGoal.status, func.count()).where(GoalsGoal.cycle_id == cycle_id).group_by(GoalsGoal.status)
    )
    counts: Counter[str] = Counter({status: count for status, count in rows.all()})
    by_status = {s.value: counts.get(s.value, 0) for s in GoalStatus}
    already = cycle.frozen_at is not None
    if not already:
        cycle.frozen_at = _now()
        cycle.frozen_by = principal.sub
        add_event(
            session,
            GoalsOutbox,
            new_event(
                service=SERVICE,
                type="GoalsFrozen",
                cycle_id=cycle_id,
                subject_id=cycle_id,
                payload={"goals_by_status": by_status, "frozen_by": principal.sub},
            ),
        )
        await session.commit()
    assert cycle.frozen_at is not None
    return FreezeResult(cycle_id=cycle_id, frozen_at=cycle.frozen_at, already_frozen=already, goals_by_status=by_status)


# -- objectives -----------------------------------------------------------------------------------
async def list_objectives(*, session: AsyncSession, cycle_id: str, limit: int, offset: int) -> Sequence[GoalsObjective]:
    return (
        await session.scalars(
            select(GoalsObjective)
            .where(GoalsObjective.cycle_id == cycle_id)
            .order_by(GoalsObjective.created_at, GoalsObjective.objective_id)
            .limit(limit)
            .offset(offset)
        )
    ).all()


async def get_objective(*, session: AsyncSession, cycle_id: str, objective_id: str) -> GoalsObjective:
    objective = await session.get(GoalsObjective, (cycle_id, objective_id))
    if objective is None:
        raise DomainError(f"no objective '{objective_id}' in cycle '{cycle_id}'", status_code=404)
    return objective


async def create_objective(*, session: AsyncSession, cycle_id: str, data: ObjectiveCreate) -> GoalsObjective:
    await _ensure_open(session, cycle_id)
    objective_id = data.objective_id or _new_id("obj")
    if await session.get(GoalsObjective, (cycle_id, objective_id)) is not None:
        raise DomainError(
            f"objective '{objective_id}' already exists in cycle '{cycle_id}'", status_code=409, field="objective_id"
        )
    objective = GoalsObjective(
        cycle_id=cycle_id,
        objective_id=objective_id,
        name=data.name,
        description=data.description,
        perspective=data.perspective.value,
        created_at=_now(),
    )
    session.add(objective)
    await session.commit()
    return objective


async def update_objective(
    *, session: AsyncSession, cycle_id: str, objective_id: str, data: ObjectiveUpdate
) -> GoalsObjective:
    await _ensure_open(session, cycle_id)
    objective = await get_objective(session=session, cycle_id=cycle_id, objective_id=objective_id)
    for name, value in data.model_dump(exclude_unset=True).items():
        if value is None:
            raise DomainError(f"{name} cannot be null", field=name)
        setattr(objective, name, value.value if hasattr(value, "value") else value)
    await session.commit()
    return objective


async def delete_objective(*, session: AsyncSession, cycle_id: str, objective_id: str) -> None:
    await _ensure_open(session, cycle_id)
    objective = await get_objective(session=session, cycle_id=cycle_id, objective_id=objective_id)
    aligned = await session.scalar(
        select(func.count())
        .select_from(GoalsGoal)
        .where(GoalsGoal.cycle_id == cycle_id, GoalsGoal.objective_id == objective_id)
    )
    if aligned:
        raise DomainError(
            f"objective '{objective_id}' still has {aligned} company KPI(s) aligned to it; delete or move them first",
            status_code=409,
        )
    await session.delete(objective)
    await session.commit()


# -- goals: validation ----------------------------------------------------------------------------
def _no_snapshot(cycle_id: str) -> DomainError:
    return DomainError(
        f"cycle '{cycle_id}' has no org snapshot in the goals service yet; the cycles service sends it when "
        f"the cycle starts (PUT /v1/cycles/{cycle_id}/participants)",
        status_code=409,
    )


def _check_department(scope: Scope, cycle_id: str, department_id: str, field_name: str) -> None:
    if not scope.org.departments:
        raise _no_snapshot(cycle_id)
    if department_id not in scope.org.departments:
        known = ", ".join(sorted(scope.org.departments))
        raise DomainError(
            f"{field_name}: department '{department_id}' is not in cycle '{cycle_id}' (known: {known})",
            field=field_name,
        )


def _check_fields(scope: Scope, cycle_id: str, data: GoalTemplate, contributing: list[str]) -> None:
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
        _check_department(scope, cycle_id, data.data_owner_department_id, "data_owner_department_id")
    if len(set(contributing)) != len(contributing):
        raise DomainError("contributing_department_ids lists a department twice", field="contributing_department_ids")
    for department_id in contributing:
        _check_department(scope, cycle_id, department_id, "contributing_department_ids")


async def _parent(session: AsyncSession, cycle_id: str, parent_id: str | None, level: GoalLevel) -> GoalsGoal:
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


def _aligned_to(org: OrgView, parent: GoalsGoal, department_id: str) -> bool:
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


async def _check_level(
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
    parent = await _parent(session, cycle_id, parent_id, level)
    if level is GoalLevel.DEPARTMENT:
        if employee_id is not None:
            raise DomainError("employee_id must be empty for a department KPI", field="employee_id")
        if department_id is None:
            raise DomainError("department_id is required for a department KPI", field="department_id")
        _check_department(scope, cycle_id, department_id, "department_id")
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
    if not _aligned_to(scope.org, parent, department_id):
        raise _misaligned(parent, employee_id, department_id)


def _employee(scope: Scope, cycle_id: str, employee_id: str | None) -> tuple[str, str]:
    """The (employee_id, department_id) of an individual goal's owner, within the caller's scope."""
    if employee_id is None:
        raise DomainError("employee_id is required for an individual goal", field="employee_id")
    if not scope.org.participants:
        raise _no_snapshot(cycle_id)
    participant = scope.org.participants.get(employee_id)
    if participant is None or not scope.sees_employee(employee_id):
        raise DomainError(
            f"employee_id: no employee '{employee_id}' in cycle '{cycle_id}' within your scope",
            status_code=404,
            field="employee_id",
        )
    return employee_id, participant.department_id


def _authorise_create(scope: Scope, level: GoalLevel, department_id: str | None) -> None:
    if scope.is_admin:
        return
    if level is GoalLevel.COMPANY:
        raise DomainError("only hr_admin can create company KPIs", status_code=403)
    if level is GoalLevel.DEPARTMENT and department_id not in scope.headed:
        raise DomainError(
            f"only the head of department '{department_id}' (or hr_admin) can create its KPIs", status_code=403
        )


# -- goals: CRUD ----------------------------------------------------------------------------------
async def create_goal(*, session: AsyncSession, cycle_id: str, data: GoalCreate, principal: Principal) -> GoalsGoal:
    await _ensure_open(session, cycle_id)
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    department_id = data.department_id
    employee_id = data.employee_id
    if data.level is GoalLevel.INDIVIDUAL:
        employee_id, employee_department = _employee(scope, cycle_id, data.employee_id)
        if department_id is not None and department_id != employee_department:
            raise DomainError(
                f"department_id '{department_id}' does not match employee '{employee_id}'s department "
                f"'{employee_department}'; leave it empty",
                field="department_id",
            )
        department_id = employee_department
    _authorise_create(scope, data.level, department_id)
    _check_fields(scope, cycle_id, data, data.contributing_department_ids)
    await _check_level(
        session,
        scope,
        cycle_id,
        level=data.level,
        objective_id=data.objective_id,
        parent_id=data.parent_id,
        department_id=department_id,
        employee_id=employee_id,
        contributing=data.contributing_department_ids,
    )
    goal_id = data.goal_id or _new_id("g")
    if await session.get(GoalsGoal, (cycle_id, goal_id)) is not None:
        raise DomainError(f"goal '{goal_id}' already exists in cycle '{cycle_id}'", status_code=409, field="goal_id")
    now = _now()
    values = data.model_dump(
        exclude={"goal_id", "level", "department_id", "employee_id", "contributing_department_ids"}
    )
    goal = GoalsGoal(
        cycle_id=cycle_id,
        goal_id=goal_id,
        level=data.level.value,
        department_id=department_id,
        employee_id=employee_id,
        contributing_department_ids=list(data.contributing_department_ids),
        status=GoalStatus.DRAFT.value,
        created_by=principal.sub,
        created_at=now,
        updated_at=now,
        version=1,
        **{k: (v.value if hasattr(v, "value") else v) for k, v in values.items()},
    )
    session.add(goal)
    await session.commit()
    return goal


async def get_goal(*, session: AsyncSession, cycle_id: str, goal_id: str, principal: Principal) -> GoalsGoal:
    goal, _ = await _visible_goal(session, cycle_id, goal_id, principal)
    return goal


async def _visible_goal(
    session: AsyncSession, cycle_id: str, goal_id: str, principal: Principal
) -> tuple[GoalsGoal, Scope]:
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    goal = await session.get(GoalsGoal, (cycle_id, goal_id))
    if goal is None or not scope.sees(goal):
        raise DomainError(f"no goal '{goal_id}' in cycle '{cycle_id}' within your scope", status_code=404)
    return goal, scope


def _require_edit(scope: Scope, goal: GoalsGoal, verb: str) -> None:
    if not scope.may_edit(goal):
        if goal.level == GoalLevel.COMPANY:
            who = "hr_admin"
        elif goal.level == GoalLevel.DEPARTMENT:
            who = f"the head of department '{goal.department_id}' or hr_admin"
        else:
            who = f"employee '{goal.employee_id}', their managers, their department head or hr_admin"
        raise DomainError(f"only {who} can {verb} {goal.level} goal '{goal.goal_id}'", status_code=403)
    if goal.status not in EDITABLE_STATUSES:
        raise DomainError(
            f"goal '{goal.goal_id}' is {goal.status}; it can be changed only while draft or returned",
            status_code=409,
        )


async def list_goals(
    *,
    session: AsyncSession,
    cycle_id: str,
    principal: Principal,
    level: GoalLevel | None,
    department_id: str | None,
    employee_id: str | None,
    status: GoalStatus | None,
    parent_id: str | None,
    limit: int,
    offset: int,
) -> tuple[Sequence[GoalsGoal], int]:
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    conditions: list[ColumnElement[bool]] = [GoalsGoal.cycle_id == cycle_id]
    visible = scope.goal_filter()
    if visible is not None:
        conditions.append(visible)
    if level is not None:
        conditions.append(GoalsGoal.level == level.value)
    if department_id is not None:
        conditions.append(GoalsGoal.department_id == department_id)
    if employee_id is not None:
        conditions.append(GoalsGoal.employee_id == employee_id)
    if status is not None:
        conditions.append(GoalsGoal.status == status.value)
    if parent_id is not None:
        conditions.append(GoalsGoal.parent_id == parent_id)
    total = await session.scalar(select(func.count()).select_from(GoalsGoal).where(*conditions)) or 0
    rows = (
        await session.scalars(
            select(GoalsGoal)
            .where(*conditions)
            .order_by(GoalsGoal.level, GoalsGoal.department_id, GoalsGoal.employee_id, GoalsGoal.goal_id)
            .limit(limit)
            .offset(offset)
        )
    ).all()
    return rows, total


async def update_goal(
    *, session: AsyncSession, cycle_id: str, goal_id: str, data: GoalUpdate, principal: Principal
) -> GoalsGoal:
    await _ensure_open(session, cycle_id)
    goal, scope = await _visible_goal(session, cycle_id, goal_id, principal)
    _require_edit(scope, goal, "change")
    changes = data.model_dump(exclude_unset=True)
    nullable = {"threshold_value", "stretch_value", "metric", "data_owner_department_id", "parent_id", "objective_id"}
    for name, value in changes.items():
        if value is None and name not in nullable:
            raise DomainError(f"{name} cannot be null", field=name)
    merged = _editable_fields(goal) | {k: (v.value if hasattr(v, "value") else v) for k, v in changes.items()}
    template = GoalTemplate.model_validate({k: merged[k] for k in GoalTemplate.model_fields})
    contributing = list(merged["contributing_department_ids"] or [])
    _check_fields(scope, cycle_id, template, contributing)
    await _check_level(
        session,
        scope,
        cycle_id,
        level=GoalLevel(goal.level),
        objective_id=merged["objective_id"],
        parent_id=merged["parent_id"],
        department_id=goal.department_id,
        employee_id=goal.employee_id,
        contributing=contributing,
    )
    for name in changes:
        setattr(goal, name, merged[name])
    goal.updated_at = _now()
    goal.version += 1
    await session.commit()
    return goal


def _editable_fields(goal: GoalsGoal) -> dict[str, Any]:
    """The editable fields of a stored goal, as plain values."""
    names = set(GoalTemplate.model_fields) | {"objective_id", "contributing_department_ids"}
    return {name: getattr(goal, name) for name in names}


async def delete_goal(*, session: AsyncSession, cycle_id: str, goal_id: str, principal: Principal) -> None:
    await _ensure_open(session, cycle_id)
    goal, scope = await _visible_goal(session, cycle_id, goal_id, principal)
    _require_edit(scope, goal, "delete")
    children = await session.scalar(
        select(func.count())
        .select_from(GoalsGoal)
        .where(GoalsGoal.cycle_id == cycle_id, GoalsGoal.parent_id == goal_id)
    )
    if children:
        raise DomainError(
            f"goal '{goal_id}' still has {children} goal(s) aligned to it; delete or re-align them first",
            status_code=409,
        )
    await session.delete(goal)
    await session.commit()


# -- weights ----------------------------------------------------------------------------------------
def _owner(level: str, department_id: str | None, employee_id: str | None) -> str:
    if level == GoalLevel.COMPANY:
        return COMPANY_OWNER
    if level == GoalLevel.DEPARTMENT:
        return department_id or ""
    return employee_id or ""


async def _owner_weight(session: AsyncSession, goal: GoalsGoal) -> WeightSum:
    conditions: list[ColumnElement[bool]] = [GoalsGoal.cycle_id == goal.cycle_id, GoalsGoal.level == goal.level]
    if goal.level == GoalLevel.DEPARTMENT:
        conditions.append(GoalsGoal.department_id == goal.department_id)
    elif goal.level == GoalLevel.INDIVIDUAL:
        conditions.append(GoalsGoal.employee_id == goal.employee_id)
    weights = (await session.scalars(select(GoalsGoal.weight).where(*conditions))).all()
    level = GoalLevel(goal.level)
    owner = _owner(goal.level, goal.department_id, goal.employee_id)
    [result] = sum_weights((level, owner, w) for w in weights)
    return result


async def weight_report(*, session: AsyncSession, cycle_id: str, principal: Principal) -> WeightReport:
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    query = select(GoalsGoal.level, GoalsGoal.department_id, GoalsGoal.employee_id, GoalsGoal.weight).where(
        GoalsGoal.cycle_id == cycle_id
    )
    visible = scope.goal_filter()
    if visible is not None:
        query = query.where(visible)
    rows = (await session.execute(query)).all()
    sums = sum_weights((GoalLevel(lv), _owner(lv, d, e), w) for lv, d, e, w in rows)
    reads = [
        WeightSumRead(
            level=s.level, owner=s.owner, total=round(s.total, 6), goal_count=s.goal_count, ok=s.ok, message=s.message
        )
        for s in sums
    ]
    problems = [s.message for s in sums if s.message]
    return WeightReport(cycle_id=cycle_id, valid=not problems, problems=problems, sums=reads)


# -- approval chain ---------------------------------------------------------------------------------
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
    approver = _approver(scope.org, goal)
    if me is None or me != approver:
        who = f"their manager '{approver}'" if approver else "hr_admin"
        raise DomainError(
            f"goal '{goal.goal_id}' of employee '{goal.employee_id}' is approved or returned by {who}",
            status_code=403,
        )


def _approver(org: OrgView, goal: GoalsGoal) -> str | None:
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
    await _ensure_open(session, cycle_id)
    goal, scope = await _visible_goal(session, cycle_id, goal_id, principal)
    _authorise_transition(scope, goal, action)
    previous = GoalStatus(goal.status)
    try:
        status = next_status(previous, action)
    except TransitionError as exc:
        raise DomainError(f"goal '{goal_id}': {exc}", status_code=409) from exc
    if action in (Action.SUBMIT, Action.APPROVE):
        weights = await _owner_weight(session, goal)
        if not weights.ok:
            raise DomainError(f"cannot {action.value} goal '{goal_id}': {weights.message}", field="weight")
    goal.status = status.value
    goal.status_comment = comment
    goal.status_changed_by = principal.sub
    goal.updated_at = _now()
    goal.version += 1
    add_event(
        session,
        GoalsOutbox,
        new_event(
            service=SERVICE,
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
        ),
    )
    await session.commit()
    return goal


# -- bulk assignment --------------------------------------------------------------------------------
async def bulk_assign(
    *, session: AsyncSession, cycle_id: str, request: BulkAssignRequest, principal: Principal
) -> BulkAssignResult:
    """One template to everyone matching, in one INSERT; people who already have it are skipped."""
    await _ensure_open(session, cycle_id)
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    if not scope.org.participants:
        raise _no_snapshot(cycle_id)
    if request.department_id is not None:
        _check_department(scope, cycle_id, request.department_id, "department_id")
    template = request.template
    _check_fields(scope, cycle_id, template, [])
    parent = await _parent(session, cycle_id, template.parent_id, GoalLevel.INDIVIDUAL)
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
    now = _now()
    values = {k: (v.value if hasattr(v, "value") else v) for k, v in template.model_dump().items()}
    for participant in matched:
        if participant.employee_id in existing:
            skipped.append(BulkSkip(employee_id=participant.employee_id, reason="already_assigned"))
        elif not _aligned_to(scope.org, parent, participant.department_id):
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
                    "goal_id": _new_id("g"),
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
        add_event(
            session,
            GoalsOutbox,
            new_event(
                service=SERVICE,
                type="GoalsBulkAssigned",
                cycle_id=cycle_id,
                subject_id=request.template_key,
                payload={
                    "template_key": request.template_key,
                    "parent_id": parent.goal_id,
                    "department_id": request.department_id,
                    "job_title": request.job_title,
                    "created": len(rows),
                    "skipped": len(skipped),
                },
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


# -- progress and goal tree -------------------------------------------------------------------------
async def store_progress(*, session: AsyncSession, cycle_id: str, export: ProgressExport) -> ProgressAccepted:
    """Store the latest actuals (keyed by kpi_id = goal_id). Accepted after the freeze too."""
    if export.cycle_id != cycle_id:
        raise DomainError(
            f"progress export is for cycle '{export.cycle_id}' but the URL names '{cycle_id}'", field="cycle_id"
        )
    known = set((await session.scalars(select(GoalsGoal.goal_id).where(GoalsGoal.cycle_id == cycle_id))).all())
    current = {
        a.goal_id: a for a in (await session.scalars(select(GoalsActual).where(GoalsActual.cycle_id == cycle_id))).all()
    }
    unknown: list[str] = []
    updated = 0
    for item in export.actuals:
        if item.kpi_id not in known:
            unknown.append(item.kpi_id)
            continue
        row = current.get(item.kpi_id)
        if row is None:
            row = GoalsActual(cycle_id=cycle_id, goal_id=item.kpi_id)
            session.add(row)
            current[item.kpi_id] = row
        row.actual_value = item.actual_value
        row.event_count = item.event_count
        row.last_event_at = item.last_event_at
        row.stale = item.stale
        row.as_of = export.as_of
        updated += 1
    await session.commit()
    return ProgressAccepted(cycle_id=cycle_id, updated=updated, unknown_kpi_ids=unknown)


async def goal_tree(
    *, session: AsyncSession, cycle_id: str, principal: Principal, department_id: str | None = None
) -> GoalTree:
    """Objectives -> company KPIs -> department KPIs -> individual goals with rolled-up progress.

    Progress is computed over the whole cycle, then the tree is pruned to what the caller may see,
    so every role reads the same numbers.
    """
    scope = await load_scope(session=session, cycle_id=cycle_id, principal=principal)
    objectives = (
        await session.scalars(
            select(GoalsObjective).where(GoalsObjective.cycle_id == cycle_id).order_by(GoalsObjective.created_at)
        )
    ).all()
    goals = (
        await session.scalars(select(GoalsGoal).where(GoalsGoal.cycle_id == cycle_id).order_by(GoalsGoal.goal_id))
    ).all()
    actuals = {
        a.goal_id: a.actual_value
        for a in (await session.scalars(select(GoalsActual).where(GoalsActual.cycle_id == cycle_id))).all()
    }
    children: dict[str | None, list[GoalsGoal]] = defaultdict(list)
    for goal in goals:
        children[goal.parent_id].append(goal)
    progress: dict[str, float | None] = {}
    own: dict[str, float | None] = {}

    def compute(goal: GoalsGoal) -> float | None:
        actual = actuals.get(goal.goal_id)
        own[goal.goal_id] = (
            None
            if actual is None
            else attainment(
                direction=Direction(goal.direction), start=goal.start_value, target=goal.target_value, actual=actual
            )
        )
        rolled = weighted_mean((c.weight, compute(c)) for c in children.get(goal.goal_id, []))
        progress[goal.goal_id] = rolled if rolled is not None else own[goal.goal_id]
        return progress[goal.goal_id]

    company = [g for g in goals if g.level == GoalLevel.COMPANY]
    for goal in company:
        compute(goal)

    def include(goal: GoalsGoal) -> bool:
        if not scope.sees(goal):
            return False
        return department_id is None or goal.level == GoalLevel.COMPANY or goal.department_id == department_id

    def node(goal: GoalsGoal) -> GoalNode:
        return GoalNode(
            goal_id=goal.goal_id,
            level=GoalLevel(goal.level),
            name=goal.name,
            status=GoalStatus(goal.status),
            weight=goal.weight,
            parent_id=goal.parent_id,
            department_id=goal.department_id,
            employee_id=goal.employee_id,
            contributing_department_ids=list(goal.contributing_department_ids or []),
            metric=goal.metric,
            unit=goal.unit,
            direction=Direction(goal.direction),
            start_value=goal.start_value,
            target_value=goal.target_value,
            actual_value=actuals.get(goal.goal_id),
            attainment=own.get(goal.goal_id),
            progress=progress.get(goal.goal_id),
            children=[node(c) for c in children.get(goal.goal_id, []) if include(c)],
        )

    objective_nodes = []
    for objective in objectives:
        kpis = [g for g in company if g.objective_id == objective.objective_id]
        objective_nodes.append(
            ObjectiveNode(
                objective_id=objective.objective_id,
                name=objective.name,
                perspective=objective.perspective,  # type: ignore[arg-type]
                progress=weighted_mean((g.weight, progress[g.goal_id]) for g in kpis),
                kpis=[node(g) for g in kpis],
            )
        )
    return GoalTree(
        cycle_id=cycle_id,
        progress=weighted_mean((g.weight, progress[g.goal_id]) for g in company),
        objectives=objective_nodes,
    )


# -- exports ----------------------------------------------------------------------------------------
async def kpi_catalog(*, session: AsyncSession, cycle_id: str, period_source: PeriodSource | None = None) -> KpiCatalog:
    """Every KPI or goal with a metric key (any status), for tracking.

    The period comes from ``PUT /settings``; when it was never set it is read once from the cycles
    service (``period_source``) and kept.
    """
    cycle = await _cycle_row(session, cycle_id)
    if cycle is None or cycle.period_start is None or cycle.period_end is None:
        period = await period_source(cycle_id) if period_source is not None else None
        if period is None:
            raise DomainError(
                f"the period of cycle '{cycle_id}' is unknown: the cycles service did not provide it; "
                f"PUT /v1/cycles/{cycle_id}/settings with period_start and period_end",
                status_code=409,
            )
        if cycle is None:
            cycle = GoalsCycle(cycle_id=cycle_id)
            session.add(cycle)
        cycle.period_start, cycle.period_end = period
        await session.commit()
    assert cycle.period_start is not None and cycle.period_end is not None
    goals = (
        await session.scalars(
            select(GoalsGoal)
            .where(GoalsGoal.cycle_id == cycle_id, GoalsGoal.metric.is_not(None))
            .order_by(GoalsGoal.level, GoalsGoal.goal_id)
        )
    ).all()
    return KpiCatalog(
        cycle_id=cycle_id,
        period_start=cycle.period_start,
        period_end=cycle.period_end,
        kpis=[
            KpiDefinition(
                kpi_id=g.goal_id,
                level=GoalLevel(g.level),
                name=g.name,
                metric=g.metric or "",
                unit=g.unit,
                aggregation=Aggregation(g.aggregation),
                direction=Direction(g.direction),
                start_value=g.start_value,
                target_value=g.target_value,
                owner_department_id=g.data_owner_department_id or g.department_id or "",
                update_frequency_hours=g.update_frequency_hours,
                department_id=g.department_id,
                employee_id=g.employee_id,
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
            ExportedGoal(
                goal_id=g.goal_id,
                level=GoalLevel(g.level),
                name=g.name,
                employee_id=g.employee_id,
                department_id=g.department_id,
                parent_id=g.parent_id,
                kpi_id=g.goal_id if g.metric else None,
                weight=g.weight,
                unit=g.unit,
                direction=Direction(g.direction),
                start_value=g.start_value,
                target_value=g.target_value,
                threshold_value=g.threshold_value,
                stretch_value=g.stretch_value,
                contributing_department_ids=list(g.contributing_department_ids or []),
            )
            for g in goals
        ],
    )


PENDING_LIMIT = 500


async def pending_report(*, session: AsyncSession, cycle_id: str, department_id: str, stage: Stage) -> PendingReport:
    """Who in ``department_id`` (and its sub-departments) still owes goal-setting work.

    Items: people without any goal (``goals_missing``, owner: the employee), draft or returned goals
    (owner: the employee), submitted goals (owner: the approver), department KPIs not approved (owner:
    the head). ``total`` counts goals plus people without goals; ``done`` the approved goals.
    """
    if stage is not Stage.GOAL_SETTING:
        raise DomainError(f"the goals service answers stage 'goal_setting' only, not '{stage.value}'", field="stage")
    org = await load_org(session, GoalsParticipant, GoalsDepartment, cycle_id)
    if department_id not in org.departments:
        raise DomainError(
            f"no department '{department_id}' in cycle '{cycle_id}'", status_code=404, field="department_id"
        )
    # a department includes its sub-departments (people sit in e.g. production-assembly)
    departments = org.department_tree(department_id)
    members = sorted(p.employee_id for p in org.participants.values() if p.department_id in departments)
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
    with_goals = {g.employee_id for g in goals if g.level == GoalLevel.INDIVIDUAL}
    items: list[PendingItem] = [
        PendingItem(item_id=emp, kind="goals_missing", owner_id=emp) for emp in members if emp not in with_goals
    ]
    done = 0
    for goal in goals:
        if goal.status == GoalStatus.APPROVED:
            done += 1
            continue
        if goal.level == GoalLevel.DEPARTMENT:
            kind = "department_kpi_approval" if goal.status == GoalStatus.SUBMITTED else "department_kpi_submission"
            owner = org.departments[goal.department_id or department_id].head_employee_id
        elif goal.status == GoalStatus.SUBMITTED:
            kind, owner = "goal_approval", _approver(org, goal)
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
        pending=items[:PENDING_LIMIT],
    )
