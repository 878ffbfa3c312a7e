"""Routes of the results service. Thin: one service call each (the rules live in ``service``,
which also commits); each route declares its roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse

from contracts.cycle import PendingReport, Stage
from contracts.evaluation import CollaborationMatrix, CycleResults
from contracts.feedback import AppealAdjustment
from contracts.goals import GoalExport
from contracts.results import PolicyFromTemplate, ResultsPolicy
from contracts.templates import SettingsPushed, SettingsVersion
from services.common.action_items import ActionItemRead, ActionItemUpdate
from services.common.auth import Principal, Role, requires
from services.common.clock import NowDep
from services.common.deps import SessionDep
from services.common.nudge import nudge, nudge_cycle
from services.common.params import APPROVERS, EVERYONE, HR, LEADERS, MACHINE, CycleId, Limit, Offset
from services.results import service
from services.results.models import ResultsDepartment
from services.results.report import render_csv, render_html
from services.results.schemas import (
    Accepted,
    AllocationCreate,
    AllocationRead,
    AppealApplied,
    AwardFundRead,
    AwardRecordRead,
    AwardsRead,
    BonusRead,
    GenerateRead,
    ItemCreate,
    NominationRead,
    PlanCreate,
    PlanRead,
    PlanUpdate,
    PoolRead,
    PoolUpdate,
    PublicationRead,
    ReportRead,
)

__all__ = ["NowDep", "router"]

router = APIRouter(prefix="/v1")

DepartmentId = Annotated[str, Path(min_length=1, max_length=64)]
RowId = Annotated[int, Path(ge=1, le=2_147_483_647, description="A numeric id (a 32-bit row key).")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="Retries with the same key return the first answer and never apply twice.",
    ),
]
PreviousCycle = Annotated[
    str | None, Query(max_length=64, description="Compare with this cycle (default: the one given with the matrix).")
]

POOL_READERS = (Role.HR_ADMIN, Role.OPS, Role.DEPT_HEAD, Role.FINANCE)
POOL_SETTERS = (Role.HR_ADMIN, Role.FINANCE)
"""Finance sets each department's bonus budget; HR may too."""
POOL_APPROVERS = (Role.FINANCE,)
"""Finance alone signs a pool off (when the cycle's policy asks for it)."""
PLAN_CREATORS = (Role.HR_ADMIN, Role.MANAGER)
"""Who opens a development plan by hand: HR, or a manager for their reports."""

HrAdmin = Annotated[Principal, requires(*HR)]
Machine = Annotated[Principal, requires(*MACHINE)]
Person = Annotated[Principal, requires(*EVERYONE)]
Leader = Annotated[Principal, requires(*LEADERS)]
Editor = Annotated[Principal, requires(*APPROVERS)]
PoolReader = Annotated[Principal, requires(*POOL_READERS)]
PoolSetter = Annotated[Principal, requires(*POOL_SETTERS)]
PoolApprover = Annotated[Principal, requires(*POOL_APPROVERS)]
PersonOrFinance = Annotated[Principal, requires(*EVERYONE, Role.FINANCE)]
MachineOrFinance = Annotated[Principal, requires(*MACHINE, Role.FINANCE)]
PlanCreator = Annotated[Principal, requires(*PLAN_CREATORS)]


class CsvResponse(PlainTextResponse):
    """``text/csv``, so OpenAPI documents the media type the endpoint really serves."""

    media_type = "text/csv"


# -- inputs from the workflow --------------------------------------------------------------------
@router.put(
    "/cycles/{cycle_id}/results",
    tags=["inputs"],
    summary="Receive the cycle's calibrated results (idempotent replace)",
    description="Pushed when evaluation ends and again, with appeal adjustments, when result application opens. "
    "A changed result brings its department's allocation, nomination and plan up to date; after publication "
    "results change only by an adjusted appeal (409).",
)
async def put_results(
    cycle_id: CycleId, body: CycleResults, session: SessionDep, now: NowDep, principal: HrAdmin
) -> Accepted:
    return await service.put_results(session=session, cycle_id=cycle_id, results=body, actor=principal.sub, now=now)


