"""The configurable rules of result application, stored per cycle (``PUT /v1/cycles/{id}/policy``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "AwardRule",
    "BonusCaps",
    "Curve",
    "DevelopmentRule",
    "LinearCurve",
    "PromotionRule",
    "RatingMultiplierCurve",
    "ResultsPolicy",
]


class RatingMultiplierCurve(BaseModel):
    """Each person's share weight is the multiplier of their rating band."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["rating_multiplier"] = "rating_multiplier"
    multipliers: dict[Annotated[str, Field(max_length=32)], Annotated[float, Field(ge=0, le=100)]] = Field(
        min_length=1, description="Rating label -> weight, e.g. {'exceeds': 1.5, 'meets': 1.0, 'below': 0}."
    )


class LinearCurve(BaseModel):
    """Share weight grows linearly with the calibrated score above ``floor_score`` (0 at or below it)."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["linear"] = "linear"
    floor_score: float | None = Field(default=None, description="Defaults to the cycle's scale minimum.")


Curve = Annotated[RatingMultiplierCurve | LinearCurve, Field(discriminator="type")]


class BonusCaps(BaseModel):
    """Per-person caps; when both are set the lower one applies."""

    model_config = ConfigDict(extra="forbid")

    max_pct_of_pool: float | None = Field(default=None, gt=0, le=100, description="At most this % of the pool.")
    max_cents: int | None = Field(default=None, ge=0, description="At most this amount in minor units.")


class PromotionRule(BaseModel):
    """Nominate when the rating is in ``ratings``, the score is at least ``min_score`` and the grade is not the top."""

    model_config = ConfigDict(extra="forbid")

    ratings: list[Annotated[str, Field(max_length=32)]] = Field(default_factory=lambda: ["exceeds", "outstanding"])
    min_score: float | None = None
    grade_ladder: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list, description="Grades from lowest to highest; the last is the top grade."
    )


class DevelopmentRule(BaseModel):
    """A draft development plan for ratings in ``ratings`` or scores below ``below_score``."""

    model_config = ConfigDict(extra="forbid")

    ratings: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=lambda: ["below", "needs_improvement", "unsatisfactory"]
    )
    below_score: float | None = None
    default_due_days: int = Field(default=90, ge=1, le=730)


class AwardRule(BaseModel):
    """'Best collaboration team': received collaboration ratings plus shared-goal contributions."""

    model_config = ConfigDict(extra="forbid")

    min_rater_departments: int = Field(default=2, ge=1, description="Departments that must have rated it.")
    collaboration_weight: float = Field(default=0.7, ge=0, le=1)
    shared_goals_weight: float = Field(default=0.3, ge=0, le=1)
    rating_scale_min: float = 1.0
    rating_scale_max: float = 5.0

    @model_validator(mode="after")
    def _check(self) -> AwardRule:
        if self.rating_scale_max <= self.rating_scale_min:
            raise ValueError("rating_scale_max must be greater than rating_scale_min")
        if abs(self.collaboration_weight + self.shared_goals_weight - 1) > 1e-9:
            raise ValueError("collaboration_weight and shared_goals_weight must sum to 1")
        return self


class ResultsPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    curve: Curve = Field(default_factory=LinearCurve)
    caps: BonusCaps = Field(default_factory=BonusCaps)
    promotion: PromotionRule = Field(default_factory=PromotionRule)
    development: DevelopmentRule = Field(default_factory=DevelopmentRule)
    awards: AwardRule = Field(default_factory=AwardRule)
    report_top_pairs: int = Field(default=3, ge=1, le=50, description="Strongest/weakest pairs in the report.")
