"""Action items, as 1:1 records (feedback) and development plans (results) both keep them:
a description, an owner and a due date."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ActionItemRead", "ActionItemUpdate"]


class ActionItemUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(default=None, min_length=1, max_length=1000)
    owner_id: str | None = Field(default=None, min_length=1, max_length=64)
    due_date: date | None = None
    done: bool | None = None


class ActionItemRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    description: str
    owner_id: str
    due_date: date
    done: bool
