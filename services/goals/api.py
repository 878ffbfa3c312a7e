"""Routes of the goals service. Thin: rules live in the ``service`` package and ``rules.py``.

Every route declares its roles with ``requires()`` (listed as ``x-roles`` in OpenAPI by the app);
row scoping inside a role is done by the service layer (404 outside scope, 403 for a
forbidden action on a visible object).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import PendingReport, Stage
from contracts.goals import ApprovalQueue, GoalExport, GoalLevel, KpiCatalog
from contracts.tracking import ProgressExport
from services.common.auth import Principal, requires
from services.common.clock import current_time
from services.common.deps import SessionDep
from services.common.nudge import nudge
from services.common.params import APPROVERS, EVERYONE, HR, MACHINE, STAFF, CycleId, Limit, Offset
from services.goals import service
from services.goals.models import GoalsDepartment, GoalsParticipant
from services.goals.rules import Action, GoalStatus
from services.goals.schemas import (
    BulkAssignRequest,
    BulkAssignResult,
    CycleSettingsRead,
    CycleSettingsUpdate,
    FreezeResult,
    GoalCreate,
    GoalPage,
    GoalRead,
    GoalTree,
    GoalUpdate,
    ObjectiveCreate,
    ObjectiveRead,
    ObjectiveUpdate,
    ProgressAccepted,
    ReturnRequest,
    Scorecard,
    SubmitRequest,
    WeightReport,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1/cycles/{cycle_id}", tags=["goals"])


ObjectiveId = Annotated[str, Path(min_length=1, max_length=64)]
GoalId = Annotated[str, Path(min_length=1, max_length=64)]

HrAdmin = Annotated[Principal, requires(*HR)]
Person = Annotated[Principal, requires(*STAFF)]
Reader = Annotated[Principal, requires(*EVERYONE)]
Approver = Annotated[Principal, requires(*APPROVERS)]
Machine = Annotated[Principal, requires(*MACHINE)]


@dataclass(frozen=True)
class GoalTransition:
    """One goal's move along the approval chain, with what the move needs from the request."""

    request: Request
    session: AsyncSession
    cycle_id: str
    goal_id: str

    async def __call__(self, action: Action, *, principal: Principal, comment: str | None) -> GoalRead:
        goal = await service.transition_goal(
            session=self.session,
            cycle_id=self.cycle_id,
            goal_id=self.goal_id,
            action=action,
            principal=principal,
            comment=comment,
            now=current_time(self.request),
        )
        # After the commit, best effort: the department's goal-setting workflow re-reads what is
        # pending now rather than at its next periodic check.
        await nudge(
            self.request,
            self.session,
            GoalsDepartment,
            cycle_id=goal.cycle_id,
            stage=Stage.GOAL_SETTING,
            department_id=goal.department_id,
            employee_id=goal.employee_id,
            participant_model=GoalsParticipant,
        )
        return GoalRead.model_validate(goal)


async def _goal_transition(cycle_id: CycleId, goal_id: GoalId, session: SessionDep, request: Request) -> GoalTransition:
    return GoalTransition(request=request, session=session, cycle_id=cycle_id, goal_id=goal_id)


Transition = Annotated[GoalTransition, Depends(_goal_transition)]


# -- cycle settings and freeze ----------------------------------------------------------------------
@router.get("/settings", summary="Goal-setting settings of a cycle: period and freeze state", tags=["cycle"])
async def read_settings(cycle_id: CycleId, session: SessionDep, _p: Reader) -> CycleSettingsRead:
    return await service.get_settings(session=session, cycle_id=cycle_id)


@router.put(
    "/settings",
    summary="Set the cycle period used by the KPI catalog (hr_admin)",
    description="The cycles service (or the sample loader) sets the period here; the KPI catalog needs it.",
    tags=["cycle"],
)
async def write_settings(
    cycle_id: CycleId, body: CycleSettingsUpdate, session: SessionDep, _p: HrAdmin
) -> CycleSettingsRead:
    return await service.put_settings(session=session, cycle_id=cycle_id, data=body)


