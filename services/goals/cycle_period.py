"""Where the goals service learns a cycle's period when nobody has PUT it: the cycles service.

The org snapshot carries no period, and the KPI catalog needs one, so on first need the goals
service reads ``GET /v1/cycles/{id}`` on cycles (fields ``period_start``/``period_end``) and keeps it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from services.common.auth import Role, mint_token
from services.common.settings import Settings

__all__ = ["CyclesPeriodSource", "PeriodSource"]

PeriodSource = Callable[[str], Awaitable[tuple[date, date] | None]]
"""``cycle_id -> (period_start, period_end)``, or None when unknown."""


class _CyclePeriod(BaseModel):
    model_config = ConfigDict(extra="ignore")

    period_start: date
    period_end: date


class CyclesPeriodSource:
    """Reads the period from the cycles service; any failure means "unknown" (the caller reports it)."""

    def __init__(self, *, http: httpx.AsyncClient, settings: Settings) -> None:
        self.http = http
        self.settings = settings

    async def __call__(self, cycle_id: str) -> tuple[date, date] | None:
        try:
            token = mint_token(self.settings, sub="system:goals", roles=[Role.HR_ADMIN.value])
            response = await self.http.get(
                f"{self.settings.cycles_url.rstrip('/')}/v1/cycles/{quote(cycle_id, safe='')}",
                headers={"Authorization": f"Bearer {token}"},
            )
        except httpx.HTTPError:
            return None
        if not response.is_success:
            return None
        try:
            period = _CyclePeriod.model_validate_json(response.content)
        except ValidationError:
            return None
        return period.period_start, period.period_end
