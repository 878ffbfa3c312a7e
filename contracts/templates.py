"""Cycle templates: how a review cycle is scheduled, scored and calibrated.

HR keeps templates in the cycles service (``POST /v1/templates``); a cycle copies
its template's spec when it is created, so editing a template never changes a
running cycle. The workflows read the stage plan, reminder cadence and late-data
policy; the evaluation service reads the scoring configuration, the calibration
guideline and the peer-anonymity threshold.

Days are calendar days. A stage *opens* the day the previous stage closes (the
first one on the cycle's start date), its *deadline* is ``deadline_days`` after it
opens, and it *closes* ``duration_days`` after it opens. Reminders go out
``reminder_days_before`` days before each deadline; an escalation follows
``escalate_days_after_deadline`` days after a missed deadline.

The scoring ``formula`` is an arithmetic expression over the component scores
(``kpi``, ``self``, ``manager``, ``peer``, ``cross_department``, each on the rating
scale) and their weights as fractions (``w_kpi``... = weight / 100), with ``+ - * /``,
parentheses, numbers, ``min(...)`` and ``max(...)``. :meth:`ScoringConfig.evaluate`
is the one interpreter of it.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.cycle import DeadlinePolicy, Stage
from contracts.errors import rule
from contracts.timing import ACTIVE_STAGES, CycleTiming, ReminderDays, StagePlan, StageWindow, unique_reminders

__all__ = [
    "ACTIVE_STAGES",
    "DEFAULT_FORMULA",
    "SCHEMA_EXPORTS",
    "BandLimit",
    "CalibrationGuideline",
    "CycleTemplateSpec",
    "LateDataPolicy",
    "RatingBand",
    "RatingScale",
    "ScoringComponent",
    "ScoringConfig",
    "StagePlan",
    "StageWindow",
    "formula_variables",
]

Label = Annotated[str, Field(min_length=1, max_length=64)]
Percent = Annotated[float, Field(ge=0, le=100)]
_rule = rule


class LateDataPolicy(StrEnum):
    """What tracking does with a metric event that arrives after the tracking deadline.

    * ``accept``: it still counts toward the period it occurred in (scores may move until evaluation starts).
    * ``reject``: it is dead-lettered with the reason ``late``; the period's numbers stay as they were.
    * ``next_period``: it is kept and counted toward the next cycle's period instead.
    """

    ACCEPT = "accept"
    REJECT = "reject"
    NEXT_PERIOD = "next_period"


class ScoringComponent(StrEnum):
    KPI = "kpi"
    SELF = "self"
    MANAGER = "manager"
    PEER = "peer"
    CROSS_DEPARTMENT = "cross_department"


DEFAULT_FORMULA = " + ".join(f"w_{c.value} * {c.value}" for c in ScoringComponent)
"""The weighted sum of every component."""


class RatingBand(BaseModel):
    """A named score range: ``min_score <= score < max_score`` (the top band includes its max)."""

    model_config = ConfigDict(extra="forbid")

    label: Label
    min_score: float
    max_score: float


class RatingScale(BaseModel):
    model_config = ConfigDict(extra="forbid")

    min: float = Field(default=1, description="Lowest possible score.")
    max: float = Field(default=5, description="Highest possible score.")
    bands: list[RatingBand] = Field(
        min_length=1, max_length=20, description="Contiguous ranges from min to max, lowest first."
    )

    @model_validator(mode="after")
    def _bands_cover_the_scale(self) -> RatingScale:
        problems: list[str] = []
        if not (math.isfinite(self.min) and math.isfinite(self.max)) or self.min >= self.max:
            raise _rule(f"rating_scale: min ({self.min}) must be below max ({self.max})")
        labels = [b.label for b in self.bands]
        duplicates = sorted({label for label in labels if labels.count(label) > 1})
        if duplicates:
            problems.append(f"band labels must be unique, repeated: {duplicates}")
        for i, band in enumerate(self.bands):
            if band.min_score >= band.max_score:
                problems.append(f"band '{band.label}': min_score {band.min_score} must be below max_score")
            if i > 0 and band.min_score != self.bands[i - 1].max_score:
                problems.append(
                    f"band '{band.label}' starts at {band.min_score} but the band below it "
                    f"('{self.bands[i - 1].label}') ends at {self.bands[i - 1].max_score}; bands must be contiguous, "
                    "lowest first"
                )
        if self.bands[0].min_score != self.min:
            problems.append(f"the lowest band must start at the scale min {self.min}, not {self.bands[0].min_score}")
        if self.bands[-1].max_score != self.max:
            problems.append(f"the highest band must end at the scale max {self.max}, not {self.bands[-1].max_score}")
        if problems:
            raise _rule("rating_scale: " + "; ".join(problems))
        return self

    def band_for(self, score: float) -> str:
        """The label of the band ``score`` falls in."""
        if not self.min <= score <= self.max:
            raise ValueError(f"score {score} is outside the rating scale {self.min}..{self.max}")
        for band in self.bands:
            if score < band.max_score:
                return band.label
        return self.bands[-1].label


_ALLOWED_FUNCTIONS = {"min": min, "max": max}
_BINARY_OPS = {ast.Add: float.__add__, ast.Sub: float.__sub__, ast.Mult: float.__mul__, ast.Div: float.__truediv__}


def _allowed_variables() -> set[str]:
    return {c.value for c in ScoringComponent} | {f"w_{c.value}" for c in ScoringComponent}


def formula_variables(formula: str) -> set[str]:
    """The variables a formula uses; ``ValueError`` with the reason if it is not a valid formula."""
    try:
        tree = ast.parse(formula, mode="eval")
    except SyntaxError as exc:
        raise ValueError(f"formula is not a valid expression: {exc.msg} at column {exc.offset}") from exc
    names: set[str] = set()
    allowed = _allowed_variables()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            if node.id in _ALLOWED_FUNCTIONS:
                continue
            if node.id not in allowed:
                raise ValueError(f"formula uses unknown name {node.id!r}; allowed: {sorted(allowed)}, min(), max()")
            names.add(node.id)
        elif isinstance(node, ast.Call):
            if not (isinstance(node.func, ast.Name) and node.func.id in _ALLOWED_FUNCTIONS) or node.keywords:
                raise ValueError("formula may call only min(...) and max(...), without keyword arguments")
            if not node.args:
                raise ValueError(f"{node.func.id}() in the formula needs at least one argument")
        elif isinstance(node, ast.Constant):
            if isinstance(node.value, bool) or not isinstance(node.value, int | float):
                raise ValueError(f"formula constant {node.value!r} is not a number")
        elif isinstance(node, ast.BinOp):
            if type(node.op) not in _BINARY_OPS:
                raise ValueError("formula may use only + - * / and parentheses")
        elif isinstance(node, ast.UnaryOp):
            if not isinstance(node.op, ast.UAdd | ast.USub):
                raise ValueError("formula may use only + - * / and parentheses")
        elif not isinstance(node, ast.Expression | ast.Load | ast.operator | ast.unaryop):
            raise ValueError(f"formula may not contain {type(node).__name__} expressions")
    return names


def _evaluate(node: ast.AST, values: Mapping[str, float]) -> float:
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, values)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.Name):
        return float(values[node.id])
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand, values)
        return -operand if isinstance(node.op, ast.USub) else operand
    if isinstance(node, ast.BinOp):
        left, right = _evaluate(node.left, values), _evaluate(node.right, values)
        if isinstance(node.op, ast.Div) and right == 0:
            raise ValueError("formula divides by zero")
        return _BINARY_OPS[type(node.op)](left, right)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
        return float(_ALLOWED_FUNCTIONS[node.func.id](_evaluate(arg, values) for arg in node.args))
    raise ValueError(f"cannot evaluate {type(node).__name__}")  # unreachable after formula_variables()


class ScoringConfig(BaseModel):
    """How the final score is computed from the component scores."""

    model_config = ConfigDict(extra="forbid")

    weights: dict[ScoringComponent, Percent] = Field(
        description="Component -> weight in percent; the weights sum to 100. Components left out weigh 0."
    )
    rating_scale: RatingScale
    formula: str = Field(default=DEFAULT_FORMULA, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _consistent(self) -> ScoringConfig:
        total = sum(self.weights.values())
        if not math.isclose(total, 100, abs_tol=1e-6):
            weights = ", ".join(f"{k.value}={v:g}" for k, v in self.weights.items())
            raise _rule(f"scoring.weights must sum to 100, got {total:g} ({weights})")
        try:
            used = formula_variables(self.formula)
        except ValueError as exc:
            raise _rule(f"scoring.formula: {exc}") from exc
        unweighted = sorted(
            name for name in used if name.removeprefix("w_") not in {c.value for c in self.weights}
        )
        if unweighted:
            raise _rule(
                f"scoring.formula uses {unweighted} but scoring.weights has no weight for "
                f"{sorted({n.removeprefix('w_') for n in unweighted})}; add them (weight 0 is allowed)"
            )
        ignored = sorted(c.value for c, w in self.weights.items() if w > 0 and c.value not in used)
        if ignored:
            raise _rule(f"scoring.formula ignores weighted component(s) {ignored}; use them or set their weight to 0")
        return self

    def evaluate(self, scores: Mapping[str, float]) -> float:
        """The final score from the component scores (component name -> score on the rating scale)."""
        values: dict[str, float] = {f"w_{c.value}": w / 100 for c, w in self.weights.items()}
        needed = {n for n in formula_variables(self.formula) if not n.startswith("w_")}
        missing = sorted(needed - set(scores))
        if missing:
            raise ValueError(f"missing component score(s) {missing} needed by the formula")
        values.update({name: float(scores[name]) for name in needed})
        return _evaluate(ast.parse(self.formula, mode="eval"), values)


class BandLimit(BaseModel):
    """How many of a calibration group may (or must) land in one rating band."""

    model_config = ConfigDict(extra="forbid")

    band: Label = Field(description="A rating_scale band label.")
    max_percent: Percent | None = Field(default=None, description="At most this share of the group.")
    min_percent: Percent | None = Field(default=None, description="At least this share of the group.")

    @model_validator(mode="after")
    def _bounds(self) -> BandLimit:
        if self.max_percent is None and self.min_percent is None:
            raise _rule(f"calibration limit for band '{self.band}' needs max_percent or min_percent")
        if self.max_percent is not None and self.min_percent is not None and self.min_percent > self.max_percent:
            raise _rule(
                f"calibration limit for band '{self.band}': min_percent {self.min_percent:g} "
                f"exceeds max_percent {self.max_percent:g}"
            )
        return self


class CalibrationGuideline(BaseModel):
    """The target rating distribution that calibration checks each group against."""

    model_config = ConfigDict(extra="forbid")

    limits: list[BandLimit] = Field(default_factory=list, max_length=20)
    min_group_size: int = Field(
        default=10, ge=1, le=10_000, description="Groups smaller than this are not held to the limits."
    )


class CycleTemplateSpec(BaseModel):
    """Everything a cycle needs beyond its period and departments."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=2000)
    stages: list[StagePlan] = Field(description="One plan per stage, each active stage exactly once.")
    reminder_days_before: ReminderDays = Field(
        default_factory=lambda: [7, 1], description="Reminders go out this many days before each deadline."
    )
    escalate_days_after_deadline: int = Field(
        default=1,
        ge=0,
        le=60,
        description="A missed deadline goes to the department head at once and to HR this many days later (min 1).",
    )
    deadline_policy: DeadlinePolicy = Field(
        default=DeadlinePolicy.CLOSE,
        description="After HR is told of a missed deadline: close the stage with what is missing, or extend once.",
    )
    extension_days: int = Field(
        default=3, ge=1, le=60, description="How far the 'extend' deadline policy moves the deadline (once)."
    )
    scoring: ScoringConfig
    calibration: CalibrationGuideline = Field(default_factory=CalibrationGuideline)
    peer_anonymity_threshold: int = Field(
        default=3, ge=2, le=50, description="Peer ratings are shown only when at least this many peers rated."
    )
    late_data_policy: LateDataPolicy = LateDataPolicy.ACCEPT

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise _rule("name must not be blank")
        return value.strip()

    @field_validator("reminder_days_before")
    @classmethod
    def _reminders(cls, value: list[int]) -> list[int]:
        return unique_reminders(value, "reminder_days_before")

    @field_validator("stages")
    @classmethod
    def _every_stage_once(cls, value: list[StagePlan]) -> list[StagePlan]:
        seen = [p.stage for p in value]
        repeated = sorted({s.value for s in seen if seen.count(s) > 1})
        missing = [s.value for s in ACTIVE_STAGES if s not in seen]
        problems = []
        if repeated:
            problems.append(f"each stage may appear once, repeated: {repeated}")
        if missing:
            problems.append(f"missing stage(s) {missing}; plan all of {[s.value for s in ACTIVE_STAGES]}")
        if problems:
            raise _rule("stages: " + "; ".join(problems))
        return sorted(value, key=lambda p: ACTIVE_STAGES.index(p.stage))

    @model_validator(mode="after")
    def _cross_checks(self) -> CycleTemplateSpec:
        problems = self.timing.problems()
        bands = [b.label for b in self.scoring.rating_scale.bands]
        limits = self.calibration.limits
        unknown = sorted({limit.band for limit in limits} - set(bands))
        if unknown:
            problems.append(f"calibration.limits name unknown band(s) {unknown}; rating_scale bands are {bands}")
        named = [limit.band for limit in limits]
        repeated = sorted({b for b in named if named.count(b) > 1})
        if repeated:
            problems.append(f"calibration.limits: one limit per band, repeated: {repeated}")
        min_total = sum(limit.min_percent or 0 for limit in limits)
        if min_total > 100 + 1e-9:
            problems.append(f"calibration.limits: min_percent values add up to {min_total:g}%, more than 100%")
        capped = {limit.band: limit.max_percent for limit in limits if limit.max_percent is not None}
        if not unknown and set(capped) == set(bands) and sum(v for v in capped.values() if v) < 100 - 1e-9:
            problems.append(
                f"calibration.limits: every band is capped and the caps add up to only "
                f"{sum(v for v in capped.values() if v):g}%, so no distribution can satisfy them"
            )
        if problems:
            raise _rule("; ".join(problems))
        return self

    @property
    def timing(self) -> CycleTiming:
        """Every timing setting together; :mod:`contracts.timing` holds the rules that apply them."""
        return CycleTiming(
            stages=self.stages,
            reminder_days_before=self.reminder_days_before,
            escalate_days_after_deadline=self.escalate_days_after_deadline,
            deadline_policy=self.deadline_policy,
            extension_days=self.extension_days,
        )

    def plan_for(self, stage: Stage) -> StagePlan:
        return self.timing.plan_for(stage)

    def reminders_for(self, stage: Stage) -> list[int]:
        """Days before the deadline of ``stage`` that reminders go out, largest first."""
        return self.timing.reminders_for(stage)

    @property
    def total_days(self) -> int:
        return sum(p.duration_days for p in self.stages)

    def schedule(self, start: date) -> list[StageWindow]:
        """The stage dates of a cycle that starts on ``start``."""
        return self.timing.windows(start)


SCHEMA_EXPORTS = {"cycle_template.v1": CycleTemplateSpec}
