"""JWT bearer authentication and role checks.

Tokens are OIDC-style JWTs with a ``sub`` and a ``roles`` claim, plus optional
scoping claims (``employee_id``, ``department_id``). Development tokens are
HS256 with a local secret; production verifies RS256 against a JWKS URL.

The issuer's keys are never fetched on the request path (:class:`JwksCache`): they are loaded
in the background at start-up and refreshed when stale or when a token names an unknown key,
with a short timeout. While no key is known, a request fails fast with 503 and ``Retry-After``
instead of holding the event loop for the HTTP client's default 30 s.

Every route declares its roles with ``requires(...)``::

    @router.get("/goals", dependencies=[requires(Role.HR_ADMIN, Role.MANAGER)])
    # or, to get the principal:
    async def read(principal: Annotated[Principal, requires(Role.EMPLOYEE)]) -> ...
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import httpx
import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.audit import bind_principal
from services.common.settings import Settings

__all__ = [
    "ALL_ROLES",
    "JwksCache",
    "Principal",
    "Role",
    "TokenVerifier",
    "current_principal",
    "mint_token",
    "requires",
]


class Role(StrEnum):
    HR_ADMIN = "hr_admin"
    DEPT_HEAD = "dept_head"
    MANAGER = "manager"
    EMPLOYEE = "employee"
    OPS = "ops"
    DEPARTMENT_SYSTEM = "department_system"
    FINANCE = "finance"
    """Department budgets for bonus pools, pool approval, the payroll export."""
    AUDITOR = "auditor"
    """Reads the audit log unredacted (and nothing else); each of its reads is audited."""


ALL_ROLES = tuple(Role)


@dataclass(frozen=True)
class Principal:
    """Who is calling: subject, roles and the scoping claims from the token."""

    sub: str
    roles: frozenset[str]
    employee_id: str | None = None
    department_id: str | None = None
    claims: dict[str, Any] = field(default_factory=dict, compare=False)

    def has(self, *roles: str) -> bool:
        return bool(self.roles.intersection(roles))

    @property
    def acting_employee_id(self) -> str | None:
        """The person this call acts for: the ``act`` claim of a service token, else the caller."""
        act = self.claims.get("act")
        if isinstance(act, dict) and isinstance(act.get("employee_id"), str):
            return str(act["employee_id"])
        return self.employee_id


def mint_token(
    settings: Settings,
    *,
    sub: str,
    roles: list[str],
    employee_id: str | None = None,
    department_id: str | None = None,
    ttl_seconds: int | None = None,
    actor: dict[str, str] | None = None,
) -> str:
    """Mint an HS256 token with the configured secret (development, tests and service calls).

    ``actor`` becomes the ``act`` claim (RFC 8693): the person a service acts for.
    """
    unknown = sorted(set(roles) - {r.value for r in Role})
    if unknown:
        raise ValueError(f"unknown role(s) {unknown}; valid roles: {[r.value for r in Role]}")
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": sub,
        "roles": roles,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "iat": now,
        "exp": now + (ttl_seconds if ttl_seconds is not None else settings.token_ttl_seconds),
    }
    if employee_id:
        claims["employee_id"] = employee_id
    if department_id:
        claims["department_id"] = department_id
    if actor:
        claims["act"] = dict(actor)
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


_CLOCK_SKEW_SECONDS = 60
"""Tolerance for the issuer's clock when checking the maximum token lifetime."""


class JwksCache:
    """The OIDC issuer's signing keys, fetched off the request path.

    ``key_for`` never does I/O: it answers from memory and, when the keys are stale (older than
    ``refresh_seconds``), missing or do not name the token's ``kid``, schedules one background
    fetch with a ``timeout`` of a few seconds. A fetch that fails keeps the keys already known
    (a short issuer outage does not lock everyone out). Fetches are at most one per
    ``retry_seconds``, so tokens with made-up ``kid`` values cannot make the service hammer the
    issuer.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 3.0,
        refresh_seconds: float = 300.0,
        retry_seconds: float = 5.0,
        transport: httpx.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url, self.timeout = url, timeout
        self.refresh_seconds, self.retry_seconds = refresh_seconds, retry_seconds
        self._transport, self._clock = transport, clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded_at: float | None = None
        self._attempted_at: float | None = None
        self.last_error: str | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def loaded(self) -> bool:
        return self._loaded_at is not None

    async def refresh(self) -> None:
        """Fetch the key set now (the background task runs this; tests may await it)."""
        self._attempted_at = self._clock()
        try:
            async with httpx.AsyncClient(timeout=self.timeout, transport=self._transport) as http:
                response = await http.get(self.url)
                response.raise_for_status()
                keys = {k.key_id: k for k in jwt.PyJWKSet.from_dict(response.json()).keys if k.key_id}
        except (httpx.HTTPError, ValueError, jwt.PyJWTError) as exc:
            self.last_error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            return
        self._keys, self._loaded_at, self.last_error = keys, self._clock(), None

    def start(self) -> None:
        """Schedule a fetch unless one is running or one was tried less than ``retry_seconds`` ago."""
        if self._task is not None and not self._task.done():
            return
        now = self._clock()
        if self._attempted_at is not None and now - self._attempted_at < self.retry_seconds:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a synchronous caller): nothing can run in the background
            return
        self._attempted_at = now
        self._task = loop.create_task(self.refresh(), name="tandem-jwks-refresh")

    async def wait(self) -> None:
        """Until the fetch in flight, if any, has finished (start-up probes and tests)."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def key_for(self, kid: str | None) -> Any:
        """The verification key of ``kid``; 503 while the keys are unknown, 401 for a key the issuer lacks."""
        now = self._clock()
        if self._loaded_at is None or now - self._loaded_at > self.refresh_seconds:
            self.start()
        key = self._keys.get(kid) if kid else None
        if key is None and kid is None and len(self._keys) == 1:
            key = next(iter(self._keys.values()))
        if key is not None:
            return key.key
        if self._loaded_at is None:
            reason = f" (last fetch: {self.last_error})" if self.last_error else ""
            raise _unavailable(f"the token issuer's signing keys are not available yet{reason}; retry shortly")
        if now - self._loaded_at >= self.retry_seconds:
            self.start()  # a key rotation: the issuer may know the key by now
            raise _unavailable(f"signing key {kid!r} is not known yet; the issuer's keys are being refreshed")
        raise _unauthorized(f"invalid token: the issuer has no signing key {kid!r}")


