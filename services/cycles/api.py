"""Routes of the cycles service (the front door). Thin: rules live in ``service.py``.

Every route declares its roles with ``requires(...)`` (also listed as ``x-roles`` in OpenAPI).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Any, Generic, TypeVar

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from contracts.org import OrgSnapshot
from contracts.templates import CycleTemplateSpec, StageWindow
from services.common.auth import ALL_ROLES, Principal, Role, current_principal, requires
from services.common.deps import SessionDep
from services.common.settings import Settings
from services.cycles import service
from services.cycles.control import launch_workflow
from services.cycles.models import CyclesCycle, CyclesDepartment, CyclesDistribution, CyclesEmployee, CyclesTemplate
from services.cycles.org_import import read_upload
from services.cycles.service import CycleStatus, OrgImportReport

__all__ = ["router"]

router = APIRouter(prefix="/v1")

READERS = (Role.HR_ADMIN, Role.OPS, Role.DEPT_HEAD, Role.MANAGER, Role.EMPLOYEE)
"""People: everyone but department systems."""

CurrentPrincipal = Annotated[Principal, Depends(current_principal)]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size (at most 500).")]
Offset = Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip (at most 1,000,000).")]
IdPath = Annotated[str, Path(min_length=1, max_length=64)]

T = TypeVar("T")


def utc(moment: datetime | None) -> datetime | None:
    """Timestamps are stored in UTC; SQLite hands them back naive."""
    return moment.replace(tzinfo=UTC) if moment is not None and moment.tzinfo is None else moment


def access(*roles: Role) -> dict[str, Any]:
    """Route keyword arguments that admit only ``roles`` (the app lists them in OpenAPI as ``x-roles``)."""
    return {"dependencies": [requires(*roles)]}


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


# -- identity --------------------------------------------------------------------------------------
class WhoAmI(BaseModel):
    sub: str
    roles: list[str]
    employee_id: str | None
    department_id: str | None


@router.get(
    "/me",
    summary="The caller's identity and roles, as the token states them",
    tags=["auth"],
)
async def me(principal: Annotated[Principal, requires(*ALL_ROLES)]) -> WhoAmI:
    return WhoAmI(
        sub=principal.sub,
        roles=sorted(principal.roles),
        employee_id=principal.employee_id,
        department_id=principal.department_id,
    )


# -- org directory ---------------------------------------------------------------------------------
class DepartmentRead(BaseModel):
    department_id: str
    name: str
    parent_id: str | None
    head_employee_id: str
    active: bool

    @classmethod
    def of(cls, d: CyclesDepartment) -> DepartmentRead:
        return cls(
            department_id=d.id, name=d.name, parent_id=d.parent_id, head_employee_id=d.head_employee_id, active=d.active
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


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "departments": {"type": "string", "format": "binary", "description": "departments.csv"},
                        "employees": {"type": "string", "format": "binary", "description": "employees.csv"},
                    },
                    "required": ["departments", "employees"],
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "departments": {"type": "array", "items": {"type": "object"}},
                        "employees": {"type": "array", "items": {"type": "object"}},
                    },
                    "required": ["departments", "employees"],
                }
            },
        },
    }
}


@router.post(
    "/org/import",
    summary="Import the whole org directory from CSV (multipart) or JSON: all or nothing",
    tags=["org"],
    dependencies=[requires(Role.HR_ADMIN)],
    openapi_extra=_IMPORT_BODY,
    responses={422: {"description": "The file has problems; every one is listed with its file, row and column."}},
)
async def import_org(
    request: Request,
    session: SessionDep,
    principal: CurrentPrincipal,
    dry_run: Annotated[bool, Query(description="Validate and count, but change nothing.")] = False,
) -> OrgImportReport:
    """The file is the complete directory: new rows are created, changed rows updated, rows no longer
    listed deactivated. Any problem rejects the whole file (422, with every problem's row and column).
    Importing the same content again is a no-op (``changed: false``)."""
    org = read_upload(content_type=request.headers.get("content-type", ""), body=await request.body())
    return await service.import_org(session=session, org=org, actor=principal.sub, dry_run=dry_run)


@router.get(
    "/org/departments",
    summary="List departments (the tree: each with its parent and head)",
    tags=["org"],
    **access(*READERS),
)
async def list_departments(
    session: SessionDep,
    limit: Limit = 100,
    offset: Offset = 0,
    include_inactive: bool = False,
) -> Page[DepartmentRead]:
    rows, total = await service.list_departments(
        session=session, include_inactive=include_inactive, limit=limit, offset=offset
    )
    return Page(items=[DepartmentRead.of(d) for d in rows], total=total, limit=limit, offset=offset)


@router.get("/org/departments/{department_id}", summary="One department", tags=["org"], **access(*READERS))
async def get_department(department_id: IdPath, session: SessionDep) -> DepartmentRead:
    return DepartmentRead.of(await service.get_department(session=session, department_id=department_id))


@router.get(
    "/org/employees",
    summary="List the employees the caller may see (scoped by role)",
    tags=["org"],
    **access(*READERS),
)
async def list_employees(
    session: SessionDep,
    principal: CurrentPrincipal,
    department_id: str | None = None,
    manager_id: str | None = None,
    job_title: str | None = None,
    include_inactive: bool = False,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[EmployeeRead]:
    """An employee sees their own record, a manager their reports (direct and indirect), a department head
    their department and its sub-departments; hr_admin and ops see everyone."""
    rows, total = await service.list_employees(
        session=session,
        principal=principal,
        department_id=department_id,
        manager_id=manager_id,
        job_title=job_title,
        include_inactive=include_inactive,
        limit=limit,
        offset=offset,
    )
    return Page(items=[EmployeeRead.of(e, principal) for e in rows], total=total, limit=limit, offset=offset)


@router.get(
    "/org/employees/{employee_id}",
    summary="One employee, if the caller may see them (403 otherwise)",
    tags=["org"],
    **access(*READERS),
)
async def get_employee(employee_id: IdPath, session: SessionDep, principal: CurrentPrincipal) -> EmployeeRead:
    employee = await service.get_employee(session=session, principal=principal, employee_id=employee_id)
    return EmployeeRead.of(employee, principal)


# -- templates -------------------------------------------------------------------------------------
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


@router.post(
    "/templates",
    summary="Create a cycle template (validated: stages, reminders, scoring, calibration)",
    tags=["templates"],
    status_code=status.HTTP_201_CREATED,
    **access(Role.HR_ADMIN),
)
async def create_template(spec: CycleTemplateSpec, session: SessionDep, principal: CurrentPrincipal) -> TemplateRead:
    return TemplateRead.of(await service.create_template(session=session, spec=spec, actor=principal.sub))


@router.get("/templates", summary="List cycle templates", tags=["templates"], **access(*READERS))
async def list_templates(session: SessionDep, limit: Limit = 100, offset: Offset = 0) -> Page[TemplateRead]:
    rows, total = await service.list_templates(session=session, limit=limit, offset=offset)
    return Page(items=[TemplateRead.of(t) for t in rows], total=total, limit=limit, offset=offset)


@router.get("/templates/{template_id}", summary="One cycle template", tags=["templates"], **access(*READERS))
async def get_template(template_id: IdPath, session: SessionDep) -> TemplateRead:
    return TemplateRead.of(await service.get_template(session=session, template_id=template_id))


@router.put(
    "/templates/{template_id}",
    summary="Replace a template (new version; existing cycles keep their copy)",
    tags=["templates"],
    **access(Role.HR_ADMIN),
)
async def replace_template(
    template_id: IdPath, spec: CycleTemplateSpec, session: SessionDep, principal: CurrentPrincipal
) -> TemplateRead:
    template = await service.replace_template(session=session, template_id=template_id, spec=spec, actor=principal.sub)
    return TemplateRead.of(template)


# -- cycles ----------------------------------------------------------------------------------------
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


async def _cycle_read(session: SessionDep, cycle: CyclesCycle) -> CycleRead:
    return CycleRead.of(cycle, await service.list_distribution(session=session, cycle_id=cycle.id))


def _http(request: Request) -> httpx.AsyncClient:
    client: httpx.AsyncClient = request.app.state.http
    return client


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


HttpDep = Annotated[httpx.AsyncClient, Depends(_http)]
SettingsDep = Annotated[Settings, Depends(_settings)]


@router.post(
    "/cycles",
    summary="Create a draft cycle for a period and a set of departments, from a template",
    tags=["cycles"],
    status_code=status.HTTP_201_CREATED,
    **access(Role.HR_ADMIN),
)
async def create_cycle(body: CycleCreate, session: SessionDep, principal: CurrentPrincipal) -> CycleRead:
    cycle = await service.create_cycle(
        session=session,
        name=body.name,
        template_id=body.template_id,
        period_start=body.period_start,
        period_end=body.period_end,
        department_ids=body.department_ids,
        actor=principal.sub,
    )
    return await _cycle_read(session, cycle)


@router.get("/cycles", summary="List cycles, newest first", tags=["cycles"], **access(*READERS))
async def list_cycles(
    session: SessionDep,
    status: CycleStatus | None = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> Page[CycleRead]:
    rows, total = await service.list_cycles(session=session, status=status, limit=limit, offset=offset)
    return Page(items=[await _cycle_read(session, c) for c in rows], total=total, limit=limit, offset=offset)


@router.get(
    "/cycles/{cycle_id}",
    summary="One cycle, with its schedule and distribution status",
    tags=["cycles"],
    **access(*READERS),
)
async def get_cycle(cycle_id: IdPath, session: SessionDep) -> CycleRead:
    return await _cycle_read(session, await service.get_cycle(session=session, cycle_id=cycle_id))


@router.post(
    "/cycles/{cycle_id}/start",
    summary="Start a draft cycle: freeze its org snapshot, then send it to the stage services",
    tags=["cycles"],
    **access(Role.HR_ADMIN),
)
async def start_cycle(
    cycle_id: IdPath,
    session: SessionDep,
    principal: CurrentPrincipal,
    http: HttpDep,
    settings: SettingsDep,
    request: Request,
    day_seconds: Annotated[
        float,
        Query(
            ge=1,
            le=86_400,
            description="Seconds per template day. 86400 (default) is real time; demos compress, e.g. 2.",
        ),
    ] = 86_400,
) -> CycleRead:
    """The snapshot holds the cycle's departments, their sub-departments and their employees as they are now;
    later imports do not change it. A stage service that cannot be reached does not fail the start: its
    distribution stays ``pending`` (see ``POST /v1/cycles/{cycle_id}/distribute``). Then the cycle's
    durable workflow starts (``review-cycle-<id>`` in Temporal)."""
    cycle = await service.start_cycle(session=session, cycle_id=cycle_id, actor=principal.sub)
    await service.distribute_cycle(session=session, http=http, settings=settings, cycle_id=cycle_id)
    if settings.cycle_workflows:
        await launch_workflow(gateway=request.app.state.temporal, cycle=cycle, day_seconds=day_seconds)
    return await _cycle_read(session, cycle)


@router.post(
    "/cycles/{cycle_id}/distribute",
    summary="Retry sending the cycle's snapshot to the stage services that have not received it",
    tags=["cycles"],
    **access(Role.HR_ADMIN),
)
async def distribute_cycle(
    cycle_id: IdPath,
    session: SessionDep,
    http: HttpDep,
    settings: SettingsDep,
    everyone: Annotated[bool, Query(description="Send it again to every service, delivered or not.")] = False,
) -> list[DistributionRead]:
    rows = await service.distribute_cycle(
        session=session, http=http, settings=settings, cycle_id=cycle_id, everyone=everyone
    )
    return [DistributionRead.of(r) for r in rows]


@router.get(
    "/cycles/{cycle_id}/snapshot",
    summary="The cycle's frozen org snapshot (who takes part)",
    tags=["cycles"],
    **access(Role.HR_ADMIN, Role.OPS),
)
async def get_snapshot(cycle_id: IdPath, session: SessionDep) -> OrgSnapshot:
    return await service.load_snapshot(session=session, cycle_id=cycle_id)
