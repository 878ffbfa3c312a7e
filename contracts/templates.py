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
evaluation_config`` hands it over unchanged, with the ``evaluation`` settings, the calibration
guideline and the peer-anonymity threshold). The ``feedback`` section (appeal window, HR's
resolution deadline) goes to the feedback service, the ``results`` section (bonus curve and caps,
promotion and development rules, the collaboration award, publication while appeals are open) to
the results service (``contracts.results.results_policy``). The late-data policy is tracking's
(``contracts.tracking``).

Every setting either takes effect in the cycle or is refused here, at creation, with a message
naming the field: labels that are not bands of the rating scale, weights that do not sum to 100,
lookup tables with gaps or overlaps, rater limits that could never reach the anonymity threshold.

**Template or HR.** The workflow pushes each service's settings from the cycle's copy of the
template when the cycle opens and again at the stage handoffs, but only while HR has not changed
them in that service: an HR edit is a new version with source ``hr`` and is never overwritten.
Each service answers a push with ``SettingsPushed`` and shows the version it holds
(``SettingsVersion``).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from contracts.cycle import DeadlinePolicy, Stage
from contracts.errors import rule
from contracts.evaluation import ANONYMOUS, EvaluationSettings, EvaluationSettingsV1
from contracts.feedback import FeedbackSettings
from contracts.goals import ApprovalChains
from contracts.readers import reader
from contracts.results import ResultsPolicy, ResultsPolicyV1
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
    "CycleTemplateSpecV1",
    "EvaluationSettings",
    "FeedbackSettings",
    "LateDataPolicy",
    "RatingBand",
    "RatingScale",
    "ResultsPolicy",
    "ScoringComponent",
    "ScoringConfig",
    "SettingsPushed",
    "SettingsSource",
    "SettingsVersion",
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
    evaluation: EvaluationSettings = Field(
        default_factory=EvaluationSettings,
        description="Competencies, rater limits, lookup tables, attainment cap, deviation threshold, peer "
        "visibility and the collaboration component.",
    )
    feedback: FeedbackSettings = Field(default_factory=FeedbackSettings)
    approval_chains: ApprovalChains | None = Field(
        default=None,
        description="Who approves individual goals, department and company KPIs, step by step (default: the "
        "manager, the department head, HR; nobody approves what they submitted).",
    )
    results: ResultsPolicy = Field(
        default_factory=ResultsPolicy,
        description="Bonus curve and caps, promotion and development rules (labels are rating_scale bands; "
        "left out: the two highest and the lowest band), the collaboration award, publication policy.",
    )

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
        scale = self.scoring.rating_scale
        problems = self.timing.problems()
        problems += self.calibration.problems(scale)
        problems += self.evaluation.problems(scale, where="evaluation.")
        problems += self._rater_limit_problems()
        problems += self.results.problems([b.label for b in scale.bands], where="results.")
        if problems:
            raise rule("; ".join(problems))
        return self

    def _rater_limit_problems(self) -> list[str]:
        """Limits the template sets that would keep a weighted relation below the anonymity threshold
        for good (its reviews could never count)."""
        if "rater_limits" not in self.evaluation.model_fields_set:
            return []
        problems = []
        for relation in ANONYMOUS:
            limit = self.evaluation.rater_limits[relation]
            weight = self.scoring.weights.get(ScoringComponent(relation.value), 0)
            if weight > 0 and limit.max < self.peer_anonymity_threshold:
                problems.append(
                    f"evaluation.rater_limits.{relation.value}.max ({limit.max}) is below peer_anonymity_threshold "
                    f"({self.peer_anonymity_threshold}): {relation.value} reviews (weight {weight:g}) could never count"
                )
        return problems

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


class SettingsSource(StrEnum):
    """Who set the settings a service holds for a cycle."""

    TEMPLATE = "template"
    """Pushed by the workflow from the cycle's copy of its template."""
    HR = "hr"
    """Changed by HR in the service; the workflow never overwrites it."""


class SettingsVersion(BaseModel):
    """The version of a cycle's settings a service holds, and who made it."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=0, description="1 for the first settings of the cycle, +1 per change; 0: defaults.")
    source: SettingsSource
    changed_by: str
    changed_at: datetime | None

    @classmethod
    def of(
        cls, version: int | None, source: str | None, changed_by: str | None, changed_at: datetime | None
    ) -> SettingsVersion:
        """From a service's stored columns (``None``: never changed, the defaults)."""
        return SettingsVersion(
            version=version or 0,
            source=SettingsSource(source or SettingsSource.TEMPLATE.value),
            changed_by=changed_by or "defaults",
            changed_at=changed_at,
        )

    def pushed(self, *, applied: bool) -> SettingsPushed:
        return SettingsPushed(**self.model_dump(), applied=applied)


class SettingsPushed(SettingsVersion):
    """A service's answer to the workflow pushing template settings: applied, or HR's version kept."""

    applied: bool = Field(description="False when HR had changed the settings: the template's were not applied.")


CycleTemplateSpecV1 = reader(
    CycleTemplateSpec, "CycleTemplateSpecV1", nested={"evaluation": EvaluationSettingsV1, "results": ResultsPolicyV1}
)
"""Reader of ``cycle_template.v1`` (before ``evaluation.upward_review`` and ``results.pool_approval``)."""

SCHEMA_EXPORTS = {
    "cycle_template.v1": CycleTemplateSpecV1,
    "cycle_template.v2": CycleTemplateSpec,
    "settings_version.v1": SettingsVersion,
}
