"""What the results service publishes and the rules it applies.

**Events.** ``ResultsPublished`` is a ``DomainEvent`` on ``cycle.events.v1`` whose ``payload`` is a
``ResultsPublishedPayload``. A large cycle is split into parts (``part`` of ``parts``, at most
``MAX_LINES_PER_EVENT`` lines each) so no Kafka message grows without bound. An appeal adjusted
after publication changes what was paid: ``ResultsCorrected`` (schema_version 1, payload
``ResultsCorrectedPayload``) carries the new absolute values of every line that changed, numbered by
a per-cycle ``sequence``. Consumers deduplicate on the event's ``event_id`` (delivery is
at-least-once) and apply a correction line only when its ``sequence`` is newer than the last one
they applied to that person (the publication counts as sequence 0), so replays and reordering
cannot move a payout back.

**Policy.** ``ResultsPolicy`` is a cycle's result-application rules: the bonus curve and caps,
who is nominated for promotion, who gets a development plan, the collaboration award, and whether
publication waits for appeals. A cycle template carries one (``CycleTemplateSpec.results``);
:func:`results_policy` resolves it against the template's rating scale. Labels a rule names must
be bands of that scale (``ResultsPolicy.problems``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contracts.ids import Id
from contracts.readers import reader
from contracts.scoring import BandLabel

if TYPE_CHECKING:
    from contracts.templates import CycleTemplateSpec

__all__ = [
    "COLLABORATION_AWARD_ANNOUNCED",
    "LEGACY_DEVELOPMENT_RATINGS",
    "LEGACY_PROMOTION_RATINGS",
    "MAX_LINES_PER_EVENT",
    "RESULTS_CORRECTED",
    "RESULTS_PUBLISHED",
    "SCHEMA_EXPORTS",
    "AwardRule",
    "BonusCaps",
    "CollaborationAwardAnnouncedPayload",
    "CorrectedResultLine",
    "Curve",
    "DepartmentBonusTotal",
    "DevelopmentRule",
    "LinearCurve",
    "PolicyFromTemplate",
    "PoolApproval",
    "PromotionRule",
    "Publication",
    "PublishedResultLine",
    "RatingMultiplierCurve",
    "ResultsCorrectedPayload",
    "ResultsPolicy",
    "ResultsPolicyV1",
    "ResultsPublishedPayload",
    "results_policy",
]


RESULTS_PUBLISHED: Final = "ResultsPublished"
RESULTS_CORRECTED: Final = "ResultsCorrected"
COLLABORATION_AWARD_ANNOUNCED: Final = "CollaborationAwardAnnounced"
MAX_LINES_PER_EVENT: Final = 1000


# -- events -----------------------------------------------------------------------------------
class PublishedResultLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: Id
    department_id: Id
    final_score: float
    rating: str = Field(max_length=32)
    bonus_cents: int = Field(ge=0, description="Allocated bonus in minor units (0 when none).")
    currency: str | None = Field(default=None, max_length=3, description="ISO 4217 code of the bonus.")
    promotion_nominated: bool = False


class DepartmentBonusTotal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department_id: Id
    pool_cents: int = Field(ge=0)
    allocated_cents: int = Field(ge=0)
    currency: str = Field(max_length=3)


class ResultsPublishedPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    publication_id: Id = Field(description="Same for every part of one publication.")
    part: int = Field(ge=1)
    parts: int = Field(ge=1)
    departments: list[DepartmentBonusTotal] = Field(description="Every department's pool and allocated total.")
    lines: list[PublishedResultLine]


class CollaborationAwardAnnouncedPayload(BaseModel):
    """``CollaborationAwardAnnounced``: the cycle's collaboration award as recorded at publication,
    once (never recomputed): the winning department and the money finance funded it with, for payroll
    to pay the department. No winner (nobody eligible) is announced too, with the reason."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    award: str = Field(max_length=100)
    winner_department_id: Id | None = Field(description="None when no department was eligible.")
    winner_name: str | None = Field(max_length=200)
    score: float | None
    reason: str = Field(max_length=500)
    fund_cents: int | None = Field(ge=0, description="The award fund finance set, paid to the winner; None: no fund.")
    currency: str | None = Field(max_length=3)
    announced_at: datetime


