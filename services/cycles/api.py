"""Routes of the cycles service (the front door). Thin: rules live in ``service.py``.

Every route declares its roles with ``requires(...)`` (also listed as ``x-roles`` in OpenAPI).
"""

from __future__ import annotations

from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, Path, Query, Request, status

from contracts.handoffs import IncidentResolution
from contracts.org import OrgSnapshot
from contracts.templates import CycleTemplateSpec
from contracts.workflow_io import CycleStatus as CycleStatusView
from contracts.workflow_io import ExtendDeadline, ForceStage
from services.common.auth import ALL_ROLES, Principal, Role, requires
from services.common.deps import CurrentPrincipal, SessionDep
from services.common.params import EVERYONE, HR, OPS_ROLES, CycleId, Limit, Offset
from services.common.settings import Settings
from services.cycles import control, service
from services.cycles.control import TemporalGateway
from services.cycles.models import CyclesCycle
from services.cycles.org_import import read_upload
from services.cycles.schemas import (
    Accepted,
    CancelBody,
    CycleCreate,
    CycleRead,
    CycleStatus,
    DepartmentRead,
    DistributionRead,
    EmployeeRead,
    OrgImportReport,
    Page,
    TemplateRead,
    WhoAmI,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1")

READERS = EVERYONE
"""People: everyone but department systems."""
WITH_FINANCE = (*EVERYONE, Role.FINANCE)
"""The cycles and the directory: finance too (it sets the pools and pays everyone)."""

IdPath = Annotated[str, Path(min_length=1, max_length=64)]


def access(*roles: Role) -> dict[str, Any]:
    """Route keyword arguments that admit only ``roles`` (the app lists them in OpenAPI as ``x-roles``)."""
    return {"dependencies": [requires(*roles)]}


# -- identity --------------------------------------------------------------------------------------
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
    summary="List the employees the caller may see (scoped by role; finance sees everyone, for payroll)",
    tags=["org"],
    **access(*WITH_FINANCE),
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


@router.get("/cycles", summary="List cycles, newest first", tags=["cycles"], **access(*WITH_FINANCE))
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
    **access(*WITH_FINANCE),
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
    durable workflow starts (``review-cycle-<id>`` in Temporal). Starting an active cycle again starts its
    workflow if Temporal was unreachable the first time (and is a no-op if it runs)."""
    cycle = await control.start(
        session=session,
        http=http,
        settings=settings,
        gateway=_gateway(request),
        cycle_id=cycle_id,
        actor=principal.sub,
        day_seconds=day_seconds,
    )
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


# -- cycle control (the workflow's front door) -----------------------------------------------------
def _gateway(request: Request) -> TemporalGateway:
    gateway: TemporalGateway = request.app.state.temporal
    return gateway


GatewayDep = Annotated[TemporalGateway, Depends(_gateway)]


@router.get(
    "/cycles/{cycle_id}/status",
    summary="Where the cycle's workflow stands: stage, per-department progress, next deadline",
    tags=["cycle control"],
    **access(*OPS_ROLES),
)
async def cycle_status(cycle_id: CycleId, gateway: GatewayDep) -> CycleStatusView:
    return await control.cycle_status(gateway=gateway, cycle_id=cycle_id)


@router.post(
    "/cycles/{cycle_id}/pause",
    summary="Pause the cycle: no reminders, no stage changes until resumed",
    tags=["cycle control"],
    **access(*HR),
)
async def pause_cycle(cycle_id: CycleId, session: SessionDep, gateway: GatewayDep) -> Accepted:
    return await control.pause(session=session, gateway=gateway, cycle_id=cycle_id)


@router.post("/cycles/{cycle_id}/resume", summary="Resume a paused cycle", tags=["cycle control"], **access(*HR))
async def resume_cycle(cycle_id: CycleId, session: SessionDep, gateway: GatewayDep) -> Accepted:
    return await control.resume(session=session, gateway=gateway, cycle_id=cycle_id)


@router.post(
    "/cycles/{cycle_id}/cancel",
    summary="Cancel the cycle; compensations run (unreleased results are withdrawn)",
    tags=["cycle control"],
    **access(*HR),
)
async def cancel_cycle(cycle_id: CycleId, body: CancelBody, session: SessionDep, gateway: GatewayDep) -> Accepted:
    return await control.cancel(session=session, gateway=gateway, cycle_id=cycle_id, reason=body.reason)


@router.post(
    "/cycles/{cycle_id}/extend",
    summary="Extend a stage's deadline (validated: later than now's deadline, before the next stage's)",
    tags=["cycle control"],
    **access(*HR),
)
async def extend_deadline(cycle_id: CycleId, body: ExtendDeadline, gateway: GatewayDep) -> CycleStatusView:
    return await control.extend(gateway=gateway, cycle_id=cycle_id, body=body)


@router.post(
    "/cycles/{cycle_id}/force-stage",
    summary="Complete the current stage now, whatever is still pending (HR decision)",
    tags=["cycle control"],
    **access(*HR),
)
async def force_stage(cycle_id: CycleId, body: ForceStage, gateway: GatewayDep) -> CycleStatusView:
    return await control.force(gateway=gateway, cycle_id=cycle_id, body=body)


@router.post(
    "/cycles/{cycle_id}/incident",
    summary="Resolve the cycle's open incident (a refused handoff): retry it, or skip it",
    tags=["cycle control"],
    **access(*OPS_ROLES),
)
async def resolve_incident(cycle_id: CycleId, body: IncidentResolution, gateway: GatewayDep) -> CycleStatusView:
    return await control.resolve_incident(gateway=gateway, cycle_id=cycle_id, body=body)


@router.post(
    "/cycles/{cycle_id}/closed",
    summary="Record that the cycle's workflow finished (called by the worker at the end; idempotent)",
    tags=["cycle control"],
    **access(*HR),
)
async def mark_closed(cycle_id: CycleId, session: SessionDep) -> Accepted:
    return await control.mark_closed(session=session, cycle_id=cycle_id)
