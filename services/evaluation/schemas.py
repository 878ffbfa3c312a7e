"""Request and response schemas of the evaluation API (Create / Read / report models).

Nothing a reviewee can read carries a rater's identity: relation aggregates
(``RelationSummary``) and results (``ResultRead``) hold counts, means and notes only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from contracts.evaluation import ManagerPeerVisibility, PeerVisibility, Relation
from contracts.ids import Id
from contracts.scoring import MAX_FORMULA_LENGTH, CalibrationGuideline, ScoringComponent
from contracts.templates import SettingsVersion
from services.evaluation.scoring import (
    ComponentBreakdown,
    DistributionReport,
    GoalScore,
    GroupDeviation,
)

__all__ = [
    "AdjustmentCreate",
    "AssignmentCreate",
    "AssignmentRead",
    "AssignmentsGenerated",
    "CalibrationClosed",
    "CollaborationLinkCreate",
    "CollaborationLinkRead",
    "CollaborationRatingCreate",
    "CollaborationRatingRead",
    "ComputeSummary",
    "ConfigVersionRead",
    "DeviationReport",
    "InputAccepted",
    "RelationSummary",
    "ResultRead",
    "ReviewDetail",
    "ReviewSubmit",
    "ReviewSummary",
    "WhatIfChange",
    "WhatIfRequest",
    "WhatIfResult",
]

Rating = Annotated[int, Field(ge=1, le=5)]


class InputAccepted(BaseModel):
    cycle_id: str
    kind: str
    items: int


class ConfigVersionRead(SettingsVersion):
    """One version of a cycle's configuration: who set it (the template or HR), when, and what."""

    config: dict[str, Any] = Field(description="The configuration as stored (an EvaluationConfig).")


class AssignmentCreate(BaseModel):
    """A manager (for a report) or HR nominates a rater."""

    model_config = ConfigDict(extra="forbid")

    reviewee_id: Id
    rater_id: Id
    relation: Relation = Relation.PEER


class AssignmentRead(BaseModel):
    assignment_id: str
    reviewee_id: str
    rater_id: str
    relation: Relation
    status: str
    created_at: datetime
    submitted_at: datetime | None = None
    shown_to_managers: ManagerPeerVisibility = Field(
        default=ManagerPeerVisibility.ATTRIBUTED,
        description="How the reviewee's managers and department heads see this review: 'aggregate' (only in the "
        "relation's anonymous aggregate) or 'attributed' (this review, with the rater's name). Self and "
        "manager reviews are attributed; peer and cross-department ones follow the template's "
        "peer_visibility_for_managers. The reviewee never learns who wrote a peer review.",
    )


class AssignmentsGenerated(BaseModel):
    cycle_id: str
    created: int
    existing: int


class ReviewSubmit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    ratings: dict[Annotated[str, Field(max_length=64)], float] = Field(
        description="competency_id -> rating on that competency's scale; every configured competency."
    )
    comment: str | None = Field(default=None, max_length=4000)


class ReviewDetail(AssignmentRead):
    ratings: dict[str, float] | None = None
    comment: str | None = None


class RelationSummary(BaseModel):
    relation: Relation
    assigned: int
    submitted: int
    counted: int = Field(
        default=0,
        description="Submitted reviews the aggregate holds: for peer and cross-department, whole batches of the "
        "anonymity threshold in submission order (a later review counts once its batch is complete).",
    )
    visible: bool = Field(description="False for peer/cross-department below the anonymity threshold.")
    hidden_reason: str | None = None
    score: float | None = Field(default=None, description="Mean review score on the rating scale.")
    competencies: dict[str, float] = Field(default_factory=dict, description="Mean per competency, own scale.")
    comments: list[str] = Field(default_factory=list, description="Sorted; never attributed.")


class ReviewSummary(BaseModel):
    cycle_id: str
    employee_id: str
    anonymity_threshold: int
    peer_visibility: PeerVisibility = Field(
        description="What the reviewee sees of peer and cross-department reviews (others see the aggregates)."
    )
    peer_visibility_for_managers: ManagerPeerVisibility = Field(
        default=ManagerPeerVisibility.AGGREGATE,
        description="Whether managers and department heads may also read each peer review with its rater.",
    )
    relations: list[RelationSummary]


class CollaborationLinkCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department_a: Id
    department_b: Id


class CollaborationLinkRead(BaseModel):
    department_a: str
    department_b: str
    source: str = Field(description="'declared' or 'shared_goal'.")
    status: Literal["confirmed", "proposed"] = Field(
        default="confirmed",
        description="'confirmed' (a shared goal, or declared by HR or by the heads of both departments): the two "
        "may rate each other and nominate cross-department raters; 'proposed': declared by one side only, "
        "nothing along it counts until the other side's head (or HR) declares it too.",
    )
    awaiting: list[str] = Field(
        default_factory=list, description="The department(s) whose head must still confirm a proposed link."
    )


class CollaborationRatingCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rater_department_id: Id
    rated_department_id: Id
    responsiveness: Rating
    data_quality: Rating
    reliability: Rating
    comment: str | None = Field(default=None, max_length=2000)


class CollaborationRatingRead(BaseModel):
    cycle_id: str
    rater_department_id: str
    rated_department_id: str
    responsiveness: int
    data_quality: int
    reliability: int
    comment: str | None
    updated_at: datetime


class ResultRead(BaseModel):
    employee_id: str
    department_id: str
    manager_id: str | None
    computed_score: float | None = Field(description="Before calibration.")
    computed_rating: str | None
    final_score: float | None = Field(description="After calibration (equal to computed until adjusted).")
    rating: str | None
    calibrated: bool
    goals: GoalScore | None
    components: list[ComponentBreakdown]
    notes: list[str]
    computed_at: datetime


class ComputeSummary(BaseModel):
    cycle_id: str
    scored: int
    unscored: list[str] = Field(description="Employees without any component (at most 100 listed).")
    kept_calibrated: int = Field(description="Employees whose calibrated score was kept.")
    distribution: DistributionReport


class AdjustmentCreate(BaseModel):
    """A calibration change: give ``new_score`` or ``new_rating`` (or both, consistent)."""

    model_config = ConfigDict(extra="forbid")

    employee_id: Id
    new_score: float | None = None
    new_rating: str | None = Field(default=None, max_length=32)
    reason: str = Field(min_length=1, max_length=2000)


class CalibrationClosed(BaseModel):
    cycle_id: str
    calibration_closed_at: str = Field(description="When calibration closed (ISO 8601).")
    closed_by: str


class DeviationReport(BaseModel):
    cycle_id: str
    company_mean: float | None
    company_stdev: float | None
    z_threshold: float
    method: str
    by_department: list[GroupDeviation]
    by_manager: list[GroupDeviation]


class WhatIfRequest(BaseModel):
    """Overrides of the stored configuration's fields of the same names; the result must still be a
    valid configuration (weights summing to 100, a formula that uses every weighted component)."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[ScoringComponent, float] | None = None
    formula: str | None = Field(default=None, max_length=MAX_FORMULA_LENGTH)
    calibration: CalibrationGuideline | None = None


class WhatIfChange(BaseModel):
    employee_id: str
    current_score: float | None
    current_rating: str | None
    what_if_score: float | None
    what_if_rating: str | None


class WhatIfResult(BaseModel):
    cycle_id: str
    total: int
    changed: int
    changes: list[WhatIfChange] = Field(description="Employees whose score or rating would change.")
    distribution: DistributionReport
    current_distribution: DistributionReport
