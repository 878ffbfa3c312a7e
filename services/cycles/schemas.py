"""Request and response bodies of the cycles service."""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from contracts.templates import CycleTemplateSpec
from contracts.timing import StageWindow
from services.common.auth import Principal, Role
from services.cycles.models import CyclesCycle, CyclesDepartment, CyclesDistribution, CyclesEmployee, CyclesTemplate

__all__ = [
    "Accepted",
    "CancelBody",
    "CycleCreate",
    "CycleRead",
    "CycleStatus",
    "DeliveryStatus",
    "DepartmentRead",
    "DistributionRead",
    "EmployeeRead",
    "ImportCounts",
    "NotificationRead",
    "OrgImportReport",
    "Page",
    "TemplateRead",
    "WhoAmI",
    "utc",
]

T = TypeVar("T")


class CycleStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    CANCELLED = "cancelled"
    CLOSED = "closed"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"


class ImportCounts(BaseModel):
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    deactivated: int = 0


class OrgImportReport(BaseModel):
    source: str
    content_hash: str
    dry_run: bool
    changed: bool
    departments: ImportCounts
    employees: ImportCounts


def utc(moment: datetime | None) -> datetime | None:
    """Timestamps are stored in UTC; SQLite hands them back naive."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class WhoAmI(BaseModel):
    sub: str
    roles: list[str]
    employee_id: str | None
    department_id: str | None


class DepartmentRead(BaseModel):
    department_id: str
    name: str
    parent_id: str | None
    head_employee_id: str
    data_steward_id: str | None = Field(
        default=None, description="Who supplies this department's KPI data (stale-data reminders); else the head."
    )
    active: bool

    @classmethod
    def of(cls, d: CyclesDepartment) -> DepartmentRead:
        return cls(
            department_id=d.id,
            name=d.name,
            parent_id=d.parent_id,
            head_employee_id=d.head_employee_id,
            data_steward_id=d.data_steward_id,
            active=d.active,
        )


class EmployeeRead(BaseModel):
    employee_id: str
    name: str
    email: str | None
    department_id: str
    manager_id: str | None
    job_title: str
    grade: str
    salary_band: str | None = Field(description="Shown to hr_admin only; null for other callers.")
    active: bool

    @classmethod
    def of(cls, e: CyclesEmployee, principal: Principal) -> EmployeeRead:
        return cls(
            employee_id=e.id,
            name=e.name,
            email=e.email,
            department_id=e.department_id,
            manager_id=e.manager_id,
            job_title=e.job_title,
            grade=e.grade,
            salary_band=e.salary_band if principal.has(Role.HR_ADMIN) else None,
            active=e.active,
        )


class TemplateRead(BaseModel):
    template_id: str
    name: str
    version: int
    spec: CycleTemplateSpec
    created_by: str
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, t: CyclesTemplate) -> TemplateRead:
        return cls(
            template_id=t.id,
            name=t.name,
            version=t.version,
            spec=CycleTemplateSpec.model_validate(t.spec),
            created_by=t.created_by,
            created_at=utc(t.created_at),
            updated_at=utc(t.updated_at),
        )


class CycleCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    template_id: str = Field(min_length=1, max_length=64)
    period_start: date
    period_end: date
    department_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        min_length=1, max_length=500, description="Participating departments; their sub-departments take part too."
    )


class DistributionRead(BaseModel):
    service: str
    status: str = Field(description="'delivered', or 'pending' until the service has accepted the snapshot.")
    attempts: int
    last_error: str | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None

    @classmethod
    def of(cls, d: CyclesDistribution) -> DistributionRead:
        return cls(
            service=d.service,
            status=d.status,
            attempts=d.attempts,
            last_error=d.last_error,
            last_attempt_at=utc(d.last_attempt_at),
            delivered_at=utc(d.delivered_at),
        )


class CycleRead(BaseModel):
    cycle_id: str
    name: str
    status: CycleStatus
    template_id: str
    template_version: int
    template: CycleTemplateSpec = Field(description="The template as copied when the cycle was created.")
    period_start: date
    period_end: date
    department_ids: list[str]
    schedule: list[StageWindow] = Field(description="Stage dates, counted from period_start.")
    participants: int | None = Field(description="People in the frozen snapshot (null while draft).")
    created_by: str
    created_at: datetime
    started_at: datetime | None
    distribution: list[DistributionRead]

    @classmethod
    def of(cls, c: CyclesCycle, distribution: list[CyclesDistribution]) -> CycleRead:
        spec = CycleTemplateSpec.model_validate(c.template_spec)
        return cls(
            cycle_id=c.id,
            name=c.name,
            status=CycleStatus(c.status),
            template_id=c.template_id,
            template_version=c.template_version,
            template=spec,
            period_start=c.period_start,
            period_end=c.period_end,
            department_ids=list(c.department_ids),
            schedule=spec.schedule(c.period_start),
            participants=c.snapshot_participants,
            created_by=c.created_by,
            created_at=utc(c.created_at),
            started_at=utc(c.started_at),
            distribution=[DistributionRead.of(d) for d in distribution],
        )


class CancelBody(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class Accepted(BaseModel):
    cycle_id: str
    workflow_id: str
    action: str


class NotificationRead(BaseModel):
    notification_id: str
    idempotency_key: str
    cycle_id: str
    department_id: str
    stage: str
    kind: str
    recipients: list[dict[str, Any]]
    pending: int
    deadline: datetime | None
    message: str
    created_at: datetime
    delivery: dict[str, str]
