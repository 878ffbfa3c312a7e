"""Routes of the evaluation service. Thin: one call each into the ``service`` package, which holds
the rules and commits.

Each route declares its roles with ``requires()``; rows are scoped with the cycle's
org snapshot. Endpoints a reviewee can reach return aggregates only, never a rater.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from contracts.cycle import PendingReport, Stage
from contracts.evaluation import (
    AppealAdjustmentRequest,
    CalibrationAdjustment,
    CollaborationMatrix,
    CycleResults,
    EvaluationConfig,
    GoalKeys,
    Relation,
)
from contracts.goals import GoalExport
from contracts.templates import SettingsPushed
from contracts.tracking import ProgressExport
from services.common.auth import Principal, Role, requires
from services.common.deps import SessionDep
from services.common.nudge import nudge
from services.common.params import CALIBRATORS, EVERYONE, HR, LEADERS, MACHINE, STAFF, CycleId, Limit, Offset
from services.evaluation import service
from services.evaluation.models import EvaluationDepartment, EvaluationParticipant
from services.evaluation.schemas import (
    AdjustmentCreate,
    AssignmentCreate,
    AssignmentRead,
    AssignmentsGenerated,
    CalibrationClosed,
    CollaborationLinkCreate,
    CollaborationLinkRead,
    CollaborationRatingCreate,
    CollaborationRatingRead,
    ComputeSummary,
    ConfigVersionRead,
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

EmployeeId = Annotated[str, Path(max_length=64)]
AssignmentId = Annotated[str, Path(max_length=36)]

HrAdmin = Annotated[Principal, requires(*HR)]
Calibrator = Annotated[Principal, requires(*CALIBRATORS)]
Reader = Annotated[Principal, requires(*EVERYONE)]
Rater = Annotated[Principal, requires(*STAFF)]
Leader = Annotated[Principal, requires(*LEADERS)]
Machine = Annotated[Principal, requires(*MACHINE)]
# Roles no shared tuple matches exactly:
Nominator = Annotated[Principal, requires(Role.MANAGER, Role.HR_ADMIN)]
MatrixReader = Annotated[Principal, requires(Role.HR_ADMIN, Role.DEPT_HEAD, Role.OPS)]
PendingReader = Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS, Role.DEPT_HEAD)]


# -- inputs -----------------------------------------------------------------------------------
@router.put("/goals", summary="Replace the cycle's approved goals (GoalExport from goals; idempotent)")
async def put_goals(cycle_id: CycleId, body: GoalExport, session: SessionDep, principal: HrAdmin) -> InputAccepted:
    return await service.put_goals(session=session, cycle_id=cycle_id, export=body, actor=principal.sub)


@router.put("/actuals", summary="Replace the KPI actual values (ProgressExport from tracking; idempotent)")
async def put_actuals(
    cycle_id: CycleId, body: ProgressExport, session: SessionDep, principal: HrAdmin
) -> InputAccepted:
    return await service.put_actuals(session=session, cycle_id=cycle_id, export=body, actor=principal.sub)


@router.put(
    "/config",
    summary="HR changes the scoring configuration (a new version with source 'hr'; idempotent)",
    description="The scoring rules (weights, rating scale and bands, the final-score formula) with the "
    "evaluation settings: competencies and their weights, calibration guideline, anonymity threshold, peer "
    "visibility, attainment cap, rater limits, lookup tables, collaboration component and deviation "
    "threshold. The formula is checked against the grammar of contracts.scoring and every setting against "
    "the rating scale; a refusal is a 422 naming the field. Once review assignments exist the anonymity "
    "threshold is locked and the peer visibility settings may only become more private (409 naming the "
    "field). From then on the workflow's template pushes leave the configuration as HR set it.",
)
async def put_config(
    cycle_id: CycleId, body: EvaluationConfig, session: SessionDep, principal: HrAdmin
) -> EvaluationConfig:
    return await service.put_config(session=session, cycle_id=cycle_id, config=body, actor=principal.sub)


@router.get("/config", summary="The scoring rules of the cycle (visible to everyone taking part)")
async def get_config(cycle_id: CycleId, session: SessionDep, _principal: Reader) -> EvaluationConfig:
    return await service.get_config(session=session, cycle_id=cycle_id)


@router.put(
    "/config/template",
    summary="The workflow pushes the template's configuration (applied only while HR has not changed it)",
    description="Answers the version the service holds: applied=false when HR's configuration was kept.",
)
async def push_template_config(
    cycle_id: CycleId, body: EvaluationConfig, session: SessionDep, principal: HrAdmin
) -> SettingsPushed:
    return await service.push_template_config(session=session, cycle_id=cycle_id, config=body, actor=principal.sub)


@router.get("/config/versions", summary="Every configuration of the cycle, newest first: template or HR, who, when")
async def list_config_versions(
    cycle_id: CycleId, session: SessionDep, _principal: Machine, limit: Limit = 100, offset: Offset = 0
) -> list[ConfigVersionRead]:
    return await service.config_versions(session=session, cycle_id=cycle_id, limit=limit, offset=offset)


@router.put(
    "/goal-keys",
    summary="Replace each goal's KPI template key and metric (lookup tables name goals by them; idempotent)",
)
async def put_goal_keys(cycle_id: CycleId, body: GoalKeys, session: SessionDep, principal: HrAdmin) -> InputAccepted:
    return await service.put_goal_keys(session=session, cycle_id=cycle_id, keys=body, actor=principal.sub)


@router.get(
    "/goal-scores/{employee_id}",
    summary="Live KPI attainment and goal score of one employee, with the per-goal breakdown (scoped)",
)
async def get_goal_score(
    cycle_id: CycleId, employee_id: EmployeeId, session: SessionDep, principal: Reader
) -> GoalScore:
    return await service.goal_breakdown(
        session=session, cycle_id=cycle_id, employee_id=employee_id, principal=principal
    )


# -- cross-department collaboration -----------------------------------------------------------
@router.post(
    "/collaborations",
    status_code=status.HTTP_201_CREATED,
    summary="Declare that two departments work together: a proposal until the heads of both (or HR) declared it",
    description="The caller confirms each side they head (HR: both). Until both sides confirmed, the link is "
    "'proposed': neither department may rate the other and no cross-department rater comes through it.",
)
async def declare_collaboration(
    cycle_id: CycleId, body: CollaborationLinkCreate, session: SessionDep, principal: Calibrator
) -> CollaborationLinkRead:
    return await service.declare_collaboration(
        session=session, cycle_id=cycle_id, principal=principal, **body.model_dump()
    )


@router.get(
    "/collaborations",
    summary="Department pairs that may rate each other (confirmed) and proposals awaiting the other side",
)
async def list_collaborations(
    cycle_id: CycleId, session: SessionDep, _principal: Leader
) -> list[CollaborationLinkRead]:
    return await service.collaboration_links(session=session, cycle_id=cycle_id)


@router.put(
    "/collaboration-ratings",
    summary="A department rates a department it works with (responsiveness, data quality, reliability 1-5)",
    description="Only along a confirmed link (a shared goal, or a collaboration declared by both heads or HR): "
    "422 without a link, 409 while the other side has not confirmed it.",
)
async def rate_collaboration(
    cycle_id: CycleId, body: CollaborationRatingCreate, session: SessionDep, principal: Calibrator
) -> CollaborationRatingRead:
    return await service.rate_collaboration(
        session=session, cycle_id=cycle_id, principal=principal, **body.model_dump()
    )


@router.get(
    "/collaboration-matrix",
    summary="Department-to-department collaboration matrix (mean per dimension, overall, comments)",
)
async def get_collaboration_matrix(
    cycle_id: CycleId, session: SessionDep, _principal: MatrixReader
) -> CollaborationMatrix:
    return await service.collaboration_matrix(session=session, cycle_id=cycle_id)


# -- assignments and reviews ------------------------------------------------------------------
@router.post(
    "/assignments/generate",
    summary="Create every participant's self review and manager review (idempotent)",
)
async def generate_assignments(cycle_id: CycleId, session: SessionDep, principal: HrAdmin) -> AssignmentsGenerated:
    return await service.generate_assignments(session=session, cycle_id=cycle_id, actor=principal.sub)


@router.post(
    "/assignments",
    status_code=status.HTTP_201_CREATED,
    summary="Nominate a peer or cross-department rater (a manager for their reports; HR for anyone)",
    description="Nobody rates themselves; limits per relation come from the config; cross-department "
    "raters must come from a department with a shared goal or a confirmed collaboration; nobody who manages "
    "the reviewee or heads their department is their anonymous (peer, cross_department) rater.",
)
async def nominate_rater(
    cycle_id: CycleId, body: AssignmentCreate, session: SessionDep, principal: Nominator
) -> AssignmentRead:
    return await service.nominate_rater(session=session, cycle_id=cycle_id, principal=principal, **body.model_dump())


@router.get(
    "/assignments",
    summary="Review assignments visible to the caller (your own reviews to write; your reports')",
    description="Peer and cross-department assignments about the caller are never listed to the caller: "
    "they would name the raters. Use the review summary for counts.",
)
async def list_assignments(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Reader,
    reviewee_id: Annotated[str | None, Query(max_length=64)] = None,
    rater_id: Annotated[str | None, Query(max_length=64)] = None,
    relation: Relation | None = None,
    status_filter: Annotated[str | None, Query(alias="status", pattern="^(pending|submitted)$")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[AssignmentRead]:
    return await service.list_assignments(
        session=session,
        cycle_id=cycle_id,
        principal=principal,
        reviewee_id=reviewee_id,
        rater_id=rater_id,
        relation=relation,
        status=status_filter,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/assignments/{assignment_id}",
    summary="One review assignment with its ratings (the rater; HR; others scoped)",
    description="A peer or cross-department review is read only by its rater and HR, and by the reviewee's "
    "managers and heads when the template's peer_visibility_for_managers is 'attributed'; anyone else gets 404.",
)
async def get_assignment(
    cycle_id: CycleId, assignment_id: AssignmentId, session: SessionDep, principal: Reader
) -> ReviewDetail:
    return await service.get_assignment(
        session=session, cycle_id=cycle_id, assignment_id=assignment_id, principal=principal
    )


@router.post(
    "/assignments/{assignment_id}/review",
    summary="Submit your review for an assignment (the rater only; once)",
)
async def submit_review(
    cycle_id: CycleId,
    assignment_id: AssignmentId,
    body: ReviewSubmit,
    session: SessionDep,
    principal: Rater,
    request: Request,
) -> AssignmentRead:
    row = await service.submit_review(
        session=session, cycle_id=cycle_id, assignment_id=assignment_id, principal=principal, **body.model_dump()
    )
    # Best effort after the commit: the department workflow re-reads what is pending now, not at its next check.
    await nudge(
        request,
        session,
        EvaluationDepartment,
        cycle_id=cycle_id,
        stage=Stage.EVALUATION,
        employee_id=row.reviewee_id,
        participant_model=EvaluationParticipant,
    )
    return row


@router.get(
    "/reviews/{employee_id}/summary",
    summary="Aggregated ratings per relation for one employee (anonymous below the threshold; scoped)",
    description="Peer and cross-department aggregates are shown from the anonymity threshold and hold whole "
    "batches of it in submission order (`counted`), so two reads never differ by one rater.",
)
async def get_review_summary(
    cycle_id: CycleId, employee_id: EmployeeId, session: SessionDep, principal: Reader
) -> ReviewSummary:
    return await service.review_summary(
        session=session, cycle_id=cycle_id, employee_id=employee_id, principal=principal
    )


# -- scores -----------------------------------------------------------------------------------
@router.post(
    "/scores/compute",
    summary="Compute every participant's score from goals, reviews and collaboration (until calibration closes)",
)
async def compute_scores(cycle_id: CycleId, session: SessionDep, _principal: HrAdmin) -> ComputeSummary:
    return await service.compute_scores(session=session, cycle_id=cycle_id)


@router.get(
    "/results",
    summary="Scores with their breakdown (scoped; never your own: the feedback service releases it to you)",
)
async def list_results(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Reader,
    department_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[ResultRead]:
    return await service.list_results(
        session=session, cycle_id=cycle_id, principal=principal, department_id=department_id, limit=limit, offset=offset
    )


@router.get(
    "/results/{employee_id}",
    summary="One employee's score and breakdown (scoped; your own is a 403: the feedback service releases it)",
)
async def read_result(cycle_id: CycleId, employee_id: EmployeeId, session: SessionDep, principal: Reader) -> ResultRead:
    return await service.read_result(session=session, cycle_id=cycle_id, employee_id=employee_id, principal=principal)


# -- calibration ------------------------------------------------------------------------------
@router.get(
    "/calibration/distribution",
    summary="Rating distribution against the guideline, with violations (scoped to the caller)",
    description="Groups smaller than the guideline's min_group_size are not held to its limits.",
)
async def get_distribution(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Calibrator,
    department_id: Annotated[str | None, Query(max_length=64, description="One department (and below).")] = None,
) -> DistributionReport:
    return await service.distribution(
        session=session, cycle_id=cycle_id, principal=principal, department_id=department_id
    )


@router.get(
    "/calibration/deviation",
    summary="Lenient and strict departments and managers: their mean against the company mean (z-score)",
)
async def get_deviation(cycle_id: CycleId, session: SessionDep, principal: Calibrator) -> DeviationReport:
    return await service.deviation(session=session, cycle_id=cycle_id, principal=principal)


@router.post(
    "/calibration/adjustments",
    status_code=status.HTTP_201_CREATED,
    summary="Calibrate one employee's score or rating, with a reason (HR; a head within their department)",
    description="Stores before/after, reason and who, and updates the final rating. 409 once calibration is closed.",
)
async def adjust_rating(
    cycle_id: CycleId, body: AdjustmentCreate, session: SessionDep, principal: Calibrator
) -> CalibrationAdjustment:
    return await service.adjust_rating(session=session, cycle_id=cycle_id, principal=principal, **body.model_dump())


@router.get("/calibration/adjustments", summary="The calibration audit trail (calibration and appeals; scoped)")
async def list_adjustments(
    cycle_id: CycleId,
    session: SessionDep,
    principal: Calibrator,
    employee_id: Annotated[str | None, Query(max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[CalibrationAdjustment]:
    return await service.list_adjustments(
        session=session, cycle_id=cycle_id, principal=principal, employee_id=employee_id, limit=limit, offset=offset
    )


@router.post("/calibration/close", summary="Close calibration: results become final; later changes only by appeal")
async def close_calibration(cycle_id: CycleId, session: SessionDep, principal: HrAdmin) -> CalibrationClosed:
    return await service.close_calibration(session=session, cycle_id=cycle_id, principal=principal)


@router.post(
    "/appeal-adjustments",
    summary="Apply an appeal resolved as 'adjusted' (the feedback service, after calibration is closed)",
    description="Recorded in the calibration audit trail. Idempotent on appeal_id: a retry returns 200 "
    "with the recorded adjustment; the first application returns 201.",
    status_code=status.HTTP_201_CREATED,
)
async def appeal_adjustment(
    cycle_id: CycleId, body: AppealAdjustmentRequest, session: SessionDep, principal: HrAdmin, response: Response
) -> CalibrationAdjustment:
    record, created = await service.appeal_adjustment(
        session=session, cycle_id=cycle_id, principal=principal, **body.model_dump()
    )
    if not created:
        response.status_code = status.HTTP_200_OK
    return record


@router.get(
    "/final-results",
    summary="Calibrated final results of the cycle (409 until calibration is closed)",
    description="A person reading it gets everyone's results but their own (theirs reaches them through the "
    "feedback service once released); the workflow's service token gets all.",
)
async def get_final_results(cycle_id: CycleId, session: SessionDep, principal: Machine) -> CycleResults:
    return await service.final_results(session=session, cycle_id=cycle_id, principal=principal)


@router.post(
    "/what-if",
    summary="Re-score with alternative weights, formula or guideline; returns changes, saves nothing",
)
async def what_if(cycle_id: CycleId, body: WhatIfRequest, session: SessionDep, principal: HrAdmin) -> WhatIfResult:
    return await service.what_if(session=session, cycle_id=cycle_id, request=body, principal=principal)


@router.get(
    "/pending",
    summary="Reviews not yet submitted by raters of one department (owner_id = the rater)",
)
async def get_pending(
    cycle_id: CycleId,
    session: SessionDep,
    principal: PendingReader,
    department_id: Annotated[str, Query(min_length=1, max_length=64)],
    stage: Stage = Stage.EVALUATION,
) -> PendingReport:
    return await service.pending_report(
        session=session, cycle_id=cycle_id, department_id=department_id, stage=stage, principal=principal
    )
