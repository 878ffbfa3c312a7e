"""What the evaluation service exports and accepts.

Exports: calibrated results (``CycleResults``) and the collaboration matrix.
Accepts: the cycle's configuration (``EvaluationConfig``: the template's ``ScoringConfig`` with
the template's ``EvaluationSettings``, the calibration guideline and the anonymity threshold,
built by ``evaluation_config``), the goals' keys (``GoalKeys``: which KPI template and metric
each goal comes from, so lookup tables can name them) and appeal adjustments from the feedback
service (``AppealAdjustmentRequest`` -> ``CalibrationAdjustment``).

``EvaluationSettings`` is a template's ``evaluation`` section: competencies (with weights),
rater limits, lookup tables keyed by KPI template key or metric, the attainment cap, the
deviation threshold, what a reviewee sees of peer reviews and when the collaboration component
counts. Each refused setting names its field.

Who sees peer and cross-department reviews is set per template and locked once the cycle's
review assignments exist (the evaluation service refuses a change that would show raters more
than they were promised when they wrote): ``peer_visibility`` is what the reviewee sees of the
aggregates, ``peer_visibility_for_managers`` whether the reviewee's managers and department heads
see the aggregates only (the default) or each review with its rater's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.errors import rule
from contracts.ids import Id
from contracts.readers import reader
from contracts.scoring import (
    CalibrationGuideline,
    PeerAnonymityThreshold,
    RatingBand,
    RatingScale,
    ScoringConfig,
)

if TYPE_CHECKING:
    from contracts.templates import CycleTemplateSpec

__all__ = [
    "ANONYMOUS",
    "DEFAULT_COMPETENCIES",
    "DEFAULT_RATER_LIMITS",
    "SCHEMA_EXPORTS",
    "UNSCORED",
    "AppealAdjustmentRequest",
    "CalibrationAdjustment",
    "CollaborationCell",
    "CollaborationMatrix",
    "CollaborationSettings",
    "Competency",
    "CycleResults",
    "EmployeeResult",
    "EvaluationConfig",
    "EvaluationConfigV1",
    "EvaluationSettings",
    "EvaluationSettingsV1",
    "GoalKey",
    "GoalKeys",
    "LookupRow",
    "LookupTable",
    "ManagerPeerVisibility",
    "PeerVisibility",
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
    bands: list[RatingBand] = Field(
        default_factory=list, description="The rating scale's bands, lowest first (empty from older senders)."
    )
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
    UPWARD = "upward"
    """A report rates their manager (generated when the template's ``evaluation.upward_review`` is on):
    anonymous at the threshold like peers, feedback for the manager, never part of any score."""


ANONYMOUS = (Relation.PEER, Relation.CROSS_DEPARTMENT)
"""Relations whose raters are nominated, never named to the reviewee, and count at the anonymity threshold."""
UNSCORED = (Relation.UPWARD,)
"""Relations that are feedback only: anonymous at the threshold too, never a scoring component."""

Percent = Annotated[float, Field(ge=0, le=100)]


class Competency(BaseModel):
    """A competency rated in review forms, on its own scale (normalised onto the rating scale)."""

    model_config = ConfigDict(extra="forbid")

    competency_id: Id
    name: str = Field(max_length=200)
    scale_min: float = 1.0
    scale_max: float = 5.0
    weight: Percent | None = Field(
        default=None,
        description="Share of a review's score in percent; give every competency a weight (summing to 100) "
        "or none (equal shares).",
    )

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


class LookupTable(BaseModel):
    """Maps a KPI's actual value to a rating, for the goals it names: every goal bulk-assigned from a
    KPI template (``template_key``), every goal fed by a metric (``metric``), or one goal
    (``goal_id``). Rows cover every actual value: the lowest is open below, the highest open above,
    and each starts where the one below ends (no gap, no overlap)."""

    model_config = ConfigDict(extra="forbid")

    template_key: Id | None = Field(default=None, description="The goals' KPI template key (bulk assignment).")
    metric: str | None = Field(default=None, min_length=1, max_length=128, description="The goals' metric key.")
    goal_id: Id | None = Field(default=None, description="One goal (or KPI) id.")
    rows: list[LookupRow] = Field(min_length=1, max_length=50)

    @property
    def key(self) -> tuple[str, str]:
        """(``template_key`` | ``metric`` | ``goal_id``, value)."""
        for name in ("template_key", "metric", "goal_id"):
            value = getattr(self, name)
            if value is not None:
                return name, value
        raise AssertionError("a lookup table names one key")  # the validator guarantees one

    @model_validator(mode="after")
    def _one_key_and_contiguous_rows(self) -> LookupTable:
        keys = [n for n in ("template_key", "metric", "goal_id") if getattr(self, n) is not None]
        if len(keys) != 1:
            raise rule(f"a lookup table names exactly one of template_key, metric or goal_id, got {keys or 'none'}")
        name = f"lookup table for {keys[0]} {getattr(self, keys[0])!r}"
        rows = sorted(self.rows, key=lambda r: float("-inf") if r.min_actual is None else r.min_actual)
        problems = []
        if rows[0].min_actual is not None:
            problems.append(f"the lowest row must be open below (min_actual null), not start at {rows[0].min_actual:g}")
        if rows[-1].max_actual is not None:
            problems.append(f"the highest row must be open above (max_actual null), not end at {rows[-1].max_actual:g}")
        for below, above in zip(rows, rows[1:], strict=False):
            if below.max_actual is None or above.min_actual is None:
                problems.append("only the lowest row may be open below and only the highest open above")
            elif above.min_actual > below.max_actual:
                problems.append(f"gap between {below.max_actual:g} and {above.min_actual:g}")
            elif above.min_actual < below.max_actual:
                problems.append(f"rows overlap between {above.min_actual:g} and {below.max_actual:g}")
        for row in rows:
            if row.min_actual is not None and row.max_actual is not None and row.max_actual <= row.min_actual:
                problems.append(f"a row's max_actual ({row.max_actual:g}) must be above its min_actual")
        if problems:
            raise rule(f"{name}: " + "; ".join(dict.fromkeys(problems)))
        self.rows = rows
        return self


class PeerVisibility(StrEnum):
    """What a reviewee sees of their peer and cross-department reviews (once at the anonymity
    threshold; their managers and HR always see the aggregates with comments). Ordered from the
    most to the least revealing."""

    AGGREGATE_WITH_COMMENTS = "aggregate_with_comments"
    """Mean score, mean per competency and the comments (unattributed)."""
    AGGREGATE = "aggregate"
    """Mean score and mean per competency, no comments."""
    COUNTS_ONLY = "counts_only"
    """How many were asked and submitted, nothing of the content."""


class ManagerPeerVisibility(StrEnum):
    """What the reviewee's managers and department heads (and ops) see of peer and
    cross-department reviews. HR reads every review whatever this says."""

    AGGREGATE = "aggregate"
    """The relation's anonymous aggregate (mean, per-competency means, unattributed comments), never
    one review or who wrote what. The default: raters are told their review is anonymous."""
    ATTRIBUTED = "attributed"
    """The reviewee's managers and heads also read each review with its rater's name; raters are
    told so on the assignment (``shown_to_managers``) before they write. Ops still sees aggregates."""


class CollaborationSettings(BaseModel):
    """When the ``collaboration`` component (the ratings an employee's department received) counts.

    Only ratings along a confirmed link count (a shared goal, or a collaboration declared by HR or
    by the heads of both departments), and the component never moves a person's score by more
    than its weight's share of the rating scale (``weight / 100 × (max − min)``), whatever the
    other components are: one department cannot sink another beyond what the template allows.
    """

    model_config = ConfigDict(extra="forbid")

    min_rater_departments: int = Field(
        default=1,
        ge=1,
        le=50,
        description="It counts once at least this many departments, each linked by a confirmed collaboration "
        "or a shared goal, rated the department.",
    )


DEFAULT_COMPETENCIES: tuple[Competency, ...] = (
    Competency(competency_id="delivery", name="Delivers results"),
    Competency(competency_id="collaboration", name="Collaborates across teams"),
    Competency(competency_id="ownership", name="Takes ownership"),
    Competency(competency_id="growth", name="Learns and develops others"),
)
"""Competencies rated in review forms when the configuration names none."""

DEFAULT_RATER_LIMITS: dict[Relation, RaterLimit] = {
    Relation.SELF: RaterLimit(min=0, max=1),
    Relation.MANAGER: RaterLimit(min=0, max=1),
    Relation.PEER: RaterLimit(min=0, max=8),
    Relation.CROSS_DEPARTMENT: RaterLimit(min=0, max=5),
}
"""Self and manager reviews are generated (one each); peer and cross-department raters are nominated."""


class EvaluationSettings(BaseModel):
    """The evaluation stage's settings beyond the scoring rules: a template's ``evaluation`` section."""

    model_config = ConfigDict(extra="forbid")

    competencies: list[Competency] = Field(
        default_factory=lambda: list(DEFAULT_COMPETENCIES), min_length=1, max_length=50
    )
    rater_limits: dict[Relation, RaterLimit] = Field(
        default_factory=lambda: dict(DEFAULT_RATER_LIMITS),
        description="Raters per reviewee and relation: managers owe nominations below min, none beyond max. "
        "Relations left out keep their default; self and manager are generated, one each.",
    )
    lookup_tables: list[LookupTable] = Field(
        default_factory=list,
        max_length=500,
        description="Actual-to-rating tables for goals by KPI template key, metric or goal id (in that order "
        "of precedence: goal id, template key, metric).",
    )
    attainment_cap: float = Field(default=1.2, ge=1.0, le=5.0, description="Maximum goal attainment (1.2 = 120%).")
    deviation_z_threshold: float = Field(
        default=1.0,
        gt=0,
        description="A department or manager whose mean sits this many company standard deviations above "
        "(below) the company mean is flagged lenient (strict).",
    )
    peer_visibility: PeerVisibility = PeerVisibility.AGGREGATE_WITH_COMMENTS
    peer_visibility_for_managers: ManagerPeerVisibility = Field(
        default=ManagerPeerVisibility.AGGREGATE,
        description="Whether the reviewee's managers and department heads see peer and cross-department "
        "reviews only as the anonymous aggregate ('aggregate', the default) or each with its rater "
        "('attributed', shown as such to the raters).",
    )
    collaboration: CollaborationSettings = Field(default_factory=CollaborationSettings)
    upward_review: bool = Field(
        default=False,
        description="Generate an upward review of every manager by each of their reports: anonymous at the "
        "anonymity threshold like peer reviews, shown to the manager (and above) as feedback, never scored.",
    )

    @field_validator("rater_limits", mode="before")
    @classmethod
    def _limits_keep_their_defaults(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {**{r.value: limit for r, limit in DEFAULT_RATER_LIMITS.items()}, **value}
        return value

    @field_validator("lookup_tables", mode="before")
    @classmethod
    def _tables_by_goal_id(cls, value: Any) -> Any:
        """The earlier shape, ``{goal id: rows}``, reads as tables keyed by goal id."""
        if isinstance(value, dict):
            return [{"goal_id": key, "rows": rows} for key, rows in value.items()]
        return value

    def problems(self, scale: RatingScale, *, where: str = "") -> list[str]:
        """What makes these settings unusable on ``scale``; empty if none. ``where`` prefixes field names."""
        problems: list[str] = []
        ids = [c.competency_id for c in self.competencies]
        if len(set(ids)) != len(ids):
            problems.append(f"{where}competencies: competency ids must be unique, got {ids}")
        weighted = [c for c in self.competencies if c.weight is not None]
        if weighted and len(weighted) != len(self.competencies):
            unweighted = [c.competency_id for c in self.competencies if c.weight is None]
            problems.append(f"{where}competencies: give every competency a weight or none; no weight: {unweighted}")
        elif weighted and abs(sum(c.weight or 0 for c in weighted) - 100) > 1e-6:
            total = sum(c.weight or 0 for c in weighted)
            problems.append(f"{where}competencies: weights must sum to 100, got {total:g}")
        for relation in (Relation.SELF, Relation.MANAGER):
            if self.rater_limits.get(relation) != DEFAULT_RATER_LIMITS[relation]:
                problems.append(
                    f"{where}rater_limits.{relation.value}: {relation.value} reviews are generated, one each; "
                    "only peer and cross_department limits can be set"
                )
        seen: set[tuple[str, str]] = set()
        for index, table in enumerate(self.lookup_tables):
            if table.key in seen:
                problems.append(f"{where}lookup_tables[{index}]: a second table for {table.key[0]} {table.key[1]!r}")
            seen.add(table.key)
            outside = sorted({row.rating for row in table.rows if not scale.min <= row.rating <= scale.max})
            if outside:
                problems.append(
                    f"{where}lookup_tables[{index}] ({table.key[0]} {table.key[1]!r}): rating(s) {outside} outside "
                    f"the rating scale {scale.min:g}..{scale.max:g}"
                )
        return problems

    def table_for(self, *, goal_ids: Sequence[str], template_key: str | None, metric: str | None) -> LookupTable | None:
        """A goal's lookup table: by its goal (or KPI) id first, then its KPI template key, then its metric."""
        by_key = {table.key: table for table in self.lookup_tables}
        wanted = [("goal_id", i) for i in goal_ids] + [("template_key", template_key), ("metric", metric)]
        return next(
            (by_key[(kind, value)] for kind, value in wanted if value is not None and (kind, value) in by_key), None
        )


class EvaluationConfig(ScoringConfig, EvaluationSettings):
    """``PUT /v1/cycles/{id}/config`` on evaluation: the cycle template's scoring rules (the
    ``ScoringConfig`` fields: weights, rating scale, formula), its ``EvaluationSettings``, the
    calibration guideline and the anonymity threshold."""

    calibration: CalibrationGuideline = Field(default_factory=CalibrationGuideline)
    peer_anonymity_threshold: PeerAnonymityThreshold = 3

    @model_validator(mode="after")
    def _settings_fit_the_scale(self) -> EvaluationConfig:
        problems = self.calibration.problems(self.rating_scale) + self.problems(self.rating_scale)
        if problems:
            raise rule("; ".join(problems))
        return self


def evaluation_config(spec: CycleTemplateSpec) -> EvaluationConfig:
    """The evaluation service's configuration for a cycle of template ``spec``.

    The template's scoring section and its evaluation settings pass unchanged (the same models,
    one grammar); the calibration guideline and the peer-anonymity threshold come from the
    template's own fields.
    """
    return EvaluationConfig(
        **dict(spec.scoring),
        **dict(spec.evaluation),
        calibration=spec.calibration,
        peer_anonymity_threshold=spec.peer_anonymity_threshold,
    )


class GoalKey(BaseModel):
    """Where a goal comes from, for the lookup tables that name it."""

    model_config = ConfigDict(extra="forbid")

    goal_id: Id
    template_key: Id | None = Field(default=None, description="The KPI template it was bulk-assigned from.")
    metric: str | None = Field(default=None, max_length=128, description="The metric key that feeds it.")


class GoalKeys(BaseModel):
    """``PUT /v1/cycles/{id}/goal-keys`` on evaluation: each approved goal's template key and metric."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    goals: list[GoalKey]


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


EvaluationSettingsV1 = reader(EvaluationSettings, "EvaluationSettingsV1", drop={"upward_review"})
"""Reader of ``evaluation_settings.v1`` (before ``upward_review``)."""
EvaluationConfigV1 = reader(EvaluationConfig, "EvaluationConfigV1", drop={"upward_review"})
"""Reader of ``evaluation_config.v1`` (before ``upward_review``)."""

SCHEMA_EXPORTS = {
    "cycle_results.v1": CycleResults,
    "collaboration_matrix.v1": CollaborationMatrix,
    "evaluation_config.v1": EvaluationConfigV1,
    "evaluation_config.v2": EvaluationConfig,
    "evaluation_settings.v1": EvaluationSettingsV1,
    "evaluation_settings.v2": EvaluationSettings,
    "goal_keys.v1": GoalKeys,
    "appeal_adjustment_request.v1": AppealAdjustmentRequest,
    "calibration_adjustment.v1": CalibrationAdjustment,
}