@router.post(
    "/freeze",
    summary="Freeze goal setting: afterwards every edit is refused with 409 (hr_admin; idempotent)",
    description="Called by the workflow when the goal-setting stage ends. Emits a GoalsFrozen event once.",
    tags=["cycle"],
)
async def freeze(cycle_id: CycleId, session: SessionDep, principal: HrAdmin) -> FreezeResult:
    return await service.freeze_cycle(session=session, cycle_id=cycle_id, principal=principal)


# -- objectives -----------------------------------------------------------------------------------
@router.get("/objectives", summary="List the strategy objectives of a cycle", tags=["objectives"])
async def list_objectives(
    cycle_id: CycleId, session: SessionDep, _p: Reader, limit: Limit = 100, offset: Offset = 0
) -> list[ObjectiveRead]:
    rows = await service.list_objectives(session=session, cycle_id=cycle_id, limit=limit, offset=offset)
    return [ObjectiveRead.model_validate(r) for r in rows]


@router.post(
    "/objectives",
    status_code=status.HTTP_201_CREATED,
    summary="Create a strategy objective with its balanced-scorecard perspective (hr_admin)",
    tags=["objectives"],
)
async def create_objective(cycle_id: CycleId, body: ObjectiveCreate, session: SessionDep, _p: HrAdmin) -> ObjectiveRead:
    return ObjectiveRead.model_validate(await service.create_objective(session=session, cycle_id=cycle_id, data=body))


@router.get("/objectives/{objective_id}", summary="Read one objective", tags=["objectives"])
async def read_objective(
    cycle_id: CycleId, objective_id: ObjectiveId, session: SessionDep, _p: Reader
) -> ObjectiveRead:
    objective = await service.get_objective(session=session, cycle_id=cycle_id, objective_id=objective_id)
    return ObjectiveRead.model_validate(objective)


@router.patch("/objectives/{objective_id}", summary="Change an objective (hr_admin)", tags=["objectives"])
async def update_objective(
    cycle_id: CycleId, objective_id: ObjectiveId, body: ObjectiveUpdate, session: SessionDep, _p: HrAdmin
) -> ObjectiveRead:
    objective = await service.update_objective(session=session, cycle_id=cycle_id, objective_id=objective_id, data=body)
    return ObjectiveRead.model_validate(objective)


