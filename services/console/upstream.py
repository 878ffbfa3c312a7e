"""Calls from console pages to the service APIs, always with the signed-in user's token.

The APIs then apply their own roles and row scoping, so the console can never show more
than the user could fetch with curl. Every service, the cycles service included, is called
over HTTP through the one service client (:class:`services.common.client.ServiceClient`),
whose token source here is simply the user's own token. Failures become an :class:`Answer`
with a readable ``error`` (and, for a refused form, the message of each field), so a page can
show what it could not load next to what it could.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Request

from services.common.client import ServiceCallError, ServiceClient, ServiceName, response_detail
from services.console.i18n import _

__all__ = ["TIMEOUT", "Answer", "Upstream", "field_messages", "not_asked"]

TIMEOUT = httpx.Timeout(15.0, connect=3.0)
"""Per call: a page waits at most this long for one API."""


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any
    error: str | None
    fields: dict[str, str] = field(default_factory=dict)
    """A refused request's message per field (``name``, ``ratings.delivery``...), for the form."""
    problem: dict[str, Any] | None = None
    """A refused request's Problem body, when known (e.g. every row an org file import rejected)."""

    @property
    def ok(self) -> bool:
        return self.error is None

    def items(self) -> list[Any]:
        """The rows of a list answer, paged (``{"items": [...]}``) or plain; none when it failed."""
        if not self.ok or self.data is None:
            return []
        if isinstance(self.data, dict):
            return list(self.data.get("items", []))
        return list(self.data)


async def not_asked() -> Answer:
    """Stands in for a call a page does not make for this role."""
    return Answer(0, [], None)


def field_messages(problem: Mapping[str, Any] | None, detail: str) -> dict[str, str]:
    """The message of each field of a refused request.

    The services answer 4xx with a Problem body (``services.common.errors``): ``errors`` (one per
    invalid field, request validation) or ``field`` (a rule that names its field). Without the
    body, the ``detail`` summary (``field: message; ...``) says the same for validation errors.
    """
    found: dict[str, str] = {}
    if problem:
        for error in problem.get("errors") or []:
            if isinstance(error, Mapping) and error.get("field"):
                found.setdefault(str(error["field"]), str(error.get("message", "")))
        if problem.get("field"):
            found.setdefault(str(problem["field"]), str(problem.get("detail", detail)))
        return found
    for part in detail.split("; "):
        name, sep, message = part.partition(": ")
        if sep and name and " " not in name and len(name) <= 120:
            found.setdefault(name, message)
    return found


class Upstream:
    """The service APIs as the signed-in user sees them."""

    def __init__(self, request: Request, token: str) -> None:
        self.token = token
        self.client = ServiceClient.from_settings(
            request.app.state.settings, http=request.app.state.http, tokens=lambda _actor: token
        )

    async def get(self, service: ServiceName, path: str, params: Mapping[str, Any] | None = None) -> Answer:
        return await self.call("GET", service, path, params=params)

    async def post(
        self,
        service: ServiceName,
        path: str,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> Answer:
        return await self.call("POST", service, path, body=body, params=params, idempotency_key=idempotency_key)

    async def put(self, service: ServiceName, path: str, body: Any = None) -> Answer:
        return await self.call("PUT", service, path, body=body)

    async def patch(self, service: ServiceName, path: str, body: Any = None) -> Answer:
        return await self.call("PATCH", service, path, body=body)

    async def delete(self, service: ServiceName, path: str) -> Answer:
        return await self.call("DELETE", service, path)

    async def call(
        self,
        method: str,
        service: ServiceName,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
    ) -> Answer:
        query = {key: str(value) for key, value in (params or {}).items() if value is not None}
        try:
            data = await self.client.call(
                method, service, path, json=body, params=query, idempotency_key=idempotency_key
            )
        except ServiceCallError as exc:
            return self._failed(service, exc)
        return Answer(200, data, None)

    async def upload(
        self,
        service: ServiceName,
        path: str,
        *,
        content: bytes,
        content_type: str,
        params: Mapping[str, str] | None = None,
    ) -> Answer:
        """Forward an upload as it came (the org file: CSV parts or JSON), with the user's token.

        The service client sends JSON only, so this one call goes through its HTTP client directly;
        errors are read the same way (``response_detail``).
        """
        url = self.client.url(service, path)
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": content_type}
        try:
            response = await self.client.http.post(url, content=content, headers=headers, params=params)
        except httpx.HTTPError as exc:
            return self._failed(service, ServiceCallError(str(exc), service=service))
        if response.status_code < 400:
            return Answer(response.status_code, response.json() if response.content else None, None)
        detail = response_detail(response)
        try:
            problem = response.json()
        except ValueError:
            problem = None
        error = ServiceCallError(
            detail,
            service=service,
            status=response.status_code,
            detail=detail,
            problem=problem if isinstance(problem, dict) else None,
        )
        return self._failed(service, error)

    @staticmethod
    def _failed(service: str, exc: ServiceCallError) -> Answer:
        if exc.status is None:  # no answer at all: the network failed
            cause = type(exc.__cause__ or exc).__name__
            return Answer(0, None, _("the %(service)s service is unreachable (%(cause)s); is it running?",
                                     service=service, cause=cause))  # fmt: skip
        problem = exc.problem or None  # the Problem body (field, errors...), when there was one
        return Answer(
            exc.status,
            None,
            _("%(service)s answered %(status)s: %(detail)s", service=service, status=exc.status, detail=exc.detail),
            field_messages(problem if isinstance(problem, Mapping) else None, exc.detail),
            dict(problem) if isinstance(problem, Mapping) else None,
        )