class CorrectedResultLine(PublishedResultLine):
    """A line's new values (absolute, not a difference) and what was published or corrected before."""

    previous_final_score: float
    previous_rating: str = Field(max_length=32)
    previous_bonus_cents: int = Field(ge=0)
    previous_promotion_nominated: bool = False


class ResultsCorrectedPayload(BaseModel):
    """``ResultsCorrected``: a published result changed (an appeal resolved after publication).

    Every line whose score, rating, bonus or nomination changed is listed with its new absolute
    values: one person's adjusted score re-divides their department's pool, so colleagues' bonuses
    move too. Apply a line only when ``sequence`` is newer than the last one applied to that person.
    """

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    publication_id: Id = Field(description="The publication this corrects.")
    correction_id: Id = Field(description="Same for every part of one correction.")
    sequence: int = Field(ge=1, description="Per cycle, increasing: later corrections win.")
    part: int = Field(ge=1)
    parts: int = Field(ge=1)
    reason: str = Field(max_length=2000)
    appeal_id: Id | None = Field(default=None, description="The feedback service's appeal, when one caused it.")
    departments: list[DepartmentBonusTotal] = Field(description="The affected departments' pools and new totals.")
    lines: list[CorrectedResultLine]


# -- policy -----------------------------------------------------------------------------------
Label = Annotated[str, Field(max_length=32)]

LEGACY_PROMOTION_RATINGS: Final = ("exceeds", "outstanding")
"""Promotion labels of a cycle whose rating bands the results service never learnt (results pushed
without ``bands`` and no template policy)."""
LEGACY_DEVELOPMENT_RATINGS: Final = ("below", "needs_improvement", "unsatisfactory")
"""Development labels of such a cycle."""


class RatingMultiplierCurve(BaseModel):
    """Each person's share weight is the multiplier of their rating band."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["rating_multiplier"] = "rating_multiplier"
    multipliers: dict[Label, Annotated[float, Field(ge=0, le=100)]] = Field(
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

    ratings: list[BandLabel] | None = Field(
        default=None, description="Rating bands that qualify; default: the two highest bands of the cycle's scale."
    )
    min_score: float | None = None
    grade_ladder: list[Label] = Field(
        default_factory=list, description="Grades from lowest to highest; the last is the top grade."
    )


class DevelopmentRule(BaseModel):
    """A draft development plan for ratings in ``ratings`` or scores below ``below_score``."""

    model_config = ConfigDict(extra="forbid")

    ratings: list[BandLabel] | None = Field(
        default=None, description="Rating bands that get a plan; default: the lowest band of the cycle's scale."
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
            raise ValueError("awards.rating_scale_max must be greater than rating_scale_min")
        if abs(self.collaboration_weight + self.shared_goals_weight - 1) > 1e-9:
            raise ValueError(
                f"awards.collaboration_weight ({self.collaboration_weight:g}) and shared_goals_weight "
                f"({self.shared_goals_weight:g}) must sum to 1"
            )
        return self


class PoolApproval(StrEnum):
    """Who signs a department's bonus pool off before HR may allocate it."""

    NONE = "none"
    """The pool is allocated as set (by finance or HR)."""
    FINANCE = "finance"
    """Finance approves the pool first; a changed amount or currency needs a new approval."""


class Publication(StrEnum):
    """When results are published while appeals may still change them."""

    WAIT_FOR_APPEALS = "wait_for_appeals"
    """Hold publication until the appeal window has closed and every appeal is resolved."""
    PUBLISH_AND_CORRECT = "publish_and_correct"
    """Publish when the stage ends; an appeal adjusted later is sent as ``ResultsCorrected``."""


