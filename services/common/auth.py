"""JWT bearer authentication and role checks.

Tokens are OIDC-style JWTs with a ``sub`` and a ``roles`` claim, plus optional
scoping claims (``employee_id``, ``department_id``). Development tokens are
HS256 with a local secret; production verifies RS256 against a JWKS URL.

Every route declares its roles with ``requires(...)``::

    @router.get("/goals", dependencies=[requires(Role.HR_ADMIN, Role.MANAGER)])
    # or, to get the principal:
    async def read(principal: Annotated[Principal, requires(Role.EMPLOYEE)]) -> ...
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.common.audit import bind_principal
from services.common.settings import Settings

__all__ = [
    "ALL_ROLES",
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


class TokenVerifier:
    """Verifies bearer tokens: RS256 via JWKS when configured, else HS256."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._jwks = jwt.PyJWKClient(settings.jwks_url) if settings.jwks_url else None

    def verify(self, token: str) -> Principal:
        options: Any = {"require": ["exp", "sub"]}
        try:
            if self._jwks is not None:
                key = self._jwks.get_signing_key_from_jwt(token).key
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
