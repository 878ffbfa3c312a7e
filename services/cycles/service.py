"""Domain rules of the cycles service: org import, directory scoping, templates, cycles and snapshot distribution.

Every function takes its dependencies by keyword and is callable without HTTP.
Functions that change data commit their own unit of work.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from contracts.cycle import Stage
from contracts.domain_events import CycleCreatedPayload, CycleStartedPayload, OrgImportedPayload
from contracts.org import DataOwnerDirectory, DataOwnerRef, DepartmentRef, OrgSnapshot, Participant
from contracts.templates import (
    BandLimit,
    CalibrationGuideline,
    CycleTemplateSpec,
    LateDataPolicy,
    RatingBand,
    RatingScale,
    ScoringComponent,
    ScoringConfig,
    StagePlan,
)
from services.common.auth import Principal, Role, mint_token
from services.common.errors import DomainError
from services.common.outbox import add_event, new_event
from services.common.participants import OrgView, replace_snapshot
from services.common.settings import Settings
from services.cycles.models import (
    CyclesCycle,
    CyclesDepartment,
    CyclesDistribution,
    CyclesEmployee,
    CyclesOrgImport,
    CyclesOutbox,
    CyclesSnapshotDataOwner,
    CyclesSnapshotDepartment,
    CyclesSnapshotParticipant,
    CyclesTemplate,
)
from services.cycles.org_import import OrgFile
from services.cycles.schemas import CycleStatus, DeliveryStatus, ImportCounts, OrgImportReport

__all__ = [
    "STAGE_SERVICES",
    "CycleStatus",
    "Delivery",
    "DeliveryStatus",
    "ImportCounts",
    "OrgImportReport",
    "create_cycle",
    "create_template",
    "distribute_cycle",
    "distribute_snapshot",
    "get_cycle",
    "get_department",
    "get_employee",
    "get_template",
    "import_org",
    "list_cycles",
    "list_departments",
    "list_distribution",
    "list_employees",
    "list_templates",
    "load_data_owners",
    "load_directory",
    "load_snapshot",
    "replace_template",
    "sample_template",
    "start_cycle",
]

SERVICE = "cycles"
STAGE_SERVICES: tuple[str, ...] = ("goals", "tracking", "evaluation", "feedback", "results")
"""The services that keep a copy of each cycle's snapshot, in the order they are told."""


def _now() -> datetime:
    return datetime.now(UTC)


# -- org import ------------------------------------------------------------------------------------
_DEPARTMENT_FIELDS = ("name", "parent_id", "head_employee_id", "data_steward_id")
_EMPLOYEE_FIELDS = ("name", "email", "department_id", "manager_id", "job_title", "grade", "salary_band")


def _upsert(
    session: AsyncSession,
    model: Any,
    existing: dict[str, Any],
    incoming: dict[str, dict[str, Any]],
    fields: Sequence[str],
    now: datetime,
) -> ImportCounts:
    counts = ImportCounts()
    for row_id, values in incoming.items():
        row = existing.get(row_id)
        if row is None:
            session.add(model(id=row_id, active=True, updated_at=now, **values))
            counts.created += 1
        elif row.active and all(getattr(row, f) == values[f] for f in fields):
            counts.unchanged += 1
        else:
            for name in fields:
                setattr(row, name, values[name])
            row.active = True
            row.updated_at = now
            counts.updated += 1
    for row_id, row in existing.items():
        if row_id not in incoming and row.active:
            row.active = False
            row.updated_at = now
            counts.deactivated += 1
    return counts


