"""Request and response bodies of the feedback service (the routes' OpenAPI names them)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from contracts.feedback import AppealOutcome, AppealStatus
from contracts.templates import SettingsSource
from services.common.action_items import ActionItemRead

__all__ = [
    "ActionItemCreate",
    "AppealCreate",
    "AppealEventRead",
    "AppealRead",
    "AppealResolve",
    "CycleConfigRead",
    "CycleConfigUpdate",
    "FeedbackCreate",
    "FeedbackRead",
    "OneOnOneCreate",
    "OneOnOneRead",
    "OneOnOneUpdate",
    "PushAccepted",
    "ReleaseRead",
    "ResultRead",
    "WithdrawRead",
]


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
    settings_version: int = Field(description="0: the defaults; +1 per change of the window or HR deadline.")
    settings_source: SettingsSource = Field(description="template: pushed by the workflow; hr: kept from then on.")
    settings_changed_by: str | None
    settings_changed_at: datetime | None


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


class FeedbackRequestCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    giver_id: str = Field(min_length=1, max_length=64, description="Whom you ask: any participant, in any department.")
    question: str = Field(min_length=1, max_length=2000, description="What you would like feedback on.")
    due_date: date | None = Field(default=None, description="By when you would like it (a task for them).")
    share_with_manager: bool = Field(
        default=True, description="May your managers read the request and the answer (false: only you two and HR)."
    )


class FeedbackRequestAnswer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=4000)


class FeedbackRequestDecline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=2000)


class FeedbackRequestRead(BaseModel):
    """A request and, once answered, the answer (seen by both people, the requester's managers and HR)."""

    id: int
    cycle_id: str
    requester_id: str
    requester_name: str = Field(default="", description="From the cycle's snapshot (any reader may see both names).")
    giver_id: str
    giver_name: str = ""
    question: str
    status: Literal["open", "answered", "declined"]
    due_date: date | None
    share_with_manager: bool
    created_at: datetime
    closed_at: datetime | None
    answer: str | None = None
    decline_reason: str | None = None
