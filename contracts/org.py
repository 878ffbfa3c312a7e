"""The frozen org snapshot of a cycle, pushed from the cycles service to each stage service.

When a cycle starts, the cycles service freezes who takes part (employees,
their managers, departments and heads). Every stage service keeps its own copy
(``PUT /v1/cycles/{cycle_id}/participants``) for row scoping and bulk work, so
later org changes never move people mid-cycle.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import Id

__all__ = ["SCHEMA_EXPORTS", "DepartmentRef", "OrgSnapshot", "Participant"]



class DepartmentRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    department_id: Id
    name: str = Field(max_length=200)
    parent_id: Id | None = None
    head_employee_id: Id | None = None


class Participant(BaseModel):
    model_config = ConfigDict(extra="forbid")

    employee_id: Id
    name: str = Field(max_length=200)
    email: str | None = Field(default=None, max_length=254)
    department_id: Id
    manager_id: Id | None = None
    job_title: str = Field(max_length=200)
    grade: str = Field(max_length=32)


class OrgSnapshot(BaseModel):
    """Everyone taking part in one cycle, as frozen at its start."""

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    departments: list[DepartmentRef]
    participants: list[Participant]


SCHEMA_EXPORTS = {"org_snapshot.v1": OrgSnapshot}
