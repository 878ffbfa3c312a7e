"""JWT bearer authentication and role checks.

Tokens are OIDC-style JWTs with a ``sub`` and a ``roles`` claim, plus optional
scoping claims (``employee_id``, ``department_id``). Development and test tokens are
HS256 with a local secret; production verifies RS256 against a JWKS URL.

**Service keys.** An HS256 secret that verifies tokens also mints them, so with one secret in
every pod any pod could mint an ``hr_admin`` token. In production (``TANDEM_ENV=prod``) no token
is minted or accepted with the shared secret: people's tokens come from the identity provider
(``TANDEM_JWKS_URL``), and each service that calls another signs its service tokens with its own
private key (``TANDEM_SERVICE_SIGNING_KEY``, ES256 or RS256). Every verifier trusts the public
keys listed in ``TANDEM_SERVICE_KEYS``, each naming the service it belongs to, and a token signed
by a service key may carry only what that service needs (:data:`SERVICE_KEY_POLICIES`): its own
subject, its roles, an ``act`` claim where the service acts only for a person, and never a
person's or a department's scoping claims.

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
import base64
import contextlib
import functools
import hashlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import httpx
import jwt
from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from services.common.audit import bind_principal
from services.common.settings import DEV_JWT_SECRET, Settings

__all__ = [
    "ALL_ROLES",
    "IDENTITY_PROVIDER",
    "SERVICE_KEY_POLICIES",
    "JwksCache",
    "Principal",
    "Role",
    "ServiceKeyPolicy",
    "TokenVerifier",
    "TrustedKey",
    "current_principal",
    "key_thumbprint",
    "load_service_keys",
    "mint_token",
    "public_jwk",
    "requires",
    "signing_key_id",
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
    """Mint a token: with this process's ``TANDEM_SERVICE_SIGNING_KEY`` when it has one, else HS256.

    ``actor`` becomes the ``act`` claim (RFC 8693): the person a service acts for. HS256 (the shared
    secret) is for development and tests only; in production a process without its own key cannot
    mint, and a ``ValueError`` says so.
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
    if settings.service_signing_key is not None:
        signer = _signer(settings.service_signing_key, settings.service_signing_key_id)
        return jwt.encode(claims, signer.key, algorithm=signer.algorithm, headers={"kid": signer.kid})
    if settings.env == "prod":
        raise ValueError(
            "production does not mint tokens with the shared HS256 secret (any pod holding it could mint any "
            "token): give this process its own TANDEM_SERVICE_SIGNING_KEY and list its public key in "
            "TANDEM_SERVICE_KEYS"
        )
    return jwt.encode(claims, settings.jwt_secret, algorithm="HS256")


# -- service keys ------------------------------------------------------------------------------
IDENTITY_PROVIDER = "identity-provider"
"""The ``tandem_service`` of a key that signs people's tokens, for deployments without an OIDC issuer
(``bootstrap.py --service-keys`` makes one whose private key no container holds). Its tokens are
accepted like the issuer's: any subject, any roles."""


@dataclass(frozen=True)
class ServiceKeyPolicy:
    """What a token signed with one service's key may carry."""

    subjects: frozenset[str]
    """The ``sub`` values it may sign: the service's own identity, never a person's."""
    roles: frozenset[str]
    """The roles its calls need; any other role makes the token invalid."""
    act_required: bool = False
    """Only on behalf of a person: the token must carry an ``act`` claim, never acts for the service itself."""


def _policy(*subjects: str, roles: tuple[Role, ...], act_required: bool = False) -> ServiceKeyPolicy:
    return ServiceKeyPolicy(frozenset(subjects), frozenset(r.value for r in roles), act_required)


SERVICE_KEY_POLICIES: Mapping[str, ServiceKeyPolicy] = {
    # The workflow's activities read and write every stage as HR and read the ops views.
    "worker": _policy("system:worker", roles=(Role.HR_ADMIN, Role.OPS)),
    # Feeds an adjusted appeal to evaluation and results, always for the HR person resolving it.
    "feedback": _policy("system:feedback", roles=(Role.HR_ADMIN,), act_required=True),
    # Reads a cycle's period from the cycles service, for nobody in particular.
    "goals": _policy("system:goals", roles=(Role.HR_ADMIN,)),
    # Pushes the frozen org snapshot to every stage; its ops overview reads them as system:console.
    "cycles": _policy("system:cycles", "system:console", roles=(Role.HR_ADMIN, Role.OPS)),
    # Reads calibration reports and SLA views for the secretary or the caller (or for nobody: agendas).
    "committee": _policy("system:committee", roles=(Role.HR_ADMIN, Role.OPS)),
    # Pushes the live KPI roll-up to goals and the check-in reminders due to cycles, for nobody in particular.
    "tracking": _policy("system:tracking", roles=(Role.HR_ADMIN,)),
}
"""Per service: what its key may sign. The console signs nothing in production (its pages call the
services with the signed-in person's own token), so it has no entry and no key."""


