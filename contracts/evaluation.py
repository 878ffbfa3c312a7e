"""What the evaluation service exports and accepts.

Exports: calibrated results (``CycleResults``) and the collaboration matrix.
Accepts: the cycle's configuration (``EvaluationConfig``: the template's ``ScoringConfig`` with
the evaluation stage's settings, built by ``evaluation_config``) and appeal adjustments from
the feedback service (``AppealAdjustmentRequest`` -> ``CalibrationAdjustment``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.errors import rule
from contracts.ids import Id
from contracts.scoring import CalibrationGuideline, PeerAnonymityThreshold, ScoringConfig

if TYPE_CHECKING:
    from contracts.templates import CycleTemplateSpec

__all__ = [
    "DEFAULT_COMPETENCIES",
    "SCHEMA_EXPORTS",
    "AppealAdjustmentRequest",
    "CalibrationAdjustment",
    "CollaborationCell",
    "CollaborationMatrix",
    "Competency",
    "CycleResults",
    "EmployeeResult",
    "EvaluationConfig",
    "LookupRow",
    "RaterLimit",
    "Relation",
    "evaluation_config",
]


class EmployeeResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: Id
    department_id: Id
    manager_id: Id | None = None
    final_score: float = Field(description="Final score on the template's rating scale, after calibration.")
    rating: str = Field(max_length=32, description="The rating band label after calibration, e.g. 'exceeds'.")
    pre_calibration_score: float | None = None
    calibrated: bool = False


class CycleResults(BaseModel):
    """``GET /v1/cycles/{id}/final-results`` on evaluation (only once calibration is closed)."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    scale_min: float
    scale_max: float
    results: list[EmployeeResult]


class CollaborationCell(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rater_department_id: Id
    rated_department_id: Id
    responsiveness: float
    data_quality: float
    reliability: float
    overall: float
    ratings: int = Field(ge=0)
    comments: list[str] = Field(default_factory=list)


class CollaborationMatrix(BaseModel):
    """``GET /v1/cycles/{id}/collaboration-matrix`` on evaluation."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    cells: list[CollaborationCell]


class Relation(StrEnum):
    """Who rates whom in a review."""

    SELF = "self"
    MANAGER = "manager"
    PEER = "peer"
    CROSS_DEPARTMENT = "cross_department"


class Competency(BaseModel):
    """A competency rated in review forms, on its own scale (normalised onto the rating scale)."""

    model_config = ConfigDict(extra="forbid")

    competency_id: Id
    name: str = Field(max_length=200)
    scale_min: float = 1.0
    scale_max: float = 5.0

    @model_validator(mode="after")
    def _scale(self) -> Competency:
        if self.scale_max <= self.scale_min:
            raise ValueError(f"competency {self.competency_id!r}: scale_max must be greater than scale_min")
        return self


class RaterLimit(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: int = Field(default=0, ge=0, le=50)
    max: int = Field(default=10, ge=0, le=50)

    @model_validator(mode="after")
    def _order(self) -> RaterLimit:
        if self.min > self.max:
            raise ValueError(f"rater limit min ({self.min}) exceeds max ({self.max})")
        return self


class LookupRow(BaseModel):
    """Actual values in ``[min_actual, max_actual)`` score ``rating`` (on the rating scale)."""

    model_config = ConfigDict(extra="forbid")

    min_actual: float | None = Field(default=None, description="Inclusive lower bound; None = open.")
    max_actual: float | None = Field(default=None, description="Exclusive upper bound; None = open.")
    rating: float


DEFAULT_COMPETENCIES: tuple[Competency, ...] = (
    Competency(competency_id="delivery", name="Delivers results"),
    Competency(competency_id="collaboration", name="Collaborates across teams"),
    Competency(competency_id="ownership", name="Takes ownership"),
    Competency(competency_id="growth", name="Learns and develops others"),
)
"""Competencies rated in review forms when the configuration names none."""


def _default_limits() -> dict[Relation, RaterLimit]:
    return {
        Relation.SELF: RaterLimit(min=0, max=1),
        Relation.MANAGER: RaterLimit(min=0, max=1),
        Relation.PEER: RaterLimit(min=0, max=8),
        Relation.CROSS_DEPARTMENT: RaterLimit(min=0, max=5),
    }


class EvaluationConfig(ScoringConfig):
    """``PUT /v1/cycles/{id}/config`` on evaluation: the cycle template's scoring rules (the
    ``ScoringConfig`` fields: weights, rating scale, formula) and the evaluation stage's settings."""

    competencies: list[Competency] = Field(
        default_factory=lambda: list(DEFAULT_COMPETENCIES), min_length=1, max_length=50
    )
    calibration: CalibrationGuideline = Field(default_factory=CalibrationGuideline)
    peer_anonymity_threshold: PeerAnonymityThreshold = 3
    attainment_cap: float = Field(default=1.2, ge=1.0, le=5.0, description="Maximum goal attainment (1.2 = 120%).")
    rater_limits: dict[Relation, RaterLimit] = Field(default_factory=_default_limits)
    lookup_tables: dict[str, list[LookupRow]] = Field(
        default_factory=dict, description="Goal id or KPI id -> rows mapping actual ranges to a rating."
    )
    deviation_z_threshold: float = Field(
        default=1.0,
        gt=0,
        description="A department or manager whose mean sits this many company standard deviations above "
        "(below) the company mean is flagged lenient (strict).",
    )

    @model_validator(mode="after")
    def _settings_fit_the_scale(self) -> EvaluationConfig:
        problems = self.calibration.problems(self.rating_scale)
        ids = [c.competency_id for c in self.competencies]
        if len(set(ids)) != len(ids):
            problems.append(f"competency ids must be unique, got {ids}")
        scale = self.rating_scale
        for key, rows in self.lookup_tables.items():
            for row in rows:
                if not scale.min <= row.rating <= scale.max:
                    problems.append(
                        f"lookup_tables[{key!r}]: rating {row.rating:g} is outside the rating scale "
                        f"{scale.min:g}..{scale.max:g}"
                    )
                if row.min_actual is not None and row.max_actual is not None and row.max_actual <= row.min_actual:
                    problems.append(f"lookup_tables[{key!r}]: max_actual must be greater than min_actual")
        if problems:
            raise rule("; ".join(problems))
        return self


