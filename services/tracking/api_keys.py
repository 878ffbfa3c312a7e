"""API keys of department systems for the HTTP ingest: issued, listed, rotated and revoked by HR.

The key scheme is ``services.common.api_keys`` (``tdk_<key_id>_<secret>``, a salted SHA-256 of
the secret); this module keeps its records in ``tracking_api_key`` and wires it into HTTP:

* ``router``: the hr_admin endpoints under ``/v1/api-keys``. The plaintext key is in the
  response of issue and rotate only; nothing else ever returns it or its hash.
* ``IngestCaller``: the dependency of ``POST /v1/ingest/metrics``. A department_system bearer
  token (as before) or an ``X-API-Key`` header; a valid key acts as a department system of its
  department, so the ingest rules (own department only, rate per department) apply unchanged.

Time comes from ``app.state.clock`` (``services.common.clock``), so tests move it instead of sleeping.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import api_keys
from services.common.api_keys import ApiKeyError, ApiKeyRecord
from services.common.audit import bind_principal
from services.common.auth import Principal, Role, current_principal, requires
from services.common.clock import NowDep
from services.common.deps import SessionDep
from services.common.errors import DomainError
from services.tracking.models import TrackingApiKey

__all__ = [
    "API_KEY_HEADER",
    "ApiKeyCreate",
    "ApiKeyIssued",
    "ApiKeyPage",
    "ApiKeyRead",
    "ApiKeyRotate",
    "IngestCaller",
    "authenticate_key",
    "issue_key",
    "list_keys",
    "revoke_key",
    "rotate_key",
    "router",
]

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
MAX_EXPIRES_IN_DAYS = 3650
MAX_OVERLAP_HOURS = 24 * 30

_DEPARTMENT_ID = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"  # contracts.events.Identifier


# -- schemas ---------------------------------------------------------------------------------------
class ApiKeyStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class ApiKeyCreate(BaseModel):
    department_id: str = Field(
        min_length=1, max_length=64, pattern=_DEPARTMENT_ID, description="The department the system publishes for."
    )
    name: str = Field(min_length=1, max_length=200, description="What uses the key, e.g. 'salesforce-prod'.")
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EXPIRES_IN_DAYS,
        description="Lifetime in days; omitted: valid until rotated or revoked.",
    )


class ApiKeyRotate(BaseModel):
    overlap_hours: float = Field(
        default=api_keys.DEFAULT_OVERLAP.total_seconds() / 3600,
        ge=0,
        le=MAX_OVERLAP_HOURS,
        description="How long the old key keeps working (0 ends it now).",
    )
    expires_in_days: int | None = Field(
        default=None,
        ge=1,
        le=MAX_EXPIRES_IN_DAYS,
        description="Lifetime of the new key; omitted: the old key's original lifetime (none if it had none).",
    )


class ApiKeyRead(BaseModel):
    """A key as listed: never its secret or hash."""

    key_id: str
    department_id: str
    name: str
    status: ApiKeyStatus
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    replaces: str | None = Field(description="The key this one was rotated from.")


class ApiKeyIssued(ApiKeyRead):
    key: str = Field(
        description=f"The API key, shown this once: send it as the {API_KEY_HEADER} header. Only its hash is stored."
    )


class ApiKeyPage(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ApiKeyRead]


# -- the store -------------------------------------------------------------------------------------
def _record(row: TrackingApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row.key_id,
        department_id=row.department_id,
        name=row.name,
        secret_hash=row.secret_hash,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        replaces=row.replaces,
    )


def _row(record: ApiKeyRecord) -> TrackingApiKey:
    return TrackingApiKey(
        key_id=record.key_id,
        department_id=record.department_id,
        name=record.name,
        secret_hash=record.secret_hash,
        created_at=record.created_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
        replaces=record.replaces,
    )


def _read(record: ApiKeyRecord, *, now: datetime) -> ApiKeyRead:
    if record.revoked_at is not None and record.revoked_at <= now:
        state = ApiKeyStatus.REVOKED
    elif record.active(now):
        state = ApiKeyStatus.ACTIVE
    else:
        state = ApiKeyStatus.EXPIRED
    return ApiKeyRead(
        key_id=record.key_id,
        department_id=record.department_id,
        name=record.name,
        status=state,
        created_at=record.created_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
        replaces=record.replaces,
    )


def _issued(issued: api_keys.IssuedKey, *, now: datetime) -> ApiKeyIssued:
    return ApiKeyIssued(**_read(issued.record, now=now).model_dump(), key=issued.plaintext)


async def _get(session: AsyncSession, key_id: str) -> TrackingApiKey:
    row = await session.get(TrackingApiKey, key_id)
    if row is None:
        raise DomainError(f"API key {key_id!r} not found", status_code=404, field="key_id")
    return row


async def issue_key(
    *, session: AsyncSession, department_id: str, name: str, expires_in_days: int | None, now: datetime
) -> ApiKeyIssued:
    """A new key for ``department_id``; stores its hash and returns the plaintext (once). Commits."""
    ttl = timedelta(days=expires_in_days) if expires_in_days is not None else None
    issued = api_keys.issue(department_id=department_id, name=name, now=now, ttl=ttl)
    session.add(_row(issued.record))
    await session.commit()
    return _issued(issued, now=now)


async def list_keys(
    *, session: AsyncSession, department_id: str | None, limit: int, offset: int, now: datetime
) -> ApiKeyPage:
    """Keys, newest first, optionally of one department."""
    where = [TrackingApiKey.department_id == department_id] if department_id is not None else []
    total = (await session.execute(select(func.count()).select_from(TrackingApiKey).where(*where))).scalar_one()
    rows = await session.scalars(
        select(TrackingApiKey)
        .where(*where)
        .order_by(TrackingApiKey.created_at.desc(), TrackingApiKey.key_id)
        .limit(limit)
        .offset(offset)
    )
    items = [_read(_record(row), now=now) for row in rows]
    return ApiKeyPage(total=total, limit=limit, offset=offset, items=items)


async def rotate_key(
    *, session: AsyncSession, key_id: str, overlap: timedelta, expires_in_days: int | None, now: datetime
) -> ApiKeyIssued:
    """A new key replacing ``key_id``, which keeps working for ``overlap`` only. Commits.

    409 when the key is no longer active, or was rotated already (rotate its successor instead).
    """
    row = await _get(session, key_id)
    old = _record(row)
    successor = await session.scalar(select(TrackingApiKey.key_id).where(TrackingApiKey.replaces == key_id))
    if successor is not None:
        raise DomainError(
            f"API key {key_id!r} was already rotated to {successor!r}; rotate {successor!r} instead",
            status_code=409,
            field="key_id",
        )
    if expires_in_days is not None:
        ttl: timedelta | None = timedelta(days=expires_in_days)
    else:  # the new key lives as long as the old one was meant to
        ttl = old.expires_at - old.created_at if old.expires_at is not None else None
    try:
        new, retired = api_keys.rotate(old, now=now, overlap=overlap, ttl=ttl)
    except ApiKeyError as exc:
        raise DomainError(exc.reason, status_code=409, field="key_id") from exc
    row.expires_at = retired.expires_at
    session.add(_row(new.record))
    try:
        await session.commit()
    except IntegrityError as exc:  # a concurrent rotation of the same key won (unique ``replaces``)
        await session.rollback()
        raise DomainError(
            f"API key {key_id!r} was rotated concurrently; list the keys to find its successor",
            status_code=409,
            field="key_id",
        ) from exc
    return _issued(new, now=now)


async def revoke_key(*, session: AsyncSession, key_id: str, now: datetime) -> ApiKeyRead:
    """End ``key_id`` now (revoking again keeps the first time). Commits."""
    row = await _get(session, key_id)
    revoked = api_keys.revoke(_record(row), now=now)
    if revoked.revoked_at != row.revoked_at:
        row.revoked_at = revoked.revoked_at
        await session.commit()
    return _read(revoked, now=now)


async def authenticate_key(*, session: AsyncSession, plaintext: str, now: datetime) -> Principal:
    """The department-system principal ``plaintext`` stands for; 401 otherwise.

    Unknown key ids and wrong secrets get the same answer (no probing which keys exist); a caller
    holding the right secret of a revoked or expired key is told which, so it knows to ask for a new one.
    """
    try:
        key_id, secret = api_keys.parse_key(plaintext)
    except ApiKeyError as exc:
        raise _unauthorized(f"invalid {API_KEY_HEADER}: {exc.reason}") from exc
    row = await session.get(TrackingApiKey, key_id)
    record = _record(row) if row is not None else None
    try:
        record = api_keys.authenticate(plaintext, lookup=lambda _: record, now=now)
    except ApiKeyError as exc:
        log.info("API key refused: %s", exc.reason)
        if record is None or not api_keys.verify_secret(secret, record.secret_hash):
            raise _unauthorized(f"invalid {API_KEY_HEADER}: unknown key or wrong secret") from exc
        raise _unauthorized(f"{API_KEY_HEADER} refused: {exc.reason}; ask HR for a new key") from exc
    return api_keys.principal_for(record)


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": f'Bearer, ApiKey header="{API_KEY_HEADER}"'},
    )


# -- the ingest caller -----------------------------------------------------------------------------
_bearer = HTTPBearer(auto_error=False)  # the same scheme as services.common.auth
_api_key = APIKeyHeader(
    name=API_KEY_HEADER,
    auto_error=False,
    description="A department system's API key (tdk_<key_id>_<secret>), issued by HR at POST /v1/api-keys.",
)
_department_system: Any = requires(Role.DEPARTMENT_SYSTEM).dependency


async def _ingest_caller(
    request: Request,
    session: SessionDep,
    now: NowDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    key: Annotated[str | None, Security(_api_key)],
) -> Principal:
    """A department system, by bearer token or by ``X-API-Key`` (exactly one of them)."""
    if key is None:
        if bearer is None:
            raise _unauthorized(
                f"missing credentials: send a department_system bearer token or an {API_KEY_HEADER} header"
            )
        principal: Principal = await _department_system(await current_principal(request, bearer))
        return principal
    if bearer is not None:
        raise _unauthorized(f"send one credential, either a bearer token or an {API_KEY_HEADER} header, not both")
    principal = await authenticate_key(session=session, plaintext=key, now=now)
    bind_principal(actor=principal.sub, roles=principal.roles)  # the actor of this request's audit-log entries
    return principal


_ingest_caller.allowed_roles = _department_system.allowed_roles  # type: ignore[attr-defined]

IngestCaller = Annotated[Principal, Depends(_ingest_caller)]
"""The caller of the ingest endpoint: a department system, by token or API key."""


# -- routes ----------------------------------------------------------------------------------------
router = APIRouter(prefix="/v1/api-keys", tags=["api-keys"])

KeyId = Annotated[str, Path(min_length=1, max_length=64, description="The key's public id (tdk_<key_id>_...).")]
HrAdmin = Annotated[Principal, requires(Role.HR_ADMIN)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Issue an API key for a department system (the plaintext key is returned this once)",
    description=(
        f"The system sends the key as the `{API_KEY_HEADER}` header to `POST /v1/ingest/metrics` and may publish "
        "only for `department_id`. Only a salted hash is stored: a lost key cannot be shown again, rotate it."
    ),
)
async def create_api_key(body: ApiKeyCreate, session: SessionDep, now: NowDep, _principal: HrAdmin) -> ApiKeyIssued:
    return await issue_key(
        session=session, department_id=body.department_id, name=body.name, expires_in_days=body.expires_in_days, now=now
    )


@router.get(
    "",
    summary="List API keys with their status (never a secret or hash), newest first",
)
async def list_api_keys(
    session: SessionDep,
    now: NowDep,
    _principal: HrAdmin,
    department_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="Page size (at most 500).")] = 100,
    offset: Annotated[int, Query(ge=0, le=1_000_000, description="Rows to skip.")] = 0,
) -> ApiKeyPage:
    return await list_keys(session=session, department_id=department_id, limit=limit, offset=offset, now=now)


@router.post(
    "/{key_id}/rotate",
    status_code=status.HTTP_201_CREATED,
    summary="Rotate an API key: a new key (returned this once); the old one works for the overlap only",
    description=(
        "The old key's expiry is capped at now + `overlap_hours` (default 24), so the system can switch "
        "without downtime. 409 when the key is revoked, expired or already rotated."
    ),
)
async def rotate_api_key(
    key_id: KeyId,
    session: SessionDep,
    now: NowDep,
    _principal: HrAdmin,
    body: ApiKeyRotate | None = None,
) -> ApiKeyIssued:
    body = body or ApiKeyRotate()
    return await rotate_key(
        session=session,
        key_id=key_id,
        overlap=timedelta(hours=body.overlap_hours),
        expires_in_days=body.expires_in_days,
        now=now,
    )


@router.post(
    "/{key_id}/revoke",
    summary="Revoke an API key now (idempotent: revoking again keeps the first time)",
)
async def revoke_api_key(key_id: KeyId, session: SessionDep, now: NowDep, _principal: HrAdmin) -> ApiKeyRead:
    return await revoke_key(session=session, key_id=key_id, now=now)
