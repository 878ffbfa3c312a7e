"""Request and response bodies of the committee API (Create / Update / Read per entity)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from contracts.committee import CommitteeFunction, DecisionPolicy, DecisionStatus, MeetingCadence, MemberRole
from contracts.ids import Id
from services.committee.agenda import AgendaItem, AgendaRules
from services.committee.growth import Level, Readiness, ReadinessStatus, Tier
from services.committee.suggestions import Scope, Suggestion, SuggestionRules

__all__ = [
    "AdjustmentLinkRead",
    "CadenceUpdate",
    "CalibrationSessionCreate",
    "CalibrationSessionRead",
    "CommitteeCreate",
    "CommitteeRead",
    "CommitteeUpdate",
    "CycleRecord",
    "DepartmentCycleRecord",
    "DepartmentHistoryRead",
    "FrameworkRead",
    "FrameworkWrite",
    "GrowthRead",
    "NineBoxPosition",
    "PotentialCalibration",
    "PotentialRead",
    "PotentialWrite",
    "TeamGrowthRead",
    "TeamMemberGrowth",
    "DecisionCreate",
    "DecisionRead",
    "DecisionStatusChange",
    "DecisionUpdate",
    "MeetingOpen",
    "MeetingRead",
    "MemberIn",
    "MinutesUpdate",
    "SessionAdjustmentCreate",
    "SuggestionsRead",
    "ThemeRead",
]

Name = Annotated[str, Field(min_length=1, max_length=200)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- committees -----------------------------------------------------------------------------------
class MemberIn(_In):
    employee_id: Id
    name: str = Field(default="", max_length=200)
    department_id: Id
    function: CommitteeFunction = Field(description="The seat's function: hr, business, finance or it.")
    role: MemberRole = MemberRole.MEMBER


class CommitteeCreate(_In):
    committee_id: Id | None = Field(default=None, description="Optional; generated when absent.")
    name: Name
    cycle_id: Id | None = Field(default=None, description="Per-cycle committee; omit for a standing committee.")
    members: list[MemberIn] = Field(min_length=1, max_length=50)
    cadence: MeetingCadence | None = Field(default=None, description="Meetings on a Temporal Schedule; omit: by hand.")
    decision_policy: DecisionPolicy = Field(default_factory=DecisionPolicy)
    agenda_rules: AgendaRules = Field(default_factory=AgendaRules)


class CommitteeUpdate(_In):
    """Partial update: the members (replaced as a whole), the decision policy, the agenda rules."""

    name: Name | None = None
    members: list[MemberIn] | None = Field(default=None, min_length=1, max_length=50)
    decision_policy: DecisionPolicy | None = None
    agenda_rules: AgendaRules | None = None


class CadenceUpdate(_In):
    cadence: MeetingCadence | None = Field(description="null stops the scheduled meetings.")


class MemberRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    employee_id: str
    name: str
    department_id: str
    function: CommitteeFunction
    role: MemberRole


class CommitteeRead(BaseModel):
    committee_id: str
    name: str
    cycle_id: str | None
    standing: bool
    members: list[MemberRead]
    cadence: MeetingCadence | None
    schedule_state: str = Field(description="none, active, or why the Schedule could not be kept.")
    decision_policy: DecisionPolicy
    agenda_rules: AgendaRules
    created_by: str
    created_at: datetime
    updated_at: datetime
    version: int


# -- meetings -------------------------------------------------------------------------------------
class MeetingOpen(_In):
    cycle_id: Id | None = Field(default=None, description="Default: the committee's cycle, else the active one.")
    held_at: AwareDatetime | None = Field(default=None, description="Default: now.")


class MinutesUpdate(_In):
    minutes: str = Field(min_length=1, max_length=50_000)
    attendees: list[Id] = Field(default_factory=list, max_length=100)


class MeetingRead(BaseModel):
    meeting_id: str
    committee_id: str
    cycle_id: str | None
    stage: str | None
    held_at: datetime
    agenda: list[AgendaItem]
    sources: dict[str, str] = Field(description="Each source the agenda read: 'ok' or why it could not be read.")
    minutes: str | None
    attendees: list[str]
    minutes_by: str | None
    minutes_at: datetime | None
    created: bool = Field(default=True, description="False when the idempotency key had opened it before.")


# -- decisions ------------------------------------------------------------------------------------
class DecisionCreate(_In):
    title: str = Field(min_length=1, max_length=300)
    description: str = Field(default="", max_length=10_000)
    owner_id: Id = Field(description="The participant of the meeting's cycle who carries the decision out.")
    due_at: AwareDatetime = Field(description="When it must be done (after the meeting).")
    agenda_item_id: str | None = Field(default=None, max_length=200, description="The agenda item it answers.")


class DecisionUpdate(_In):
    title: str | None = Field(default=None, min_length=1, max_length=300)
    description: str | None = Field(default=None, max_length=10_000)
    owner_id: Id | None = None
    due_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _something(self) -> DecisionUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of title, description, owner_id, due_at")
        return self


class DecisionStatusChange(_In):
    status: DecisionStatus
    note: str | None = Field(default=None, max_length=2000)


class DecisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    decision_id: str
    committee_id: str
    meeting_id: str
    cycle_id: str
    stage: str
    agenda_item_id: str | None
    title: str
    description: str
    owner_id: str
    owner_department_id: str
    due_at: datetime
    status: DecisionStatus
    status_note: str | None
    tracking: str = Field(description="'workflow' while a workflow tracks it, else why not (yet).")
    created_by: str
    created_at: datetime
    updated_at: datetime
    done_at: datetime | None
    overdue: bool = False


# -- calibration sessions -------------------------------------------------------------------------
class CalibrationSessionCreate(_In):
    decision_id: Id | None = Field(default=None, description="The decision that asked for this calibration.")
    note: str = Field(default="", max_length=2000)


class SessionAdjustmentCreate(_In):
    """A calibration change made in the session: give ``new_score`` or ``new_rating`` (or both)."""

    employee_id: Id
    new_score: float | None = None
    new_rating: str | None = Field(default=None, max_length=32)
    reason: str = Field(min_length=1, max_length=1800)
    decision_id: Id | None = Field(default=None, description="Default: the session's decision.")

    @model_validator(mode="after")
    def _something_to_set(self) -> SessionAdjustmentCreate:
        if self.new_score is None and self.new_rating is None:
            raise ValueError("give new_score or new_rating")
        return self


class AdjustmentLinkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    adjustment_id: int
    session_id: str
    decision_id: str | None
    cycle_id: str
    employee_id: str
    before_score: float | None
    after_score: float
    before_rating: str | None
    after_rating: str
    reason: str
    actor: str
    created_at: datetime


class CalibrationSessionRead(BaseModel):
    session_id: str
    committee_id: str
    meeting_id: str
    cycle_id: str
    decision_id: str | None
    note: str
    opened_by: str
    opened_at: datetime
    adjustments: list[AdjustmentLinkRead]


# -- suggestions ----------------------------------------------------------------------------------
class ThemeRead(BaseModel):
    theme: str
    mentions: int
    english: int
    chinese: int
    keywords: list[str]


class SuggestionsRead(BaseModel):
    cycle_id: str
    scope: Scope
    subject_id: str
    rules: SuggestionRules = Field(description="The thresholds applied.")
    suggestions: list[Suggestion]
    themes: list[ThemeRead] = Field(default_factory=list, description="Departments: comment themes counted.")
    unavailable: dict[str, str] = Field(default_factory=dict, description="Sources that could not be read.")


# -- growth paths ---------------------------------------------------------------------------------
class FrameworkWrite(_In):
    """``PUT /v1/career-frameworks/{job_family}``: the ladder of one job family."""

    name: Name
    job_titles: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=100, description="The directory's job titles that belong to this family."
    )
    levels: list[Level] = Field(min_length=1, max_length=20, description="Lowest first.")


class FrameworkRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    job_family: str
    name: str
    job_titles: list[str]
    levels: list[Level]
    updated_by: str
    updated_at: datetime


class PotentialWrite(_In):
    """A manager's rating of a report's potential in a cycle."""

    potential: Tier = Field(description="low, medium or high.")
    note: str = Field(default="", max_length=2000)


class PotentialCalibration(_In):
    """The committee's calibration of a potential rating (HR records it, with the reason)."""

    potential: Tier = Field(description="low, medium or high.")
    reason: str = Field(min_length=3, max_length=2000)
    session_id: Id | None = Field(default=None, description="The committee calibration session it was made in.")


class PotentialRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    employee_id: str
    rated: Tier | None
    rated_by: str | None
    rated_at: datetime | None
    note: str
    calibrated: Tier | None
    calibrated_by: str | None
    calibrated_at: datetime | None
    calibration_reason: str
    session_id: str | None

    @property
    def value(self) -> Tier | None:
        return self.calibrated or self.rated


class CycleRecord(BaseModel):
    """One cycle of a person's history."""

    cycle_id: str
    cycle_name: str
    period_end: str | None
    job_title: str
    grade: str
    final_score: float | None = Field(description="The released result (None: not released).")
    rating: str | None
    performance: Tier | None
    competencies: dict[str, float] = Field(description="The manager's competency ratings.")
    potential: Tier | None = Field(description="Calibrated by the committee, else the manager's rating.")


class NineBoxPosition(BaseModel):
    cycle_id: str
    employee_id: str
    name: str
    box: int = Field(ge=1, le=9)
    performance: Tier
    potential: Tier
    label_en: str
    label_zh: str


class GrowthRead(BaseModel):
    """``GET /v1/people/{employee_id}/growth``: where the person stands and what comes next."""

    employee_id: str
    name: str
    job_title: str
    grade: str
    job_family: str | None = Field(description="None: no career framework lists the person's job title.")
    current_level: Level | None
    next_level: Level | None
    history: list[CycleRecord] = Field(description="Oldest first.")
    profile: dict[str, float] = Field(description="Each competency's latest manager rating.")
    competency_names: dict[str, str]
    readiness: Readiness | None
    nine_box: NineBoxPosition | None = Field(description="In the latest cycle with a result and a potential.")