def evaluation_config(spec: CycleTemplateSpec) -> EvaluationConfig:
    """The evaluation service's configuration for a cycle of template ``spec``.

    The template's scoring section passes unchanged (it is the same ``ScoringConfig``, one
    grammar); the calibration guideline and the peer-anonymity threshold come from the
    template's own fields; the other settings keep their defaults.
    """
    return EvaluationConfig(
        **dict(spec.scoring),
        calibration=spec.calibration,
        peer_anonymity_threshold=spec.peer_anonymity_threshold,
    )


class AppealAdjustmentRequest(BaseModel):
    """``POST /v1/cycles/{id}/appeal-adjustments`` on evaluation: an appeal HR resolved as "adjusted".

    Give ``new_score`` or ``new_rating`` (or both, consistent). Retrying with the same
    ``appeal_id`` returns the recorded adjustment instead of applying it twice.
    """

    model_config = ConfigDict(extra="forbid")

    employee_id: Id
    appeal_id: Id
    new_score: float | None = None
    new_rating: str | None = Field(default=None, max_length=32)
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _something_to_set(self) -> AppealAdjustmentRequest:
        if self.new_score is None and self.new_rating is None:
            raise ValueError("give new_score or new_rating")
        return self


class CalibrationAdjustment(BaseModel):
    """One entry of the calibration audit trail (calibration and appeal adjustments)."""

    model_config = ConfigDict(extra="forbid")

    adjustment_id: int
    cycle_id: Id
    employee_id: Id
    kind: str = Field(max_length=16, description="'calibration' or 'appeal'.")
    before_score: float | None
    before_rating: str | None
    after_score: float
    after_rating: str
    reason: str
    actor: str = Field(description="The ``sub`` of whoever made the change.")
    appeal_id: str | None = None
    created_at: datetime


SCHEMA_EXPORTS = {
    "cycle_results.v1": CycleResults,
    "collaboration_matrix.v1": CollaborationMatrix,
    "evaluation_config.v1": EvaluationConfig,
    "appeal_adjustment_request.v1": AppealAdjustmentRequest,
    "calibration_adjustment.v1": CalibrationAdjustment,
}
