"""Path and query parameters, and the role tuples, that every service declares the same way."""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from services.common.auth import Role

__all__ = [
    "APPROVERS",
    "CALIBRATORS",
    "EVERYONE",
    "HR",
    "LEADERS",
    "MACHINE",
    "OPS_ROLES",
    "STAFF",
    "CycleId",
    "Limit",
    "Offset",
]

CycleId = Annotated[str, Path(min_length=1, max_length=64, description="The review cycle.")]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size (at most 500).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (at most 1,000,000).")]

HR = (Role.HR_ADMIN,)
"""HR administration only."""
STAFF = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE)
"""The people of the organisation (no ops, no machines)."""
EVERYONE = (Role.HR_ADMIN, Role.OPS, Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE)
"""Every human role, ops included; rows are still scoped by the org snapshot."""
APPROVERS = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER)
"""Those who approve or return someone else's work."""
CALIBRATORS = (Role.HR_ADMIN, Role.DEPT_HEAD)
LEADERS = (Role.HR_ADMIN, Role.DEPT_HEAD, Role.MANAGER, Role.OPS)
MACHINE = (Role.HR_ADMIN, Role.OPS)
"""Calls the workflow's activities make (with a service token) and HR may make by hand."""
OPS_ROLES = (Role.OPS, Role.HR_ADMIN)
