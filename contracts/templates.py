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

The ``scoring`` section is a :class:`contracts.scoring.ScoringConfig`: the one formula grammar,
rating scale and weights that the evaluation service scores with (``contracts.evaluation.
evaluation_config`` hands it over unchanged, with the calibration guideline and the
peer-anonymity threshold). The late-data policy is tracking's (``contracts.tracking``).
"""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.cycle import DeadlinePolicy, Stage
from contracts.errors import rule
from contracts.scoring import (
    BandLimit,
    CalibrationGuideline,
    PeerAnonymityThreshold,
    RatingBand,
    RatingScale,
    ScoringComponent,
    ScoringConfig,
)
from contracts.timing import ACTIVE_STAGES, CycleTiming, ReminderDays, StagePlan, StageWindow, unique_reminders
from contracts.tracking import LateDataPolicy

# The scoring and late-data names are re-exported so that template authors import from one place.
__all__ = [
    "ACTIVE_STAGES",
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
]


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
    peer_anonymity_threshold: PeerAnonymityThreshold = 3
    late_data_policy: LateDataPolicy = LateDataPolicy.ACCEPT

    @field_validator("name")
    @classmethod
    def _name_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise rule("name must not be blank")
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
            raise rule("stages: " + "; ".join(problems))
        return sorted(value, key=lambda p: ACTIVE_STAGES.index(p.stage))

    @model_validator(mode="after")
    def _cross_checks(self) -> CycleTemplateSpec:
        problems = self.timing.problems()
        problems += self.calibration.problems(self.scoring.rating_scale)
        if problems:
            raise rule("; ".join(problems))
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
