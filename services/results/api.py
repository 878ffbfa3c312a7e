"""Routes of the results service. Thin: the rules live in ``service.py``; each route declares its roles."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Path, Query, Request, Response
from fastapi.responses import HTMLResponse, PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import IntegrityError

from contracts.cycle import PendingReport, Stage
from contracts.evaluation import CollaborationMatrix, CycleResults
from contracts.goals import GoalExport
from services.common.action_items import ActionItemRead, ActionItemUpdate
from services.common.auth import Principal, Role, requires
from services.common.clock import NowDep
from services.common.deps import SessionDep
from services.common.errors import DomainError
from services.common.nudge import nudge
from services.results import service
from services.results.models import Allocation, DevelopmentPlan, ResultsDepartment
from services.results.policy import BonusCaps, Curve, ResultsPolicy
from services.results.report import render_csv, render_html

__all__ = ["NowDep", "router"]

router = APIRouter(prefix="/v1")

CycleId = Annotated[str, Path(min_length=1, max_length=64)]
DepartmentId = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size (at most 500).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (at most 1,000,000).")]


class CsvResponse(PlainTextResponse):
    """``text/csv``, so OpenAPI documents the media type the endpoint really serves."""

    media_type = "text/csv"


RowId = Annotated[int, Path(ge=1, le=2_147_483_647, description="A numeric id (a 32-bit row key).")]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=128,
        description="Retries with the same key return the first answer and never apply twice.",
    ),
]

HR = Role.HR_ADMIN
OPS = Role.OPS
PEOPLE = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE, Role.OPS)
LEADERS = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER, Role.OPS)





# -- schemas -------------------------------------------------------------------------------------
class Accepted(BaseModel):
    cycle_id: str
    received: int


class PoolUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: int = Field(ge=0, le=10**15, description="The finance budget in minor units (cents).")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. 'EUR'.")
    source: str = Field(default="finance budget", max_length=200, description="Where the budget comes from.")


class PoolRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    department_id: str
    amount_cents: int
    currency: str
    source: str
    updated_at: datetime
    updated_by: str


class AllocationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    curve: Curve | None = Field(default=None, description="Overrides the cycle policy's curve.")
    caps: BonusCaps | None = Field(default=None, description="Overrides the cycle policy's caps.")
    fixed: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="Fixed amounts (cents) for named employees; the rest is shared."
    )


class AllocationLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    employee_id: str
    final_score: float
    rating: str
    weight: float
    amount_cents: int
    capped: bool
    fixed: bool


class AllocationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cycle_id: str
    department_id: str
    idempotency_key: str | None
    pool_cents: int
    currency: str
    allocated_cents: int
    unallocated_cents: int
    curve: dict[str, Any]
    caps: dict[str, Any]
    notes: list[str]
    current: bool
    created_at: datetime
    created_by: str
    replayed: bool = False
    lines: list[AllocationLineRead]


class BonusRead(BaseModel):
    employee_id: str
    department_id: str
    amount_cents: int
    currency: str
    rating: str
    final_score: float


class NominationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    employee_id: str
    department_id: str
    grade: str
    rating: str
    final_score: float
    reasons: list[str]


class GenerateRead(BaseModel):
    created: int
    already_had_plan: int


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: str = Field(min_length=1, max_length=64)
    summary: str = Field(default="", max_length=4000)


class PlanUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["draft", "active", "completed"] | None = None
    summary: str | None = Field(default=None, max_length=4000)
    owner_id: str | None = Field(default=None, min_length=1, max_length=64)


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=1000)
    owner_id: str = Field(min_length=1, max_length=64)
    due_date: date | None = Field(default=None, description="Defaults to the policy's default_due_days.")


class PlanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cycle_id: str
    employee_id: str
    department_id: str
    owner_id: str
    status: str
    rating: str | None
    final_score: float | None
    summary: str
    auto_created: bool
    created_at: datetime
    updated_at: datetime
    items: list[ActionItemRead]


class AwardRead(BaseModel):
    department_id: str
    department_name: str
    eligible: bool
    score: float
    received_mean_overall: float | None
    rater_departments: int
    shared_goals: int
    evidence: list[str]


class AwardsRead(BaseModel):
    cycle_id: str
    award: str = "best collaboration team"
    winner: AwardRead | None
    ranking: list[AwardRead]


class PairRead(BaseModel):
    department_ids: tuple[str, str]
    department_names: tuple[str, str]
    overall: float
    responsiveness: float
    data_quality: float
    reliability: float
    ratings: int


class ChangeRead(BaseModel):
    department_ids: tuple[str, str]
    department_names: tuple[str, str]
    previous_overall: float | None
    overall: float | None
    change: float | None


class SuggestionRead(BaseModel):
    department_ids: tuple[str, str]
    department_names: tuple[str, str]
    overall: float
    weakest_dimension: str
    weakest_dimension_score: float
    matched_keywords: list[str]
    actions: list[str]


class CellRead(BaseModel):
    rater_department_id: str
    rater_department: str
    rated_department_id: str
    rated_department: str
    responsiveness: float
    data_quality: float
    reliability: float
    overall: float
    ratings: int
    previous_overall: float | None
    comments: list[str]


class ReportRead(BaseModel):
    cycle_id: str
    previous_cycle_id: str | None
    departments: dict[str, str]
    matrix: list[CellRead]
    strongest_pairs: list[PairRead]
    weakest_pairs: list[PairRead]
    changes: list[ChangeRead]
    suggestions: list[SuggestionRead]
    notes: list[str]


class PublicationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    publication_id: str
    idempotency_key: str | None
    event_ids: list[str]
    lines: int
    published_at: datetime
    published_by: str
    replayed: bool = False


def _allocation_read(allocation: Allocation, replayed: bool) -> AllocationRead:
    read = AllocationRead.model_validate(allocation)
    read.replayed = replayed
    return read


def _plan_read(plan: DevelopmentPlan) -> PlanRead:
    return PlanRead.model_validate(plan)


# -- inputs from the workflow --------------------------------------------------------------------
@router.put(
    "/cycles/{cycle_id}/results",
    tags=["inputs"],
    summary="Receive the cycle's calibrated results (idempotent replace)",
)
async def put_results(
    cycle_id: CycleId, body: CycleResults, session: SessionDep, now: NowDep, _p: Annotated[Principal, requires(HR)]
) -> Accepted:
    if body.cycle_id != cycle_id:
        raise DomainError(f"results are for cycle {body.cycle_id!r} but the URL names {cycle_id!r}", field="cycle_id")
    received = await service.put_results(session, results=body, now=now)
    await session.commit()
    return Accepted(cycle_id=cycle_id, received=received)


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
    _p: Annotated[Principal, requires(HR)],
    previous_cycle_id: Annotated[
        str | None, Query(max_length=64, description="The cycle the report compares against.")
    ] = None,
) -> Accepted:
    if body.cycle_id != cycle_id:
        raise DomainError(f"matrix is for cycle {body.cycle_id!r} but the URL names {cycle_id!r}", field="cycle_id")
    received = await service.put_collaboration(session, matrix=body, previous_cycle_id=previous_cycle_id, now=now)
    await session.commit()
    return Accepted(cycle_id=cycle_id, received=received)


@router.put(
    "/cycles/{cycle_id}/goals",
    tags=["inputs"],
    summary="Receive the goal export; goals shared across departments feed the collaboration award",
)
async def put_goals(
    cycle_id: CycleId, body: GoalExport, session: SessionDep, now: NowDep, _p: Annotated[Principal, requires(HR)]
) -> Accepted:
    if body.cycle_id != cycle_id:
        raise DomainError(f"goals are for cycle {body.cycle_id!r} but the URL names {cycle_id!r}", field="cycle_id")
    shared = await service.put_goals(session, export=body, now=now)
    await session.commit()
    return Accepted(cycle_id=cycle_id, received=shared)


@router.put("/cycles/{cycle_id}/policy", tags=["policy"], summary="Set the curve, caps, promotion/development rules")
async def put_policy(
    cycle_id: CycleId, body: ResultsPolicy, session: SessionDep, _p: Annotated[Principal, requires(HR)]
) -> ResultsPolicy:
    policy = await service.set_policy(session, cycle_id=cycle_id, policy=body)
    await session.commit()
    return policy


@router.get("/cycles/{cycle_id}/policy", tags=["policy"], summary="The cycle's result-application rules (visible)")
async def get_policy(
    cycle_id: CycleId, session: SessionDep, _p: Annotated[Principal, requires(*PEOPLE)]
) -> ResultsPolicy:
    return await service.get_policy(session, cycle_id=cycle_id)


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
    principal: Annotated[Principal, requires(HR)],
) -> PoolRead:
    pool = await service.set_pool(
        session, cycle_id=cycle_id, department_id=department_id, principal=principal, now=now, **body.model_dump()
    )
    await session.commit()
    return PoolRead.model_validate(pool)


@router.get("/cycles/{cycle_id}/pools", tags=["bonus"], summary="Bonus pools (HR/ops: all; dept heads: theirs)")
async def list_pools(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Annotated[Principal, requires(HR, OPS, Role.DEPT_HEAD)],
) -> list[PoolRead]:
    return [
        PoolRead.model_validate(p) for p in await service.list_pools(session, cycle_id=cycle_id, principal=principal)
    ]


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
    principal: Annotated[Principal, requires(HR)],
    http_request: Request,
    idempotency_key: IdempotencyKey = None,
) -> AllocationRead:
    request = service.AllocationRequest(curve=body.curve, caps=body.caps, fixed_cents=body.fixed)
    allocation, replayed = await service.allocate(
        session,
        cycle_id=cycle_id,
        department_id=department_id,
        request=request,
        idempotency_key=idempotency_key,
        principal=principal,
        now=now,
    )
    if not replayed:
        try:
            await session.commit()
        except IntegrityError:
            # A concurrent request with the same key won the race: answer with its allocation.
            await session.rollback()
            if idempotency_key is None:
                raise
            allocation, replayed = await service.allocate(
                session,
                cycle_id=cycle_id,
                department_id=department_id,
                request=request,
                idempotency_key=idempotency_key,
                principal=principal,
                now=now,
            )
    if replayed:
        response.status_code = 200
    await nudge(
        http_request,
        session,
        ResultsDepartment,
        cycle_id=cycle_id,
        stage=Stage.RESULT_APPLICATION,
        department_id=department_id,
    )
    return _allocation_read(allocation, replayed)


@router.get(
    "/cycles/{cycle_id}/pools/{department_id}/allocation",
    tags=["bonus"],
    summary="The department's current allocation (HR/ops; dept heads for their department)",
)
async def get_allocation(
    cycle_id: CycleId,
    department_id: DepartmentId,
    session: SessionDep,
    principal: Annotated[Principal, requires(HR, OPS, Role.DEPT_HEAD)],
) -> AllocationRead:
    allocation = await service.get_allocation_in_scope(
        session, cycle_id=cycle_id, department_id=department_id, principal=principal
    )
    return _allocation_read(allocation, False)


@router.get(
    "/cycles/{cycle_id}/bonuses",
    tags=["bonus"],
    summary="Allocated bonuses in your scope (employees and managers see them once published)",
)
async def list_bonuses(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Annotated[Principal, requires(*PEOPLE)],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[BonusRead]:
    lines = await service.list_bonuses(session, cycle_id=cycle_id, principal=principal, limit=limit, offset=offset)
    return [BonusRead(**line.__dict__) for line in lines]


# -- promotions ----------------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/promotions/nominate",
    tags=["promotions"],
    summary="Nominate for promotion by the cycle's rule (replaces earlier nominations), with reasons",
)
async def nominate(
    cycle_id: CycleId, session: SessionDep, now: NowDep, _p: Annotated[Principal, requires(HR)]
) -> list[NominationRead]:
    nominations = await service.nominate_promotions(session, cycle_id=cycle_id, now=now)
    await session.commit()
    return [NominationRead.model_validate(n) for n in nominations]


@router.get("/cycles/{cycle_id}/promotions", tags=["promotions"], summary="Promotion nominations in your scope")
async def list_promotions(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Annotated[Principal, requires(*PEOPLE)],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[NominationRead]:
    rows = await service.list_nominations(session, cycle_id=cycle_id, principal=principal, limit=limit, offset=offset)
    return [NominationRead.model_validate(n) for n in rows]


# -- development plans ---------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/development-plans/generate",
    tags=["development"],
    summary="Draft a development plan for everyone below the threshold (idempotent)",
)
async def generate_plans(
    cycle_id: CycleId, session: SessionDep, now: NowDep, _p: Annotated[Principal, requires(HR)]
) -> GenerateRead:
    created, kept = await service.generate_plans(session, cycle_id=cycle_id, now=now)
    await session.commit()
    return GenerateRead(created=created, already_had_plan=kept)


@router.post(
    "/cycles/{cycle_id}/development-plans",
    tags=["development"],
    status_code=201,
    summary="Create a development plan for one of your reports",
)
async def create_plan(
    cycle_id: CycleId,
    body: PlanCreate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(HR, Role.MANAGER)],
) -> PlanRead:
    plan = await service.create_plan(session, cycle_id=cycle_id, principal=principal, now=now, **body.model_dump())
    await session.commit()
    return _plan_read(plan)


@router.get("/cycles/{cycle_id}/development-plans", tags=["development"], summary="Development plans in your scope")
async def list_plans(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Annotated[Principal, requires(*PEOPLE)],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[PlanRead]:
    rows = await service.list_plans(session, cycle_id=cycle_id, principal=principal, limit=limit, offset=offset)
    return [_plan_read(p) for p in rows]


@router.get("/development-plans/{plan_id}", tags=["development"], summary="One development plan with its items")
async def get_plan(plan_id: RowId, session: SessionDep, principal: Annotated[Principal, requires(*PEOPLE)]) -> PlanRead:
    return _plan_read(await service.get_plan(session, plan_id=plan_id, principal=principal))


@router.patch(
    "/development-plans/{plan_id}",
    tags=["development"],
    summary="Change a plan's status, summary or owner (HR, owner, manager)",
)
async def update_plan(
    plan_id: RowId,
    body: PlanUpdate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(HR, Role.MANAGER, Role.DEPT_HEAD)],
) -> PlanRead:
    plan = await service.update_plan(
        session, plan_id=plan_id, principal=principal, changes=body.model_dump(exclude_unset=True), now=now
    )
    await session.commit()
    return _plan_read(plan)


@router.post(
    "/development-plans/{plan_id}/items",
    tags=["development"],
    status_code=201,
    summary="Add an item with an owner and a due date",
)
async def add_item(
    plan_id: RowId,
    body: ItemCreate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(HR, Role.MANAGER, Role.DEPT_HEAD)],
) -> ActionItemRead:
    item = await service.add_plan_item(session, plan_id=plan_id, principal=principal, now=now, **body.model_dump())
    await session.commit()
    return ActionItemRead.model_validate(item)


@router.patch(
    "/development-plans/{plan_id}/items/{item_id}",
    tags=["development"],
    summary="Update an item (its owner may mark it done)",
)
async def update_item(
    plan_id: RowId,
    item_id: RowId,
    body: ActionItemUpdate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(*PEOPLE)],
) -> ActionItemRead:
    item = await service.update_plan_item(
        session,
        plan_id=plan_id,
        item_id=item_id,
        principal=principal,
        changes=body.model_dump(exclude_unset=True),
        now=now,
    )
    await session.commit()
    return ActionItemRead.model_validate(item)


# -- collaboration -------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/collaboration-awards",
    tags=["collaboration"],
    summary="'Best collaboration team' from the matrix and shared-goal contributions, with evidence",
)
async def collaboration_awards(
    cycle_id: CycleId, session: SessionDep, _p: Annotated[Principal, requires(*PEOPLE)]
) -> AwardsRead:
    ranking = [AwardRead(**c.__dict__) for c in await service.awards(session, cycle_id=cycle_id)]
    winner = ranking[0] if ranking and ranking[0].eligible else None
    return AwardsRead(cycle_id=cycle_id, winner=winner, ranking=ranking)


PreviousCycle = Annotated[
    str | None, Query(max_length=64, description="Compare with this cycle (default: the one given with the matrix).")
]


@router.get(
    "/cycles/{cycle_id}/collaboration-report",
    tags=["collaboration"],
    summary="Cross-department collaboration report (JSON): matrix, strongest/weakest pairs, change, actions",
)
async def report_json(
    cycle_id: CycleId,
    session: SessionDep,
    _p: Annotated[Principal, requires(*LEADERS)],
    previous_cycle_id: PreviousCycle = None,
) -> ReportRead:
    report = await service.collaboration_report(session, cycle_id=cycle_id, previous_cycle_id=previous_cycle_id)
    name = report.departments.get
    return ReportRead(
        cycle_id=report.cycle_id,
        previous_cycle_id=report.previous_cycle_id,
        departments=report.departments,
        matrix=[
            CellRead(
                rater_department_id=c.rater_department_id,
                rater_department=name(c.rater_department_id, c.rater_department_id),
                rated_department_id=c.rated_department_id,
                rated_department=name(c.rated_department_id, c.rated_department_id),
                responsiveness=c.responsiveness,
                data_quality=c.data_quality,
                reliability=c.reliability,
                overall=c.overall,
                ratings=c.ratings,
                previous_overall=report.previous_overall.get((c.rater_department_id, c.rated_department_id)),
                comments=list(c.comments),
            )
            for c in report.cells
        ],
        strongest_pairs=[
            PairRead(**{k: v for k, v in p.__dict__.items() if k != "comments"}) for p in report.strongest
        ],
        weakest_pairs=[PairRead(**{k: v for k, v in p.__dict__.items() if k != "comments"}) for p in report.weakest],
        changes=[ChangeRead(**c.__dict__) for c in report.changes],
        suggestions=[SuggestionRead(**s.__dict__) for s in report.suggestions],
        notes=report.notes,
    )


@router.get(
    "/cycles/{cycle_id}/collaboration-report.csv",
    tags=["collaboration"],
    summary="Cross-department collaboration report as CSV (one row per rater/rated pair)",
    response_class=CsvResponse,
)
async def report_csv(
    cycle_id: CycleId,
    session: SessionDep,
    _p: Annotated[Principal, requires(*LEADERS)],
    previous_cycle_id: PreviousCycle = None,
) -> CsvResponse:
    report = await service.collaboration_report(session, cycle_id=cycle_id, previous_cycle_id=previous_cycle_id)
    return CsvResponse(
        render_csv(report),
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
    cycle_id: CycleId,
    session: SessionDep,
    _p: Annotated[Principal, requires(*LEADERS)],
    previous_cycle_id: PreviousCycle = None,
) -> HTMLResponse:
    report = await service.collaboration_report(session, cycle_id=cycle_id, previous_cycle_id=previous_cycle_id)
    return HTMLResponse(render_html(report))


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
    principal: Annotated[Principal, requires(HR)],
    idempotency_key: IdempotencyKey = None,
) -> PublicationRead:
    publication, replayed = await service.publish(
        session, cycle_id=cycle_id, idempotency_key=idempotency_key, principal=principal, now=now
    )
    if not replayed:
        try:
            await session.commit()
        except IntegrityError:
            await session.rollback()  # a concurrent publish won; answer as a retry would be answered
            publication, replayed = await service.publish(
                session, cycle_id=cycle_id, idempotency_key=idempotency_key, principal=principal, now=now
            )
    if replayed:
        response.status_code = 200
    read = PublicationRead.model_validate(publication)
    read.replayed = replayed
    return read


# -- workflow view -------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/pending",
    tags=["workflow"],
    summary="Result application: allocation missing and development plans without items, per department",
)
async def pending(
    cycle_id: CycleId,
    session: SessionDep,
    _p: Annotated[Principal, requires(HR, OPS)],
    department_id: Annotated[str, Query(min_length=1, max_length=64)],
    stage: Stage = Stage.RESULT_APPLICATION,
) -> PendingReport:
    if stage != Stage.RESULT_APPLICATION:
        raise DomainError(
            f"the results service reports only stage 'result_application', not {stage.value!r}", field="stage"
        )
    return await service.pending_report(session, cycle_id=cycle_id, department_id=department_id)
