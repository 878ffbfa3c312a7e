"""``GET /v1/audit``: a service's append-only audit log, read through its API."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.audit import _ENTITY_ID_MAX, MAX_PAGE, AuditMixin
from services.common.auth import Role, requires
from services.common.deps import get_session

__all__ = ["AuditEntryRead", "AuditPage", "audit_router"]


class AuditEntryRead(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    actor_roles: list[str]
    request_id: str | None
    service: str
    action: Literal["create", "update", "delete"]
    entity: str
    entity_id: str
    row_count: int | None
    criteria: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: list[str] | None


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    limit: int
    offset: int
    has_more: bool
    """Whether a further page exists (no total: counting a large log is not free)."""


def _read(row: Any) -> AuditEntryRead:
    return AuditEntryRead(
        id=row.id,
        occurred_at=row.occurred_at,
        actor=row.actor,
        actor_roles=row.actor_roles.split() if row.actor_roles else [],
        request_id=row.request_id,
        service=row.service,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        row_count=row.row_count,
        criteria=row.criteria,
        before=json.loads(row.before) if row.before is not None else None,
        after=json.loads(row.after) if row.after is not None else None,
        changed=json.loads(row.changed) if row.changed is not None else None,
    )


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def audit_router(model: type[AuditMixin]) -> APIRouter:
    """``GET /v1/audit``: the service's audit log, newest first (hr_admin, ops)."""
    roles = (Role.HR_ADMIN, Role.OPS)
    audit: Any = model
    router = APIRouter(prefix="/v1", tags=["audit"])

    @router.get(
        "/audit",
        summary="The service's append-only audit log, newest first, with filters",
        description=(
            "Every create, update and delete of this service's tables: who (token subject and roles), "
            "when, the entity and its primary key, the values before and after, the changed columns and "
            "the request id (also returned as the X-Request-ID response header of the change). "
            "Naive timestamps in since/until are read as UTC."
        ),
        dependencies=[requires(*roles)],
        openapi_extra={"x-roles": [r.value for r in roles]},
    )
    async def list_audit(
        session: AsyncSession = Depends(get_session),
        entity: str | None = Query(default=None, max_length=128, description="Table name, e.g. goals_goal"),
        entity_id: str | None = Query(default=None, max_length=_ENTITY_ID_MAX, description="Primary key as text"),
        actor: str | None = Query(default=None, max_length=256, description="Token subject"),
        action: Literal["create", "update", "delete"] | None = Query(default=None),
        since: datetime | None = Query(default=None, description="Changes at or after this instant"),
        until: datetime | None = Query(default=None, description="Changes before this instant"),
        request_id: str | None = Query(default=None, max_length=128),
        limit: int = Query(default=100, ge=1, le=MAX_PAGE),
        offset: int = Query(default=0, ge=0, le=1_000_000),
    ) -> AuditPage:
        query = select(audit)
        for column, value in (
            (audit.entity, entity),
            (audit.entity_id, entity_id),
            (audit.actor, actor),
            (audit.action, action),
            (audit.request_id, request_id),
        ):
            if value is not None:
                query = query.where(column == value)
        if since is not None:
            query = query.where(audit.occurred_at >= _as_utc(since))
        if until is not None:
            query = query.where(audit.occurred_at < _as_utc(until))
        rows = (await session.scalars(query.order_by(audit.id.desc()).limit(limit + 1).offset(offset))).all()
        return AuditPage(
            items=[_read(r) for r in rows[:limit]], limit=limit, offset=offset, has_more=len(rows) > limit
        )

    return router