@router.put(
    "/cycles/{cycle_id}/collaboration",
    tags=["inputs"],
    summary="Receive the department-to-department collaboration matrix (idempotent replace)",
)
async def put_collaboration(
    cycle_id: CycleId,
    body: CollaborationMatrix,
    session: SessionDep,
    now: NowDep,
    _p: HrAdmin,
    previous_cycle_id: Annotated[
        str | None, Query(max_length=64, description="The cycle the report compares against.")
    ] = None,
) -> Accepted:
    return await service.put_collaboration(
        session=session, cycle_id=cycle_id, matrix=body, previous_cycle_id=previous_cycle_id, now=now
    )


@router.put(
    "/cycles/{cycle_id}/goals",
    tags=["inputs"],
    summary="Receive the goal export; goals shared across departments feed the collaboration award",
)
async def put_goals(cycle_id: CycleId, body: GoalExport, session: SessionDep, now: NowDep, _p: HrAdmin) -> Accepted:
    return await service.put_goals(session=session, cycle_id=cycle_id, export=body, now=now)


@router.put(
    "/cycles/{cycle_id}/policy",
    tags=["policy"],
    summary="HR sets the curve, caps, promotion/development rules and publication policy (kept from then on)",
    description="Labels must be the cycle's rating bands (once known). A new version with source 'hr': the "
    "workflow's template pushes no longer replace it.",
)
async def put_policy(
    cycle_id: CycleId, body: ResultsPolicy, session: SessionDep, now: NowDep, principal: HrAdmin
) -> ResultsPolicy:
    return await service.set_policy(session=session, cycle_id=cycle_id, policy=body, actor=principal.sub, now=now)


@router.put(
    "/cycles/{cycle_id}/policy/template",
    tags=["policy"],
    summary="The workflow pushes the template's policy (applied only while HR has not changed it)",
)
async def push_template_policy(
    cycle_id: CycleId,
    body: PolicyFromTemplate,
    session: SessionDep,
    now: NowDep,
    principal: HrAdmin,
) -> SettingsPushed:
    return await service.push_template_policy(
        session=session, cycle_id=cycle_id, pushed=body, actor=principal.sub, now=now
    )


@router.get("/cycles/{cycle_id}/policy", tags=["policy"], summary="The cycle's result-application rules (visible)")
async def get_policy(cycle_id: CycleId, session: SessionDep, _p: PersonOrFinance) -> ResultsPolicy:
    return await service.get_policy(session=session, cycle_id=cycle_id)


@router.get(
    "/cycles/{cycle_id}/policy/version",
    tags=["policy"],
    summary="Who set the policy (the template or HR), which version, when",
)
async def get_policy_version(cycle_id: CycleId, session: SessionDep, _p: Person) -> SettingsVersion:
    return await service.policy_version(session=session, cycle_id=cycle_id)


# -- bonus pools ---------------------------------------------------------------------------------
@router.put(
    "/cycles/{cycle_id}/pools/{department_id}",
    tags=["bonus"],
    summary="Set a department's bonus pool from the finance budget (cents + currency)",
)
async def put_pool(
    cycle_id: CycleId,
    department_id: DepartmentId,
    body: PoolUpdate,
    session: SessionDep,
    now: NowDep,
    principal: PoolSetter,
) -> PoolRead:
    pool = await service.set_pool(
        session=session, cycle_id=cycle_id, department_id=department_id, budget=body, principal=principal, now=now
    )
    return PoolRead.model_validate(pool)


@router.post(
    "/cycles/{cycle_id}/pools/{department_id}/approval",
    tags=["bonus"],
    summary="Finance approves a department's pool as set (needed before allocation when the policy's "
    "pool_approval is 'finance'; a changed amount or currency needs a new approval)",
    responses={404: {"description": "The department has no pool in this cycle"}},
)
async def approve_pool(
    cycle_id: CycleId,
    department_id: DepartmentId,
    session: SessionDep,
    now: NowDep,
    principal: PoolApprover,
    request: Request,
) -> PoolRead:
    pool = await service.approve_pool(
        session=session, cycle_id=cycle_id, department_id=department_id, principal=principal, now=now
    )
    await nudge(
        request,
        session,
        ResultsDepartment,
        cycle_id=cycle_id,
        stage=Stage.RESULT_APPLICATION,
        department_id=department_id,
    )
    return PoolRead.model_validate(pool)