async def import_org(*, session: AsyncSession, org: OrgFile, actor: str, dry_run: bool = False) -> OrgImportReport:
    """Make the directory match ``org`` (already validated): create, update, or deactivate rows not listed.

    All or nothing: one transaction. Importing the same content again changes nothing.
    """
    now = _now()
    departments = {d.id: d for d in (await session.scalars(select(CyclesDepartment))).all()}
    employees = {e.id: e for e in (await session.scalars(select(CyclesEmployee))).all()}
    dept_counts = _upsert(
        session,
        CyclesDepartment,
        departments,
        {d.department_id: {f: getattr(d, f) for f in _DEPARTMENT_FIELDS} for d in org.departments},
        _DEPARTMENT_FIELDS,
        now,
    )
    emp_counts = _upsert(
        session,
        CyclesEmployee,
        employees,
        {e.employee_id: {f: getattr(e, f) for f in _EMPLOYEE_FIELDS} for e in org.employees},
        _EMPLOYEE_FIELDS,
        now,
    )
    changed = any(c.created or c.updated or c.deactivated for c in (dept_counts, emp_counts))
    report = OrgImportReport(
        source=org.source,
        content_hash=org.content_hash(),
        dry_run=dry_run,
        changed=changed,
        departments=dept_counts,
        employees=emp_counts,
    )
    if dry_run or not changed:
        await session.rollback()
        return report
    session.add(
        CyclesOrgImport(
            content_hash=report.content_hash,
            source=org.source,
            report=report.model_dump(mode="json"),
            imported_by=actor,
            imported_at=now,
        )
    )
    add_event(
        session,
        CyclesOutbox,
        new_event(service=SERVICE, type="OrgImported", payload=OrgImportedPayload.model_validate(report.model_dump())),
    )
    await session.commit()
    return report


# -- directory reads -------------------------------------------------------------------------------
async def load_directory(*, session: AsyncSession) -> OrgView:
    """The active directory as an :class:`OrgView`, for the shared scoping rules."""
    departments = (await session.scalars(select(CyclesDepartment).where(CyclesDepartment.active))).all()
    employees = (await session.scalars(select(CyclesEmployee).where(CyclesEmployee.active))).all()
    return OrgView(
        [_department_ref(d) for d in departments],
        [_participant(e) for e in employees],
    )


def _department_ref(d: CyclesDepartment) -> DepartmentRef:
    return DepartmentRef(department_id=d.id, name=d.name, parent_id=d.parent_id, head_employee_id=d.head_employee_id)


def _data_owner(d: CyclesDepartment) -> DataOwnerRef:
    return DataOwnerRef(
        department_id=d.id,
        name=d.name,
        parent_id=d.parent_id,
        data_steward_id=d.data_steward_id,
        head_employee_id=d.head_employee_id,
    )


def _participant(e: CyclesEmployee) -> Participant:
    return Participant(
        employee_id=e.id,
        name=e.name,
        email=e.email,
        department_id=e.department_id,
        manager_id=e.manager_id,
        job_title=e.job_title,
        grade=e.grade,
    )


async def _visible(session: AsyncSession, principal: Principal) -> set[str] | None:
    if principal.has(Role.HR_ADMIN, Role.OPS, Role.FINANCE):  # finance pays everyone (payroll export)
        return None
    if not principal.has(Role.MANAGER, Role.DEPT_HEAD):
        return {principal.employee_id} if principal.employee_id else set()
    view = await load_directory(session=session)
    return view.visible_employee_ids(principal)


async def list_employees(
    *,
    session: AsyncSession,
    principal: Principal,
    department_id: str | None = None,
    manager_id: str | None = None,
    job_title: str | None = None,
    include_inactive: bool = False,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[CyclesEmployee], int]:
    """Employees the caller may see: own record, reports, own department (tree), or all for hr_admin/ops."""
    query = select(CyclesEmployee)
    if not include_inactive:
        query = query.where(CyclesEmployee.active)
    visible = await _visible(session, principal)
    if visible is not None:
        query = query.where(CyclesEmployee.id.in_(sorted(visible)))
    if department_id is not None:
        query = query.where(CyclesEmployee.department_id == department_id)
    if manager_id is not None:
        query = query.where(CyclesEmployee.manager_id == manager_id)
    if job_title is not None:
        query = query.where(CyclesEmployee.job_title == job_title)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = (await session.scalars(query.order_by(CyclesEmployee.id).limit(limit).offset(offset))).all()
    return list(rows), int(total or 0)


