"""Routes of the committee service. Thin: one call each into the ``service`` package.

Every route declares its roles with ``requires()`` (listed as ``x-roles`` in OpenAPI by the app).
The committee is managed by hr_admin and the department heads who sit on it; every person in the
organisation may read the decisions assigned to them and the suggestions in their scope.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response, status

from contracts.committee import DecisionSnapshot, DecisionStatus
from services.committee import service
from services.committee.schemas import (
    AdjustmentLinkRead,
    CadenceUpdate,
    CalibrationSessionCreate,
    CalibrationSessionRead,
    CommitteeCreate,
    CommitteeRead,
    CommitteeUpdate,
    DecisionCreate,
    DecisionRead,
    DecisionStatusChange,
    DecisionUpdate,
    DepartmentHistoryRead,
    FrameworkRead,
    FrameworkWrite,
    GrowthRead,
    MeetingOpen,
    MeetingRead,
    MinutesUpdate,
    NineBoxPosition,
    PotentialCalibration,
    PotentialRead,
    PotentialWrite,
    SessionAdjustmentCreate,
    SuggestionsRead,
    TeamGrowthRead,
)
from services.committee.service import Clients
from services.committee.suggestions import SuggestionRules
from services.common.auth import Principal, Role, requires
from services.common.clock import NowDep
from services.common.deps import SessionDep
from services.common.params import APPROVERS, CALIBRATORS, EVERYONE, HR, MACHINE, STAFF, CycleId, Limit, Offset

__all__ = ["calibration", "committees", "decisions", "growth", "suggestions"]

committees = APIRouter(prefix="/v1/committees", tags=["committees"])
decisions = APIRouter(prefix="/v1/decisions", tags=["decisions"])
calibration = APIRouter(prefix="/v1/calibration-sessions", tags=["calibration"])
suggestions = APIRouter(prefix="/v1/cycles/{cycle_id}/suggestions", tags=["suggestions"])
growth = APIRouter(prefix="/v1", tags=["growth"])
"""One router per OpenAPI tag."""

CommitteeId = Annotated[str, Path(min_length=1, max_length=64)]
MeetingId = Annotated[str, Path(min_length=1, max_length=64)]
DecisionId = Annotated[str, Path(min_length=1, max_length=64)]
SessionId = Annotated[str, Path(min_length=1, max_length=64)]
SubjectId = Annotated[str, Path(min_length=1, max_length=64)]
IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        max_length=300,
        description="A retry with the same key returns the meeting the first call opened (the worker sends one).",
    ),
]
Rules = Annotated[SuggestionRules, Query()]

Manager = Annotated[Principal, requires(*CALIBRATORS)]
"""hr_admin, and department heads for the committees they sit on (checked by the service layer)."""
Reader = Annotated[Principal, requires(*EVERYONE)]
Person = Annotated[Principal, requires(*STAFF)]
Machine = Annotated[Principal, requires(*MACHINE)]
HrAdmin = Annotated[Principal, requires(*HR)]
DepartmentReader = Annotated[Principal, requires(Role.HR_ADMIN, Role.OPS, Role.DEPT_HEAD)]
Rater = Annotated[Principal, requires(*APPROVERS)]
"""Who rates a person's potential: HR, a department head or a manager who sees the person (the service checks)."""


def _clients(request: Request) -> Clients:
    return Clients(services=request.app.state.services, workflows=request.app.state.workflows)


ClientsDep = Annotated[Clients, Depends(_clients)]


# -- committees -----------------------------------------------------------------------------------
@committees.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a committee: members by function (HR, business, finance, IT) and role, cadence, thresholds",
    description="A committee with a cycle_id meets about that cycle; without one it is standing and each meeting "
    "covers the active cycle. With a cadence, a Temporal Schedule opens the meetings.",
)
async def create_committee(
    body: CommitteeCreate, session: SessionDep, principal: Manager, clients: ClientsDep
) -> CommitteeRead:
    return await service.create_committee(session=session, data=body, principal=principal, clients=clients)


@committees.get("", summary="Committees you manage (hr_admin: all)")
async def list_committees(session: SessionDep, principal: Manager) -> list[CommitteeRead]:
    return await service.list_committees(session=session, principal=principal)


@committees.get("/{committee_id}", summary="One committee")
async def get_committee(committee_id: CommitteeId, session: SessionDep, principal: Manager) -> CommitteeRead:
    return await service.get_committee(session=session, committee_id=committee_id, principal=principal)


@committees.patch("/{committee_id}", summary="Change the name, members, decision policy or agenda thresholds")
async def update_committee(
    committee_id: CommitteeId, body: CommitteeUpdate, session: SessionDep, principal: Manager
) -> CommitteeRead:
    return await service.update_committee(session=session, committee_id=committee_id, data=body, principal=principal)


