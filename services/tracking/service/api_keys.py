"""API keys of department systems for the HTTP ingest, as HR issues, lists, rotates and revokes them.

The key scheme is ``services.common.api_keys`` (``tdk_<key_id>_<secret>``, a salted SHA-256 of
the secret); this module keeps its records in ``tracking_api_key``. The plaintext key is in the
answer of issue and rotate only; nothing else ever returns it or its hash.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import api_keys
from services.common.api_keys import ApiKeyError, ApiKeyRecord
from services.common.errors import DomainError
from services.tracking.models import TrackingApiKey
from services.tracking.schemas import ApiKeyIssued, ApiKeyPage, ApiKeyRead, ApiKeyStatus

__all__ = ["find_key", "issue_key", "list_keys", "revoke_key", "rotate_key"]

_COLUMNS = tuple(f.name for f in dataclasses.fields(ApiKeyRecord))
"""``ApiKeyRecord`` and ``tracking_api_key`` hold the same fields under the same names."""
_LISTED = tuple(name for name in ApiKeyRead.model_fields if name != "status")


def _record(row: TrackingApiKey) -> ApiKeyRecord:
    return ApiKeyRecord(**{name: getattr(row, name) for name in _COLUMNS})


def _row(record: ApiKeyRecord) -> TrackingApiKey:
    return TrackingApiKey(**{name: getattr(record, name) for name in _COLUMNS})


def _read(record: ApiKeyRecord, *, now: datetime) -> ApiKeyRead:
    if record.revoked_at is not None and record.revoked_at <= now:
        state = ApiKeyStatus.REVOKED
    elif record.active(now):
        state = ApiKeyStatus.ACTIVE
    else:
        state = ApiKeyStatus.EXPIRED
    return ApiKeyRead(status=state, **{name: getattr(record, name) for name in _LISTED})


def _issued(issued: api_keys.IssuedKey, *, now: datetime) -> ApiKeyIssued:
    return ApiKeyIssued(**_read(issued.record, now=now).model_dump(), key=issued.plaintext)


async def _get(session: AsyncSession, key_id: str) -> TrackingApiKey:
    row = await session.get(TrackingApiKey, key_id)
    if row is None:
        raise DomainError(f"API key {key_id!r} not found", status_code=404, field="key_id")
    return row


async def find_key(*, session: AsyncSession, key_id: str) -> ApiKeyRecord | None:
    """The stored record of ``key_id``, if there is one (to authenticate a key)."""
    row = await session.get(TrackingApiKey, key_id)
    return _record(row) if row is not None else None


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
