"""What the evaluation service exports and accepts.

Exports: calibrated results (``CycleResults``) and the collaboration matrix.
Accepts: the cycle's scoring configuration (``ScoringConfig``, from the cycle
template) and appeal adjustments from the feedback service
(``AppealAdjustmentRequest`` -> ``CalibrationAdjustment``).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Final

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.ids import Id

__all__ = [
    "COMPONENTS",
    "SCHEMA_EXPORTS",
    "AppealAdjustmentRequest",
    "BandGuideline",
    "CalibrationAdjustment",
    "CollaborationCell",
    "CollaborationMatrix",
    "Competency",
    "CycleResults",
    "EmployeeResult",
    "LookupRow",
    "RaterLimit",
    "RatingBand",
    "RatingScale",
    "Relation",
    "ScoringConfig",
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


COMPONENTS: Final = ("goals", "self", "manager", "peer", "cross_department", "collaboration")
"""Names a final-score formula may use; each is normalised onto the rating scale first."""


class RatingBand(BaseModel):
    """One rating band: scores in ``[min, max)`` get ``label`` (the top band includes ``max``)."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=32)
    min: float
    max: float


class RatingScale(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float = 1.0
    max: float = 5.0
    bands: list[RatingBand] = Field(min_length=1, max_length=20)

    @model_validator(mode="after")
    def _bands_cover_the_scale(self) -> RatingScale:
        if self.max <= self.min:
            raise ValueError(f"rating_scale.max ({self.max}) must be greater than rating_scale.min ({self.min})")
        bands = sorted(self.bands, key=lambda b: b.min)
        labels = [b.label for b in bands]
        if len(set(labels)) != len(labels):
            raise ValueError(f"rating band labels must be unique, got {labels}")
        if bands[0].min != self.min or bands[-1].max != self.max:
            raise ValueError(
                f"rating bands must cover the scale from {self.min} to {self.max}; "
                f"they cover {bands[0].min} to {bands[-1].max}"
            )
        for lower, upper in zip(bands, bands[1:], strict=False):
            if lower.max != upper.min:
                raise ValueError(
                    f"rating band {lower.label!r} ends at {lower.max} but {upper.label!r} starts at {upper.min}; "
                    "bands must be contiguous"
                )
        for band in bands:
            if band.max <= band.min:
                raise ValueError(f"rating band {band.label!r}: max must be greater than min")
        self.bands = bands
        return self


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


class BandGuideline(BaseModel):
    """Calibration guideline for one band, as shares of the population (0..1)."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(min_length=1, max_length=32)
    max_share: float = Field(default=1.0, ge=0, le=1)
    min_share: float = Field(default=0.0, ge=0, le=1)


class LookupRow(BaseModel):
    """Actual values in ``[min_actual, max_actual)`` score ``rating`` (on the rating scale)."""

    model_config = ConfigDict(extra="forbid")

    min_actual: float | None = Field(default=None, description="Inclusive lower bound; None = open.")
    max_actual: float | None = Field(default=None, description="Exclusive upper bound; None = open.")
    rating: float


def _default_competencies() -> list[Competency]:
    return [Competency(competency_id="overall", name="Overall contribution")]


def _default_limits() -> dict[Relation, RaterLimit]:
    return {
        Relation.SELF: RaterLimit(min=0, max=1),
        Relation.MANAGER: RaterLimit(min=0, max=1),
        Relation.PEER: RaterLimit(min=0, max=8),
        Relation.CROSS_DEPARTMENT: RaterLimit(min=0, max=5),
    }


class ScoringConfig(BaseModel):
    """``PUT /v1/cycles/{id}/config`` on evaluation: the scoring rules from the cycle template."""

    model_config = ConfigDict(extra="forbid")

    rating_scale: RatingScale
    competencies: list[Competency] = Field(default_factory=_default_competencies, min_length=1, max_length=50)
    component_weights: dict[str, float] = Field(
        default_factory=lambda: {"goals": 50.0, "manager": 30.0, "peer": 10.0, "cross_department": 10.0},
        description=f"Weight per component ({', '.join(COMPONENTS)}); used by weighted() and renormalised "
        "over the components an employee actually has.",
    )
    formula: str = Field(
        default="weighted()",
        min_length=1,
        max_length=500,
        description="Final-score expression over the component names: numbers, + - * /, parentheses, "
        "min(), max(), round(), abs(), weighted(). Never eval'd.",
    )
    calibration_guideline: list[BandGuideline] = Field(default_factory=list)
    peer_anonymity_threshold: int = Field(
        default=3, ge=1, le=50, description="Peer/cross-department aggregates need this many submitted ratings."
    )
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

    @field_validator("component_weights")
    @classmethod
    def _known_components(cls, value: dict[str, float]) -> dict[str, float]:
        unknown = sorted(set(value) - set(COMPONENTS))
        if unknown:
            raise ValueError(f"unknown component(s) {unknown}; components are {list(COMPONENTS)}")
        negative = sorted(k for k, w in value.items() if w < 0)
        if negative:
            raise ValueError(f"component weights must be >= 0; negative: {negative}")
        if not any(w > 0 for w in value.values()):
            raise ValueError("at least one component weight must be positive")
        return value

    @model_validator(mode="after")
    def _guideline_and_lookups(self) -> ScoringConfig:
        labels = {b.label for b in self.rating_scale.bands}
        for guideline in self.calibration_guideline:
            if guideline.label not in labels:
                raise ValueError(
                    f"calibration_guideline names band {guideline.label!r}, which is not one of {sorted(labels)}"
                )
            if guideline.min_share > guideline.max_share:
                raise ValueError(f"calibration_guideline {guideline.label!r}: min_share exceeds max_share")
        ids = [c.competency_id for c in self.competencies]
        if len(set(ids)) != len(ids):
            raise ValueError(f"competency ids must be unique, got {ids}")
        for key, rows in self.lookup_tables.items():
            for row in rows:
                if not self.rating_scale.min <= row.rating <= self.rating_scale.max:
                    raise ValueError(
                        f"lookup_tables[{key!r}]: rating {row.rating} is outside the rating scale "
                        f"{self.rating_scale.min}..{self.rating_scale.max}"
                    )
                if row.min_actual is not None and row.max_actual is not None and row.max_actual <= row.min_actual:
                    raise ValueError(f"lookup_tables[{key!r}]: max_actual must be greater than min_actual")
        return self


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
    "scoring_config.v1": ScoringConfig,
    "appeal_adjustment_request.v1": AppealAdjustmentRequest,
    "calibration_adjustment.v1": CalibrationAdjustment,
}