@committees.put("/{committee_id}/cadence", summary="Set or stop the meeting cadence (keeps the Temporal Schedule)")
async def set_cadence(
    committee_id: CommitteeId, body: CadenceUpdate, session: SessionDep, principal: Manager, clients: ClientsDep
) -> CommitteeRead:
    return await service.set_cadence(
        session=session, committee_id=committee_id, data=body, principal=principal, clients=clients
    )


# -- meetings -------------------------------------------------------------------------------------
@committees.post(
    "/{committee_id}/meetings",
    status_code=status.HTTP_201_CREATED,
    summary="Open a meeting with an agenda generated from the cycle's data (idempotent on Idempotency-Key)",
    description="The agenda: blocked stages, KPIs off track by department, stale data by data owner, the weakest "
    "collaboration pairs and their trend, calibration outliers and lenient/strict raters, open appeals, overdue "
    "decisions. 422 naming cycle_id for a cycle that does not exist.",
    responses={200: {"description": "A retry with the same Idempotency-Key: the meeting it opened"}},
)
async def open_meeting(
    committee_id: CommitteeId,
    session: SessionDep,
    principal: Manager,
    clients: ClientsDep,
    now: NowDep,
    response: Response,
    idempotency_key: IdempotencyKey = None,
    body: MeetingOpen | None = None,
) -> MeetingRead:
    meeting = await service.open_meeting(
        session=session,
        committee_id=committee_id,
        data=body or MeetingOpen(),
        idempotency_key=idempotency_key,
        principal=principal,
        clients=clients,
        now=now,
    )
    if not meeting.created:
        response.status_code = status.HTTP_200_OK
    return meeting


@committees.get("/{committee_id}/meetings", summary="The committee's meetings, oldest first")
async def list_meetings(committee_id: CommitteeId, session: SessionDep, principal: Manager) -> list[MeetingRead]:
    return await service.list_meetings(session=session, committee_id=committee_id, principal=principal)


@committees.get("/{committee_id}/meetings/{meeting_id}", summary="One meeting with its agenda and minutes")
async def get_meeting(
    committee_id: CommitteeId, meeting_id: MeetingId, session: SessionDep, principal: Manager
) -> MeetingRead:
    return await service.get_meeting(
        session=session, committee_id=committee_id, meeting_id=meeting_id, principal=principal
    )


@committees.put("/{committee_id}/meetings/{meeting_id}/minutes", summary="Record the minutes and who attended")
async def record_minutes(
    committee_id: CommitteeId,
    meeting_id: MeetingId,
    body: MinutesUpdate,
    session: SessionDep,
    principal: Manager,
    now: NowDep,
) -> MeetingRead:
    return await service.record_minutes(
        session=session, committee_id=committee_id, meeting_id=meeting_id, data=body, principal=principal, now=now
    )


@committees.post(
    "/{committee_id}/meetings/{meeting_id}/decisions",
    status_code=status.HTTP_201_CREATED,
    summary="Record a decision with its owner and due date; a workflow tracks it to done",
    description="422 naming owner_id or due_at when either is missing or wrong (the owner must take part in the "
    "meeting's cycle; the due date must be after the meeting).",
)
async def record_decision(
    committee_id: CommitteeId,
    meeting_id: MeetingId,
    body: DecisionCreate,
    session: SessionDep,
    principal: Manager,
    clients: ClientsDep,
    now: NowDep,
) -> DecisionRead:
    return await service.record_decision(
        session=session,
        committee_id=committee_id,
        meeting_id=meeting_id,
        data=body,
        principal=principal,
        clients=clients,
        now=now,
    )


@committees.get("/{committee_id}/decisions", summary="The committee's decisions, by due date")
async def committee_decisions(
    committee_id: CommitteeId,
    session: SessionDep,
    principal: Manager,
    now: NowDep,
    decision_status: Annotated[DecisionStatus | None, Query(alias="status")] = None,
    overdue: bool | None = None,
) -> list[DecisionRead]:
    return await service.committee_decisions(
        session=session,
        committee_id=committee_id,
        principal=principal,
        status=decision_status,
        overdue=overdue,
        now=now,
    )


@committees.post(
    "/{committee_id}/meetings/{meeting_id}/calibration-sessions",
    status_code=status.HTTP_201_CREATED,
    summary="Open a calibration session in a meeting; its adjustments are linked to it (and to a decision)",
)
async def open_calibration_session(
    committee_id: CommitteeId,
    meeting_id: MeetingId,
    body: CalibrationSessionCreate,
    session: SessionDep,
    principal: Manager,
    now: NowDep,
) -> CalibrationSessionRead:
    return await service.open_session(
        session=session, committee_id=committee_id, meeting_id=meeting_id, data=body, principal=principal, now=now
    )


