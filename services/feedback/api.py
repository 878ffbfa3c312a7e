"""Routes of the feedback service. Thin: one service call each (the rules live in ``service``,
which also commits); each route declares its roles."""

from __future__ import annotations

from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request

from contracts.cycle import PendingReport, Stage
from contracts.evaluation import CycleResults
from contracts.feedback import AppealsState, AppealStatus, FeedbackSettings
from contracts.templates import SettingsPushed
from services.common.action_items import ActionItemRead, ActionItemUpdate
from services.common.auth import Principal, Role, requires
from services.common.client import ServiceClient
from services.common.clock import NowDep
from services.common.deps import SessionDep
from services.common.nudge import nudge, nudge_cycle
from services.common.params import EVERYONE, HR, MACHINE, OPS_ROLES, STAFF, CycleId, Limit, Offset
from services.feedback import service
from services.feedback.models import FeedbackDepartment, FeedbackParticipant
from services.feedback.schemas import (
    ActionItemCreate,
    AppealCreate,
    AppealRead,
    AppealResolve,
    CycleConfigRead,
    CycleConfigUpdate,
    FeedbackCreate,
    FeedbackRead,
    FeedbackRequestAnswer,
    FeedbackRequestCreate,
    FeedbackRequestDecline,
    FeedbackRequestRead,
    OneOnOneCreate,
    OneOnOneRead,
    OneOnOneUpdate,
    PushAccepted,
    ReleaseRead,
    ResultRead,
    WithdrawRead,
)

__all__ = ["NowDep", "ServicesDep", "router"]

router = APIRouter(prefix="/v1")

RowId = Annotated[int, Path(ge=1, le=2_147_483_647, description="A numeric id (a 32-bit row key).")]
EmployeeId = Annotated[str, Path(max_length=64)]

PARTIES = (Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE)
"""Who can be a party to a 1:1 (HR may read 1:1s, not change them)."""

HrAdmin = Annotated[Principal, requires(*HR)]
Ops = Annotated[Principal, requires(*OPS_ROLES)]
Machine = Annotated[Principal, requires(*MACHINE)]
Person = Annotated[Principal, requires(*EVERYONE)]
Staff = Annotated[Principal, requires(*STAFF)]
Party = Annotated[Principal, requires(*PARTIES)]


def services_client(request: Request) -> ServiceClient:
    """The service client the lifespan built (to evaluation and results, for adjusted appeals), over the
    app's current ``app.state.http`` (tests swap that for in-process services)."""
    client: ServiceClient = request.app.state.services
    http: httpx.AsyncClient = request.app.state.http
    return client if client.http is http else ServiceClient(http=http, urls=client.urls, tokens=client.tokens)


ServicesDep = Annotated[ServiceClient, Depends(services_client)]


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
    _p: HrAdmin,
    calibration_closed: Annotated[
        bool, Query(description="Evaluation exports results only once calibration is closed.")
    ] = True,
) -> PushAccepted:
    return await service.push_results(
        session=session, cycle_id=cycle_id, results=body, calibration_closed=calibration_closed, now=now
    )


@router.put(
    "/cycles/{cycle_id}/config",
    tags=["release"],
    summary="HR sets the appeal window, HR deadline and markers (settings become HR's: no template push replaces them)",
)
async def put_config(
    cycle_id: CycleId, body: CycleConfigUpdate, session: SessionDep, now: NowDep, principal: HrAdmin
) -> CycleConfigRead:
    cycle = await service.configure_cycle(
        session=session, cycle_id=cycle_id, changes=body, actor=principal.sub, now=now
    )
    return CycleConfigRead.model_validate(cycle)


@router.put(
    "/cycles/{cycle_id}/config/template",
    tags=["release"],
    summary="The workflow pushes the template's appeal window and HR deadline (applied while HR has not changed them)",
)
async def push_template_settings(
    cycle_id: CycleId, body: FeedbackSettings, session: SessionDep, now: NowDep, principal: HrAdmin
) -> SettingsPushed:
    return await service.push_template_settings(
        session=session, cycle_id=cycle_id, settings=body, actor=principal.sub, now=now
    )


@router.get("/cycles/{cycle_id}/config", tags=["release"], summary="Read the cycle's release and appeal settings")
async def get_config(cycle_id: CycleId, session: SessionDep, _p: Ops) -> CycleConfigRead:
    return CycleConfigRead.model_validate(await service.get_cycle(session=session, cycle_id=cycle_id))


