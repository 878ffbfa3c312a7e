"""``GET /v1/audit``: a service's append-only audit log, read through its API.

Each reader sees what their own routes would show them (``services.common.redaction``): HR and
ops get entries with the sensitive columns hidden; only the ``auditor`` role reads raw entries,
and each of its reads is recorded in the log itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.audit import _ENTITY_ID_MAX, MAX_PAGE, AuditMixin, record_read
from services.common.auth import Principal, Role, requires
from services.common.deps import get_session
from services.common.redaction import Reader, redact_entry

__all__ = ["AuditEntryRead", "AuditPage", "audit_router"]


class AuditEntryRead(BaseModel):
    id: int
    occurred_at: datetime
    actor: str
    actor_roles: list[str]
    request_id: str | None
    service: str
    action: Literal["create", "update", "delete", "read"]
    entity: str
    entity_id: str
    row_count: int | None
    criteria: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    changed: list[str] | None
    chain_seq: int | None = Field(default=None, description="Position in the service's hash chain.")
    prev_hash: str | None = Field(default=None, description="Hash of the entry before (auditor only).")
    row_hash: str | None = Field(default=None, description="This entry's hash (auditor only).")
    redacted: list[str] = Field(
        default_factory=list,
        description="What was hidden from you (e.g. after.rater_id, actor): your own routes do not show it.",
    )


class AuditPage(BaseModel):
    items: list[AuditEntryRead]
    limit: int
    offset: int
    has_more: bool
    """Whether a further page exists (no total: counting a large log is not free)."""


def _entry(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "occurred_at": row.occurred_at,
        "actor": row.actor,
        "actor_roles": row.actor_roles.split() if row.actor_roles else [],
        "request_id": row.request_id,
        "service": row.service,
        "action": row.action,
        "entity": row.entity,
        "entity_id": row.entity_id,
        "row_count": row.row_count,
        "criteria": row.criteria,
        "before": json.loads(row.before) if row.before is not None else None,
        "after": json.loads(row.after) if row.after is not None else None,
        "changed": json.loads(row.changed) if row.changed is not None else None,
        "chain_seq": row.chain_seq,
        "prev_hash": row.prev_hash,
        "row_hash": row.row_hash,
    }


def _visible(row: Any, reader: Reader, *, filtered_by: set[str]) -> AuditEntryRead | None:
    """The entry as ``reader`` may see it; None when it matched only through a hidden value (a
    filter on a redacted actor or request id would otherwise confirm who wrote the row)."""
    entry = _entry(row)
    redacted = redact_entry(entry, reader)
    if filtered_by & set(redacted):
        return None
    return AuditEntryRead(**entry, redacted=redacted)


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def audit_router(model: type[AuditMixin]) -> APIRouter:
    """``GET /v1/audit``: the service's audit log, newest first (hr_admin and ops redacted, auditor raw)."""
    roles = (Role.HR_ADMIN, Role.OPS, Role.AUDITOR)
    audit: Any = model
    router = APIRouter(prefix="/v1", tags=["audit"])

    @router.get(
        "/audit",
        summary="The service's append-only audit log, newest first, with filters",
        description=(
            "Every create, update and delete of this service's tables: who (token subject and roles), "
            "when, the entity and its primary key, the values before and after, the changed columns and "
            "the request id (also returned as the X-Request-ID response header of the change). "
            "Naive timestamps in since/until are read as UTC. hr_admin and ops see what their own routes "
            "would show them: anonymous raters, individual reviews, private notes, salary bands and "
            "secrets are replaced by '[redacted]' and listed in each entry's 'redacted'; a reviewee never "
            "sees who reviewed them. Only the auditor role reads raw entries (with the chain hashes), and "
            "each such read is recorded in the log (action 'read')."
        ),
        openapi_extra={"x-roles": [r.value for r in roles]},
    )
    async def list_audit(
        request: Request,
        principal: Principal = requires(*roles),
        session: AsyncSession = Depends(get_session),
        entity: str | None = Query(default=None, max_length=128, description="Table name, e.g. goals_goal"),
        entity_id: str | None = Query(default=None, max_length=_ENTITY_ID_MAX, description="Primary key as text"),
        actor: str | None = Query(default=None, max_length=256, description="Token subject"),
        action: Literal["create", "update", "delete", "read"] | None = Query(default=None),
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
        reader = Reader.of(principal)
        filtered_by = {name for name, value in (("actor", actor), ("request_id", request_id)) if value is not None}
        items = [e for e in (_visible(r, reader, filtered_by=filtered_by) for r in rows[:limit]) if e is not None]
        if reader.raw:
            criteria = {
                "entity": entity,
                "entity_id": entity_id,
                "actor": actor,
                "action": action,
                "since": since.isoformat() if since else None,
                "until": until.isoformat() if until else None,
                "request_id": request_id,
                "limit": limit,
                "offset": offset,
            }
            service = str(request.app.state.service)
            await record_read(session, model, service=service, criteria=criteria, row_count=len(items))
        return AuditPage(items=items, limit=limit, offset=offset, has_more=len(rows) > limit)

    return router
