"""Who answers for a KPI's data, and which department's workflow reminds them.

The cycles service freezes, with the cycle's snapshot, every department of the directory with its
data steward and head (``contracts.org.DataOwnerDirectory``, ``PUT .../data-owners``). From it:

* a KPI's data owner resolves to a person: the owner department's data steward, else its head;
* each KPI belongs to exactly one of the cycle's departments (``rules.responsible_department``):
  the nearest at or above its data owner, so a sub-department's KPIs are reminded by its parent's
  workflow, and for a data owner outside the cycle, the department the KPI counts for.

A cycle whose directory never arrived (started before there was one) keeps the earlier rule: a
department reports the KPIs it owns, and their owner resolves to the head in the org snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from contracts.org import DataOwnerDirectory
from services.common.errors import DomainError
from services.tracking.models import TrackingDataOwners, TrackingKpi
from services.tracking.rules import responsible_department
from services.tracking.schemas import DataOwnersAccepted
from services.tracking.service.catalog import as_of
from services.tracking.service.progress import cycle_org

__all__ = ["DataOwners", "load_data_owners", "replace_data_owners"]


async def replace_data_owners(
    *, session: AsyncSession, cycle_id: str, directory: DataOwnerDirectory, now: datetime | None = None
) -> DataOwnersAccepted:
    """Keep the cycle's data-owner directory (an idempotent replace). Commits."""
    if directory.cycle_id != cycle_id:
        raise DomainError(
            f"the directory is for cycle {directory.cycle_id!r} but the URL names {cycle_id!r}", field="cycle_id"
        )
    row = await session.get(TrackingDataOwners, cycle_id)
    if row is None:
        row = TrackingDataOwners(cycle_id=cycle_id)
        session.add(row)
    row.directory = directory.model_dump(mode="json")
    row.updated_at = as_of(now)
    await session.commit()
    return DataOwnersAccepted(
        cycle_id=cycle_id,
        departments=len(directory.departments),
        cycle_department_ids=directory.cycle_department_ids,
    )


@dataclass(frozen=True)
class DataOwners:
    """One cycle's answer to "who is reminded about this KPI's data, by which department's workflow"."""

    contacts: dict[str, str]
    """Department -> the person who answers for its data."""
    parents: dict[str, str | None]
    employee_departments: dict[str, str]
    cycle_departments: frozenset[str] | None
    """The departments the cycle runs; None without a directory (each department reports its own KPIs)."""

    def contact(self, department_id: str) -> str | None:
        return self.contacts.get(department_id)

    def responsible(self, kpi: TrackingKpi) -> str | None:
        """The cycle department whose workflow reminds about ``kpi``'s data."""
        if self.cycle_departments is None:
            return kpi.owner_department_id
        person = self.employee_departments.get(kpi.employee_id) if kpi.employee_id else None
        return responsible_department(
            owner_department_id=kpi.owner_department_id,
            counts_for=(kpi.department_id, person),
            parents=self.parents,
            cycle_departments=self.cycle_departments,
        )


async def load_data_owners(*, session: AsyncSession, cycle_id: str) -> DataOwners:
    """The cycle's directory as sent by the cycles service, else the org snapshot's heads."""
    org = await cycle_org(session=session, cycle_id=cycle_id)
    employee_departments = {p.employee_id: p.department_id for p in org.participants.values()}
    row = await session.get(TrackingDataOwners, cycle_id)
    if row is None:
        return DataOwners(
            contacts={d.department_id: d.head_employee_id for d in org.departments.values() if d.head_employee_id},
            parents={d.department_id: d.parent_id for d in org.departments.values()},
            employee_departments=employee_departments,
            cycle_departments=None,
        )
    directory = DataOwnerDirectory.model_validate(row.directory)
    return DataOwners(
        contacts={d.department_id: c for d in directory.departments if (c := d.contact_id)},
        parents={d.department_id: d.parent_id for d in directory.departments},
        employee_departments=employee_departments,
        cycle_departments=frozenset(directory.cycle_department_ids),
    )