@router.post(
    "/cycles/{cycle_id}/release",
    tags=["release"],
    summary="Release the results to employees (only after calibration is closed; idempotent)",
    responses={409: {"description": "No results pushed yet, calibration not closed, or withdrawn"}},
)
async def release(
    cycle_id: CycleId,
    session: SessionDep,
    now: NowDep,
    _p: HrAdmin,
    day_seconds: Annotated[
        float | None,
        Query(
            gt=0,
            le=86_400,
            description="Seconds per day of this cycle (the workflow sends its own for a compressed cycle): the "
            "appeal window and HR's resolution time are counted in these days. Set by the first release.",
        ),
    ] = None,
) -> ReleaseRead:
    return await service.release_results(session=session, cycle_id=cycle_id, now=now, day_seconds=day_seconds)


@router.post(
    "/cycles/{cycle_id}/withdraw",
    tags=["release"],
    summary="Withdraw unreleased results (cycle cancelled); released ones stay and are listed",
)
async def withdraw(cycle_id: CycleId, session: SessionDep, now: NowDep, _p: HrAdmin) -> WithdrawRead:
    return await service.withdraw_results(session=session, cycle_id=cycle_id, now=now)


# -- results -------------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/results",
    tags=["results"],
    summary="Results in your scope: your own, your reports' (released only); HR and ops see all",
)
async def list_results(
    cycle_id: CycleId, session: SessionDep, principal: Person, limit: Limit = 100, offset: Offset = 0
) -> list[ResultRead]:
    return await service.list_results(
        session=session, cycle_id=cycle_id, principal=principal, limit=limit, offset=offset
    )


@router.get(
    "/cycles/{cycle_id}/results/{employee_id}",
    tags=["results"],
    summary="One employee's result (403 outside your scope, 404 when not released)",
)
async def get_result(cycle_id: CycleId, employee_id: EmployeeId, session: SessionDep, principal: Person) -> ResultRead:
    return await service.get_result(session=session, cycle_id=cycle_id, employee_id=employee_id, principal=principal)


@router.post(
    "/cycles/{cycle_id}/results/{employee_id}/acknowledge",
    tags=["results"],
    summary="Acknowledge your own released result (timestamped; repeating keeps the first time)",
)
async def acknowledge(
    cycle_id: CycleId, employee_id: EmployeeId, session: SessionDep, now: NowDep, principal: Person, request: Request
) -> ResultRead:
    result = await service.acknowledge_result(
        session=session, cycle_id=cycle_id, employee_id=employee_id, principal=principal, now=now
    )
    await nudge(
        request,
        session,
        FeedbackDepartment,
        cycle_id=cycle_id,
        stage=Stage.FEEDBACK,
        employee_id=employee_id,
        participant_model=FeedbackParticipant,
    )
    return result


# -- appeals -------------------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/appeals",
    tags=["appeals"],
    status_code=201,
    summary="Appeal your own released result within the appeal window (409 after the deadline)",
)
async def submit_appeal(
    cycle_id: CycleId, body: AppealCreate, session: SessionDep, now: NowDep, principal: Person
) -> AppealRead:
    appeal = await service.submit_appeal(
        session=session, cycle_id=cycle_id, principal=principal, reason=body.reason, now=now
    )
    return AppealRead.model_validate(appeal)


@router.get("/cycles/{cycle_id}/appeals", tags=["appeals"], summary="Appeals in your scope (HR and ops: all)")
async def list_appeals(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Person,
    status: AppealStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AppealRead]:
    rows = await service.list_appeals(
        session=session, cycle_id=cycle_id, principal=principal, status=status, limit=limit, offset=offset
    )
    return [AppealRead.model_validate(a) for a in rows]


@router.get(
    "/cycles/{cycle_id}/appeal-state",
    tags=["appeals", "workflow"],
    summary="Whether appeals may still change results: the appeal window and the appeals HR has not resolved",
)
async def appeal_state(cycle_id: CycleId, session: SessionDep, now: NowDep, _p: Machine) -> AppealsState:
    return await service.appeal_state(session=session, cycle_id=cycle_id, now=now)


