"""Calls from console pages to the service APIs, always with the signed-in user's token.

The APIs then apply their own roles and row scoping, so the console can never show more
than the user could fetch with curl. The cycles service's own API is called in-process
(ASGI transport on the running app); the stage services over ``app.state.http``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx
from fastapi import Request

from services.common.settings import Settings

__all__ = ["Answer", "Service", "Upstream"]

Service = Literal["cycles", "goals", "tracking", "evaluation", "feedback", "results"]
TIMEOUT = httpx.Timeout(15.0, connect=3.0)


@dataclass(frozen=True)
class Answer:
    status: int
    data: Any
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None


class Upstream:
    def __init__(self, request: Request, token: str) -> None:
        self.request = request
        self.token = token
        self.settings: Settings = request.app.state.settings

    async def get(self, service: Service, path: str, params: dict[str, Any] | None = None) -> Answer:
        return await self.call("GET", service, path, params=params)

    async def post(self, service: Service, path: str, body: Any = None, params: dict[str, Any] | None = None) -> Answer:
        return await self.call("POST", service, path, body=body, params=params)

    async def call(
        self, method: str, service: Service, path: str, *, body: Any = None, params: dict[str, Any] | None = None
    ) -> Answer:
        headers = {"Authorization": f"Bearer {self.token}"}
        query = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            if service == "cycles":
                transport = httpx.ASGITransport(app=self.request.app)
                async with httpx.AsyncClient(transport=transport, base_url="http://cycles", timeout=TIMEOUT) as client:
                    response = await client.request(method, path, headers=headers, params=query, json=body)
            else:
                http: httpx.AsyncClient = self.request.app.state.http
                base = str(getattr(self.settings, f"{service}_url")).rstrip("/")
                response = await http.request(
                    method, f"{base}{path}", headers=headers, params=query, json=body, timeout=TIMEOUT
                )
        except httpx.HTTPError as exc:
            return Answer(0, None, f"the {service} service is unreachable ({type(exc).__name__}); is it running?")
        try:
            data = response.json()
        except ValueError:
            data = response.text
        if response.is_success:
            return Answer(response.status_code, data, None)
        detail = data.get("detail") if isinstance(data, dict) else None
        message = detail if isinstance(detail, str) else str(data)[:300]
        return Answer(response.status_code, data, f"{service} answered {response.status_code}: {message}")
