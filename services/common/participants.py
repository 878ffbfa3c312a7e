"""Each stage service's copy of a cycle's frozen org snapshot, and row scoping on it.

A service declares its two tables with the mixins and mounts the router::

    class GoalsParticipant(ParticipantMixin, Base):
        __tablename__ = "goals_participant"
    class GoalsDepartment(DepartmentMixin, Base):
        __tablename__ = "goals_department"

    router = participants_router(GoalsParticipant, GoalsDepartment)

Scoping rules (``visible_employee_ids``): hr_admin and ops see everyone; a
department head sees their department and its sub-departments; a manager sees
their reports (direct and indirect) and themselves; an employee sees themselves.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Annotated, Any

from fastapi import APIRouter, Path
from pydantic import BaseModel
from sqlalchemy import String, delete, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from contracts.org import DepartmentRef, OrgSnapshot, Participant
from services.common.auth import Principal, Role, requires
from services.common.deps import SessionDep

__all__ = [
    "DepartmentMixin",
    "OrgView",
    "ParticipantMixin",
    "load_org",
    "participants_router",
    "replace_snapshot",
]


class ParticipantMixin:
    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    employee_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(254), nullable=True)
    department_id: Mapped[str] = mapped_column(String(64), index=True)
    manager_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    job_title: Mapped[str] = mapped_column(String(200))
    grade: Mapped[str] = mapped_column(String(32))


class DepartmentMixin:
    cycle_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    department_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    head_employee_id: Mapped[str | None] = mapped_column(String(64), nullable=True)


async def replace_snapshot(
    session: AsyncSession, participant_model: Any, department_model: Any, snapshot: OrgSnapshot
) -> None:
    """Idempotently replace this service's copy of the cycle's snapshot (caller commits)."""
    await session.execute(delete(participant_model).where(participant_model.cycle_id == snapshot.cycle_id))
    await session.execute(delete(department_model).where(department_model.cycle_id == snapshot.cycle_id))
    session.add_all(department_model(cycle_id=snapshot.cycle_id, **d.model_dump()) for d in snapshot.departments)
    session.add_all(participant_model(cycle_id=snapshot.cycle_id, **p.model_dump()) for p in snapshot.participants)


class OrgView:
    """The snapshot of one cycle in memory, with the scoping rules."""

    def __init__(self, departments: list[DepartmentRef], participants: list[Participant]) -> None:
        self.departments = {d.department_id: d for d in departments}
        self.participants = {p.employee_id: p for p in participants}
        self._reports: dict[str, list[str]] = defaultdict(list)
        self._children: dict[str, list[str]] = defaultdict(list)
        for p in participants:
            if p.manager_id:
                self._reports[p.manager_id].append(p.employee_id)
        for d in departments:
            if d.parent_id:
                self._children[d.parent_id].append(d.department_id)

    def reports_of(self, manager_id: str) -> set[str]:
        """Direct and indirect reports."""
        seen: set[str] = set()
        stack = list(self._reports.get(manager_id, []))
        while stack:
            emp = stack.pop()
            if emp not in seen:
                seen.add(emp)
                stack.extend(self._reports.get(emp, []))
        return seen

    def department_tree(self, department_id: str) -> set[str]:
        seen: set[str] = set()
        stack = [department_id]
        while stack:
            dep = stack.pop()
            if dep not in seen:
                seen.add(dep)
                stack.extend(self._children.get(dep, []))
        return seen

    def headed_by(self, employee_id: str) -> set[str]:
        """Departments (with their sub-departments) this employee heads."""
        result: set[str] = set()
        for d in self.departments.values():
            if d.head_employee_id == employee_id:
                result |= self.department_tree(d.department_id)
        return result

    def visible_employee_ids(self, principal: Principal) -> set[str] | None:
        """Employees whose rows ``principal`` may see; ``None`` means all."""
        if principal.has(Role.HR_ADMIN, Role.OPS):
            return None
        visible: set[str] = set()
        me = principal.employee_id
        if me:
            visible.add(me)
        if principal.has(Role.DEPT_HEAD):
            departments = self.headed_by(me) if me else set()
            if principal.department_id:
                departments |= self.department_tree(principal.department_id)
            visible |= {p.employee_id for p in self.participants.values() if p.department_id in departments}
        if principal.has(Role.MANAGER) and me:
            visible |= self.reports_of(me)
        return visible

    def can_see(self, principal: Principal, employee_id: str) -> bool:
        visible = self.visible_employee_ids(principal)
        return visible is None or employee_id in visible


async def load_org(session: AsyncSession, participant_model: Any, department_model: Any, cycle_id: str) -> OrgView:
    participants = (
        await session.scalars(select(participant_model).where(participant_model.cycle_id == cycle_id))
    ).all()
    departments = (await session.scalars(select(department_model).where(department_model.cycle_id == cycle_id))).all()
    return OrgView(
        [DepartmentRef.model_validate(d, from_attributes=True) for d in departments],
        [Participant.model_validate(p, from_attributes=True) for p in participants],
    )


class SnapshotAccepted(BaseModel):
    cycle_id: str
    participants: int
    departments: int


def participants_router(participant_model: Any, department_model: Any) -> APIRouter:
    """``PUT /v1/cycles/{cycle_id}/participants``: receive the cycle's frozen org snapshot."""
    router = APIRouter(prefix="/v1", tags=["participants"])

    @router.put(
        "/cycles/{cycle_id}/participants",
        summary="Replace this service's copy of the cycle's frozen org snapshot (idempotent)",
    )
    async def put_participants(
        cycle_id: Annotated[str, Path(max_length=64)],
        snapshot: OrgSnapshot,
        session: SessionDep,
        _principal: Annotated[Principal, requires(Role.HR_ADMIN)],
    ) -> SnapshotAccepted:
        from services.common.errors import DomainError

        if snapshot.cycle_id != cycle_id:
            raise DomainError(
                f"snapshot is for cycle {snapshot.cycle_id!r} but the URL names {cycle_id!r}",
                status_code=422,
                field="cycle_id",
            )
        await replace_snapshot(session, participant_model, department_model, snapshot)
        await session.commit()
        return SnapshotAccepted(
            cycle_id=cycle_id, participants=len(snapshot.participants), departments=len(snapshot.departments)
        )

    return router