@router.get(
    "/appeals/overdue",
    tags=["appeals", "ops"],
    summary="Open appeals past their HR resolution deadline",
)
async def overdue(
    session: SessionDep,
    now: NowDep,
    _p: Ops,
    cycle_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AppealRead]:
    rows = await service.overdue_appeals(session=session, now=now, cycle_id=cycle_id, limit=limit, offset=offset)
    return [AppealRead.model_validate(a) for a in rows]


@router.get("/appeals/{appeal_id}", tags=["appeals"], summary="One appeal with every step of its history")
async def get_appeal(appeal_id: RowId, session: SessionDep, principal: Person) -> AppealRead:
    appeal = await service.get_appeal(session=session, appeal_id=appeal_id, principal=principal)
    return AppealRead.model_validate(appeal)


@router.post("/appeals/{appeal_id}/review", tags=["appeals"], summary="HR takes an appeal under review")
async def review_appeal(appeal_id: RowId, session: SessionDep, now: NowDep, principal: HrAdmin) -> AppealRead:
    appeal = await service.start_review(session=session, appeal_id=appeal_id, principal=principal, now=now)
    return AppealRead.model_validate(appeal)


@router.post(
    "/appeals/{appeal_id}/resolve",
    tags=["appeals"],
    summary="HR resolves an appeal: upheld, adjusted (recorded through evaluation's calibration, then results) "
    "or rejected",
    responses={502: {"description": "Evaluation or results could not record the adjustment; the appeal stays open"}},
)
async def resolve_appeal(
    appeal_id: RowId,
    body: AppealResolve,
    session: SessionDep,
    now: NowDep,
    services: ServicesDep,
    principal: HrAdmin,
    request: Request,
) -> AppealRead:
    appeal = await service.resolve_appeal(
        session=session, appeal_id=appeal_id, principal=principal, resolution=body, now=now, services=services
    )
    nudge_cycle(request, cycle_id=appeal.cycle_id)  # publication may have waited for this appeal
    return AppealRead.model_validate(appeal)


# -- 1:1s ----------------------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/one-on-ones",
    tags=["one-on-ones"],
    status_code=201,
    summary="Record a 1:1 between a manager and their report",
)
async def create_one_on_one(
    cycle_id: CycleId, body: OneOnOneCreate, session: SessionDep, now: NowDep, principal: Party
) -> OneOnOneRead:
    meeting = await service.create_one_on_one(
        session=session, cycle_id=cycle_id, principal=principal, meeting=body, now=now
    )
    return OneOnOneRead.model_validate(meeting)


@router.get("/cycles/{cycle_id}/one-on-ones", tags=["one-on-ones"], summary="Your 1:1s (as manager or report)")
async def list_one_on_ones(
    cycle_id: CycleId, session: SessionDep, principal: Staff, limit: Limit = 100, offset: Offset = 0
) -> list[OneOnOneRead]:
    rows = await service.list_one_on_ones(
        session=session, cycle_id=cycle_id, principal=principal, limit=limit, offset=offset
    )
    return [OneOnOneRead.model_validate(m) for m in rows]


@router.get("/one-on-ones/{one_on_one_id}", tags=["one-on-ones"], summary="One 1:1 with its action items")
async def get_one_on_one(one_on_one_id: RowId, session: SessionDep, principal: Staff) -> OneOnOneRead:
    meeting = await service.get_one_on_one(session=session, one_on_one_id=one_on_one_id, principal=principal)
    return OneOnOneRead.model_validate(meeting)


@router.patch("/one-on-ones/{one_on_one_id}", tags=["one-on-ones"], summary="Update a 1:1's agenda, notes or date")
async def update_one_on_one(
    one_on_one_id: RowId, body: OneOnOneUpdate, session: SessionDep, now: NowDep, principal: Party
) -> OneOnOneRead:
    meeting = await service.update_one_on_one(
        session=session, one_on_one_id=one_on_one_id, principal=principal, changes=body, now=now
    )
    return OneOnOneRead.model_validate(meeting)


@router.post(
    "/one-on-ones/{one_on_one_id}/action-items",
    tags=["one-on-ones"],
    status_code=201,
    summary="Add an action item with an owner and a due date",
)
async def add_action_item(
    one_on_one_id: RowId, body: ActionItemCreate, session: SessionDep, now: NowDep, principal: Party
) -> ActionItemRead:
    item = await service.add_action_item(
        session=session, one_on_one_id=one_on_one_id, principal=principal, item=body, now=now
    )
    return ActionItemRead.model_validate(item)


