"""What an agenda item or a suggestion cites: the data, and where to read it.

A link names the service and the API path that serves the cited data (the console maps the
service to its base URL), so every claim the committee sees can be checked at its source.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Citation", "Link", "Value"]

Value = float | int | str | bool | None


class Link(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    service: str = Field(description="The service that serves the data: tracking, evaluation, feedback...")
    path: str = Field(description="Its API path, e.g. /v1/cycles/c-1/kpis/k-1/progress.")


class Citation(BaseModel):
    """One piece of data a suggestion stands on."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="kpi_progress, stale_kpis, check_ins, review_summary, collaboration_matrix...")
    subject: str = Field(description="What it is about: a KPI id, a competency, a department...")
    values: dict[str, Value] = Field(description="The numbers the rule compared, with the threshold.")
    link: Link
