"""Where the goals service learns a cycle's period when nobody has PUT it: the cycles service.

The org snapshot carries no period, and the KPI catalog needs one, so on first need the goals
service reads ``GET /v1/cycles/{id}`` on cycles (fields ``period_start``/``period_end``) and keeps it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from services.common.client import ServiceCallError, ServiceClient

__all__ = ["CyclesPeriodSource", "PeriodSource"]

PeriodSource = Callable[[str], Awaitable[tuple[date, date] | None]]
"""``cycle_id -> (period_start, period_end)``, or None when unknown."""


class _CyclePeriod(BaseModel):
    model_config = ConfigDict(extra="ignore")

    period_start: date
    period_end: date


class CyclesPeriodSource:
    """Reads the period from the cycles service; any failure means "unknown" (the caller reports it).

    It acts for nobody: the period is the cycle's, the same for every caller, and once read it is kept.
    """

    def __init__(self, *, client: ServiceClient) -> None:
        self.client = client

    async def __call__(self, cycle_id: str) -> tuple[date, date] | None:
        try:
            period = await self.client.get_model(_CyclePeriod, "cycles", f"/v1/cycles/{quote(cycle_id, safe='')}")
        except (ServiceCallError, ValueError):  # ValueError: not JSON, or not a period (pydantic's ValidationError)
            return None
        return period.period_start, period.period_end