@router.delete(
    "/objectives/{objective_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete an objective without company KPIs (hr_admin)",
    tags=["objectives"],
)
async def delete_objective(cycle_id: CycleId, objective_id: ObjectiveId, session: SessionDep, _p: HrAdmin) -> Response:
    await service.delete_objective(session=session, cycle_id=cycle_id, objective_id=objective_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# -- goals ----------------------------------------------------------------------------------------
@router.get(
    "/goals",
    summary="List KPIs and goals in the caller's scope (paginated)",
    description="Company and department KPIs are visible to every role; individual goals follow row scoping.",
)
async def list_goals(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Reader,
    level: GoalLevel | None = None,
    department_id: Annotated[str | None, Query(max_length=64)] = None,
    employee_id: Annotated[str | None, Query(max_length=64)] = None,
    goal_status: Annotated[GoalStatus | None, Query(alias="status")] = None,
    parent_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> GoalPage:
    rows, total = await service.list_goals(
        session=session,
        cycle_id=cycle_id,
        principal=principal,
        level=level,
        department_id=department_id,
        employee_id=employee_id,
        status=goal_status,
        parent_id=parent_id,
        limit=limit,
        offset=offset,
    )
    return GoalPage(items=[GoalRead.model_validate(r) for r in rows], total=total, limit=limit, offset=offset)


@router.post(
    "/goals",
    status_code=status.HTTP_201_CREATED,
    summary="Create a company KPI, department KPI or individual goal (aligned to its parent)",
    description=(
        "Company KPIs: hr_admin, aligned to an objective. Department KPIs: the department head or hr_admin, "
        "aligned to a company KPI. Individual goals: anyone who can see the employee, aligned to a KPI of the "
        "employee's department or a shared KPI their department contributes to."
    ),
)
async def create_goal(cycle_id: CycleId, body: GoalCreate, session: SessionDep, principal: Person) -> GoalRead:
    goal = await service.create_goal(session=session, cycle_id=cycle_id, data=body, principal=principal)
    return GoalRead.model_validate(goal)


@router.post(
    "/goals/bulk-assign",
    summary="Assign one goal template to everyone in a department and/or with a job title (idempotent)",
    description=(
        "One INSERT for everyone matched in the caller's scope. Re-running with the same template_key skips "
        "people who already have it; the response lists what was created and what was skipped, and why."
    ),
)
async def bulk_assign(
    cycle_id: CycleId, body: BulkAssignRequest, session: SessionDep, principal: Approver
) -> BulkAssignResult:
    return await service.bulk_assign(session=session, cycle_id=cycle_id, request=body, principal=principal)


@router.get("/goals/{goal_id}", summary="Read one KPI or goal (404 outside your scope)")
async def read_goal(cycle_id: CycleId, goal_id: GoalId, session: SessionDep, principal: Reader) -> GoalRead:
    goal = await service.get_goal(session=session, cycle_id=cycle_id, goal_id=goal_id, principal=principal)
    return GoalRead.model_validate(goal)


@router.patch(
    "/goals/{goal_id}",
    summary="Change a draft or returned KPI or goal",
    description="409 once submitted/approved or after the freeze; the merged goal is re-validated.",
)
async def update_goal(
    cycle_id: CycleId, goal_id: GoalId, body: GoalUpdate, session: SessionDep, principal: Person
) -> GoalRead:
    goal = await service.update_goal(
        session=session, cycle_id=cycle_id, goal_id=goal_id, data=body, principal=principal
    )
    return GoalRead.model_validate(goal)


@router.delete(
    "/goals/{goal_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a draft or returned KPI or goal with nothing aligned to it",
)
async def delete_goal(cycle_id: CycleId, goal_id: GoalId, session: SessionDep, principal: Person) -> Response:
    await service.delete_goal(session=session, cycle_id=cycle_id, goal_id=goal_id, principal=principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/goals/{goal_id}/submit",
    summary="Submit a goal for approval (individual: the employee; department: its head; company: hr_admin)",
    description="Allowed from draft or returned. The owner's weights at this level must sum to 100.",
    tags=["approval"],
)
async def submit_goal(transition: Transition, principal: Person, body: SubmitRequest | None = None) -> GoalRead:
    return await transition(Action.SUBMIT, principal=principal, comment=body.comment if body else None)


@router.post(
    "/goals/{goal_id}/approve",
    summary="Approve the step a submitted goal waits at (its approver, or hr_admin); the last step approves it",
    description="Who approves each step comes from the cycle's approval chains (settings): by default the "
    "manager for individual goals, the department head for department KPIs, HR for company KPIs. Nobody "
    "approves a goal they own, submitted, or approved at an earlier step (403 naming who may).",
    tags=["approval"],
)
async def approve_goal(transition: Transition, principal: Approver, body: SubmitRequest | None = None) -> GoalRead:
    return await transition(Action.APPROVE, principal=principal, comment=body.comment if body else None)


@router.post(
    "/goals/{goal_id}/return",
    summary="Return a submitted goal to its owner with a comment (the approver of its waiting step)",
    tags=["approval"],
)
async def return_goal(transition: Transition, body: ReturnRequest, principal: Approver) -> GoalRead:
    return await transition(Action.RETURN, principal=principal, comment=body.comment)


# -- weights, tree, progress ----------------------------------------------------------------------
@router.get(
    "/weights", summary="Weight validation report: per owner and level, the sum and whether it is 100", tags=["reports"]
)
async def weights(cycle_id: CycleId, session: SessionDep, principal: Reader) -> WeightReport:
    return await service.weight_report(session=session, cycle_id=cycle_id, principal=principal)


@router.get(
    "/tree",
    summary="Goal tree: objectives, company, department and individual goals with rolled-up progress",
    description="Parent progress is the weighted mean of its children's progress (children without data left "
    "out); leaves use their attainment (actual-start)/(target-start), clamped to 0..1.5.",
    tags=["reports"],
)
async def tree(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Reader,
    department_id: Annotated[str | None, Query(max_length=64, description="Only this department's KPIs.")] = None,
) -> GoalTree:
    return await service.goal_tree(session=session, cycle_id=cycle_id, principal=principal, department_id=department_id)


@router.put(
    "/progress",
    summary="Store actual values from tracking, keyed by kpi_id (= goal_id); tracking and the workflow push them "
    "(hr_admin)",
    description=(
        "Tracking pushes the actuals that changed here during the tracking stage (the live roll-up, within "
        "seconds of a metric), and the workflow's service token (hr_admin) pushes the whole progress export at "
        "its end. Each KPI keeps the newer actual by as_of: an older export is listed in superseded_kpi_ids and "
        "changes nothing. Operators (ops) may read the exports but not write the actuals that scores are computed "
        "from. 422 for a NaN or infinite actual_value, naming it."
    ),
    tags=["exports"],
)
async def put_progress(cycle_id: CycleId, body: ProgressExport, session: SessionDep, _p: HrAdmin) -> ProgressAccepted:
    return await service.store_progress(session=session, cycle_id=cycle_id, export=body)


@router.get(
    "/scorecard",
    summary="Balanced scorecard: progress rolled up per perspective (financial, customer, internal process, "
    "learning and growth), for the company or one department",
    description="Company: the company KPIs under their objectives' perspectives, weighted as in the company "
    "score. With department_id: that department's KPIs under the perspective of the company KPI each aligns "
    "to. The numbers are the goal tree's.",
    tags=["reports"],
)
async def scorecard(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Reader,
    department_id: Annotated[str | None, Query(max_length=64, description="One department's scorecard.")] = None,
) -> Scorecard:
    return await service.scorecard(session=session, cycle_id=cycle_id, principal=principal, department_id=department_id)


# -- exports for other stages ---------------------------------------------------------------------
@router.get(
    "/kpi-catalog",
    summary="Every KPI or goal with a metric key, for tracking (period from settings or the cycles service)",
    tags=["exports"],
)
async def kpi_catalog(cycle_id: CycleId, request: Request, session: SessionDep, _p: Machine) -> KpiCatalog:
    return await service.kpi_catalog(session=session, cycle_id=cycle_id, period_source=request.app.state.period_source)


@router.get("/goal-export", summary="Every approved goal of the cycle, for evaluation", tags=["exports"])
async def goal_export(cycle_id: CycleId, session: SessionDep, _p: Machine) -> GoalExport:
    return await service.goal_export(session=session, cycle_id=cycle_id)


@router.get(
    "/approvals",
    summary="Approval steps waiting in a department: approver, deadline, reminders and escalation of each",
    description="For the department workflow: each submitted goal or KPI at its waiting step, so reminders "
    "and escalations apply per step (GET /pending lists the same goals with the step's approver as owner).",
    tags=["exports"],
)
async def approvals(
    cycle_id: CycleId,
    session: SessionDep,
    _p: Machine,
    department_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> ApprovalQueue:
    return await service.approval_queue(session=session, cycle_id=cycle_id, department_id=department_id)


@router.get("/pending", summary="Goal-setting work still owed in a department, and who must act", tags=["exports"])
async def pending(
    cycle_id: CycleId,
    session: SessionDep,
    _p: Machine,
    department_id: Annotated[str, Query(min_length=1, max_length=64)],
    stage: Stage = Stage.GOAL_SETTING,
) -> PendingReport:
    return await service.pending_report(session=session, cycle_id=cycle_id, department_id=department_id, stage=stage)
