"""What the feedback service sends to other parts: appeal adjustments, the state of appeals, its
settings and its event types.

When HR resolves an appeal as *adjusted*, the feedback service asks evaluation to record the new
score through calibration, then the results service to apply it to pay (``POST
/v1/cycles/{id}/appeal-adjustments`` on both, body ``AppealAdjustment``, hr_admin service token
acting for the HR person). ``AppealsState`` is what the workflow reads before publishing results
under the ``wait_for_appeals`` policy. ``FeedbackSettings`` is a cycle template's ``feedback``
section. The feedback service's outbox events on ``cycle.events.v1`` use the ``FeedbackEventType``
names.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import Id

__all__ = [
    "SCHEMA_EXPORTS",
    "AppealAdjustment",
    "AppealOutcome",
    "AppealStatus",
    "AppealsState",
    "FeedbackEventType",
    "FeedbackSettings",
    "OpenAppeal",
]


class FeedbackEventType(StrEnum):
    RESULTS_RELEASED = "ResultsReleased"
    RESULT_ACKNOWLEDGED = "ResultAcknowledged"
    APPEAL_SUBMITTED = "AppealSubmitted"
    APPEAL_RESOLVED = "AppealResolved"


class AppealStatus(StrEnum):
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    UPHELD = "upheld"
    ADJUSTED = "adjusted"
    REJECTED = "rejected"


class AppealOutcome(StrEnum):
    """How HR closes an appeal: the result stands (upheld), changes (adjusted) or the appeal is refused."""

    UPHELD = "upheld"
    ADJUSTED = "adjusted"
    REJECTED = "rejected"


class AppealAdjustment(BaseModel):
    """An appeal resolved with a new score and rating, to be recorded through calibration."""

    model_config = ConfigDict(extra="forbid")

    employee_id: Id
    new_score: float
    new_rating: str = Field(min_length=1, max_length=32)
    reason: str = Field(min_length=1, max_length=2000, description="HR's resolution note.")
    appeal_id: Id = Field(description="The feedback service's appeal id; evaluation may deduplicate on it.")


class FeedbackSettings(BaseModel):
    """A template's ``feedback`` section: how long employees may appeal and HR has to resolve."""

    model_config = ConfigDict(extra="forbid")

    appeal_window_days: int = Field(default=14, ge=1, le=365, description="Days after release to appeal.")
    hr_resolution_days: int = Field(default=10, ge=1, le=365, description="Days after submission for HR to resolve.")


class OpenAppeal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    appeal_id: int
    employee_id: Id
    department_id: Id
    status: AppealStatus
    hr_due_at: datetime = Field(description="When HR must have resolved it.")


class AppealsState(BaseModel):
    """``GET /v1/cycles/{id}/appeal-state`` on feedback: whether appeals may still change results."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    as_of: datetime
    released_at: datetime | None = Field(description="When the last result was released (None: none yet).")
    window_closes_at: datetime | None = Field(description="The last released result's appeal deadline.")
    window_open: bool = Field(description="Employees may still appeal.")
    open_appeals: list[OpenAppeal] = Field(description="Appeals HR has not resolved yet (at most 500 listed).")
    open_count: int = Field(ge=0)
    resolved_by: str = Field(default="hr_admin", description="The role that resolves appeals.")


SCHEMA_EXPORTS = {"appeal_adjustment.v1": AppealAdjustment, "appeals_state.v1": AppealsState}
