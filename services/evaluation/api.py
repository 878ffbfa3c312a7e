"""Routes of the evaluation service. Thin: every rule lives in ``service.py``.

Each route declares its roles with ``requires()``; rows are scoped with the cycle's
org snapshot. Endpoints a reviewee can reach return aggregates only, never a rater.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from contracts.cycle import PendingReport, Stage
from contracts.evaluation import (
    AppealAdjustmentRequest,
    CalibrationAdjustment,
    CollaborationMatrix,
    CycleResults,
    Relation,
    ScoringConfig,
)
from contracts.goals import GoalExport
from contracts.tracking import ProgressExport
from services.common.auth import Principal, Role, requires
from services.common.deps import SessionDep
from services.common.errors import DomainError
from services.common.nudge import nudge
from services.evaluation import service
from services.evaluation.models import (
    EvaluationAssignment,
    EvaluationCollaborationRating,
    EvaluationDepartment,
    EvaluationParticipant,
)
from services.evaluation.schemas import (
    AdjustmentCreate,
    AssignmentCreate,
    AssignmentRead,
    AssignmentsGenerated,
    CollaborationLinkCreate,
    CollaborationLinkRead,
    CollaborationRatingCreate,
    CollaborationRatingRead,
    ComputeSummary,
    DeviationReport,
    InputAccepted,
    ResultRead,
    ReviewDetail,
    ReviewSubmit,
    ReviewSummary,
    WhatIfRequest,
    WhatIfResult,
)
from services.evaluation.scoring import DistributionReport, GoalScore

__all__ = ["router"]

router = APIRouter(prefix="/v1/cycles/{cycle_id}", tags=["evaluation"])

CycleId = Annotated[str, Path(min_length=1, max_length=64)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size (at most 500).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (at most 1,000,000).")]

HR = Annotated[Principal, requires(Role.HR_ADMIN)]
HrOrHead = Annotated[Principal, requires(Role.HR_ADMIN, Role.DEPT_HEAD)]
People = Annotated[Principal, requires(Role.EMPLOYEE, Role.MANAGER, Role.DEPT_HEAD, Role.HR_ADMIN, Role.OPS)]
Raters = Annotated[Principal, requires(Role.EMPLOYEE, Role.MANAGER, Role.DEPT_HEAD, Role.HR_ADMIN)]


# -- inputs -----------------------------------------------------------------------------------
@router.put("/goals", summary="Replace the cycle's approved goals (GoalExport from goals; idempotent)")
async def put_goals(cycle_id: CycleId, body: GoalExport, session: SessionDep, principal: HR) -> InputAccepted:
    count = await service.put_goals(session, cycle_id=cycle_id, export=body, actor=principal.sub)
    return InputAccepted(cycle_id=cycle_id, kind="goals", items=count)


@router.put("/actuals", summary="Replace the KPI actual values (ProgressExport from tracking; idempotent)")
async def put_actuals(cycle_id: CycleId, body: ProgressExport, session: SessionDep, principal: HR) -> InputAccepted:
    count = await service.put_actuals(session, cycle_id=cycle_id, export=body, actor=principal.sub)
    return InputAccepted(cycle_id=cycle_id, kind="actuals", items=count)


@router.put(
    "/config",
    summary="Replace the scoring configuration from the cycle template (idempotent)",
    description="Rating scale and bands, competencies, component weights, the final-score formula, "
    "calibration guideline, anonymity threshold, attainment cap, rater limits and lookup tables. "
    "The formula is checked against the whitelist; a rejected formula is a 422 naming the reason.",
)
async def put_config(cycle_id: CycleId, body: ScoringConfig, session: SessionDep, principal: HR) -> ScoringConfig:
    await service.put_config(session, cycle_id=cycle_id, config=body, actor=principal.sub)
    return body


@router.get("/config", summary="The scoring rules of the cycle (visible to everyone taking part)")
async def get_config(cycle_id: CycleId, session: SessionDep, _principal: People) -> ScoringConfig:
    return await service.load_config(session, cycle_id)


@router.get(
    "/goal-scores/{employee_id}",
    summary="Live KPI attainment and goal score of one employee, with the per-goal breakdown (scoped)",
)
async def get_goal_score(
    cycle_id: CycleId, employee_id: Annotated[str, Path(max_length=64)], session: SessionDep, principal: People
) -> GoalScore:
    return await service.goal_breakdown(session, cycle_id=cycle_id, employee_id=employee_id, principal=principal)


# -- cross-department collaboration -----------------------------------------------------------
@router.post(
    "/collaborations",
    status_code=status.HTTP_201_CREATED,
    summary="Declare that two departments work together (HR or the head of one of them)",
)
async def declare_collaboration(
    cycle_id: CycleId, body: CollaborationLinkCreate, session: SessionDep, principal: HrOrHead
) -> CollaborationLinkRead:
    return await service.declare_collaboration(
        session, cycle_id=cycle_id, principal=principal, department_a=body.department_a, department_b=body.department_b
    )


@router.get(
    "/collaborations",
    summary="Department pairs that may rate each other: shared goals and declared collaborations",
)
async def list_collaborations(
    cycle_id: CycleId,
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER, Role.OPS)],
) -> list[CollaborationLinkRead]:
    org = await service.org_for(session, cycle_id)
    return await service.collaboration_links(session, cycle_id=cycle_id, org=org)


@router.put(
    "/collaboration-ratings",
    summary="A department rates a department it works with (responsiveness, data quality, reliability 1-5)",
)
async def rate_collaboration(
    cycle_id: CycleId, body: CollaborationRatingCreate, session: SessionDep, principal: HrOrHead
) -> CollaborationRatingRead:
    row = await service.rate_collaboration(session, cycle_id=cycle_id, principal=principal, **body.model_dump())
    return _rating_read(row)


@router.get(
    "/collaboration-matrix",
    summary="Department-to-department collaboration matrix (mean per dimension, overall, comments)",
)
async def get_collaboration_matrix(
    cycle_id: CycleId,
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.HR_ADMIN, Role.DEPT_HEAD, Role.OPS)],
) -> CollaborationMatrix:
    return await service.collaboration_matrix(session, cycle_id=cycle_id)


# -- assignments and reviews ------------------------------------------------------------------
@router.post(
    "/assignments/generate",
    summary="Create every participant's self review and manager review (idempotent)",
)
async def generate_assignments(cycle_id: CycleId, session: SessionDep, principal: HR) -> AssignmentsGenerated:
    return await service.generate_assignments(session, cycle_id=cycle_id, actor=principal.sub)


@router.post(
    "/assignments",
    status_code=status.HTTP_201_CREATED,
    summary="Nominate a peer or cross-department rater (a manager for their reports; HR for anyone)",
    description="Nobody rates themselves; limits per relation come from the config; cross-department "
    "raters must come from a department with a shared goal or a declared collaboration.",
)
async def nominate_rater(
    cycle_id: CycleId,
    body: AssignmentCreate,
    session: SessionDep,
    principal: Annotated[Principal, requires(Role.MANAGER, Role.HR_ADMIN)],
) -> AssignmentRead:
    row = await service.nominate_rater(
        session,
        cycle_id=cycle_id,
        principal=principal,
        reviewee_id=body.reviewee_id,
        rater_id=body.rater_id,
        relation=body.relation,
    )
    return _assignment_read(row)


@router.get(
    "/assignments",
    summary="Review assignments visible to the caller (your own reviews to write; your reports')",
    description="Peer and cross-department assignments about the caller are never listed to the caller: "
    "they would name the raters. Use the review summary for counts.",
)
async def list_assignments(
    cycle_id: CycleId,
    session: SessionDep,
    principal: People,
    reviewee_id: Annotated[str | None, Query(max_length=64)] = None,
    rater_id: Annotated[str | None, Query(max_length=64)] = None,
    relation: Relation | None = None,
    status_filter: Annotated[str | None, Query(alias="status", pattern="^(pending|submitted)$")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AssignmentRead]:
    rows = await service.list_assignments(
        session,
        cycle_id=cycle_id,
        principal=principal,
        reviewee_id=reviewee_id,
        rater_id=rater_id,
        relation=relation,
        status=status_filter,
        limit=limit,
        offset=offset,
    )
    return [_assignment_read(r) for r in rows]


@router.get("/assignments/{assignment_id}", summary="One review assignment with its ratings (rater or scoped)")
async def get_assignment(
    cycle_id: CycleId, assignment_id: Annotated[str, Path(max_length=36)], session: SessionDep, principal: People
) -> ReviewDetail:
    row = await service.get_assignment(session, cycle_id=cycle_id, assignment_id=assignment_id, principal=principal)
    return ReviewDetail(
        **_assignment_read(row).model_dump(),
        ratings=json.loads(row.ratings) if row.ratings else None,
        comment=row.comment,
    )


@router.post(
    "/assignments/{assignment_id}/review",
    summary="Submit your review for an assignment (the rater only; once)",
)
async def submit_review(
    cycle_id: CycleId,
    assignment_id: Annotated[str, Path(max_length=36)],
    body: ReviewSubmit,
    session: SessionDep,
    principal: Raters,
    request: Request,
) -> AssignmentRead:
    row = await service.submit_review(
        session,
        cycle_id=cycle_id,
        assignment_id=assignment_id,
        principal=principal,
        ratings=body.ratings,
        comment=body.comment,
    )
    await nudge(
        request,
        session,
        EvaluationDepartment,
        cycle_id=cycle_id,
        stage=Stage.EVALUATION,
        employee_id=row.reviewee_id,
        participant_model=EvaluationParticipant,
    )
    return _assignment_read(row)


@router.get(
    "/reviews/{employee_id}/summary",
    summary="Aggregated ratings per relation for one employee (anonymous below the threshold; scoped)",
)
async def get_review_summary(
    cycle_id: CycleId, employee_id: Annotated[str, Path(max_length=64)], session: SessionDep, principal: People
) -> ReviewSummary:
    return await service.review_summary(session, cycle_id=cycle_id, employee_id=employee_id, principal=principal)


# -- scores -----------------------------------------------------------------------------------
@router.post(
    "/scores/compute",
    summary="Compute every participant's score from goals, reviews and collaboration (until calibration closes)",
)
async def compute_scores(cycle_id: CycleId, session: SessionDep, _principal: HR) -> ComputeSummary:
    return await service.compute_scores(session, cycle_id=cycle_id)


@router.get(
    "/results",
    summary="Scores with their breakdown (scoped; your own only once calibration is closed)",
)
async def list_results(
    cycle_id: CycleId,
    session: SessionDep,
    principal: People,
    department_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ResultRead]:
    return await service.list_results(
        session, cycle_id=cycle_id, principal=principal, department_id=department_id, limit=limit, offset=offset
    )


@router.get(
    "/results/{employee_id}",
    summary="One employee's score and breakdown (scoped; your own once calibration is closed)",
)
async def read_result(
    cycle_id: CycleId, employee_id: Annotated[str, Path(max_length=64)], session: SessionDep, principal: People
) -> ResultRead:
    return await service.read_result(session, cycle_id=cycle_id, employee_id=employee_id, principal=principal)


# -- calibration ------------------------------------------------------------------------------
@router.get(
    "/calibration/distribution",
    summary="Rating distribution against the guideline, with violations (scoped to the caller)",
)
async def get_distribution(cycle_id: CycleId, session: SessionDep, principal: HrOrHead) -> DistributionReport:
    return await service.distribution(session, cycle_id=cycle_id, principal=principal)


@router.get(
    "/calibration/deviation",
    summary="Lenient and strict departments and managers: their mean against the company mean (z-score)",
)
async def get_deviation(cycle_id: CycleId, session: SessionDep, principal: HrOrHead) -> DeviationReport:
    return await service.deviation(session, cycle_id=cycle_id, principal=principal)


@router.post(
    "/calibration/adjustments",
    status_code=status.HTTP_201_CREATED,
    summary="Calibrate one employee's score or rating, with a reason (HR; a head within their department)",
    description="Stores before/after, reason and who, and updates the final rating. 409 once calibration is closed.",
)
async def adjust_rating(
    cycle_id: CycleId, body: AdjustmentCreate, session: SessionDep, principal: HrOrHead
) -> CalibrationAdjustment:
    return await service.adjust_rating(session, cycle_id=cycle_id, principal=principal, **body.model_dump())


@router.get("/calibration/adjustments", summary="The calibration audit trail (calibration and appeals; scoped)")
async def list_adjustments(
    cycle_id: CycleId,
    session: SessionDep,
    principal: HrOrHead,
    employee_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[CalibrationAdjustment]:
    return await service.list_adjustments(
        session, cycle_id=cycle_id, principal=principal, employee_id=employee_id, limit=limit, offset=offset
    )


@router.post("/calibration/close", summary="Close calibration: results become final; later changes only by appeal")
async def close_calibration(cycle_id: CycleId, session: SessionDep, principal: HR) -> dict[str, str]:
    state = await service.close_calibration(session, cycle_id=cycle_id, principal=principal)
    closed = state.calibration_closed_at
    return {
        "cycle_id": cycle_id,
        "calibration_closed_at": closed.isoformat() if closed else "",
        "closed_by": principal.sub,
    }


@router.post(
    "/appeal-adjustments",
    summary="Apply an appeal resolved as 'adjusted' (the feedback service, after calibration is closed)",
    description="Recorded in the calibration audit trail. Idempotent on appeal_id: a retry returns 200 "
    "with the recorded adjustment; the first application returns 201.",
    status_code=status.HTTP_201_CREATED,
)
async def appeal_adjustment(
    cycle_id: CycleId, body: AppealAdjustmentRequest, session: SessionDep, principal: HR, response: Response
) -> CalibrationAdjustment:
    record, created = await service.appeal_adjustment(
        session, cycle_id=cycle_id, principal=principal, **body.model_dump()
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return record


@router.get("/final-results", summary="Calibrated final results of the cycle (409 until calibration is closed)")
async def get_final_results(
    cycle_id: CycleId,
    session: SessionDep,
    _principal: Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS)],
) -> CycleResults:
    return await service.final_results(session, cycle_id=cycle_id)


@router.post(
    "/what-if",
    summary="Re-score with alternative weights, formula or guideline; returns changes, saves nothing",
)
async def what_if(cycle_id: CycleId, body: WhatIfRequest, session: SessionDep, _principal: HR) -> WhatIfResult:
    return await service.what_if(session, cycle_id=cycle_id, request=body)


@router.get(
    "/pending",
    summary="Reviews not yet submitted by raters of one department (owner_id = the rater)",
)
async def get_pending(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS, Role.DEPT_HEAD)],
    department_id: Annotated[str, Query(min_length=1, max_length=64)],
    stage: Stage = Stage.EVALUATION,
) -> PendingReport:
    if stage != Stage.EVALUATION:
        raise DomainError(f"the evaluation service reports stage 'evaluation', not {stage.value!r}", field="stage")
    return await service.pending_report(session, cycle_id=cycle_id, department_id=department_id, principal=principal)


# -- mapping ----------------------------------------------------------------------------------
def _assignment_read(row: EvaluationAssignment) -> AssignmentRead:
    return AssignmentRead(
        assignment_id=row.assignment_id,
        reviewee_id=row.reviewee_id,
        rater_id=row.rater_id,
        relation=Relation(row.relation),
        status=row.status,
        created_at=service.as_utc(row.created_at),
        submitted_at=service.as_utc_or_none(row.submitted_at),
    )


def _rating_read(row: EvaluationCollaborationRating) -> CollaborationRatingRead:
    return CollaborationRatingRead(
        cycle_id=row.cycle_id,
        rater_department_id=row.rater_department_id,
        rated_department_id=row.rated_department_id,
        responsiveness=row.responsiveness,
        data_quality=row.data_quality,
        reliability=row.reliability,
        comment=row.comment,
        updated_at=service.as_utc(row.updated_at),
    )
