"""The live roll-up: KPI progress reaches goals during tracking, and the strategy roll-up moves.

Goals (the strategy tree of ``test_goals_helpers``) and tracking run in process; tracking's
``RollupPusher`` reaches goals through the ``ServiceClient``. The first test feeds a batch the way
the consumer stores it and passes the batch to the consumer's hook; the second goes the whole way,
HTTP ingest -> ``metrics.v1`` -> the lifespan consumer -> goals, and measures the delay from an
accepted metric (the 202) to the moved roll-up (the figure in ``docs/benchmarks.md``)::

    TANDEM_TEST_KAFKA=embedded TANDEM_TEST_DB=sqlite python -m pytest tests/integration/test_live_rollup.py -q -s
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from contracts.tracking import KpiActual, ProgressExport
from devtools.stack.kafka import create_topics
from services.common.settings import Settings
from services.tracking.app import create_app as tracking_app
from services.tracking.ingest import RawMessage, ingest_batch, load_catalog
from services.tracking.rollup import DEFAULT_INTERVAL, RollupPusher
from tests.integration.test_goals_helpers import GoalsWorld, goal_body, make_snapshot, seeded
from tests.integration.test_goals_tree import find
from tests.support import auth

KEY_RESULT: dict[str, Any] = {
    "kpi_id": "d_sales_nps",
    "level": "department",
    "name": "Sales NPS",
    "metric": "",
    "unit": "pts",
    "aggregation": "last",
    "direction": "higher_is_better",
    "start_value": 0,
    "target_value": 50,
    "owner_department_id": "sales",
    "update_frequency_hours": 24,
    "department_id": "sales",
    "employee_id": None,
}


@dataclass
class LiveWorld:
    goals: GoalsWorld
    tracking: httpx.AsyncClient
    app: FastAPI

    @property
    def pusher(self) -> RollupPusher:
        pusher: RollupPusher = self.app.state.rollup
        return pusher

    async def tree(self) -> dict[str, Any]:
        response = await self.goals.client.get(f"{self.goals.base}/tree", headers=self.goals.hr())
        assert response.status_code == 200, response.text
        tree: dict[str, Any] = response.json()
        return tree

    async def tracked(self, kpi_id: str) -> float | None:
        """The KPI's current value in tracking."""
        path = f"/v1/cycles/{self.goals.cycle_id}/kpis/{kpi_id}/progress"
        response = await self.tracking.get(path, params={"buckets": 1}, headers=self.goals.hr())
        value: float | None = response.json()["current_value"]
        return value

    async def actual(self, goal_id: str) -> float | None:
        value: float | None = find(await self.tree(), goal_id)["actual_value"]
        return value


@asynccontextmanager
async def live_world(settings: Settings, database_url: str, **tracking_options: Any) -> AsyncIterator[LiveWorld]:
    """Goals with the strategy tree, and tracking with its catalog from goals, pushing to goals."""
    url = database_url.replace("test.db", "{service}.db")
    async with seeded(settings, url) as goals, AsyncExitStack() as stack:
        await goals.build_tree()
        await goals.create(
            goal_body(
                "department",
                10,
                goal_id="d_sales_nps",
                parent_id="c_rev",
                department_id="sales",
                kind="okr_key_result",
                metric=None,
                data_owner_department_id=None,
                aggregation="last",
                target_value=50,
            )
        )
        today = datetime.now(UTC).date()
        period = {
            "period_start": (today - timedelta(days=10)).isoformat(),
            "period_end": (today + timedelta(days=300)).isoformat(),
        }
        assert (await goals.client.put(f"{goals.base}/settings", json=period, headers=goals.hr())).is_success
        goals_app: FastAPI = goals.client.app  # type: ignore[attr-defined]
        http = await stack.enter_async_context(
            httpx.AsyncClient(mounts={"http://goals.test": httpx.ASGITransport(app=goals_app)})
        )
        app_settings = settings.model_copy(update={"database_url": url, "goals_url": "http://goals.test"})
        app = tracking_app(app_settings, staleness_interval=0, http_client=http, **tracking_options)
        await stack.enter_async_context(app.router.lifespan_context(app))
        tracking = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tracking")
        )
        # the goal-setting handoff: goals' KPI catalog to tracking, with the key result without a metric
        # (metric "": its value comes from check-ins), as goals' catalog lists it
        kpis = (await goals.client.get(f"{goals.base}/kpi-catalog", headers=goals.hr())).json()
        if "d_sales_nps" not in {k["kpi_id"] for k in kpis["kpis"]}:
            kpis["kpis"].append(KEY_RESULT)
        registered = await tracking.put(f"/v1/cycles/{goals.cycle_id}/kpis", json=kpis, headers=goals.hr())
        assert registered.status_code == 200, registered.text
        snapshot = make_snapshot(goals.cycle_id).model_dump(mode="json")
        assert (
            await tracking.put(f"/v1/cycles/{goals.cycle_id}/participants", json=snapshot, headers=goals.hr())
        ).is_success
        yield LiveWorld(goals=goals, tracking=tracking, app=app)


def metric(value: float, name: str = "sales.revenue", department: str = "sales") -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "source": "crm",
        "department_id": department,
        "metric": name,
        "value": value,
        "unit": "EUR",
        "occurred_at": datetime.now(UTC).isoformat(),
    }


async def until(check: Any, timeout: float = 10.0) -> float:
    """Seconds until ``await check()`` is true (polled every 10 ms)."""
    started = time.perf_counter()
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.01)
    return time.perf_counter() - started