@router.get("/cycles/{cycle_id}/pools", tags=["bonus"], summary="Bonus pools (HR/ops: all; dept heads: theirs)")
async def list_pools(cycle_id: CycleId, session: SessionDep, principal: PoolReader) -> list[PoolRead]:
    rows = await service.list_pools(session=session, cycle_id=cycle_id, principal=principal)
    return [PoolRead.model_validate(p) for p in rows]


@router.post(
    "/cycles/{cycle_id}/pools/{department_id}/allocations",
    tags=["bonus"],
    status_code=201,
    summary="Allocate the pool by calibrated score (exact to the cent; Idempotency-Key makes retries safe)",
    responses={
        200: {"description": "A retry with the same Idempotency-Key: the stored allocation"},
        422: {"description": "The allocation would exceed the pool, or the key was reused for another request"},
    },
)
async def allocate(
    cycle_id: CycleId,
    department_id: DepartmentId,
    body: AllocationCreate,
    session: SessionDep,
    now: NowDep,
    response: Response,
    principal: HrAdmin,
    request: Request,
    idempotency_key: IdempotencyKey = None,
) -> AllocationRead:
    allocation = await service.allocate(
        session=session,
        cycle_id=cycle_id,
        department_id=department_id,
        request=body,
        idempotency_key=idempotency_key,
        principal=principal,
        now=now,
    )
    if allocation.replayed:
        response.status_code = 200
    await nudge(
        request,
        session,
        ResultsDepartment,
        cycle_id=cycle_id,
        stage=Stage.RESULT_APPLICATION,
        department_id=department_id,
    )
    nudge_cycle(request, cycle_id=cycle_id)  # publication may have waited for this allocation
    return allocation


@router.get(
    "/cycles/{cycle_id}/pools/{department_id}/allocation",
    tags=["bonus"],
    summary="The department's current allocation (HR/ops; dept heads for their department)",
)
async def get_allocation(
    cycle_id: CycleId, department_id: DepartmentId, session: SessionDep, principal: PoolReader
) -> AllocationRead:
    return await service.get_allocation(
        session=session, cycle_id=cycle_id, department_id=department_id, principal=principal
    )


@router.get(
    "/cycles/{cycle_id}/bonuses",
    tags=["bonus"],
    summary="Allocated bonuses in your scope (HR, ops and finance: everyone's; employees and managers once published)",
)
async def list_bonuses(
    cycle_id: CycleId, session: SessionDep, principal: PersonOrFinance, limit: Limit = 100, offset: Offset = 0
) -> list[BonusRead]:
    return await service.list_bonuses(
        session=session, cycle_id=cycle_id, principal=principal, limit=limit, offset=offset
    )


# -- promotions ----------------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/promotions/nominate",
    tags=["promotions"],
    summary="Nominate for promotion by the cycle's rule (replaces earlier nominations), with reasons",
)
async def nominate(cycle_id: CycleId, session: SessionDep, now: NowDep, _p: HrAdmin) -> list[NominationRead]:
    rows = await service.nominate_promotions(session=session, cycle_id=cycle_id, now=now)
    return [NominationRead.model_validate(n) for n in rows]


@router.get("/cycles/{cycle_id}/promotions", tags=["promotions"], summary="Promotion nominations in your scope")
async def list_promotions(
    cycle_id: CycleId, session: SessionDep, principal: Person, limit: Limit = 100, offset: Offset = 0
) -> list[NominationRead]:
    rows = await service.list_nominations(
        session=session, cycle_id=cycle_id, principal=principal, limit=limit, offset=offset
    )
    return [NominationRead.model_validate(n) for n in rows]


# -- development plans ---------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/development-plans/generate",
    tags=["development"],
    summary="Draft a development plan for everyone below the threshold (idempotent)",
)
async def generate_plans(cycle_id: CycleId, session: SessionDep, now: NowDep, _p: HrAdmin) -> GenerateRead:
    return await service.generate_plans(session=session, cycle_id=cycle_id, now=now)


