"""What the results service publishes: the ``ResultsPublished`` payload for payroll and others.

``ResultsPublished`` is a ``DomainEvent`` on ``cycle.events.v1`` whose ``payload`` is a
``ResultsPublishedPayload``. A large cycle is split into parts (``part`` of ``parts``,
at most ``MAX_LINES_PER_EVENT`` lines each) so no Kafka message grows without bound.
Consumers deduplicate on the event's ``event_id`` (delivery is at-least-once).
"""

from __future__ import annotations

from typing import Final

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import Id

__all__ = [
    "MAX_LINES_PER_EVENT",
    "RESULTS_PUBLISHED",
    "SCHEMA_EXPORTS",
    "DepartmentBonusTotal",
    "PublishedResultLine",
    "ResultsPublishedPayload",
]


RESULTS_PUBLISHED: Final = "ResultsPublished"
MAX_LINES_PER_EVENT: Final = 1000


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


SCHEMA_EXPORTS = {"results_published.v1": ResultsPublishedPayload}
