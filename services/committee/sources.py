"""The committee's reads of the other services, through the one ``ServiceClient``.

Every read carries the committee service's token and, when it is made for someone, that person
(the secretary for a meeting's agenda, the caller for suggestions and calibration), so the other
services' audit logs and "not your own" rules see the person. Answers are read into ``contracts``
models where one exists, else into the narrow models of ``facts.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import date
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict

from contracts.evaluation import CalibrationAdjustment, CollaborationMatrix
from contracts.org import OrgSnapshot
from contracts.tracking import StaleKpiReport
from contracts.workflow_io import CycleStatus
from services.committee.facts import (
    AppealFact,
    CheckInFact,
    CycleFact,
    DeviationFact,
    DistributionFact,
    KpiFact,
    ResultFact,
    ReviewFact,
    ScaleFact,
)
from services.common.client import Actor, NotReady, Refused, ServiceCallError, ServiceClient, ServiceName
from services.common.errors import DomainError

__all__ = ["CycleData", "StageWindowFact", "attempt"]

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)

_PAGE = 500
_MAX_ROWS = 20_000
"""Tracking's progress is paged; a committee reads at most this many KPIs of a cycle."""


class StageWindowFact(BaseModel):
    model_config = ConfigDict(extra="ignore")

    stage: str
    opens_on: date
    closes_on: date


async def attempt(source: str, read: Awaitable[T], unavailable: dict[str, str]) -> T | None:
    """``read``'s answer, or ``None`` with the reason recorded under ``source`` (the agenda says so)."""
    try:
        return await read
    except ServiceCallError as exc:
        unavailable[source] = exc.detail or str(exc)
        return None


