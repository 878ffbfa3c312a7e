"""Request and response bodies of the results service (the routes' OpenAPI names them).

Where a pure module already defines what a response carries (an allocated line, an award
candidate, a pair of the collaboration report), the response is that type under its API name.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from services.common.action_items import ActionItemRead
from services.results.allocation import AllocatedLine
from services.results.policy import BonusCaps, Curve
from services.results.report import AwardCandidate, CollaborationReport, PairChange, PairScore, Suggestion

__all__ = [
    "Accepted",
    "AllocationCreate",
    "AllocationLineRead",
    "AllocationRead",
    "AppealApplied",
    "AwardRead",
    "AwardFundRead",
    "AwardRecordRead",
    "AwardsRead",
    "BonusRead",
    "CellRead",
    "ChangeRead",
    "GenerateRead",
    "ItemCreate",
    "NominationRead",
    "PairRead",
    "PlanCreate",
    "PlanRead",
    "PlanUpdate",
    "PoolRead",
    "PoolUpdate",
    "PublicationRead",
    "ReportRead",
    "SuggestionRead",
]


class Accepted(BaseModel):
    cycle_id: str
    received: int


class PoolUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_cents: int = Field(ge=0, le=10**15, description="The finance budget in minor units (cents).")
    currency: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. 'EUR'.")
    source: str = Field(default="finance budget", max_length=200, description="Where the budget comes from.")


class PoolRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    department_id: str
    amount_cents: int
    currency: str
    source: str
    updated_at: datetime
    updated_by: str
    approved_by: str | None = None
    approved_at: datetime | None = None


class AllocationCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    curve: Curve | None = Field(default=None, description="Overrides the cycle policy's curve.")
    caps: BonusCaps | None = Field(default=None, description="Overrides the cycle policy's caps.")
    fixed: dict[Annotated[str, Field(max_length=64)], Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict, description="Fixed amounts (cents) for named employees; the rest is shared."
    )


class AllocationLineRead(AllocatedLine):
    model_config = ConfigDict(from_attributes=True, frozen=True)


class AllocationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cycle_id: str
    department_id: str
    idempotency_key: str | None
    pool_cents: int
    currency: str
    allocated_cents: int
    unallocated_cents: int
    curve: dict[str, Any]
    caps: dict[str, Any]
    notes: list[str]
    current: bool
    created_at: datetime
    created_by: str
    replayed: bool = False
    lines: list[AllocationLineRead]


class BonusRead(BaseModel):
    employee_id: str
    department_id: str
    amount_cents: int
    currency: str
    rating: str
    final_score: float


class NominationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    employee_id: str
    department_id: str
    grade: str
    rating: str
    final_score: float
    reasons: list[str]


class GenerateRead(BaseModel):
    created: int
    already_had_plan: int


class PlanCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: str = Field(min_length=1, max_length=64)
    summary: str = Field(default="", max_length=4000)


class PlanUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["draft", "active", "completed"] | None = None
    summary: str | None = Field(default=None, max_length=4000)
    owner_id: str | None = Field(default=None, min_length=1, max_length=64)


class ItemCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str = Field(min_length=1, max_length=1000)
    owner_id: str = Field(min_length=1, max_length=64)
    due_date: date | None = Field(default=None, description="Defaults to the policy's default_due_days.")


class PlanRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    cycle_id: str
    employee_id: str
    department_id: str
    owner_id: str
    status: str
    rating: str | None
    final_score: float | None
    summary: str
    auto_created: bool
    created_at: datetime
    updated_at: datetime
    items: list[ActionItemRead]


@dataclass(frozen=True)
class AwardRead(AwardCandidate):
    pass  # the award module's candidate, served under this name


class AwardFundRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    amount_cents: int
    currency: str
    source: str
    updated_at: datetime
    updated_by: str


class AwardRecordRead(BaseModel):
    """The award as announced at publication (recorded once; the live ranking may have moved since)."""

    model_config = ConfigDict(from_attributes=True)

    award: str
    winner_department_id: str | None
    winner_name: str | None
    score: float | None
    reason: str
    fund_cents: int | None = Field(description="The fund finance set, paid to the winning department.")
    currency: str | None
    announced_at: datetime
    announced_by: str


class AwardsRead(BaseModel):
    cycle_id: str
    award: str = "best collaboration team"
    winner: AwardRead | None
    ranking: list[AwardRead]
    announced: AwardRecordRead | None = Field(default=None, description="Recorded at publication; null before.")

    @classmethod
    def of(
        cls, cycle_id: str, candidates: Sequence[AwardCandidate], announced: AwardRecordRead | None = None
    ) -> AwardsRead:
        ranking = [AwardRead(**vars(c)) for c in candidates]
        winner = ranking[0] if ranking and ranking[0].eligible else None
        return cls(cycle_id=cycle_id, winner=winner, ranking=ranking, announced=announced)


@dataclass(frozen=True)
class PairRead(PairScore):
    pass  # the report module's pair, served under this name


@dataclass(frozen=True)
class ChangeRead(PairChange):
    pass


@dataclass(frozen=True)
class SuggestionRead(Suggestion):
    pass


class CellRead(BaseModel):
    rater_department_id: str
    rater_department: str
    rated_department_id: str
    rated_department: str
    responsiveness: float
    data_quality: float
    reliability: float
    overall: float
    ratings: int
    previous_overall: float | None
    comments: list[str]


class ReportRead(BaseModel):
    cycle_id: str
    previous_cycle_id: str | None
    departments: dict[str, str]
    matrix: list[CellRead]
    strongest_pairs: list[PairRead]
    weakest_pairs: list[PairRead]
    changes: list[ChangeRead]
    suggestions: list[SuggestionRead]
    notes: list[str]

    @classmethod
    def of(cls, report: CollaborationReport) -> ReportRead:
        name = report.departments.get
        return cls(
            cycle_id=report.cycle_id,
            previous_cycle_id=report.previous_cycle_id,
            departments=report.departments,
            matrix=[
                CellRead(
                    rater_department_id=c.rater_department_id,
                    rater_department=name(c.rater_department_id, c.rater_department_id),
                    rated_department_id=c.rated_department_id,
                    rated_department=name(c.rated_department_id, c.rated_department_id),
                    responsiveness=c.responsiveness,
                    data_quality=c.data_quality,
                    reliability=c.reliability,
                    overall=c.overall,
                    ratings=c.ratings,
                    previous_overall=report.previous_overall.get((c.rater_department_id, c.rated_department_id)),
                    comments=list(c.comments),
                )
                for c in report.cells
            ],
            strongest_pairs=[PairRead(**vars(p)) for p in report.strongest],
            weakest_pairs=[PairRead(**vars(p)) for p in report.weakest],
            changes=[ChangeRead(**vars(c)) for c in report.changes],
            suggestions=[SuggestionRead(**vars(s)) for s in report.suggestions],
            notes=report.notes,
        )


class PublicationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    publication_id: str
    idempotency_key: str | None
    event_ids: list[str]
    lines: int
    published_at: datetime
    published_by: str
    replayed: bool = False


class AppealApplied(BaseModel):
    """An adjusted appeal as the results service applied it (once per appeal)."""

    model_config = ConfigDict(from_attributes=True)

    cycle_id: str
    appeal_id: str
    employee_id: str
    before_score: float | None = Field(description="None when the results had not arrived yet.")
    before_rating: str | None
    after_score: float
    after_rating: str
    applied_at: datetime
    reallocated: list[str] = Field(description="Departments whose pool was allocated again.")
    correction_id: str | None = Field(description="Set when the results were already published: the correction.")
    correction_sequence: int | None
    event_ids: list[str] = Field(description="The ResultsCorrected events written to the outbox.")
    replayed: bool = False