@committees.get(
    "/{committee_id}/meetings/{meeting_id}/calibration-sessions",
    summary="The calibration sessions opened in a meeting, with their adjustments",
)
async def list_calibration_sessions(
    committee_id: CommitteeId, meeting_id: MeetingId, session: SessionDep, principal: Manager
) -> list[CalibrationSessionRead]:
    return await service.meeting_sessions(
        session=session, committee_id=committee_id, meeting_id=meeting_id, principal=principal
    )


# -- decisions ------------------------------------------------------------------------------------
@decisions.get("/mine", summary="Decisions assigned to you, by due date (everyone in the organisation)")
async def my_decisions(
    session: SessionDep,
    principal: Reader,
    now: NowDep,
    decision_status: Annotated[DecisionStatus | None, Query(alias="status")] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> list[DecisionRead]:
    return await service.my_decisions(
        session=session, principal=principal, status=decision_status, limit=limit, offset=offset, now=now
    )


@decisions.get("/{decision_id}", summary="One decision (its owner, ops, and the committee)")
async def get_decision(decision_id: DecisionId, session: SessionDep, principal: Reader, now: NowDep) -> DecisionRead:
    return await service.get_decision(session=session, decision_id=decision_id, principal=principal, now=now)


@decisions.post(
    "/{decision_id}/status",
    summary="Move a decision: the owner to in_progress or done; the committee also cancels",
)
async def change_status(
    decision_id: DecisionId,
    body: DecisionStatusChange,
    session: SessionDep,
    principal: Person,
    clients: ClientsDep,
    now: NowDep,
) -> DecisionRead:
    return await service.change_status(
        session=session, decision_id=decision_id, data=body, principal=principal, clients=clients, now=now
    )


@decisions.patch("/{decision_id}", summary="The committee changes a decision's text, owner or due date")
async def update_decision(
    decision_id: DecisionId,
    body: DecisionUpdate,
    session: SessionDep,
    principal: Manager,
    clients: ClientsDep,
    now: NowDep,
) -> DecisionRead:
    return await service.update_decision(
        session=session, decision_id=decision_id, data=body, principal=principal, clients=clients, now=now
    )


@decisions.post("/{decision_id}/track", summary="Start the decision's tracking workflow if it did not start")
async def track_decision(
    decision_id: DecisionId, session: SessionDep, principal: Machine, clients: ClientsDep, now: NowDep
) -> DecisionRead:
    return await service.track_decision(
        session=session, decision_id=decision_id, principal=principal, clients=clients, now=now
    )


@decisions.get("/{decision_id}/snapshot", summary="What the decision's workflow reads at every check (the worker)")
async def decision_snapshot(decision_id: DecisionId, session: SessionDep, _p: Machine) -> DecisionSnapshot:
    return await service.decision_snapshot(session=session, decision_id=decision_id)


# -- calibration sessions -------------------------------------------------------------------------
@calibration.get("/{session_id}", summary="A calibration session with the adjustments made in it")
async def get_calibration_session(
    session_id: SessionId, session: SessionDep, principal: Manager
) -> CalibrationSessionRead:
    return await service.get_session(session=session, session_id=session_id, principal=principal)


@calibration.post(
    "/{session_id}/adjustments",
    status_code=status.HTTP_201_CREATED,
    summary="Calibrate one employee in the session: recorded by evaluation for you, linked to the session",
)
async def adjust_in_session(
    session_id: SessionId,
    body: SessionAdjustmentCreate,
    session: SessionDep,
    principal: Manager,
    clients: ClientsDep,
) -> AdjustmentLinkRead:
    return await service.adjust_in_session(
        session=session, session_id=session_id, data=body, principal=principal, clients=clients
    )


# -- improvement suggestions ----------------------------------------------------------------------
@suggestions.get(
    "/people/{employee_id}",
    summary="Improvement suggestions for a person, each citing its data (English and Chinese; scoped)",
)
async def person_suggestions(
    cycle_id: CycleId, employee_id: SubjectId, rules: Rules, session: SessionDep, principal: Reader, clients: ClientsDep
) -> SuggestionsRead:
    return await service.person_suggestions(
        session=session, cycle_id=cycle_id, employee_id=employee_id, rules=rules, principal=principal, clients=clients
    )


@suggestions.get("/teams/{manager_id}", summary="Improvement suggestions for a manager's team (scoped)")
async def team_suggestions(
    cycle_id: CycleId, manager_id: SubjectId, rules: Rules, session: SessionDep, principal: Reader, clients: ClientsDep
) -> SuggestionsRead:
    return await service.team_suggestions(
        session=session, cycle_id=cycle_id, manager_id=manager_id, rules=rules, principal=principal, clients=clients
    )


@suggestions.get(
    "/departments/{department_id}",
    summary="Improvement suggestions for a department, with its comment themes counted in both languages",
)
async def department_suggestions(
    cycle_id: CycleId,
    department_id: SubjectId,
    rules: Rules,
    session: SessionDep,
    principal: Reader,
    clients: ClientsDep,
) -> SuggestionsRead:
    return await service.department_suggestions(
        session=session,
        cycle_id=cycle_id,
        department_id=department_id,
        rules=rules,
        principal=principal,
        clients=clients,
    )


# -- growth paths ---------------------------------------------------------------------------------
JobFamily = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]


