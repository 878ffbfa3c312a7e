"""Input limits shared by every service: request body size, and a per-caller rate limit.

* :class:`BodySizeLimitMiddleware` (installed by ``create_service_app``) answers
  413 when a body is larger than ``TANDEM_MAX_BODY_BYTES`` (default 1 MiB), or
  ``TANDEM_MAX_BULK_BODY_BYTES`` (default 32 MiB) for the whole-cycle bulk pushes in
  :data:`BULK_ROUTES`. It checks ``Content-Length`` first and also counts the bytes
  as they arrive, so a chunked body without a length is cut off at the limit too.
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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException, Request, status
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = [
    "BULK_ROUTES",
    "BodySizeLimitMiddleware",
    "BodyTooLarge",
    "RateLimiter",
    "enforce_ingest_rate",
]

BULK_ROUTES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("POST", re.compile(r"^/v1/org/import$")),
    ("PUT", re.compile(r"^/v1/cycles/[^/]+/(participants|goals|actuals|results|collaboration|kpis|progress)$")),
)
"""(method, path) of the bulk pushes that carry a whole cycle or org (service to service, hr_admin only)."""


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
    """Pure ASGI middleware: 413 for bodies over the limit, without buffering the body."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_bytes: int,
        bulk_max_bytes: int | None = None,
        bulk_routes: Sequence[tuple[str, re.Pattern[str]]] = BULK_ROUTES,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.app = app
        self.max_bytes = max_bytes
        self.bulk_max_bytes = max(bulk_max_bytes or max_bytes, max_bytes)
        self.bulk_routes = tuple(bulk_routes)

    def limit_for(self, method: str, path: str) -> int:
        if any(method == m and pattern.match(path) for m, pattern in self.bulk_routes):
            return self.bulk_max_bytes
        return self.max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("method", ""), scope.get("path", ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _send_too_large(send, BodyTooLarge(limit, declared))
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
            await _send_too_large(send, exc)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _send_too_large(send: Send, exc: BodyTooLarge) -> None:
    body = json.dumps({"detail": exc.detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": exc.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
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
