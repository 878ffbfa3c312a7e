"""One typed client for every service-to-service call.

Every call carries a bearer token minted for the calling service and, when the call is made on
someone's behalf, the acting person (the token's ``act`` claim, RFC 8693), so the receiving
service's "not your own" rules see the person, not only the service. Answers are classified
once, here: 409 is :class:`NotReady` (a precondition not met yet, worth waiting for), any other
4xx is :class:`Refused` (retrying will not help), 5xx and network failures are
:class:`Unavailable` (worth retrying).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

import httpx
from pydantic import BaseModel

from services.common.auth import mint_token, signing_key_id
from services.common.settings import Settings

__all__ = [
    "SERVICES",
    "Actor",
    "NotReady",
    "Refused",
    "ServiceCallError",
    "ServiceClient",
    "ServiceName",
    "TokenSource",
    "ServiceTokens",
    "Unavailable",
]

ServiceName = Literal["cycles", "goals", "tracking", "evaluation", "feedback", "results", "committee"]
SERVICES: tuple[ServiceName, ...] = ("cycles", "goals", "tracking", "evaluation", "feedback", "results", "committee")
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class Actor:
    """The person on whose behalf a service calls another (``act`` claim of the service token)."""

    sub: str
    employee_id: str | None = None

    def claim(self) -> dict[str, str]:
        claim = {"sub": self.sub}
        if self.employee_id:
            claim["employee_id"] = self.employee_id
        return claim


TokenSource = Callable[[Actor | None], str]
"""Returns a bearer token for the calling service, acting for the given person (or for nobody)."""


_FIXED_TOKEN = "TANDEM_SERVICE_TOKEN"
"""A token from the identity provider for calls acting for nobody, instead of minting one."""


class ServiceTokens:
    """Short-lived tokens of one calling service, re-minted before they expire.

    Tokens acting for a person are minted per call (they carry the person); the plain service
    token is cached. They are signed with the service's own ``TANDEM_SERVICE_SIGNING_KEY``, which
    production requires: the other services trust its public key for only what this service needs
    (``services.common.auth.SERVICE_KEY_POLICIES``). A deployment may instead hand a token from its
    identity provider through ``TANDEM_SERVICE_TOKEN`` (rotated by the platform), used for calls
    acting for nobody.
    """

    def __init__(self, settings: Settings, *, sub: str, roles: tuple[str, ...], ttl_seconds: int = 3600) -> None:
        if settings.env == "prod" and settings.service_signing_key is None and not os.environ.get(_FIXED_TOKEN):
            # Refused at start-up rather than at the first call: without its own key this service could only
            # mint with the shared secret, which production does not accept.
            raise ValueError(
                f"{sub} calls other services: production needs its own TANDEM_SERVICE_SIGNING_KEY (its public key "
                "listed in the others' TANDEM_SERVICE_KEYS); the shared HS256 TANDEM_JWT_SECRET is refused"
            )
        self.key_id = signing_key_id(settings)  # an unreadable or unfit key fails here, at start-up
        self.settings = settings
        self.sub = sub
        self.roles = list(roles)
        self.ttl_seconds = ttl_seconds
        self._token = ""
        self._expires = 0.0

    def __call__(self, actor: Actor | None = None) -> str:
        if actor is not None:
            return mint_token(self.settings, sub=self.sub, roles=self.roles, ttl_seconds=300, actor=actor.claim())
        fixed = os.environ.get(_FIXED_TOKEN)
        if fixed:
            return fixed
        now = time.time()
        if now > self._expires - 300:
            self._token = mint_token(self.settings, sub=self.sub, roles=self.roles, ttl_seconds=self.ttl_seconds)
            self._expires = now + self.ttl_seconds
        return self._token


class ServiceCallError(Exception):
    """A call to another service did not succeed."""

    def __init__(
        self,
        message: str,
        *,
        service: str,
        status: int | None = None,
        detail: str = "",
        problem: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.service = service
        self.status = status
        self.detail = detail
        self.problem: dict[str, Any] = dict(problem or {})
        """The refusal's whole Problem body (``detail``, ``field``, ``errors``...), for callers that pass it on."""

    @property
    def field(self) -> str | None:
        """The field the other service named, if any."""
        named = self.problem.get("field")
        return str(named) if named else None


class NotReady(ServiceCallError):
    """409: a precondition of this step is not met yet."""


class Refused(ServiceCallError):
    """A 4xx other than 409: the request itself is wrong; retrying will not help."""


class Unavailable(ServiceCallError):
    """A network failure or a 5xx: worth retrying."""


class ServiceClient:
    """Calls the stage services by name over one shared ``httpx.AsyncClient``."""

    @classmethod
    def from_settings(cls, settings: Settings, *, http: httpx.AsyncClient, tokens: TokenSource) -> ServiceClient:
        urls: dict[str, str] = {name: str(getattr(settings, f"{name}_url")) for name in SERVICES}
        return cls(http=http, urls=urls, tokens=tokens)

    def __init__(self, *, http: httpx.AsyncClient, urls: Mapping[str, str], tokens: TokenSource) -> None:
        self.http = http
        self.urls = {name: url.rstrip("/") for name, url in urls.items()}
        self.tokens = tokens

    def url(self, service: ServiceName, path: str) -> str:
        return f"{self.urls[service]}{path}"

    async def call(
        self,
        method: str,
        service: ServiceName,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        actor: Actor | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Any:
        """The decoded JSON answer (``None`` for an empty body), or a classified error."""
        sent = {**(headers or {}), "Authorization": f"Bearer {self.tokens(actor)}"}
        if idempotency_key:
            sent["Idempotency-Key"] = idempotency_key
        if isinstance(json, BaseModel):
            json = json.model_dump(mode="json")
        url = self.url(service, path)
        try:
            response = await self.http.request(method, url, json=json, params=params, headers=sent)
        except httpx.HTTPError as exc:
            raise Unavailable(f"{method} {url} failed: {exc!r}", service=service) from exc
        if response.status_code < 400:
            return response.json() if response.content else None
        detail = response_detail(response)
        kind: type[ServiceCallError]
        if response.status_code == 409:
            kind, message = NotReady, f"{service}: {detail}"
        elif response.status_code < 500:
            kind, message = Refused, f"{method} {url} was refused ({response.status_code}): {detail}"
        else:
            kind, message = Unavailable, f"{method} {url} failed ({response.status_code}): {detail}"
        raise kind(message, service=service, status=response.status_code, detail=detail, problem=_problem(response))

    async def get(self, service: ServiceName, path: str, *, params: Mapping[str, str] | None = None) -> Any:
        return await self.call("GET", service, path, params=params)

    async def get_model(
        self, model: type[M], service: ServiceName, path: str, *, params: Mapping[str, str] | None = None
    ) -> M:
        """GET and validate the answer as ``model`` (a ``contracts`` model)."""
        return model.model_validate(await self.get(service, path, params=params))


def _problem(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def response_detail(response: httpx.Response) -> str:
    """The ``detail`` of a Problem body, else the start of the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:300]