@growth.put(
    "/career-frameworks/{job_family}",
    summary="Set a job family's career ladder: its job titles and levels (grade, title, expected competencies)",
    description="Lowest level first; a level keeps every competency of the level below at the same or a higher "
    "expectation (a level that skips one is refused naming levels[i].competencies).",
)
async def put_framework(
    job_family: JobFamily, body: FrameworkWrite, session: SessionDep, principal: HrAdmin, now: NowDep
) -> FrameworkRead:
    row = await service.put_framework(session=session, job_family=job_family, data=body, principal=principal, now=now)
    return FrameworkRead.model_validate(row)


@growth.get("/career-frameworks", summary="Every job family's career ladder (visible to everyone)")
async def list_frameworks(session: SessionDep, _p: Reader) -> list[FrameworkRead]:
    return [FrameworkRead.model_validate(f) for f in await service.list_frameworks(session=session)]


@growth.put(
    "/cycles/{cycle_id}/potential/{employee_id}",
    summary="Rate a person's potential in a cycle (low, medium, high): their manager or head, or HR",
)
async def rate_potential(
    cycle_id: CycleId,
    employee_id: SubjectId,
    body: PotentialWrite,
    session: SessionDep,
    principal: Rater,
    clients: ClientsDep,
    now: NowDep,
) -> PotentialRead:
    return await service.rate_potential(
        session=session, cycle_id=cycle_id, employee_id=employee_id, data=body, principal=principal,
        clients=clients, now=now,
    )  # fmt: skip


@growth.post(
    "/cycles/{cycle_id}/potential/{employee_id}/calibration",
    summary="The committee's calibration of a potential rating, with the reason (and its calibration session)",
)
async def calibrate_potential(
    cycle_id: CycleId,
    employee_id: SubjectId,
    body: PotentialCalibration,
    session: SessionDep,
    principal: HrAdmin,
    clients: ClientsDep,
    now: NowDep,
) -> PotentialRead:
    return await service.calibrate_potential(
        session=session, cycle_id=cycle_id, employee_id=employee_id, data=body, principal=principal,
        clients=clients, now=now,
    )  # fmt: skip


@growth.get(
    "/cycles/{cycle_id}/nine-box",
    summary="Talent review: the 9-box (performance x potential) of everyone in your scope with both",
)
async def cycle_nine_box(
    cycle_id: CycleId, session: SessionDep, principal: Rater, clients: ClientsDep
) -> list[NineBoxPosition]:
    return await service.cycle_nine_box(session=session, cycle_id=cycle_id, principal=principal, clients=clients)


@growth.get(
    "/people/{employee_id}/growth",
    summary="A person's growth path: history over cycles, competency profile, readiness for the next level, "
    "next steps and 9-box position (the person, their managers, their head, HR)",
)
async def person_growth(
    employee_id: SubjectId, session: SessionDep, principal: Reader, clients: ClientsDep
) -> GrowthRead:
    return await service.growth(session=session, employee_id=employee_id, principal=principal, clients=clients)


@growth.get("/teams/{manager_id}/growth", summary="Each direct report's readiness and 9-box position (scoped)")
async def team_growth(
    manager_id: SubjectId, session: SessionDep, principal: Rater, clients: ClientsDep
) -> TeamGrowthRead:
    return await service.team_growth(session=session, manager_id=manager_id, principal=principal, clients=clients)


@growth.get(
    "/departments/{department_id}/history",
    summary="A department over every cycle: people, released results and ratings, its KPIs' attainment, "
    "collaboration received (HR, ops; heads for their departments)",
)
async def department_history(
    department_id: SubjectId, session: SessionDep, principal: DepartmentReader, clients: ClientsDep
) -> DepartmentHistoryRead:
    return await service.department_history(
        session=session, department_id=department_id, principal=principal, clients=clients
    )
