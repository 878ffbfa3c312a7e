"""Routes of the feedback service. Thin: the rules live in ``service.py``; each route declares its roles."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.cycle import PendingReport, Stage
from contracts.evaluation import CycleResults
from contracts.feedback import AppealOutcome, AppealStatus
from services.common.action_items import ActionItemRead, ActionItemUpdate
from services.common.auth import Principal, Role, requires
from services.common.clock import NowDep
from services.common.deps import SessionDep
from services.common.errors import DomainError
from services.common.nudge import nudge
from services.feedback import service
from services.feedback.evaluation_client import EvaluationClient
from services.feedback.models import FeedbackCycle, FeedbackDepartment, FeedbackParticipant, ReleasedResult

__all__ = ["AdjustmentSenderDep", "NowDep", "router"]

router = APIRouter(prefix="/v1")

CycleId = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size (at most 500).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (at most 1,000,000).")]
RowId = Annotated[int, Path(ge=1, le=2_147_483_647, description="A numeric id (a 32-bit row key).")]

HR = Role.HR_ADMIN
OPS = Role.OPS
PEOPLE = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE, Role.OPS)



def adjustment_sender(request: Request) -> service.AdjustmentSender:
    client = EvaluationClient(http=request.app.state.http, settings=request.app.state.settings)
    return client.send_adjustment


AdjustmentSenderDep = Annotated[service.AdjustmentSender, Depends(adjustment_sender)]


# -- schemas -------------------------------------------------------------------------------------
class PushAccepted(BaseModel):
    cycle_id: str
    received: int
    updated: int
    kept_released: int = Field(description="Already released results, left unchanged by this push.")
    calibration_closed: bool


class CycleConfigUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appeal_window_days: int | None = Field(default=None, ge=1, le=365, description="Days after release.")
    hr_resolution_days: int | None = Field(default=None, ge=1, le=365, description="Days after submission.")
    calibration_closed: bool | None = Field(default=None, description="Marker that calibration is closed.")


class CycleConfigRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    appeal_window_days: int
    hr_resolution_days: int
    calibration_closed: bool
    results_received_at: datetime | None
    released_at: datetime | None
    withdrawn_at: datetime | None


class ReleaseRead(BaseModel):
    cycle_id: str
    released: int
    already_released: int
    released_at: datetime
    appeal_deadline: datetime = Field(description="Appeal deadline of the results released by this call.")


class WithdrawRead(BaseModel):
    cycle_id: str
    withdrawn: int
    kept_released: int = Field(description="Results already released stay visible; they are listed below.")
    released_employee_ids: list[str]


class ResultRead(BaseModel):
    cycle_id: str
    employee_id: str
    department_id: str
    manager_id: str | None
    final_score: float
    rating: str
    calibrated: bool
    status: str
    released_at: datetime | None
    appeal_deadline: datetime | None
    acknowledged_at: datetime | None
    adjusted_by_appeal_id: int | None


class AppealCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=10, max_length=2000, description="Why you contest your result.")


class AppealResolve(BaseModel):
    model_config = ConfigDict(extra="forbid")

    outcome: AppealOutcome
    note: str = Field(min_length=1, max_length=2000, description="HR's reasoning, kept with the appeal.")
    new_score: float | None = Field(default=None, description="Required when the outcome is 'adjusted'.")
    new_rating: str | None = Field(default=None, max_length=32, description="Required when 'adjusted'.")


class AppealEventRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    actor: str
    action: str
    from_status: str | None
    to_status: str
    note: str | None


class AppealRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cycle_id: str
    employee_id: str
    department_id: str
    reason: str
    status: AppealStatus
    submitted_at: datetime
    hr_due_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    previous_score: float
    previous_rating: str
    new_score: float | None
    new_rating: str | None
    events: list[AppealEventRead]


class ActionItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=1000)
    owner_id: str = Field(min_length=1, max_length=64, description="The 1:1's manager or report.")
    due_date: date


class OneOnOneCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: str = Field(min_length=1, max_length=64, description="The report (your own id to meet your manager).")
    scheduled_for: AwareDatetime
    agenda: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=50)
    notes: str = Field(default="", max_length=20000)


class OneOnOneUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scheduled_for: AwareDatetime | None = None
    agenda: list[Annotated[str, Field(max_length=500)]] | None = Field(default=None, max_length=50)
    notes: str | None = Field(default=None, max_length=20000)


class OneOnOneRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cycle_id: str
    manager_id: str
    employee_id: str
    scheduled_for: datetime
    agenda: list[str]
    notes: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    action_items: list[ActionItemRead]


class FeedbackCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recipient_id: str = Field(min_length=1, max_length=64, description="Any participant, in any department.")
    kind: Literal["feedback", "kudos"] = "feedback"
    message: str = Field(min_length=1, max_length=4000)


class FeedbackRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cycle_id: str
    author_id: str
    recipient_id: str
    kind: str
    message: str
    created_at: datetime


def _result_read(row: ReleasedResult, cycle: FeedbackCycle) -> ResultRead:
    return ResultRead(
        cycle_id=row.cycle_id,
        employee_id=row.employee_id,
        department_id=row.department_id,
        manager_id=row.manager_id,
        final_score=row.final_score,
        rating=row.rating,
        calibrated=row.calibrated,
        status=row.status,
        released_at=row.released_at,
        appeal_deadline=service.appeal_deadline(cycle, row),
        acknowledged_at=row.acknowledged_at,
        adjusted_by_appeal_id=row.adjusted_by_appeal_id,
    )


# -- inputs from the workflow --------------------------------------------------------------------
@router.put(
    "/cycles/{cycle_id}/results",
    tags=["release"],
    summary="Receive the cycle's calibrated results (idempotent; released results are never changed)",
)
async def put_results(
    cycle_id: CycleId,
    body: CycleResults,
    session: SessionDep,
    now: NowDep,
    _p: Annotated[Principal, requires(HR)],
    calibration_closed: Annotated[
        bool, Query(description="Evaluation exports results only once calibration is closed.")
    ] = True,
) -> PushAccepted:
    if body.cycle_id != cycle_id:
        raise DomainError(f"results are for cycle {body.cycle_id!r} but the URL names {cycle_id!r}", field="cycle_id")
    summary = await service.push_results(session, results=body, calibration_closed=calibration_closed, now=now)
    await session.commit()
    return PushAccepted(
        cycle_id=cycle_id,
        received=summary.received,
        updated=summary.updated,
        kept_released=summary.kept_released,
        calibration_closed=calibration_closed,
    )


@router.put("/cycles/{cycle_id}/config", tags=["release"], summary="Set the appeal window, HR deadline and markers")
async def put_config(
    cycle_id: CycleId, body: CycleConfigUpdate, session: SessionDep, _p: Annotated[Principal, requires(HR)]
) -> CycleConfigRead:
    cycle = await service.configure_cycle(
        session, cycle_id=cycle_id, config=service.CycleConfig(**body.model_dump(exclude_none=True))
    )
    await session.commit()
    return CycleConfigRead.model_validate(cycle)


@router.get("/cycles/{cycle_id}/config", tags=["release"], summary="Read the cycle's release and appeal settings")
async def get_config(
    cycle_id: CycleId, session: SessionDep, _p: Annotated[Principal, requires(HR, OPS)]
) -> CycleConfigRead:
    return CycleConfigRead.model_validate(await service.get_cycle(session, cycle_id=cycle_id))


@router.post(
    "/cycles/{cycle_id}/release",
    tags=["release"],
    summary="Release the results to employees (only after calibration is closed; idempotent)",
    responses={409: {"description": "No results pushed yet, calibration not closed, or withdrawn"}},
)
async def release(
    cycle_id: CycleId, session: SessionDep, now: NowDep, _p: Annotated[Principal, requires(HR)]
) -> ReleaseRead:
    summary = await service.release_results(session, cycle_id=cycle_id, now=now)
    await session.commit()
    return ReleaseRead(**summary.__dict__)


@router.post(
    "/cycles/{cycle_id}/withdraw",
    tags=["release"],
    summary="Withdraw unreleased results (cycle cancelled); released ones stay and are listed",
)
async def withdraw(
    cycle_id: CycleId, session: SessionDep, now: NowDep, _p: Annotated[Principal, requires(HR)]
) -> WithdrawRead:
    summary = await service.withdraw_results(session, cycle_id=cycle_id, now=now)
    await session.commit()
    return WithdrawRead(**summary.__dict__)


# -- results -------------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/results",
    tags=["results"],
    summary="Results in your scope: your own, your reports' (released only); HR and ops see all",
)
async def list_results(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Annotated[Principal, requires(*PEOPLE)],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ResultRead]:
    rows = await service.list_results(session, cycle_id=cycle_id, principal=principal, limit=limit, offset=offset)
    if not rows:
        return []
    cycle = await service.get_cycle(session, cycle_id=cycle_id)
    return [_result_read(r, cycle) for r in rows]


@router.get(
    "/cycles/{cycle_id}/results/{employee_id}",
    tags=["results"],
    summary="One employee's result (403 outside your scope, 404 when not released)",
)
async def get_result(
    cycle_id: CycleId,
    employee_id: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    principal: Annotated[Principal, requires(*PEOPLE)],
) -> ResultRead:
    row = await service.get_result(session, cycle_id=cycle_id, employee_id=employee_id, principal=principal)
    return _result_read(row, await service.get_cycle(session, cycle_id=cycle_id))


@router.post(
    "/cycles/{cycle_id}/results/{employee_id}/acknowledge",
    tags=["results"],
    summary="Acknowledge your own released result (timestamped; repeating keeps the first time)",
)
async def acknowledge(
    cycle_id: CycleId,
    employee_id: Annotated[str, Path(max_length=64)],
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(*PEOPLE)],
    request: Request,
) -> ResultRead:
    row = await service.acknowledge_result(
        session, cycle_id=cycle_id, employee_id=employee_id, principal=principal, now=now
    )
    await session.commit()
    await nudge(
        request,
        session,
        FeedbackDepartment,
        cycle_id=cycle_id,
        stage=Stage.FEEDBACK,
        employee_id=employee_id,
        participant_model=FeedbackParticipant,
    )
    return _result_read(row, await service.get_cycle(session, cycle_id=cycle_id))


# -- appeals -------------------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/appeals",
    tags=["appeals"],
    status_code=201,
    summary="Appeal your own released result within the appeal window (409 after the deadline)",
)
async def submit_appeal(
    cycle_id: CycleId,
    body: AppealCreate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(*PEOPLE)],
) -> AppealRead:
    appeal = await service.submit_appeal(session, cycle_id=cycle_id, principal=principal, reason=body.reason, now=now)
    await session.commit()
    return AppealRead.model_validate(appeal)


@router.get("/cycles/{cycle_id}/appeals", tags=["appeals"], summary="Appeals in your scope (HR and ops: all)")
async def list_appeals(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Annotated[Principal, requires(*PEOPLE)],
    status: AppealStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AppealRead]:
    rows = await service.list_appeals(
        session,
        cycle_id=cycle_id,
        principal=principal,
        status=status.value if status else None,
        limit=limit,
        offset=offset,
    )
    return [AppealRead.model_validate(a) for a in rows]


@router.get(
    "/appeals/overdue",
    tags=["appeals", "ops"],
    summary="Open appeals past their HR resolution deadline",
)
async def overdue(
    session: SessionDep,
    now: NowDep,
    _p: Annotated[Principal, requires(HR, OPS)],
    cycle_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AppealRead]:
    rows = await service.overdue_appeals(session, now=now, cycle_id=cycle_id, limit=limit, offset=offset)
    return [AppealRead.model_validate(a) for a in rows]


@router.get("/appeals/{appeal_id}", tags=["appeals"], summary="One appeal with every step of its history")
async def get_appeal(
    appeal_id: RowId, session: SessionDep, principal: Annotated[Principal, requires(*PEOPLE)]
) -> AppealRead:
    return AppealRead.model_validate(await service.get_appeal(session, appeal_id=appeal_id, principal=principal))


@router.post("/appeals/{appeal_id}/review", tags=["appeals"], summary="HR takes an appeal under review")
async def review_appeal(
    appeal_id: RowId, session: SessionDep, now: NowDep, principal: Annotated[Principal, requires(HR)]
) -> AppealRead:
    appeal = await service.start_review(session, appeal_id=appeal_id, principal=principal, now=now)
    await session.commit()
    return AppealRead.model_validate(appeal)


@router.post(
    "/appeals/{appeal_id}/resolve",
    tags=["appeals"],
    summary="HR resolves an appeal: upheld, adjusted (recorded through evaluation's calibration) or rejected",
    responses={502: {"description": "Evaluation could not record the adjustment; the appeal stays open"}},
)
async def resolve_appeal(
    appeal_id: RowId,
    body: AppealResolve,
    session: SessionDep,
    now: NowDep,
    send_adjustment: AdjustmentSenderDep,
    principal: Annotated[Principal, requires(HR)],
) -> AppealRead:
    appeal = await service.resolve_appeal(
        session,
        appeal_id=appeal_id,
        principal=principal,
        outcome=body.outcome,
        note=body.note,
        new_score=body.new_score,
        new_rating=body.new_rating,
        now=now,
        send_adjustment=send_adjustment,
    )
    await session.commit()
    return AppealRead.model_validate(appeal)


# -- 1:1s ----------------------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/one-on-ones",
    tags=["one-on-ones"],
    status_code=201,
    summary="Record a 1:1 between a manager and their report",
)
async def create_one_on_one(
    cycle_id: CycleId,
    body: OneOnOneCreate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(Role.MANAGER, Role.EMPLOYEE, Role.DEPT_HEAD)],
) -> OneOnOneRead:
    meeting = await service.create_one_on_one(
        session, cycle_id=cycle_id, principal=principal, now=now, **body.model_dump()
    )
    await session.commit()
    return OneOnOneRead.model_validate(meeting)


@router.get("/cycles/{cycle_id}/one-on-ones", tags=["one-on-ones"], summary="Your 1:1s (as manager or report)")
async def list_one_on_ones(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Annotated[Principal, requires(Role.MANAGER, Role.EMPLOYEE, Role.DEPT_HEAD, HR)],
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[OneOnOneRead]:
    rows = await service.list_one_on_ones(session, cycle_id=cycle_id, principal=principal, limit=limit, offset=offset)
    return [OneOnOneRead.model_validate(m) for m in rows]


@router.get("/one-on-ones/{one_on_one_id}", tags=["one-on-ones"], summary="One 1:1 with its action items")
async def get_one_on_one(
    one_on_one_id: RowId,
    session: SessionDep,
    principal: Annotated[Principal, requires(Role.MANAGER, Role.EMPLOYEE, Role.DEPT_HEAD, HR)],
) -> OneOnOneRead:
    meeting = await service.get_one_on_one(session, one_on_one_id=one_on_one_id, principal=principal)
    return OneOnOneRead.model_validate(meeting)


@router.patch("/one-on-ones/{one_on_one_id}", tags=["one-on-ones"], summary="Update a 1:1's agenda, notes or date")
async def update_one_on_one(
    one_on_one_id: RowId,
    body: OneOnOneUpdate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(Role.MANAGER, Role.EMPLOYEE, Role.DEPT_HEAD)],
) -> OneOnOneRead:
    meeting = await service.update_one_on_one(
        session, one_on_one_id=one_on_one_id, principal=principal, changes=body.model_dump(exclude_unset=True), now=now
    )
    await session.commit()
    return OneOnOneRead.model_validate(meeting)


@router.post(
    "/one-on-ones/{one_on_one_id}/action-items",
    tags=["one-on-ones"],
    status_code=201,
    summary="Add an action item with an owner and a due date",
)
async def add_action_item(
    one_on_one_id: RowId,
    body: ActionItemCreate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(Role.MANAGER, Role.EMPLOYEE, Role.DEPT_HEAD)],
) -> ActionItemRead:
    item = await service.add_action_item(
        session, one_on_one_id=one_on_one_id, principal=principal, now=now, **body.model_dump()
    )
    await session.commit()
    return ActionItemRead.model_validate(item)


@router.patch(
    "/one-on-ones/{one_on_one_id}/action-items/{item_id}",
    tags=["one-on-ones"],
    summary="Update an action item (mark done, change owner or due date)",
)
async def update_action_item(
    one_on_one_id: RowId,
    item_id: RowId,
    body: ActionItemUpdate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(Role.MANAGER, Role.EMPLOYEE, Role.DEPT_HEAD)],
) -> ActionItemRead:
    item = await service.update_action_item(
        session,
        one_on_one_id=one_on_one_id,
        item_id=item_id,
        principal=principal,
        changes=body.model_dump(exclude_unset=True),
        now=now,
    )
    await session.commit()
    return ActionItemRead.model_validate(item)


# -- continuous feedback and kudos ---------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/feedback",
    tags=["feedback"],
    status_code=201,
    summary="Give feedback or kudos to any participant, in any department (attributed, not anonymous)",
)
async def give_feedback(
    cycle_id: CycleId,
    body: FeedbackCreate,
    session: SessionDep,
    now: NowDep,
    principal: Annotated[Principal, requires(Role.EMPLOYEE, Role.MANAGER, Role.DEPT_HEAD, HR)],
) -> FeedbackRead:
    note = await service.give_feedback(session, cycle_id=cycle_id, principal=principal, now=now, **body.model_dump())
    await session.commit()
    return FeedbackRead.model_validate(note)


@router.get(
    "/cycles/{cycle_id}/feedback",
    tags=["feedback"],
    summary="Feedback you gave or received, and your reports' (HR: all)",
)
async def list_feedback(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Annotated[Principal, requires(Role.EMPLOYEE, Role.MANAGER, Role.DEPT_HEAD, HR)],
    recipient_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[FeedbackRead]:
    rows = await service.list_feedback(
        session, cycle_id=cycle_id, principal=principal, recipient_id=recipient_id, limit=limit, offset=offset
    )
    return [FeedbackRead.model_validate(n) for n in rows]


# -- workflow view -------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/pending",
    tags=["workflow"],
    summary="Feedback stage: unacknowledged released results and open appeals of one department",
)
async def pending(
    cycle_id: CycleId,
    session: SessionDep,
    _p: Annotated[Principal, requires(HR, OPS)],
    department_id: Annotated[str, Query(min_length=1, max_length=64)],
    stage: Stage = Stage.FEEDBACK,
) -> PendingReport:
    if stage != Stage.FEEDBACK:
        raise DomainError(f"the feedback service reports only stage 'feedback', not {stage.value!r}", field="stage")
    return await service.pending_report(session, cycle_id=cycle_id, department_id=department_id)