@dataclass(frozen=True)
class TrustedKey:
    """One public key of the trusted-keys file: whose it is and how it signs."""

    kid: str
    service: str
    algorithm: str
    key: Any = field(repr=False)


@dataclass(frozen=True)
class _Signer:
    kid: str
    algorithm: str
    key: Any = field(repr=False)


def _algorithm_of(key: Any, *, source: str) -> str:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        if not isinstance(key.curve, ec.SECP256R1):
            raise ValueError(f"{source}: EC keys must be on P-256 (ES256), not {key.curve.name}")
        return "ES256"
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise ValueError(f"{source}: RSA keys must have at least 2048 bits, not {key.key_size}")
        return "RS256"
    raise ValueError(f"{source}: only EC P-256 (ES256) and RSA (RS256) keys sign Tandem tokens")


def public_jwk(public_key: Any, *, service: str | None = None, kid: str | None = None) -> dict[str, str]:
    """The public JWK of a key (``kid`` defaults to its thumbprint), tagged with its ``tandem_service``."""
    algorithm = _algorithm_of(public_key, source="public key")
    family: Any = ECAlgorithm if algorithm == "ES256" else RSAAlgorithm
    jwk: dict[str, str] = family.to_jwk(public_key, as_dict=True)
    jwk = {**jwk, "kid": kid or key_thumbprint(jwk), "alg": algorithm, "use": "sig"}
    if service is not None:
        jwk["tandem_service"] = service
    return jwk


def key_thumbprint(jwk: Mapping[str, Any]) -> str:
    """RFC 7638 JWK thumbprint (SHA-256, base64url): a key id that is the key's own fingerprint."""
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    canonical = json.dumps({m: jwk[m] for m in members}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).rstrip(b"=").decode()


def signing_key_id(settings: Settings) -> str | None:
    """The ``kid`` this process signs with, its key loaded and checked (``ValueError`` if unusable); else ``None``."""
    if settings.service_signing_key is None:
        return None
    return _signer(settings.service_signing_key, settings.service_signing_key_id).kid


def _signer(path: Path, kid: str | None) -> _Signer:
    try:
        stamp = path.stat().st_mtime_ns
    except OSError as exc:
        raise ValueError(f"TANDEM_SERVICE_SIGNING_KEY={path} cannot be read: {exc.strerror or exc}") from exc
    return _load_signer(str(path), stamp, kid)