async def get_employee(*, session: AsyncSession, principal: Principal, employee_id: str) -> CyclesEmployee:
    employee = await session.get(CyclesEmployee, employee_id)
    if employee is None:
        raise DomainError(f"no employee {employee_id!r} in the org directory", status_code=404, field="employee_id")
    visible = await _visible(session, principal)
    if visible is not None and employee_id not in visible:
        raise DomainError(
            f"you may not read employee {employee_id!r}: you see your own record, your reports "
            "and, as a department head, your department",
            status_code=403,
            field="employee_id",
        )
    return employee


async def list_departments(
    *, session: AsyncSession, include_inactive: bool = False, limit: int = 100, offset: int = 0
) -> tuple[list[CyclesDepartment], int]:
    query = select(CyclesDepartment)
    if not include_inactive:
        query = query.where(CyclesDepartment.active)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    rows = (await session.scalars(query.order_by(CyclesDepartment.id).limit(limit).offset(offset))).all()
    return list(rows), int(total or 0)


async def get_department(*, session: AsyncSession, department_id: str) -> CyclesDepartment:
    department = await session.get(CyclesDepartment, department_id)
    if department is None:
        raise DomainError(
            f"no department {department_id!r} in the org directory", status_code=404, field="department_id"
        )
    return department


# -- templates -------------------------------------------------------------------------------------
def sample_template() -> CycleTemplateSpec:
    """A complete, valid annual-review template (``tandem template sample``)."""
    return CycleTemplateSpec(
        name="Annual performance review",
        description="Yearly cycle: goals in January, quarterly check-ins, year-end evaluation and calibration.",
        stages=[
            StagePlan(stage=Stage.GOAL_SETTING, duration_days=31, deadline_days=21),
            StagePlan(stage=Stage.TRACKING, duration_days=334, reminder_days_before=[14, 7, 1]),
            StagePlan(stage=Stage.EVALUATION, duration_days=21, deadline_days=14),
            StagePlan(stage=Stage.FEEDBACK, duration_days=14, deadline_days=10),
            StagePlan(stage=Stage.RESULT_APPLICATION, duration_days=21, deadline_days=14),
        ],
        reminder_days_before=[7, 1],
        escalate_days_after_deadline=2,
        scoring=ScoringConfig(
            weights={
                ScoringComponent.KPI: 50,
                ScoringComponent.MANAGER: 25,
                ScoringComponent.PEER: 10,
                ScoringComponent.CROSS_DEPARTMENT: 10,
                ScoringComponent.SELF: 5,
            },
            rating_scale=RatingScale(
                min=1,
                max=5,
                bands=[
                    RatingBand(label="needs improvement", min_score=1, max_score=2),
                    RatingBand(label="partially meets", min_score=2, max_score=3),
                    RatingBand(label="meets", min_score=3, max_score=4),
                    RatingBand(label="exceeds", min_score=4, max_score=4.5),
                    RatingBand(label="outstanding", min_score=4.5, max_score=5),
                ],
            ),
            formula="w_kpi * kpi + w_manager * manager + w_peer * peer + w_cross_department * cross_department"
            " + w_self * self",
        ),
        calibration=CalibrationGuideline(
            limits=[
                BandLimit(band="outstanding", max_percent=10),
                BandLimit(band="exceeds", max_percent=20),
                BandLimit(band="needs improvement", max_percent=15),
            ],
            min_group_size=10,
        ),
        peer_anonymity_threshold=3,
        late_data_policy=LateDataPolicy.NEXT_PERIOD,
    )


async def _template_name_taken(session: AsyncSession, name: str, except_id: str | None = None) -> bool:
    query = select(CyclesTemplate.id).where(CyclesTemplate.name == name)
    if except_id is not None:
        query = query.where(CyclesTemplate.id != except_id)
    return (await session.scalar(query)) is not None