@router.post(
    "/cycles/{cycle_id}/development-plans",
    tags=["development"],
    status_code=201,
    summary="Create a development plan for one of your reports",
)
async def create_plan(
    cycle_id: CycleId, body: PlanCreate, session: SessionDep, now: NowDep, principal: PlanCreator
) -> PlanRead:
    plan = await service.create_plan(session=session, cycle_id=cycle_id, plan=body, principal=principal, now=now)
    return PlanRead.model_validate(plan)


@router.get("/cycles/{cycle_id}/development-plans", tags=["development"], summary="Development plans in your scope")
async def list_plans(
    cycle_id: CycleId, session: SessionDep, principal: Person, limit: Limit = 100, offset: Offset = 0
) -> list[PlanRead]:
    rows = await service.list_plans(session=session, cycle_id=cycle_id, principal=principal, limit=limit, offset=offset)
    return [PlanRead.model_validate(p) for p in rows]


@router.get("/development-plans/{plan_id}", tags=["development"], summary="One development plan with its items")
async def get_plan(plan_id: RowId, session: SessionDep, principal: Person) -> PlanRead:
    return PlanRead.model_validate(await service.get_plan(session=session, plan_id=plan_id, principal=principal))


@router.patch(
    "/development-plans/{plan_id}",
    tags=["development"],
    summary="Change a plan's status, summary or owner (HR, owner, manager)",
)
async def update_plan(
    plan_id: RowId, body: PlanUpdate, session: SessionDep, now: NowDep, principal: Editor
) -> PlanRead:
    plan = await service.update_plan(session=session, plan_id=plan_id, principal=principal, changes=body, now=now)
    return PlanRead.model_validate(plan)


@router.post(
    "/development-plans/{plan_id}/items",
    tags=["development"],
    status_code=201,
    summary="Add an item with an owner and a due date",
)
async def add_item(
    plan_id: RowId, body: ItemCreate, session: SessionDep, now: NowDep, principal: Editor
) -> ActionItemRead:
    item = await service.add_plan_item(session=session, plan_id=plan_id, principal=principal, item=body, now=now)
    return ActionItemRead.model_validate(item)


@router.patch(
    "/development-plans/{plan_id}/items/{item_id}",
    tags=["development"],
    summary="Update an item (its owner may mark it done)",
)
async def update_item(
    plan_id: RowId, item_id: RowId, body: ActionItemUpdate, session: SessionDep, now: NowDep, principal: Person
) -> ActionItemRead:
    item = await service.update_plan_item(
        session=session, plan_id=plan_id, item_id=item_id, principal=principal, changes=body, now=now
    )
    return ActionItemRead.model_validate(item)


# -- collaboration -------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/collaboration-awards",
    tags=["collaboration"],
    summary="'Best collaboration team' from the matrix and shared-goal contributions, with evidence",
)
async def collaboration_awards(cycle_id: CycleId, session: SessionDep, _p: Person) -> AwardsRead:
    announced = await service.announced_award(session=session, cycle_id=cycle_id)
    record = AwardRecordRead.model_validate(announced) if announced is not None else None
    return AwardsRead.of(cycle_id, await service.awards(session=session, cycle_id=cycle_id), record)


@router.put(
    "/cycles/{cycle_id}/award-fund",
    tags=["collaboration"],
    summary="Fund the cycle's collaboration award (finance's budget, paid to the winning department; "
    "fixed once the award is announced at publication)",
)
async def put_award_fund(
    cycle_id: CycleId, body: PoolUpdate, session: SessionDep, now: NowDep, principal: PoolSetter
) -> AwardFundRead:
    fund = await service.set_award_fund(session=session, cycle_id=cycle_id, budget=body, principal=principal, now=now)
    return AwardFundRead.model_validate(fund)


@router.get("/cycles/{cycle_id}/award-fund", tags=["collaboration"], summary="The collaboration award's fund")
async def get_award_fund(cycle_id: CycleId, session: SessionDep, _p: PoolReader) -> AwardFundRead:
    return AwardFundRead.model_validate(await service.get_award_fund(session=session, cycle_id=cycle_id))