class CycleData:
    """Reads one cycle's data from cycles, tracking, evaluation and feedback, acting for ``actor``."""

    def __init__(self, client: ServiceClient, *, actor: Actor | None = None) -> None:
        self.client = client
        self.actor = actor

    async def _get(self, service: ServiceName, path: str, params: dict[str, str] | None = None) -> Any:
        return await self.client.call("GET", service, path, params=params, actor=self.actor)

    async def _model(self, model: type[M], service: ServiceName, path: str, params: dict[str, str] | None = None) -> M:
        return model.model_validate(await self._get(service, path, params))

    # -- cycles -----------------------------------------------------------------------------------
    async def cycle(self, cycle_id: str, *, field: str = "cycle_id") -> tuple[CycleFact, list[StageWindowFact]]:
        """The cycle and its stage dates; a cycle that does not exist is the caller's input error."""
        try:
            data = await self._get("cycles", f"/v1/cycles/{cycle_id}")
        except Refused as exc:
            if exc.status == 404:
                raise DomainError(f"cycle {cycle_id!r} does not exist", status_code=422, field=field) from exc
            raise
        windows = [StageWindowFact.model_validate(w) for w in data.get("schedule", [])]
        return CycleFact.model_validate({**data, "cycle_id": data.get("cycle_id", cycle_id)}), windows

    async def active_cycle(self) -> str | None:
        """The newest active cycle, for a standing committee's meeting."""
        page = await self._get("cycles", "/v1/cycles", {"status": "active", "limit": "1"})
        items = page.get("items", []) if isinstance(page, dict) else []
        return str(items[0]["cycle_id"]) if items else None

    async def cycles(self) -> list[CycleFact]:
        """Every cycle but drafts and cancelled ones, oldest first by period (a person's history)."""
        page = await self._get("cycles", "/v1/cycles", {"limit": "100"})
        items = page.get("items", []) if isinstance(page, dict) else []
        cycles = [CycleFact.model_validate(c) for c in items if c.get("status") not in ("draft", "cancelled")]
        return sorted(cycles, key=lambda c: (c.period_end or "", c.cycle_id))

    async def released_result(self, cycle_id: str, employee_id: str) -> ResultFact | None:
        """The person's released result (feedback); None while not released."""
        try:
            return await self._model(ResultFact, "feedback", f"/v1/cycles/{cycle_id}/results/{employee_id}")
        except Refused as exc:
            if exc.status in (403, 404):
                return None
            raise

    async def released_results(self, cycle_id: str) -> list[ResultFact]:
        """Every released result the actor may read in the cycle, page by page."""
        rows: list[ResultFact] = []
        while len(rows) < _MAX_ROWS:
            page = await self._get(
                "feedback", f"/v1/cycles/{cycle_id}/results", {"limit": str(_PAGE), "offset": str(len(rows))}
            )
            items = [ResultFact.model_validate(item) for item in page if item.get("released_at")]
            rows.extend(items)
            if len(page) < _PAGE:
                break
        return rows

    async def scale(self, cycle_id: str) -> ScaleFact | None:
        """The cycle's rating scale and competency names (evaluation's config); None when not configured."""
        try:
            return await self._model(ScaleFact, "evaluation", f"/v1/cycles/{cycle_id}/config")
        except ServiceCallError:
            return None

    async def snapshot(self, cycle_id: str) -> OrgSnapshot:
        return await self._model(OrgSnapshot, "cycles", f"/v1/cycles/{cycle_id}/snapshot")

    async def status(self, cycle_id: str) -> CycleStatus:
        return await self._model(CycleStatus, "cycles", f"/v1/cycles/{cycle_id}/status")

    # -- tracking ---------------------------------------------------------------------------------
    async def kpis(self, cycle_id: str, *, employee_id: str | None = None) -> list[KpiFact]:
        """Every KPI of the cycle (or of one person) with its progress, page by page."""
        rows: list[KpiFact] = []
        params = {"limit": str(_PAGE)} | ({"employee_id": employee_id} if employee_id else {})
        while len(rows) < _MAX_ROWS:
            page = await self._get("tracking", f"/v1/cycles/{cycle_id}/progress", params | {"offset": str(len(rows))})
            items = [KpiFact.model_validate(item) for item in page.get("items", [])]
            rows.extend(items)
            if len(items) < _PAGE or len(rows) >= int(page.get("total", 0)):
                break
        return rows

    async def with_trends(self, cycle_id: str, kpis: list[KpiFact], *, buckets: int = 6) -> list[KpiFact]:
        """``kpis`` with their trend slope (one read each, concurrently; a KPI whose trend fails keeps none)."""

        async def trend(kpi: KpiFact) -> KpiFact:
            try:
                data = await self._get(
                    "tracking", f"/v1/cycles/{cycle_id}/kpis/{kpi.kpi_id}/progress", {"buckets": str(buckets)}
                )
            except ServiceCallError:
                return kpi
            return kpi.model_copy(update={"trend_slope": data.get("trend_slope")})

        return list(await asyncio.gather(*(trend(k) for k in kpis)))

    async def check_ins(self, cycle_id: str, kpis: list[KpiFact]) -> dict[str, CheckInFact]:
        """Each KPI's check-in cadence (last check-in, next due, overdue)."""

        async def cadence(kpi: KpiFact) -> CheckInFact | None:
            try:
                data = await self._get("tracking", f"/v1/cycles/{cycle_id}/kpis/{kpi.kpi_id}/check-ins", {"limit": "1"})
            except ServiceCallError:
                return None
            return CheckInFact.model_validate(data)

        found = await asyncio.gather(*(cadence(k) for k in kpis))
        return {c.kpi_id: c for c in found if c is not None}

    async def stale(self, cycle_id: str) -> StaleKpiReport:
        return await self._model(StaleKpiReport, "tracking", f"/v1/cycles/{cycle_id}/stale-kpis")

    # -- evaluation -------------------------------------------------------------------------------
    async def matrix(self, cycle_id: str) -> CollaborationMatrix:
        return await self._model(CollaborationMatrix, "evaluation", f"/v1/cycles/{cycle_id}/collaboration-matrix")

    async def distribution(self, cycle_id: str) -> DistributionFact:
        return await self._model(DistributionFact, "evaluation", f"/v1/cycles/{cycle_id}/calibration/distribution")

    async def deviation(self, cycle_id: str) -> DeviationFact:
        return await self._model(DeviationFact, "evaluation", f"/v1/cycles/{cycle_id}/calibration/deviation")

    async def manager_ratings(self, cycle_id: str, employee_ids: list[str]) -> dict[str, ReviewFact]:
        """Each person's competency means from their manager's review (people without one left out)."""

        async def ratings(employee_id: str) -> ReviewFact | None:
            try:
                data = await self._get("evaluation", f"/v1/cycles/{cycle_id}/reviews/{employee_id}/summary")
            except ServiceCallError:
                return None
            manager = next((r for r in data.get("relations", []) if r.get("relation") == "manager"), None)
            if not manager or not manager.get("competencies"):
                return None
            return ReviewFact(employee_id=employee_id, competencies=manager["competencies"])

        found = await asyncio.gather(*(ratings(e) for e in employee_ids))
        return {r.employee_id: r for r in found if r is not None}

    async def competency_names(self, cycle_id: str) -> dict[str, str]:
        try:
            config = await self._get("evaluation", f"/v1/cycles/{cycle_id}/config")
        except ServiceCallError:
            return {}
        return {c["competency_id"]: c["name"] for c in config.get("competencies", [])}

    async def adjust(self, cycle_id: str, body: dict[str, Any]) -> CalibrationAdjustment:
        """Record a calibration adjustment in evaluation, for the acting person."""
        try:
            data = await self.client.call(
                "POST", "evaluation", f"/v1/cycles/{cycle_id}/calibration/adjustments", json=body, actor=self.actor
            )
        except (Refused, NotReady) as exc:
            raise DomainError(
                f"evaluation refused the adjustment: {exc.detail}", status_code=exc.status or 422
            ) from exc
        return CalibrationAdjustment.model_validate(data)

    # -- feedback ---------------------------------------------------------------------------------
    async def appeals(self, cycle_id: str) -> list[AppealFact]:
        """Open appeals (submitted or under review)."""
        found: list[AppealFact] = []
        for status in ("submitted", "under_review"):
            page = await self._get("feedback", f"/v1/cycles/{cycle_id}/appeals", {"status": status, "limit": "500"})
            found.extend(AppealFact.model_validate(a) for a in page)
        return found
