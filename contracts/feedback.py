"""What the feedback service sends to other parts: appeal adjustments and its event types.

When HR resolves an appeal as *adjusted*, the feedback service asks evaluation to
record the new score through calibration: ``POST /v1/cycles/{id}/appeal-adjustments``
on evaluation, body ``AppealAdjustment`` (hr_admin service token). The feedback
service's outbox events on ``cycle.events.v1`` use the ``FeedbackEventType`` names.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import Id

__all__ = ["SCHEMA_EXPORTS", "AppealAdjustment", "AppealOutcome", "AppealStatus", "FeedbackEventType"]



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


SCHEMA_EXPORTS = {"appeal_adjustment.v1": AppealAdjustment}