@router.get(
    "/cycles/{cycle_id}/collaboration-report",
    tags=["collaboration"],
    summary="Cross-department collaboration report (JSON): matrix, strongest/weakest pairs, change, actions",
)
async def report_json(
    cycle_id: CycleId, session: SessionDep, _p: Leader, previous_cycle_id: PreviousCycle = None
) -> ReportRead:
    report = await service.collaboration_report(session=session, cycle_id=cycle_id, previous_cycle_id=previous_cycle_id)
    return ReportRead.of(report)


@router.get(
    "/cycles/{cycle_id}/collaboration-report.csv",
    tags=["collaboration"],
    summary="Cross-department collaboration report as CSV (one row per rater/rated pair)",
    response_class=CsvResponse,
)
async def report_csv(
    cycle_id: CycleId, session: SessionDep, _p: Leader, previous_cycle_id: PreviousCycle = None
) -> CsvResponse:
    report = await service.collaboration_report(session=session, cycle_id=cycle_id, previous_cycle_id=previous_cycle_id)
    return CsvResponse(
        "\ufeff" + render_csv(report),  # a UTF-8 BOM, so Excel reads Chinese names as Chinese
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="collaboration-{cycle_id}.csv"'},
    )


@router.get(
    "/cycles/{cycle_id}/collaboration-report.html",
    tags=["collaboration"],
    summary="Cross-department collaboration report as an HTML page with a heatmap (no JavaScript)",
    response_class=HTMLResponse,
)
async def report_html(
    cycle_id: CycleId, session: SessionDep, _p: Leader, previous_cycle_id: PreviousCycle = None
) -> HTMLResponse:
    report = await service.collaboration_report(session=session, cycle_id=cycle_id, previous_cycle_id=previous_cycle_id)
    return HTMLResponse(render_html(report))


# -- appeals -------------------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/appeal-adjustments",
    tags=["appeals"],
    status_code=201,
    summary="Apply an appeal resolved as adjusted (the feedback service): pay, promotion and plan follow it",
    description="Before publication the result, the department's allocation, the nomination and the plan change; "
    "after it, every changed line is also published as ResultsCorrected. Idempotent on appeal_id: a retry "
    "answers 200 with what was applied.",
    responses={200: {"description": "A retry: the adjustment as applied the first time"}},
)
async def appeal_adjustment(
    cycle_id: CycleId,
    body: AppealAdjustment,
    session: SessionDep,
    now: NowDep,
    response: Response,
    principal: HrAdmin,
) -> AppealApplied:
    applied = await service.apply_appeal(
        session=session, cycle_id=cycle_id, adjustment=body, principal=principal, now=now
    )
    if applied.replayed:
        response.status_code = 200
    return applied


# -- publishing ----------------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/publish",
    tags=["publishing"],
    status_code=201,
    summary="Publish ResultsPublished on cycle.events.v1 via the outbox (once; Idempotency-Key for retries)",
    responses={200: {"description": "A retry with the same Idempotency-Key"}, 409: {"description": "Not ready"}},
)
async def publish(
    cycle_id: CycleId,
    session: SessionDep,
    now: NowDep,
    response: Response,
    principal: HrAdmin,
    idempotency_key: IdempotencyKey = None,
) -> PublicationRead:
    publication = await service.publish(
        session=session, cycle_id=cycle_id, idempotency_key=idempotency_key, principal=principal, now=now
    )
    if publication.replayed:
        response.status_code = 200
    return publication


# -- workflow view -------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/pending",
    tags=["workflow"],
    summary="Result application: allocation missing and development plans without items, per department",
)
async def pending(
    cycle_id: CycleId,
    session: SessionDep,
    _p: MachineOrFinance,
    department_id: Annotated[str, Query(min_length=1, max_length=64)],
    stage: Stage = Stage.RESULT_APPLICATION,
) -> PendingReport:
    return await service.pending_report(session=session, cycle_id=cycle_id, department_id=department_id, stage=stage)
