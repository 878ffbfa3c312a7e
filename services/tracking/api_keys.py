"""API keys of department systems over HTTP: HR's endpoints under ``/v1/api-keys`` and the
ingest caller, who may authenticate with a key instead of a token.

* ``router``: the hr_admin endpoints; the rules and the store are ``service.api_keys``.
* ``IngestCaller``: the dependency of ``POST /v1/ingest/metrics``. A department_system bearer
  token (as before) or an ``X-API-Key`` header; a valid key acts as a department system of its
  department, so the ingest rules (own department only, rate per department) apply unchanged.

Time comes from ``app.state.clock`` (``services.common.clock``), so tests move it instead of sleeping.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Security, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from services.common import api_keys
from services.common.api_keys import ApiKeyError
from services.common.audit import bind_principal
from services.common.auth import Principal, Role, current_principal, requires
from services.common.clock import NowDep
from services.common.deps import SessionDep
from services.common.params import HR, Limit, Offset
from services.tracking import service
from services.tracking.schemas import API_KEY_HEADER, ApiKeyCreate, ApiKeyIssued, ApiKeyPage, ApiKeyRead, ApiKeyRotate

__all__ = ["API_KEY_HEADER", "IngestCaller", "authenticate_key", "router"]

log = logging.getLogger(__name__)


async def authenticate_key(*, session: AsyncSession, plaintext: str, now: datetime) -> Principal:
    """The department-system principal ``plaintext`` stands for; 401 otherwise.

    Unknown key ids and wrong secrets get the same answer (no probing which keys exist); a caller
    holding the right secret of a revoked or expired key is told which, so it knows to ask for a new one.
    """
    try:
        key_id, secret = api_keys.parse_key(plaintext)
    except ApiKeyError as exc:
        raise _unauthorized(f"invalid {API_KEY_HEADER}: {exc.reason}") from exc
    record = await service.find_key(session=session, key_id=key_id)
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
HrAdmin = Annotated[Principal, requires(*HR)]


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
    return await service.issue_key(
        session=session, department_id=body.department_id, name=body.name, expires_in_days=body.expires_in_days, now=now
    )


@router.get("", summary="List API keys with their status (never a secret or hash), newest first")
async def list_api_keys(
    session: SessionDep,
    now: NowDep,
    _principal: HrAdmin,
    department_id: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    limit: Limit = 100,
    offset: Offset = 0,
) -> ApiKeyPage:
    return await service.list_keys(session=session, department_id=department_id, limit=limit, offset=offset, now=now)


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
    key_id: KeyId, session: SessionDep, now: NowDep, _principal: HrAdmin, body: ApiKeyRotate | None = None
) -> ApiKeyIssued:
    body = body or ApiKeyRotate()
    return await service.rotate_key(
        session=session,
        key_id=key_id,
        overlap=timedelta(hours=body.overlap_hours),
        expires_in_days=body.expires_in_days,
        now=now,
    )


@router.post("/{key_id}/revoke", summary="Revoke an API key now (idempotent: revoking again keeps the first time)")
async def revoke_api_key(key_id: KeyId, session: SessionDep, now: NowDep, _principal: HrAdmin) -> ApiKeyRead:
    return await service.revoke_key(session=session, key_id=key_id, now=now)