async def create_template(*, session: AsyncSession, spec: CycleTemplateSpec, actor: str) -> CyclesTemplate:
    if await _template_name_taken(session, spec.name):
        raise DomainError(f"a template named {spec.name!r} already exists", status_code=409, field="name")
    now = _now()
    template = CyclesTemplate(
        id=f"tpl-{uuid.uuid4().hex[:12]}",
        name=spec.name,
        spec=spec.model_dump(mode="json"),
        version=1,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    try:
        await session.commit()
    except IntegrityError as exc:  # a concurrent create with the same name
        await session.rollback()
        raise DomainError(f"a template named {spec.name!r} already exists", status_code=409, field="name") from exc
    return template


async def replace_template(
    *, session: AsyncSession, template_id: str, spec: CycleTemplateSpec, actor: str
) -> CyclesTemplate:
    """A new version of a template; cycles created earlier keep the copy they took."""
    template = await get_template(session=session, template_id=template_id)
    if await _template_name_taken(session, spec.name, except_id=template_id):
        raise DomainError(f"a template named {spec.name!r} already exists", status_code=409, field="name")
    template.name = spec.name
    template.spec = spec.model_dump(mode="json")
    template.version += 1
    template.updated_at = _now()
    await session.commit()
    return template


async def get_template(*, session: AsyncSession, template_id: str) -> CyclesTemplate:
    template = await session.get(CyclesTemplate, template_id)
    if template is None:
        raise DomainError(f"no template {template_id!r}", status_code=404, field="template_id")
    return template


async def list_templates(
    *, session: AsyncSession, limit: int = 100, offset: int = 0
) -> tuple[list[CyclesTemplate], int]:
    total = await session.scalar(select(func.count()).select_from(CyclesTemplate))
    rows = await session.scalars(select(CyclesTemplate).order_by(CyclesTemplate.name).limit(limit).offset(offset))
    return list(rows.all()), int(total or 0)


# -- cycles ----------------------------------------------------------------------------------------
async def create_cycle(
    *,
    session: AsyncSession,
    name: str,
    template_id: str,
    period_start: date,
    period_end: date,
    department_ids: Sequence[str],
    actor: str,
) -> CyclesCycle:
    """A draft cycle for a period and a set of departments, with a copy of its template."""
    name = name.strip()
    if not name:
        raise DomainError("name must not be blank", field="name")
    if period_end <= period_start:
        raise DomainError(f"period_end ({period_end}) must be after period_start ({period_start})", field="period_end")
    wanted = list(dict.fromkeys(d.strip() for d in department_ids))
    if not wanted or not all(wanted):
        raise DomainError("department_ids must name at least one department, without blanks", field="department_ids")
    template = await session.get(CyclesTemplate, template_id)
    if template is None:
        raise DomainError(
            f"unknown template {template_id!r}; list templates with GET /v1/templates", field="template_id"
        )
    known = set(
        (
            await session.scalars(
                select(CyclesDepartment.id).where(CyclesDepartment.id.in_(wanted), CyclesDepartment.active)
            )
        ).all()
    )
    unknown = [d for d in wanted if d not in known]
    if unknown:
        raise DomainError(
            f"unknown department(s) {unknown}: not in the org directory (import it first, or check the ids "
            "with GET /v1/org/departments)",
            field="department_ids",
        )
    if await session.scalar(select(CyclesCycle.id).where(CyclesCycle.name == name)) is not None:
        raise DomainError(f"a cycle named {name!r} already exists", status_code=409, field="name")
    cycle = CyclesCycle(
        id=f"cyc-{uuid.uuid4().hex[:12]}",
        name=name,
        status=CycleStatus.DRAFT.value,
        template_id=template.id,
        template_version=template.version,
        template_spec=template.spec,
        period_start=period_start,
        period_end=period_end,
        department_ids=wanted,
        created_by=actor,
        created_at=_now(),
    )
    session.add(cycle)
    add_event(
        session,
        CyclesOutbox,
        new_event(
            service=SERVICE,
            type="CycleCreated",
            cycle_id=cycle.id,
            payload=CycleCreatedPayload(name=name, template_id=template.id, department_ids=wanted),
        ),
    )
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise DomainError(f"a cycle named {name!r} already exists", status_code=409, field="name") from exc
    return cycle


async def get_cycle(*, session: AsyncSession, cycle_id: str) -> CyclesCycle:
    cycle = await session.get(CyclesCycle, cycle_id)
    if cycle is None:
        raise DomainError(f"no cycle {cycle_id!r}", status_code=404, field="cycle_id")
    return cycle


async def list_cycles(
    *, session: AsyncSession, status: CycleStatus | None = None, limit: int = 100, offset: int = 0
) -> tuple[list[CyclesCycle], int]:
    query = select(CyclesCycle)
    if status is not None:
        query = query.where(CyclesCycle.status == status.value)
    total = await session.scalar(select(func.count()).select_from(query.subquery()))
    query = query.order_by(CyclesCycle.created_at.desc(), CyclesCycle.id).limit(limit).offset(offset)
    rows = await session.scalars(query)
    return list(rows.all()), int(total or 0)


async def start_cycle(*, session: AsyncSession, cycle_id: str, actor: str) -> CyclesCycle:
    """Freeze the cycle's org snapshot (its departments, their sub-departments and their employees)
    and make it active. Distribution to the stage services is :func:`distribute_cycle`'s job."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id)
    if cycle.status != CycleStatus.DRAFT:
        raise DomainError(
            f"cycle {cycle_id!r} is {cycle.status}; only a draft cycle can be started"
            + (" (retry distribution with POST /v1/cycles/{id}/distribute)" if cycle.status == "active" else ""),
            status_code=409,
            field="status",
        )
    view = await load_directory(session=session)
    missing = [d for d in cycle.department_ids if d not in view.departments]
    if missing:
        raise DomainError(
            f"department(s) {missing} of this cycle are no longer in the org directory; "
            "re-import the org or create a new cycle",
            status_code=409,
            field="department_ids",
        )
    in_scope: set[str] = set()
    for department_id in cycle.department_ids:
        in_scope |= view.department_tree(department_id)
    participants = sorted(
        (p for p in view.participants.values() if p.department_id in in_scope), key=lambda p: p.employee_id
    )
    if not participants:
        raise DomainError(
            f"the cycle's departments {sorted(in_scope)} have no employees", status_code=409, field="department_ids"
        )
    # Claim the transition atomically so two concurrent starts cannot both freeze a snapshot.
    claimed = await session.execute(
        update(CyclesCycle)
        .where(CyclesCycle.id == cycle_id, CyclesCycle.status == CycleStatus.DRAFT.value)
        .values(status=CycleStatus.ACTIVE.value, started_at=_now(), snapshot_participants=len(participants))
        .execution_options(synchronize_session=False)
    )
    if getattr(claimed, "rowcount", 1) != 1:
        await session.rollback()
        raise DomainError(f"cycle {cycle_id!r} was started concurrently", status_code=409, field="status")
    snapshot = OrgSnapshot(
        cycle_id=cycle_id,
        departments=[view.departments[d] for d in sorted(in_scope)],
        participants=participants,
    )
    await replace_snapshot(session, CyclesSnapshotParticipant, CyclesSnapshotDepartment, snapshot)
    await _freeze_data_owners(session, cycle_id=cycle_id, view=view, participants=participants)
    session.add_all(
        CyclesDistribution(cycle_id=cycle_id, service=svc, status=DeliveryStatus.PENDING.value, attempts=0)
        for svc in STAGE_SERVICES
    )
    add_event(
        session,
        CyclesOutbox,
        new_event(
            service=SERVICE,
            type="CycleStarted",
            cycle_id=cycle_id,
            payload=CycleStartedPayload(
                started_by=actor, departments=len(snapshot.departments), participants=len(snapshot.participants)
            ),
        ),
    )
    await session.commit()
    await session.refresh(cycle)
    return cycle


async def _freeze_data_owners(
    session: AsyncSession, *, cycle_id: str, view: OrgView, participants: Sequence[Participant]
) -> None:
    """Freeze who answers for each department's data, and make them reachable by notifications.

    Every active department is kept with its data steward and head (``load_data_owners``): a KPI's
    data may come from a department outside the cycle. Stewards and heads who take no part in the
    cycle are stored with the snapshot's people, so the notification path (which resolves
    recipients from the snapshot) finds their name and e-mail; ``load_snapshot`` leaves them out
    of what the stage services receive. Caller commits.
    """
    departments = (await session.scalars(select(CyclesDepartment).where(CyclesDepartment.active))).all()
    session.add_all(CyclesSnapshotDataOwner(cycle_id=cycle_id, **_data_owner(d).model_dump()) for d in departments)
    taking_part = {p.employee_id for p in participants}
    contacts = {c for d in departments for c in (d.data_steward_id, d.head_employee_id) if c}
    session.add_all(
        CyclesSnapshotParticipant(cycle_id=cycle_id, **view.participants[c].model_dump())
        for c in sorted(contacts - taking_part)
        if c in view.participants
    )


async def load_data_owners(*, session: AsyncSession, cycle_id: str) -> DataOwnerDirectory | None:
    """The data owners frozen when the cycle started; None for a cycle started before they were."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id)
    rows = (
        await session.scalars(
            select(CyclesSnapshotDataOwner)
            .where(CyclesSnapshotDataOwner.cycle_id == cycle_id)
            .order_by(CyclesSnapshotDataOwner.department_id)
        )
    ).all()
    if not rows:
        return None
    return DataOwnerDirectory(
        cycle_id=cycle_id,
        cycle_department_ids=list(cycle.department_ids),
        departments=[DataOwnerRef.model_validate(r, from_attributes=True) for r in rows],
    )


