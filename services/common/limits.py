"""Input limits shared by every service: request body size, and a per-caller rate limit.

* :class:`BodySizeLimitMiddleware` (installed by ``create_service_app``) enforces the limits
  *before any work*: before the body is read, parsed or the token checked by the route. FastAPI
  reads and parses a route's JSON body before it runs the route's dependencies, so a 32 MiB
  body of small JSON objects sent without a token used to cost about 870 MB of memory before
  the 401. Now:

  - a request with a body to a route that declares roles (``requires``) but carries no
    credential (no bearer token, no ``X-API-Key``) is answered 401 before a byte of the body
    is read;
  - every body is limited to ``TANDEM_MAX_BODY_BYTES`` (default 1 MiB). Only the whole-cycle
    bulk pushes in :data:`BULK_ROUTES` get ``TANDEM_MAX_BULK_BODY_BYTES`` (default 32 MiB), and
    only for a caller whose bearer token the middleware has verified and who holds one of the
    route's roles; anyone else gets the small limit (an invalid token is a 401, an issuer
    whose keys are not available a 503, both before the body is read);
  - ``Content-Length`` is checked first, and the bytes are counted as they arrive, so a
    chunked body without a length is cut off at the limit too (413).

  What an unauthenticated caller can make a service hold is therefore bounded by the small
  limit, not the bulk one (``tests/unit/test_limits.py`` measures it).
* :class:`RateLimiter` is an in-memory token bucket per key. The tracking ingest
  endpoint charges one token per metric event to the calling department
  (:func:`enforce_ingest_rate`): ``TANDEM_INGEST_RATE_PER_SECOND`` events per
  second, bursts up to ``TANDEM_INGEST_RATE_BURST``; above it, 429 with
  ``Retry-After``. The buckets live in one process: with N replicas a department
  may send up to N times the rate, which is the point of a per-replica guard (the
  broker and the consumer are protected; a global quota belongs in the gateway).
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, status
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BULK_ROUTES",
    "BodySizeLimitMiddleware",
    "BodyTooLarge",
    "RateLimiter",
    "RouteRoles",
    "enforce_ingest_rate",
]

BULK_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"^/v1/org/import$")),
    ("PUT", re.compile(r"^/v1/cycles/[^/]+/(participants|goals|actuals|results|collaboration|kpis|progress)$")),
)
"""(method, path) of the bulk pushes that carry a whole cycle or org (service to service, hr_admin only)."""

RouteRoles = Callable[[], Mapping[tuple[str, str], Iterable[str]]]
"""Returns (METHOD, path template) -> the roles the route admits (``services.common.app.route_roles``)."""

_CREDENTIAL_HEADERS = (b"authorization", b"x-api-key")


class BodyTooLarge(HTTPException):
    """413: the request body is larger than the limit of its route."""

    def __init__(self, limit: int, size: int | None = None) -> None:
        got = f"is {size} bytes" if size is not None else "exceeds it"
        super().__init__(
            status_code=413,
            detail=f"request body {got}; the limit for this endpoint is {limit} bytes: send smaller batches",
        )
        self.limit = limit


class BodySizeLimitMiddleware:
    """Pure ASGI middleware: 401 or 413 before the body is read, and 413 while it streams in.

    ``route_roles`` (the app's route table, read on the first request) lets it know which
    routes need credentials and which roles a bulk push admits; without it, no route gets the
    bulk limit and nothing is refused for lack of credentials.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        bulk_max_bytes: int | None = None,
        bulk_routes: Sequence[tuple[str, re.Pattern[str]]] = BULK_ROUTES,
        route_roles: RouteRoles | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.app = app
        self.max_bytes = max_bytes
        self.bulk_max_bytes = max(bulk_max_bytes or max_bytes, max_bytes)
        self.bulk_routes = tuple(bulk_routes)
        self._route_roles = route_roles
        self._protected: list[tuple[str, re.Pattern[str], frozenset[str]]] | None = None

    def limit_for(self, method: str, path: str) -> int:
        """The limit of a route for a caller verified for it (bulk pushes: the bulk limit)."""
        if self.is_bulk(method, path):
            return self.bulk_max_bytes
        return self.max_bytes

    def is_bulk(self, method: str, path: str) -> bool:
        return any(method == m and pattern.match(path) for m, pattern in self.bulk_routes)

    def roles_for(self, method: str, path: str) -> frozenset[str]:
        """The roles the route serving (method, path) admits; empty for public or unknown routes."""
        if self._route_roles is None:
            return frozenset()
        if self._protected is None:
            self._protected = [
                (route_method, compile_path(template)[0], frozenset(roles))
                for (route_method, template), roles in self._route_roles().items()
            ]
        for route_method, pattern, roles in self._protected:
            if route_method == method and pattern.match(path):
                return roles
        return frozenset()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope.get("method", ""), scope.get("path", "")
        declared = _content_length(scope)
        limit = self.max_bytes
        if declared != 0 and (declared is not None or _header(scope, b"transfer-encoding") is not None):
            # A body is coming: decide who may send how much before reading any of it.
            roles = self.roles_for(method, path)
            if roles and not any(_header(scope, name) for name in _CREDENTIAL_HEADERS):
                await _send_problem(send, _missing_credentials())
                return
            if roles and self.is_bulk(method, path):
                try:
                    if _verified_for(scope, roles):
                        limit = self.bulk_max_bytes
                except HTTPException as exc:  # an invalid token (401) or no issuer keys (503)
                    await _send_problem(send, exc)
                    return
        if declared is not None and declared > limit:
            await _send_problem(send, BodyTooLarge(limit, declared))
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge as exc:
            # Normally FastAPI turns the exception into the 413 itself; this covers a body
            # read outside a route (another middleware), as long as nothing was sent yet.
            if started:
                raise
            await _send_problem(send, exc)


def _verified_for(scope: Scope, roles: frozenset[str]) -> bool:
    """Whether the request's bearer token verifies and holds one of ``roles`` (no I/O: see auth.py)."""
    verifier = getattr(getattr(scope.get("app"), "state", None), "token_verifier", None)
    authorization = (_header(scope, b"authorization") or b"").decode("latin-1")
    scheme, _, token = authorization.partition(" ")
    if verifier is None or scheme.lower() != "bearer" or not token.strip():
        return False
    principal = verifier.verify(token.strip())
    return bool(principal.has(*roles))


def _missing_credentials() -> HTTPException:
    return HTTPException(
        status_code=401,
        detail=(
            "missing credentials: send a bearer token (or an X-API-Key header where the endpoint takes one); "
            "the request body was not read"
        ),
        headers={"WWW-Authenticate": "Bearer"},
    )


def _header(scope: Scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == wanted:
            return bytes(value)
    return None


def _content_length(scope: Scope) -> int | None:
    value = _header(scope, b"content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None


async def _send_problem(send: Send, exc: HTTPException) -> None:
    """Answer ``exc`` as a JSON problem and close the connection (its body was not read)."""
    body = json.dumps({"detail": exc.detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in (exc.headers or {}).items()]
    await send({"type": "http.response.start", "status": exc.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """Token buckets keyed by caller: ``rate`` tokens per second, at most ``burst`` saved up.

    ``acquire(key, cost)`` takes ``cost`` tokens and returns 0.0, or, when the bucket
    holds too few, takes nothing and returns the seconds until it will hold enough.
    A cost above ``burst`` is charged as ``burst`` (a full bucket admits any single
    request the endpoint itself accepts). Not thread-safe; one event loop needs no lock
    because ``acquire`` never awaits.
    """

    def __init__(
        self,
        *,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = float(rate)
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, key: str, cost: float = 1.0) -> float:
        now = self.clock()
        cost = min(max(cost, 0.0), self.burst)
        bucket = self._buckets.get(key)
        if bucket is None:
            self._evict_idle(now)
            bucket = self._buckets[key] = _Bucket(tokens=self.burst, updated=now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        if bucket.tokens >= cost:
            bucket.tokens -= cost
            return 0.0
        return (cost - bucket.tokens) / self.rate

    def _evict_idle(self, now: float) -> None:
        if len(self._buckets) < self.max_keys:
            return
        # Buckets that refilled completely hold no state worth keeping.
        for key in [k for k, b in self._buckets.items() if b.tokens + (now - b.updated) * self.rate >= self.burst]:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:  # all busy: forget the oldest rather than grow without bound
            oldest = min(self._buckets, key=lambda k: self._buckets[k].updated)
            del self._buckets[oldest]


def enforce_ingest_rate(request: Request, *, key: str, cost: int) -> None:
    """Charge ``cost`` events to ``key`` (a department); 429 with ``Retry-After`` when over its rate.

    The limiter is built on first use from the app's settings (``TANDEM_INGEST_RATE_*``);
    a rate of 0 turns the check off.
    """
    state: Any = request.app.state
    limiter: RateLimiter | None = getattr(state, "ingest_rate_limiter", None)
    if limiter is None:
        settings = state.settings
        if settings.ingest_rate_per_second <= 0:
            return
        limiter = RateLimiter(rate=settings.ingest_rate_per_second, burst=settings.ingest_rate_burst)
        state.ingest_rate_limiter = limiter
    wait = limiter.acquire(key, cost)
    if wait > 0:
        retry_after = max(1, math.ceil(wait))
        raise HTTPException(
            status_code=status.HTTP_429_TOO_MANY_REQUESTS,
            detail=(
                f"department {key!r} is over its ingest rate of {limiter.rate:g} events/s "
                f"(burst {limiter.burst:g}); retry the batch in {retry_after}s"
            ),
            headers={"Retry-After": str(retry_after)},
        )