@router.patch(
    "/one-on-ones/{one_on_one_id}/action-items/{item_id}",
    tags=["one-on-ones"],
    summary="Update an action item (mark done, change owner or due date)",
)
async def update_action_item(
    one_on_one_id: RowId, item_id: RowId, body: ActionItemUpdate, session: SessionDep, now: NowDep, principal: Party
) -> ActionItemRead:
    item = await service.update_action_item(
        session=session, one_on_one_id=one_on_one_id, item_id=item_id, principal=principal, changes=body, now=now
    )
    return ActionItemRead.model_validate(item)


# -- continuous feedback and kudos ---------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/feedback",
    tags=["feedback"],
    status_code=201,
    summary="Give feedback or kudos to any participant, in any department (attributed, not anonymous)",
)
async def give_feedback(
    cycle_id: CycleId, body: FeedbackCreate, session: SessionDep, now: NowDep, principal: Staff
) -> FeedbackRead:
    note = await service.give_feedback(session=session, cycle_id=cycle_id, principal=principal, note=body, now=now)
    return FeedbackRead.model_validate(note)


@router.get(
    "/cycles/{cycle_id}/feedback",
    tags=["feedback"],
    summary="Feedback you gave or received, and your reports' (HR: all)",
)
async def list_feedback(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Staff,
    recipient_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[FeedbackRead]:
    rows = await service.list_feedback(
        session=session,
        cycle_id=cycle_id,
        principal=principal,
        recipient_id=recipient_id,
        limit=limit,
        offset=offset,
    )
    return [FeedbackRead.model_validate(n) for n in rows]


# -- feedback on request --------------------------------------------------------------------------
@router.post(
    "/cycles/{cycle_id}/feedback-requests",
    tags=["feedback"],
    status_code=201,
    summary="Ask a colleague, in any department, for feedback (they answer or decline; one open request each)",
)
async def request_feedback(
    cycle_id: CycleId, body: FeedbackRequestCreate, session: SessionDep, now: NowDep, principal: Staff
) -> FeedbackRequestRead:
    return await service.request_feedback(session=session, cycle_id=cycle_id, principal=principal, body=body, now=now)


@router.get(
    "/cycles/{cycle_id}/feedback-requests",
    tags=["feedback"],
    summary="Feedback requests you made or were asked, and your reports' (HR: all), with the answers",
)
async def list_feedback_requests(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Staff,
    status: Annotated[str | None, Query(max_length=16, description="open | answered | declined")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[FeedbackRequestRead]:
    return await service.list_requests(
        session=session, cycle_id=cycle_id, principal=principal, status=status, limit=limit, offset=offset
    )


@router.post(
    "/feedback-requests/{request_id}/answer",
    tags=["feedback"],
    summary="Answer a request you were asked: the answer is your attributed feedback to the requester",
)
async def answer_feedback_request(
    request_id: RowId, body: FeedbackRequestAnswer, session: SessionDep, now: NowDep, principal: Staff
) -> FeedbackRequestRead:
    return await service.answer_request(session=session, request_id=request_id, principal=principal, body=body, now=now)


@router.post(
    "/feedback-requests/{request_id}/decline",
    tags=["feedback"],
    summary="Decline a request you were asked (the requester sees your reason, if you give one)",
)
async def decline_feedback_request(
    request_id: RowId, body: FeedbackRequestDecline, session: SessionDep, now: NowDep, principal: Staff
) -> FeedbackRequestRead:
    return await service.decline_request(
        session=session, request_id=request_id, principal=principal, body=body, now=now
    )


# -- workflow view -------------------------------------------------------------------------------
@router.get(
    "/cycles/{cycle_id}/pending",
    tags=["workflow"],
    summary="Feedback stage: unacknowledged released results and open appeals of one department",
)
async def pending(
    cycle_id: CycleId,
    session: SessionDep,
    _p: Machine,
    department_id: Annotated[str, Query(min_length=1, max_length=64)],
    stage: Stage = Stage.FEEDBACK,
) -> PendingReport:
    return await service.pending_report(session=session, cycle_id=cycle_id, department_id=department_id, stage=stage)