class TeamMemberGrowth(BaseModel):
    employee_id: str
    name: str
    grade: str
    readiness: ReadinessStatus | None
    next_grade: str | None
    nine_box: NineBoxPosition | None


class TeamGrowthRead(BaseModel):
    """``GET /v1/teams/{manager_id}/growth``: each direct report's readiness and 9-box position."""

    manager_id: str
    members: list[TeamMemberGrowth]


class DepartmentCycleRecord(BaseModel):
    """One cycle of a department's history."""

    cycle_id: str
    cycle_name: str
    period_end: str | None
    people: int = Field(description="Participants of the department (and its sub-departments) in the cycle.")
    released: int = Field(description="Their results released so far.")
    mean_score: float | None
    ratings: dict[str, int] = Field(description="Released results per rating band.")
    kpi_attainment_pct: float | None = Field(description="Mean attainment of the department's own KPIs.")
    collaboration_received: float | None = Field(description="Mean overall rating other departments gave it (1-5).")
    collaboration_raters: int


class DepartmentHistoryRead(BaseModel):
    """``GET /v1/departments/{department_id}/history``: the department over every cycle it took part in."""

    department_id: str
    name: str
    cycles: list[DepartmentCycleRecord] = Field(description="Oldest first.")
    unavailable: dict[str, str] = Field(description="Sources that could not be read, per cycle and source.")
