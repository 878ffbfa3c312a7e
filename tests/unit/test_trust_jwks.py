"""RS256 verification against the issuer's JWKS without blocking requests (issue 14).

The keys used to be fetched by ``PyJWKClient`` inside ``verify``: a synchronous HTTP call with a
30 s default timeout, on the event loop, for the first request and on every unknown ``kid``.
These tests run a real local JWKS endpoint (or one that accepts connections and never answers).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import HTTPException

from services.common.auth import JwksCache, TokenVerifier
from services.common.settings import Settings

ISSUER = "https://issuer.example.test"


def rsa_key() -> Any:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def jwks_of(**keys: Any) -> dict[str, Any]:
    jwk = jwt.algorithms.RSAAlgorithm.to_jwk
    return {"keys": [{**jwk(key.public_key(), as_dict=True), "kid": kid, "use": "sig"} for kid, key in keys.items()]}


def rs256_token(key: Any, kid: str, settings: Settings, sub: str = "hr-1") -> str:
    now = int(time.time())
    claims = {"sub": sub, "roles": ["hr_admin"], "iss": settings.jwt_issuer, "aud": settings.jwt_audience}
    return jwt.encode({**claims, "iat": now, "exp": now + 600}, key, algorithm="RS256", headers={"kid": kid})


class JwksServer:
    """A tiny HTTP/1.1 server on 127.0.0.1 answering every request with ``document``; with
    ``hang`` it accepts the connection and never answers."""

    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.hang = False
        self.requests = 0
        self.server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}/.well-known/jwks.json"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            self.requests += 1
            if self.hang:
                await asyncio.sleep(60)
            body = json.dumps(self.document).encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
            await writer.drain()
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[JwksServer]:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        try:
            yield self
        finally:
            self.server.close()


@pytest.fixture
async def jwks() -> AsyncIterator[JwksServer]:
    async with JwksServer().running() as server:
        yield server


def rs256_settings(url: str, timeout: float = 5.0) -> Settings:
    return Settings(env="prod", jwks_url=url, jwt_issuer=ISSUER, jwks_timeout_seconds=timeout)


async def test_a_hanging_issuer_answers_503_fast_and_never_blocks_the_event_loop(jwks: JwksServer) -> None:
    jwks.hang = True
    settings = rs256_settings(jwks.url, timeout=0.3)
    verifier = TokenVerifier(settings)
    token = rs256_token(rsa_key(), "k1", settings)

    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    started = time.monotonic()
    with pytest.raises(HTTPException) as refused:
        verifier.verify(token)
    elapsed = time.monotonic() - started
    assert elapsed < 0.5, f"verify blocked for {elapsed:.1f}s (it used to wait up to 30 s on the JWKS fetch)"
    assert refused.value.status_code == 503
    assert refused.value.headers == {"Retry-After": "2"}
    assert verifier.jwks is not None
    await verifier.jwks.wait()  # the background fetch times out after 0.3 s, off the request path
    assert ticks >= 5, "the event loop was blocked"
    assert verifier.jwks.last_error is not None
    with pytest.raises(HTTPException) as again:
        verifier.verify(token)
    assert again.value.status_code == 503 and "last fetch: ReadTimeout" in str(again.value.detail)
    beat.cancel()
    await verifier.aclose()


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_keys_are_loaded_in_the_background_kept_through_outages_and_refreshed_on_rotation(
    jwks: JwksServer,
) -> None:
    old, new = rsa_key(), rsa_key()
    jwks.document = jwks_of(k1=old)
    settings = rs256_settings(jwks.url)
    verifier = TokenVerifier(settings)
    assert verifier.jwks is not None
    clock = FakeClock()
    verifier.jwks._clock = clock  # the cache's own clock, so the test does not depend on the machine's speed
    verifier.start()  # what the app's lifespan does at start-up
    await verifier.jwks.wait()
    assert verifier.verify(rs256_token(old, "k1", settings)).sub == "hr-1"
    assert jwks.requests == 1
    for _ in range(20):  # served from memory: no fetch per request
        verifier.verify(rs256_token(old, "k1", settings))
    assert jwks.requests == 1

    # the issuer rotates to k2: the first token with k2 is a 503 (refreshing), then accepted
    jwks.document = jwks_of(k1=old, k2=new)
    clock.now += 10
    with pytest.raises(HTTPException) as refreshing:
        verifier.verify(rs256_token(new, "k2", settings))
    assert refreshing.value.status_code == 503
    await verifier.jwks.wait()
    assert verifier.verify(rs256_token(new, "k2", settings)).sub == "hr-1"
    assert jwks.requests == 2

    # a made-up kid right after a refresh is a 401, and does not trigger another fetch
    with pytest.raises(HTTPException) as unknown:
        verifier.verify(rs256_token(new, "k-forged", settings))
    assert unknown.value.status_code == 401 and "k-forged" in str(unknown.value.detail)
    await verifier.jwks.wait()
    assert jwks.requests == 2

    # the issuer goes quiet and the keys grow stale: known keys keep working meanwhile
    jwks.hang = True
    clock.now += 3600
    assert verifier.verify(rs256_token(old, "k1", settings)).sub == "hr-1"
    await verifier.aclose()


async def test_a_token_signed_with_another_key_is_401(jwks: JwksServer) -> None:
    jwks.document = jwks_of(k1=rsa_key())
    settings = rs256_settings(jwks.url)
    cache = JwksCache(jwks.url, timeout=5.0)
    await cache.refresh()
    verifier = TokenVerifier(settings)
    verifier.jwks = cache
    with pytest.raises(HTTPException) as refused:
        verifier.verify(rs256_token(rsa_key(), "k1", settings))
    assert refused.value.status_code == 401 and "signature" in str(refused.value.detail)
