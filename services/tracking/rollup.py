"""The live roll-up: KPI progress pushed to goals during the tracking stage, within seconds.

Goals rolls its tree (and the strategy objectives) up from the actuals it holds; without this it
would hold none until the workflow hands tracking's export over at the end of the stage (334 days
in the sample template). ``RollupPusher`` runs in the tracking service's lifespan:

* the consumer's ``on_batch`` hook and a check-in with a value only *mark* work (``touch``): the
  push is never on the ingestion path, and a slow or absent goals service never holds a batch;
* at most every ``interval`` seconds it reads each cycle's progress (``service.progress_export``),
  keeps the actuals that differ from what it last pushed, and PUTs those to goals'
  ``/v1/cycles/{id}/progress`` (in pages) through the ``ServiceClient``;
* every ``reconcile`` seconds it looks even when nothing was marked: changes written by another
  process (a standalone ``tandem tracking consume``, another replica), back-fills, and KPIs whose
  staleness changed with the clock. It starts with nothing pushed, so a restart pushes each
  cycle's actuals once.

A push that fails is retried at the next turn (goals' PUT is an idempotent replace per KPI, and it
keeps the newer of two values by ``as_of``). The delay from an accepted metric to the moved roll-up
is measured in ``docs/benchmarks.md`` ("Live roll-up delay").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from contracts.tracking import KpiActual, ProgressExport
from services.common.client import ServiceClient
from services.common.db import session_scope
from services.tracking.ingest import BatchResult
from services.tracking.models import TrackingCatalog
from services.tracking.service import progress_export

__all__ = ["DEFAULT_INTERVAL", "DEFAULT_RECONCILE", "PAGE", "RollupPusher", "RollupStats"]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 2.0
"""Seconds between two pushes at most: the roll-up lags a metric by about this much plus a batch."""
DEFAULT_RECONCILE = 60.0
"""Seconds between looks when nothing was marked."""
PAGE = 500
"""Actuals per PUT (about 75 KB), well inside the services' body limit."""


@dataclass
class RollupStats:
    pushes: int = 0
    actuals: int = 0
    failures: int = 0
    last_push_at: datetime | None = None


def _state(actual: KpiActual) -> tuple[Any, ...]:
    return (actual.actual_value, actual.event_count, actual.last_event_at, actual.stale)


class RollupPusher:
    """Pushes changed KPI actuals to goals, throttled, off the consumer's path."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        client: ServiceClient,
        interval: float = DEFAULT_INTERVAL,
        reconcile: float = DEFAULT_RECONCILE,
        page: int = PAGE,
    ) -> None:
        self.sessions = sessions
        self.client = client
        self.interval = interval
        self.reconcile = max(reconcile, interval)
        self.page = page
        self.stats = RollupStats()
        self._pushed: dict[tuple[str, str], tuple[Any, ...]] = {}
        self._marked = asyncio.Event()

    def touch(self) -> None:
        """Some KPI may have changed: push at the next turn."""
        self._marked.set()

    def on_batch(self, result: BatchResult) -> None:
        """The consumer's per-batch hook: only a batch that moved a KPI marks work."""
        if result.applied:
            self._marked.set()

    async def run(self) -> None:
        """Until cancelled: wait for a mark (or the reconcile time), push, then keep ``interval`` apart."""
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._marked.wait(), timeout=self.reconcile)
            self._marked.clear()
            started = loop.time()
            try:
                await self.push_changed()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - goals may be down or redeploying: retry next turn
                self.stats.failures += 1
                log.warning("live roll-up push to goals failed (%s); retrying", exc)
                self._marked.set()
            await asyncio.sleep(max(0.0, self.interval - (loop.time() - started)))

    async def push_changed(self, now: datetime | None = None) -> int:
        """Push every actual that differs from the last one pushed; the number pushed."""
        async with session_scope(self.sessions) as session:
            cycles = (await session.scalars(select(TrackingCatalog.cycle_id).order_by(TrackingCatalog.cycle_id))).all()
            exports = [await progress_export(session=session, cycle_id=c, now=now) for c in cycles]
        pushed = 0
        for export in exports:
            changed = [a for a in export.actuals if self._pushed.get((export.cycle_id, a.kpi_id)) != _state(a)]
            for first in range(0, len(changed), self.page):
                page = changed[first : first + self.page]
                await self._put(ProgressExport(cycle_id=export.cycle_id, as_of=export.as_of, actuals=page))
                self._pushed.update(((export.cycle_id, a.kpi_id), _state(a)) for a in page)
                pushed += len(page)
        return pushed

    async def _put(self, export: ProgressExport) -> None:
        await self.client.call("PUT", "goals", f"/v1/cycles/{export.cycle_id}/progress", json=export)
        self.stats.pushes += 1
        self.stats.actuals += len(export.actuals)
        self.stats.last_push_at = export.as_of