class TokenVerifier:
    """Verifies bearer tokens: RS256 via JWKS when configured, else HS256.

    ``verify`` is synchronous and does no I/O (the JWKS keys come from :class:`JwksCache`).
    """

    def __init__(self, settings: Settings, *, jwks_transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.jwks = (
            JwksCache(
                settings.jwks_url,
                timeout=settings.jwks_timeout_seconds,
                refresh_seconds=settings.jwks_refresh_seconds,
                transport=jwks_transport,
            )
            if settings.jwks_url
            else None
        )

    def start(self) -> None:
        """Start loading the issuer's keys in the background (app start-up; a no-op without JWKS)."""
        if self.jwks is not None:
            self.jwks.start()

    async def aclose(self) -> None:
        if self.jwks is not None:
            await self.jwks.aclose()

    def verify(self, token: str) -> Principal:
        options: Any = {"require": ["exp", "sub"]}
        try:
            if self.jwks is not None:
                key = self.jwks.key_for(jwt.get_unverified_header(token).get("kid"))
                claims = jwt.decode(
                    token,
                    key,
                    algorithms=["RS256"],
                    audience=self.settings.jwt_audience,
                    issuer=self.settings.jwt_issuer,
                    options=options,
                )
            else:
                claims = jwt.decode(
                    token,
                    self.settings.jwt_secret,
                    algorithms=["HS256"],
                    audience=self.settings.jwt_audience,
                    issuer=self.settings.jwt_issuer,
                    options=options,
                )
        except jwt.ExpiredSignatureError as exc:
            raise _unauthorized("token has expired") from exc
        except jwt.InvalidSignatureError as exc:
            raise _unauthorized("token signature is invalid") from exc
        except jwt.PyJWTError as exc:
            raise _unauthorized(f"invalid token: {exc}") from exc
        # A token valid for longer than the maximum lifetime is refused, even if correctly signed:
        # a leaked long-lived token must not outlast the rotation window.
        remaining = float(claims["exp"]) - time.time()
        if remaining > self.settings.token_max_ttl_seconds + _CLOCK_SKEW_SECONDS:
            raise _unauthorized(
                f"token lifetime exceeds the maximum of {self.settings.token_max_ttl_seconds}s "
                "(TANDEM_TOKEN_MAX_TTL_SECONDS); request a shorter-lived token"
            )
        roles = claims.get("roles", [])
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise _unauthorized("token 'roles' claim must be a list of strings")
        principal = Principal(
            sub=str(claims["sub"]),
            roles=frozenset(roles),
            employee_id=claims.get("employee_id"),
            department_id=claims.get("department_id"),
            claims=claims,
        )
        bind_principal(actor=principal.sub, roles=principal.roles)  # the actor of this request's audit-log entries
        return principal


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_401_UNAUTHORIZED,
        detail=detail,
        headers={"WWW-Authenticate": "Bearer"},
    )


_JWKS_RETRY_AFTER_SECONDS = 2


def _unavailable(detail: str) -> HTTPException:
    return HTTPException(
        status_code=status.HTTP_503_SERVICE_UNAVAILABLE,
        detail=detail,
        headers={"Retry-After": str(_JWKS_RETRY_AFTER_SECONDS)},
    )


_bearer = HTTPBearer(auto_error=False)


async def current_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    """The verified caller; 401 without a valid bearer token.

    The app's composition root puts a ``TokenVerifier`` on ``app.state.token_verifier``.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise _unauthorized("missing bearer token")
    verifier: TokenVerifier = request.app.state.token_verifier
    return verifier.verify(credentials.credentials)


def requires(*roles: Role) -> Any:
    """A dependency that admits only callers holding one of ``roles`` (403 otherwise).

    The allowed roles are recorded on the dependency (``allowed_roles``) so the
    authorization-matrix test and the OpenAPI description can read them.
    """
    if not roles:
        raise ValueError("requires() needs at least one role")
    allowed = frozenset(r.value for r in roles)

    async def check(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.has(*allowed):
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"this endpoint requires one of the roles {sorted(allowed)}; "
                f"the token has {sorted(principal.roles)}",
            )
        return principal

    check.allowed_roles = allowed  # type: ignore[attr-defined]
    return Depends(check)