@functools.lru_cache(maxsize=8)
def _load_signer(path: str, _mtime_ns: int, kid: str | None) -> _Signer:
    """Parsed once per file version (the modification time is part of the cache key: a rotated key is re-read)."""
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        key = load_pem_private_key(Path(path).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise ValueError(f"TANDEM_SERVICE_SIGNING_KEY={path} is not an unencrypted PEM private key: {exc}") from exc
    algorithm = _algorithm_of(key, source=f"TANDEM_SERVICE_SIGNING_KEY={path}")
    return _Signer(kid or public_jwk(key.public_key())["kid"], algorithm, key)


_PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def load_service_keys(path: Path) -> dict[str, TrustedKey]:
    """The trusted service keys of ``TANDEM_SERVICE_KEYS``, by ``kid``; a ``ValueError`` says what is wrong.

    The file is a JSON Web Key Set whose keys each carry ``kid``, ``alg`` (ES256 or RS256) and
    ``tandem_service`` (a service of :data:`SERVICE_KEY_POLICIES`, or :data:`IDENTITY_PROVIDER`). It is
    public: a key holding private members is refused, since a private key in every pod is the shared
    secret again.
    """
    source = f"TANDEM_SERVICE_KEYS={path}"
    try:
        document = json.loads(path.read_text())
    except OSError as exc:
        raise ValueError(f"{source} cannot be read: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise ValueError(f"{source} is not JSON: {exc}") from exc
    entries = document.get("keys") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise ValueError(f'{source} must be a JSON Web Key Set: {{"keys": [...]}}')
    services = {*SERVICE_KEY_POLICIES, IDENTITY_PROVIDER}
    trusted: dict[str, TrustedKey] = {}
    for index, entry in enumerate(entries):
        where = f"{source}, key {index}"
        if not isinstance(entry, dict):
            raise ValueError(f"{where} is not a JSON object")
        kid, service, algorithm = entry.get("kid"), entry.get("tandem_service"), entry.get("alg")
        where = f"{where} ({kid!r})"
        if _PRIVATE_MEMBERS & entry.keys():
            raise ValueError(f"{where} holds private key material; the trusted-keys file holds public keys only")
        if not isinstance(kid, str) or not kid:
            raise ValueError(f"{where} has no kid")
        if kid in trusted:
            raise ValueError(f"{where}: the kid is listed twice")
        if service not in services:
            raise ValueError(f"{where}: tandem_service must be one of {sorted(services)}, not {service!r}")
        if algorithm not in ("ES256", "RS256"):
            raise ValueError(f"{where}: alg must be ES256 or RS256, not {algorithm!r}")
        try:
            key = jwt.PyJWK(entry, algorithm=algorithm).key
        except jwt.PyJWTError as exc:
            raise ValueError(f"{where} is not a valid {algorithm} public key: {exc}") from exc
        if _algorithm_of(key, source=where) != algorithm:
            raise ValueError(f"{where}: the key does not match alg {algorithm}")
        trusted[kid] = TrustedKey(kid=kid, service=str(service), algorithm=algorithm, key=key)
    return trusted


def _check_service_claims(trusted: TrustedKey, claims: Mapping[str, Any], roles: list[str]) -> None:
    """Refuse (401) a service key's token that carries more than its service needs."""
    if trusted.service == IDENTITY_PROVIDER:
        return
    policy = SERVICE_KEY_POLICIES[trusted.service]
    whose = f"the signing key {trusted.kid!r} of the {trusted.service} service"
    if claims["sub"] not in policy.subjects:
        raise _unauthorized(
            f"invalid token: {whose} may sign only for {sorted(policy.subjects)}, not {claims['sub']!r}"
        )
    beyond = sorted(set(roles) - policy.roles)
    if beyond:
        raise _unauthorized(
            f"invalid token: {whose} may not carry the roles {beyond} (it may carry {sorted(policy.roles)})"
        )
    scoped = sorted(name for name in ("employee_id", "department_id") if claims.get(name))
    if scoped:
        raise _unauthorized(
            f"invalid token: {whose} may not carry {scoped}; a service acts for a person through the act claim"
        )
    act = claims.get("act")
    if act is not None and not (isinstance(act, dict) and isinstance(act.get("sub"), str) and act["sub"]):
        raise _unauthorized("invalid token: the act claim must be an object naming the person's sub")
    if policy.act_required and act is None:
        raise _unauthorized(f"invalid token: {whose} signs only on behalf of a person (an act claim), never for itself")


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
    """Verifies bearer tokens: trusted service keys, the issuer's JWKS, and HS256 outside production.

    ``verify`` is synchronous and does no I/O (the JWKS keys come from :class:`JwksCache`, the service
    keys are read once, here). A token whose ``kid`` names a trusted service key is checked with that
    key and its service's policy; any other token goes to the issuer's JWKS when configured, else to
    the HS256 secret, which production never accepts.
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
        self.service_keys = load_service_keys(settings.service_keys) if settings.service_keys is not None else {}
        # The secret verifies only where it may also mint: development, and tests with a secret of their own.
        self.accepts_hs256 = settings.env == "dev" or (settings.env != "prod" and settings.jwt_secret != DEV_JWT_SECRET)
        if settings.env == "prod" and self.jwks is None and not self.service_keys:
            raise ValueError(
                "production verifies tokens only with public keys: set TANDEM_JWKS_URL (the identity provider) "
                "and/or TANDEM_SERVICE_KEYS (the services' keys); a shared HS256 TANDEM_JWT_SECRET would let "
                "every pod mint any token"
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
        checked = {"audience": self.settings.jwt_audience, "issuer": self.settings.jwt_issuer, "options": options}
        trusted: TrustedKey | None = None
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            trusted = self.service_keys.get(kid) if isinstance(kid, str) else None
            if trusted is not None:
                claims = jwt.decode(token, trusted.key, algorithms=[trusted.algorithm], **checked)
            elif self.jwks is not None:
                claims = jwt.decode(token, self.jwks.key_for(kid), algorithms=["RS256"], **checked)
            elif self.accepts_hs256:
                claims = jwt.decode(token, self.settings.jwt_secret, algorithms=["HS256"], **checked)
            else:
                raise _unauthorized(
                    "invalid token: it is not signed by a trusted key (the identity provider's or a service key "
                    "listed in TANDEM_SERVICE_KEYS)"
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
        if trusted is not None:
            _check_service_claims(trusted, claims, roles)
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