async def test_the_goal_tree_moves_during_tracking_without_waiting_for_the_stage_to_end(
    settings: Settings, database_url: str
) -> None:
    async with live_world(settings, database_url, rollup_interval=0.2, rollup_reconcile=30) as world:
        cycle = world.goals.cycle_id
        assert (await world.tree())["progress"] is None  # nothing tracked yet

        # a batch stored as the consumer stores it, then the consumer's per-batch hook
        engine = world.app.state.engine
        async with engine.connect() as conn, conn.begin():
            batch = [RawMessage("metrics.v1", 0, 1, None, json.dumps(metric(40)).encode())]
            result = await ingest_batch(conn, batch, catalog=await load_catalog(conn))
        world.pusher.on_batch(result)
        await until(lambda: _is(world.actual("d_sales_rev"), 40))
        tree = await world.tree()
        assert find(tree, "c_rev")["progress"] == pytest.approx(0.4)  # 70 x 0.4 / 70: the others have no data
        assert tree["objectives"][0]["progress"] == pytest.approx(0.4)

        # a key result without a metric: its value arrives with a check-in, and rolls up the same way
        head = auth(settings, "dept_head", "manager", sub="s_head", employee_id="s_head", department_id="sales")
        checked = await world.tracking.post(
            f"/v1/cycles/{cycle}/check-ins",
            json={"kpi_id": "d_sales_nps", "comment": "NPS survey", "confidence": 4, "value": 25},
            headers=head,
        )
        assert checked.status_code == 201, checked.text
        await until(lambda: _is(world.actual("d_sales_nps"), 25))
        tree = await world.tree()
        assert find(tree, "d_sales_nps")["progress"] == pytest.approx(0.5)
        assert find(tree, "c_rev")["progress"] == pytest.approx((70 * 0.4 + 10 * 0.5) / 80)

        # only what changed is pushed again; and the end-of-stage handoff, computed earlier, moves nothing back
        assert await world.pusher.push_changed() == 0
        stale = ProgressExport(
            cycle_id=cycle,
            as_of=datetime.now(UTC) - timedelta(hours=1),
            actuals=[KpiActual(kpi_id="d_sales_rev", actual_value=1, event_count=1)],
        )
        late = await world.goals.client.put(
            f"{world.goals.base}/progress",
            content=stale.model_dump_json(),
            headers={**world.goals.hr(), "Content-Type": "application/json"},
        )
        assert late.json()["superseded_kpi_ids"] == ["d_sales_rev"]
        assert await world.actual("d_sales_rev") == 40
        assert world.pusher.stats.failures == 0 and world.pusher.stats.pushes >= 2


async def test_delay_from_an_accepted_metric_to_the_moved_rollup(
    settings: Settings, one_database_url: str, kafka_broker: Any
) -> None:
    """HTTP ingest -> Kafka -> consumer -> live roll-up -> goals tree, with the default push interval."""
    topic = f"metrics-live-{uuid.uuid4().hex[:8]}"
    servers, idempotence = kafka_broker.bootstrap_servers, kafka_broker.supports_idempotence
    await create_topics(servers, [topic, f"{topic}.dlq"], partitions=1)
    kafka = settings.model_copy(update={"kafka_bootstrap_servers": servers, "kafka_idempotence": idempotence})
    options = {
        "run_consumer": True,
        "topic": topic,
        "dlq_topic": f"{topic}.dlq",
        "group_id": f"live-{uuid.uuid4().hex[:6]}",
        "rollup_interval": DEFAULT_INTERVAL,
    }
    system = auth(settings, "department_system", sub="crm", department_id="sales")
    async with live_world(kafka, one_database_url, **options) as world:
        first = await _measure(world, system, [1.0], gap=0.0)  # the consumer joins its group first
        busy = await _measure(world, system, [10, 5, 20, 1, 7, 3, 12, 8], gap=0.7, total=1.0)
        idle = await _measure(world, system, [4, 6, 2, 9], gap=DEFAULT_INTERVAL + 0.5, total=67.0)
        assert find(await world.tree(), "c_rev")["progress"] == pytest.approx(88 / 100)
    where = f"push interval {DEFAULT_INTERVAL:g} s, {one_database_url.split(':')[0]}"
    print(f"\n[live roll-up] accepted metric -> moved roll-up ({where}); first metric after start {first[0][0]:.2f} s")
    for name, (delays, stored) in (("every ~2 s (pushes throttled)", busy), ("more than 2 s apart", idle)):
        print(
            f"[live roll-up] metrics {name}: median {statistics.median(delays):.2f} s, max {max(delays):.2f} s "
            f"(stored in tracking after median {statistics.median(stored):.2f} s); all {[round(d, 2) for d in delays]}"
        )
    assert max(busy[0] + idle[0]) < DEFAULT_INTERVAL + 3  # within seconds, not at the stage's end


async def _measure(
    world: LiveWorld, system: dict[str, str], values: list[float], *, gap: float, total: float = 0.0
) -> tuple[list[float], list[float]]:
    """Per metric: seconds from its 202 to the moved roll-up, and to its value in tracking."""
    delays: list[float] = []
    stored: list[float] = []
    for value in values:
        total += value
        accepted = await world.tracking.post("/v1/ingest/metrics", json={"events": [metric(value)]}, headers=system)
        assert accepted.status_code == 202, accepted.text
        started = time.perf_counter()
        stored.append(await until(lambda t=total: _is(world.tracked("d_sales_rev"), t), timeout=30))
        await until(lambda t=total: _is(world.actual("d_sales_rev"), t), timeout=30)
        delays.append(time.perf_counter() - started)
        await asyncio.sleep(gap)
    return delays, stored


async def _is(actual: Any, expected: float) -> bool:
    value = await actual
    return value is not None and value == pytest.approx(expected)
