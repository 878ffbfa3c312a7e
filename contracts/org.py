"""The frozen org snapshot of a cycle, pushed from the cycles service to each stage service.

When a cycle starts, the cycles service freezes who takes part (employees,
their managers, departments and heads). Every stage service keeps its own copy
(``PUT /v1/cycles/{cycle_id}/participants``) for row scoping and bulk work, so
later org changes never move people mid-cycle.

With it, the cycles service freezes who answers for each department's data (``DataOwnerDirectory``,
``PUT /v1/cycles/{cycle_id}/data-owners`` on tracking): every department of the directory, inside
the cycle or not, with its named data steward (else its head), so a stale KPI's reminder reaches a
person even when the department that owns the data takes no part in the cycle.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from contracts.ids import Id

__all__ = ["SCHEMA_EXPORTS", "DataOwnerDirectory", "DataOwnerRef", "DepartmentRef", "OrgSnapshot", "Participant"]


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


class DataOwnerRef(BaseModel):
    """One department of the directory and who answers for its data."""

    model_config = ConfigDict(extra="forbid")

    department_id: Id
    name: str = Field(max_length=200)
    parent_id: Id | None = None
    data_steward_id: Id | None = Field(
        default=None, description="The department's named data steward (org import); none: its head answers."
    )
    head_employee_id: Id | None = None

    @property
    def contact_id(self) -> str | None:
        """Who is reminded about the department's data: its data steward, else its head."""
        return self.data_steward_id or self.head_employee_id


class DataOwnerDirectory(BaseModel):
    """Every department of the directory with its data steward and head, frozen when the cycle starts.

    ``cycle_department_ids`` are the departments the cycle runs a department workflow for: tracking
    hands each stale KPI to exactly one of them (the nearest one at or above the data owner, else
    the one the KPI counts for), so a data owner outside the cycle is reminded too, once.
    """

    model_config = ConfigDict(extra="forbid")

    cycle_id: Id
    cycle_department_ids: list[Id] = Field(min_length=1)
    departments: list[DataOwnerRef]


SCHEMA_EXPORTS: dict[str, type[BaseModel]] = {
    "org_snapshot.v1": OrgSnapshot,
    "data_owner_directory.v1": DataOwnerDirectory,
}