async def load_snapshot(*, session: AsyncSession, cycle_id: str) -> OrgSnapshot:
    """The cycle's frozen snapshot (409 while the cycle is a draft): its departments and the people in
    them (the data stewards and heads outside it, kept for notifications only, are left out)."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id)
    if cycle.started_at is None:
        raise DomainError(f"cycle {cycle_id!r} is a draft: its org snapshot is frozen when it starts", status_code=409)
    participants = await session.scalars(
        select(CyclesSnapshotParticipant)
        .where(CyclesSnapshotParticipant.cycle_id == cycle_id)
        .order_by(CyclesSnapshotParticipant.employee_id)
    )
    departments = await session.scalars(
        select(CyclesSnapshotDepartment)
        .where(CyclesSnapshotDepartment.cycle_id == cycle_id)
        .order_by(CyclesSnapshotDepartment.department_id)
    )
    refs = [DepartmentRef.model_validate(d, from_attributes=True) for d in departments.all()]
    in_snapshot = {d.department_id for d in refs}
    return OrgSnapshot(
        cycle_id=cycle_id,
        departments=refs,
        participants=[
            Participant.model_validate(p, from_attributes=True)
            for p in participants.all()
            if p.department_id in in_snapshot
        ],
    )


@dataclass(frozen=True)
class Delivery:
    """The outcome of sending a snapshot to one stage service."""

    service: str
    delivered: bool
    error: str | None = None


async def distribute_snapshot(
    *,
    http: httpx.AsyncClient,
    settings: Settings,
    snapshot: OrgSnapshot,
    services: Sequence[str] = STAGE_SERVICES,
    data_owners: DataOwnerDirectory | None = None,
) -> list[Delivery]:
    """PUT the snapshot to each service's ``/v1/cycles/{id}/participants`` concurrently; never raises.
    Tracking also receives ``data_owners`` (``/v1/cycles/{id}/data-owners``), as part of its delivery;
    a tracking service that predates that endpoint (404) counts as delivered: it names department
    heads from the snapshot instead (``POST .../distribute?everyone=true`` sends it after an upgrade).

    The receiving endpoints are idempotent, so a retry after a partial failure is safe.
    """
    token = mint_token(settings, sub="system:cycles", roles=[Role.HR_ADMIN.value])
    headers = {"Authorization": f"Bearer {token}"}
    body = snapshot.model_dump(mode="json")
    owners = data_owners.model_dump(mode="json") if data_owners is not None else None

    async def put(service: str, path: str, document: dict[str, Any], *, optional: bool = False) -> str | None:
        """None when delivered (or, ``optional``, not known there), else why not."""
        base: str = getattr(settings, f"{service}_url")
        url = f"{base.rstrip('/')}/v1/cycles/{snapshot.cycle_id}/{path}"
        try:
            response = await http.put(url, json=document, headers=headers)
        except Exception as exc:  # noqa: BLE001 - an unreachable service is reported, never fatal
            return f"{url} unreachable: {type(exc).__name__}: {exc}".strip(": ")
        if response.is_success or (optional and response.status_code == 404):
            return None
        return f"{url} answered HTTP {response.status_code}: {response.text[:500]}"

    async def deliver(service: str) -> Delivery:
        error = await put(service, "participants", body)
        if error is None and service == "tracking" and owners is not None:
            error = await put(service, "data-owners", owners, optional=True)
        return Delivery(service, error is None, error)

    return list(await asyncio.gather(*(deliver(s) for s in services)))


async def list_distribution(*, session: AsyncSession, cycle_id: str) -> list[CyclesDistribution]:
    rows = await session.scalars(select(CyclesDistribution).where(CyclesDistribution.cycle_id == cycle_id))
    by_service = {r.service: r for r in rows.all()}
    return [by_service[s] for s in STAGE_SERVICES if s in by_service]


async def distribute_cycle(
    *,
    session: AsyncSession,
    http: httpx.AsyncClient,
    settings: Settings,
    cycle_id: str,
    everyone: bool = False,
) -> list[CyclesDistribution]:
    """Send the cycle's snapshot to the services that have not received it (``everyone``: to all again)."""
    cycle = await get_cycle(session=session, cycle_id=cycle_id)
    if cycle.status not in (CycleStatus.ACTIVE, CycleStatus.PAUSED):
        raise DomainError(
            f"cycle {cycle_id!r} is {cycle.status}; its snapshot is distributed only while it is active or paused",
            status_code=409,
            field="status",
        )
    rows = await list_distribution(session=session, cycle_id=cycle_id)
    targets = [r.service for r in rows if everyone or r.status != DeliveryStatus.DELIVERED]
    if not targets:
        return rows
    snapshot = await load_snapshot(session=session, cycle_id=cycle_id)
    data_owners = await load_data_owners(session=session, cycle_id=cycle_id)
    await session.commit()  # end the read transaction: no database lock is held during the HTTP calls
    delivered = await distribute_snapshot(
        http=http, settings=settings, snapshot=snapshot, services=targets, data_owners=data_owners
    )
    results = {d.service: d for d in delivered}
    now = _now()
    rows = await list_distribution(session=session, cycle_id=cycle_id)
    for row in rows:
        delivery = results.get(row.service)
        if delivery is None:
            continue
        row.attempts += 1
        row.last_attempt_at = now
        if delivery.delivered:
            row.status = DeliveryStatus.DELIVERED.value
            row.delivered_at = now
            row.last_error = None
        else:
            row.status = DeliveryStatus.PENDING.value
            row.last_error = delivery.error
    await session.commit()
    return rows
