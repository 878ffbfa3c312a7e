"""Calls from console pages to the service APIs, always with the signed-in user's token.

The APIs then apply their own roles and row scoping, so the console can never show more
than the user could fetch with curl. Every service, the cycles service included, is called
over HTTP through the one service client (:class:`services.common.client.ServiceClient`),
whose token source here is simply the user's own token. Failures become an :class:`Answer`
with a readable ``error``, so a page can show what it could not load next to what it could.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import Request

from services.common.client import ServiceCallError, ServiceClient, ServiceName
from services.console.i18n import _

__all__ = ["TIMEOUT", "Answer", "Upstream", "not_asked"]

TIMEOUT = httpx.Timeout(15.0, connect=3.0)
"""Per call: a page waits at most this long for one API."""


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


async def not_asked() -> Answer:
    """Stands in for a call a page does not make for this role."""
    return Answer(0, [], None)


class Upstream:
    """The service APIs as the signed-in user sees them."""

    def __init__(self, request: Request, token: str) -> None:
        self.client = ServiceClient.from_settings(
            request.app.state.settings, http=request.app.state.http, tokens=lambda _actor: token
        )

    async def get(self, service: ServiceName, path: str, params: Mapping[str, Any] | None = None) -> Answer:
        return await self.call("GET", service, path, params=params)

    async def post(
        self, service: ServiceName, path: str, body: Any = None, params: Mapping[str, Any] | None = None
    ) -> Answer:
        return await self.call("POST", service, path, body=body, params=params)

    async def call(
        self,
        method: str,
        service: ServiceName,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Answer:
        query = {key: str(value) for key, value in (params or {}).items() if value is not None}
        try:
            data = await self.client.call(method, service, path, json=body, params=query)
        except ServiceCallError as exc:
            if exc.status is None:  # no answer at all: the network failed
                cause = type(exc.__cause__ or exc).__name__
                return Answer(0, None, _("the %(service)s service is unreachable (%(cause)s); is it running?",
                                         service=service, cause=cause))  # fmt: skip
            return Answer(exc.status, None, _("%(service)s answered %(status)s: %(detail)s",
                                              service=service, status=exc.status, detail=exc.detail))  # fmt: skip
        return Answer(200, data, None)