class ResultsPolicy(BaseModel):
    """``PUT /v1/cycles/{id}/policy`` on results, and a template's ``results`` section."""

    model_config = ConfigDict(extra="forbid")

    curve: Curve = Field(default_factory=LinearCurve)
    caps: BonusCaps = Field(default_factory=BonusCaps)
    promotion: PromotionRule = Field(default_factory=PromotionRule)
    development: DevelopmentRule = Field(default_factory=DevelopmentRule)
    awards: AwardRule = Field(default_factory=AwardRule)
    report_top_pairs: int = Field(default=3, ge=1, le=50, description="Strongest/weakest pairs in the report.")
    publication: Publication = Field(
        default=Publication.PUBLISH_AND_CORRECT,
        description="wait_for_appeals: publish once the appeal window closed and no appeal is open; "
        "publish_and_correct: publish at the end of the stage and correct later appeals with ResultsCorrected.",
    )

    pool_approval: PoolApproval = Field(
        default=PoolApproval.NONE,
        description="finance: a pool is allocated only once finance approved it "
        "(POST .../pools/{department}/approval); none: as set.",
    )

    def promotion_ratings(self, labels: Sequence[str]) -> list[str]:
        """The labels that qualify for promotion, the default resolved against ``labels`` (lowest first)."""
        if self.promotion.ratings is not None:
            return list(self.promotion.ratings)
        return list(labels[-2:]) if labels else list(LEGACY_PROMOTION_RATINGS)

    def development_ratings(self, labels: Sequence[str]) -> list[str]:
        """The labels that get a development plan, the default resolved against ``labels`` (lowest first)."""
        if self.development.ratings is not None:
            return list(self.development.ratings)
        return list(labels[:1]) if labels else list(LEGACY_DEVELOPMENT_RATINGS)

    def problems(self, labels: Sequence[str], *, where: str = "") -> list[str]:
        """Labels the rules name that are not bands of the scale (``labels``); empty if none, or when the
        scale is not known (no ``labels``)."""
        if not labels:
            return []
        named = {
            "promotion.ratings": self.promotion.ratings or [],
            "development.ratings": self.development.ratings or [],
        }
        if isinstance(self.curve, RatingMultiplierCurve):
            named["curve.multipliers"] = list(self.curve.multipliers)
        problems = []
        for field, values in named.items():
            unknown = [v for v in values if v not in labels]
            if unknown:
                problems.append(f"{where}{field}: {unknown} are not rating bands; the bands are {list(labels)}")
        if isinstance(self.curve, RatingMultiplierCurve):
            missing = [label for label in labels if label not in self.curve.multipliers]
            if missing:
                problems.append(f"{where}curve.multipliers: no multiplier for band(s) {missing}")
        return problems

    def resolved(self, labels: Sequence[str]) -> ResultsPolicy:
        """This policy with its default labels spelled out for the scale ``labels`` (lowest first)."""
        return self.model_copy(
            update={
                "promotion": self.promotion.model_copy(update={"ratings": self.promotion_ratings(labels)}),
                "development": self.development.model_copy(update={"ratings": self.development_ratings(labels)}),
            }
        )


class PolicyFromTemplate(BaseModel):
    """``PUT /v1/cycles/{id}/policy/template`` on results: the template's policy and the rating bands it
    was checked against (so HR's later changes are checked against the same bands)."""

    model_config = ConfigDict(extra="forbid")

    policy: ResultsPolicy
    rating_labels: list[BandLabel] = Field(min_length=1, max_length=20, description="Lowest first.")


def results_policy(spec: CycleTemplateSpec) -> PolicyFromTemplate:
    """The results service's policy for a cycle of template ``spec``: the template's ``results``
    section with its default labels resolved against the template's rating scale."""
    labels = [b.label for b in spec.scoring.rating_scale.bands]
    return PolicyFromTemplate(policy=spec.results.resolved(labels), rating_labels=labels)


ResultsPolicyV1 = reader(ResultsPolicy, "ResultsPolicyV1", drop={"pool_approval"})
"""Reader of ``results_policy.v1`` (before ``pool_approval``)."""

SCHEMA_EXPORTS = {
    "results_published.v1": ResultsPublishedPayload,
    "results_corrected.v1": ResultsCorrectedPayload,
    "results_policy.v1": ResultsPolicyV1,
    "results_policy.v2": ResultsPolicy,
}
