"""Path and query parameters of the console's routes (``CycleId`` is the shared one in
``services.common.params``); the same bounds as the APIs behind the pages."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

__all__ = [
    "AppealId",
    "AssignmentId",
    "CycleFilter",
    "DepartmentId",
    "DepartmentFilter",
    "EmployeeId",
    "GoalId",
    "RowId",
    "TemplateId",
]

GoalId = Annotated[str, Path(min_length=1, max_length=64)]
EmployeeId = Annotated[str, Path(min_length=1, max_length=64)]
AppealId = Annotated[int, Path(ge=1, le=2_147_483_647, description="The appeal (feedback service id).")]
RowId = Annotated[int, Path(ge=1, le=2_147_483_647, description="A 1:1 or action item id (feedback service).")]
DepartmentFilter = Annotated[str | None, Query(max_length=64, description="Only this department.")]
CycleFilter = Annotated[str | None, Query(min_length=1, max_length=64, description="Only this cycle.")]
AssignmentId = Annotated[str, Path(min_length=1, max_length=64, description="A review assignment (evaluation).")]
DepartmentId = Annotated[str, Path(min_length=1, max_length=64, description="A department.")]
TemplateId = Annotated[str, Path(min_length=1, max_length=64, description="A cycle template (cycles service).")]
