"""The production shape on one machine: a broker and a worker lost mid-cycle, everything counted once.

``devtools/stack/cluster.py`` runs what ``deploy/k8s`` describes: three Apache Kafka brokers
(KRaft, replication factor 3, ``min.insync.replicas=2``), PostgreSQL for every service, two
replicas of the cycles, goals and tracking services behind round-robin proxies (one of the others),
two Temporal workers and two tracking consumers. On it a cycle runs through all five stages,
driven by HR alone (HR forces each stage once its work is done, so nothing races a deadline),
while department systems stream metrics at a steady rate, and:

* when goal setting is forced closed, the tracking replicas hang (the proxy holds new
  connections), so the goal-setting -> tracking handoff is stuck in flight; the worker running it
  is killed. Its request reaches tracking later anyway (a ghost), and the handoff runs again on
  the other worker;
* when tracking begins, the broker leading the stream's partition is killed (``kill -9``); it is
  brought back during evaluation.

Then every acknowledged metric event is stored once and counted once in its KPI, and every
handoff's effect happened once, compared in the services' own tables. No timings are asserted.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from temporalio.api.enums.v1 import PendingActivityState
from temporalio.client import Client
from temporalio.exceptions import ApplicationError

from contracts.cycle import Stage, review_cycle_workflow_id
from contracts.goals import Aggregation, Direction, GoalLevel, KpiCatalog, KpiDefinition
from contracts.topics import METRICS
from contracts.tracking import LateDataPolicy
from devtools.demo.scenario import Scenario, demo_template
from devtools.stack.cluster import ProductionShape, ShapeConfig
from sdk.emitter import MetricEmitter
from services.common.db import create_engine, create_session_factory
from services.common.settings import Settings
from services.tracking import service as tracking
from workflows.worker import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STREAM_METRIC = "stream.units"
STREAM_DEPARTMENTS = ("stream-a", "stream-b", "stream-c")
STREAM_RATE = 60.0
"""Events per second per department: a steady stream for the whole cycle."""
STAGE_WORK = ("check_pending", "send_notification")
"""The department workflows' activities; anything else the cycle workflow runs is a stage handoff."""
WAIT_FOR_SERVER = timedelta(seconds=15)
"""A lost handoff attempt is left to the server's heartbeat timeout only when it is this short."""


@contextlib.asynccontextmanager
async def production_shape(tmp_path: Path, database_url: str, settings: Settings) -> AsyncIterator[ProductionShape]:
    shape = ProductionShape(
        ShapeConfig(
            state_dir=tmp_path / "shape",
            database_url=database_url,
            # Two replicas of the services the faulted handoff and the stream go through, one of the rest.
            replicas={"cycles": 2, "goals": 2, "tracking": 2, "evaluation": 1, "feedback": 1, "results": 1},
            extra_env={"TANDEM_ENV": "test", "TANDEM_JWT_SECRET": settings.jwt_secret},
        )
    )
    await shape.start(lambda message: print(f"[shape] {message}", flush=True))
    try:
        yield shape
    finally:
        await shape.stop()


# -- the metric stream -------------------------------------------------------------------------------------
class SteadyStream:
    """One emitter per department, ``rate`` events per second each, until stopped; remembers every ack."""

    def __init__(self, bootstrap_servers: str, rate: float) -> None:
        self.acked: set[uuid.UUID] = set()
        self.values: dict[uuid.UUID, float] = {}
        self.rate = rate
        self.emitters = [
            MetricEmitter(
                bootstrap_servers, source="mes", department_id=d, delivery_timeout=5.0, retry_backoff=0.5,
                max_retries=20, on_ack=self.acked.add,
            )
            for d in STREAM_DEPARTMENTS
        ]  # fmt: skip
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._run(e, n)) for n, e in enumerate(self.emitters)]

    async def _run(self, emitter: MetricEmitter, seed: int) -> None:
        loop = asyncio.get_running_loop()
        started, sent = loop.time(), 0
        while not self._stop.is_set():
            value = float((sent * 7 + seed) % 97 + 1)
            event_id = await emitter.emit(STREAM_METRIC, value, "units", datetime.now(UTC))
            self.values[event_id] = value
            sent += 1
            await asyncio.sleep(max(0.0, started + sent / self.rate - loop.time()))

    async def finish(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for emitter in self.emitters:
            try:
                await asyncio.wait_for(emitter.flush(), 60)  # re-sends whatever failed while a broker was down
            finally:
                await emitter.close()


def stream_catalog() -> KpiCatalog:
    today = datetime.now(UTC).date()
    return KpiCatalog(
        cycle_id=f"stream-{uuid.uuid4().hex[:8]}",
        period_start=date(today.year - 1, 1, 1),
        period_end=date(today.year + 1, 12, 31),
        kpis=[
            KpiDefinition(
                kpi_id=f"kpi-{d}", level=GoalLevel.DEPARTMENT, name=f"Units of {d}", metric=STREAM_METRIC,
                unit="units", aggregation=Aggregation.SUM, direction=Direction.HIGHER_IS_BETTER, start_value=0,
                target_value=1e9, owner_department_id=d, update_frequency_hours=24, department_id=d,
            )
            for d in STREAM_DEPARTMENTS
        ],
    )  # fmt: skip


# -- the cycle, driven by HR ------------------------------------------------------------------------------
DEPARTMENTS = ("hq", "ops", "sales", "finance")


def small_org() -> dict[str, Any]:
    """Four departments of six people: hq at the top, each head reporting to hq's head."""
    departments, employees = [], []
    for d in DEPARTMENTS:
        head = f"{d}-0"
        parent = None if d == "hq" else "hq"
        departments.append({"department_id": d, "name": d.title(), "parent_id": parent, "head_employee_id": head})
        for n in range(6):
            employees.append(
                {
                    "employee_id": f"{d}-{n}", "name": f"{d.title()} {n}", "department_id": d,
                    "manager_id": (None if d == "hq" else "hq-0") if n == 0 else head,
                    "job_title": "Head" if n == 0 else "Specialist", "grade": "G5",
                }
            )  # fmt: skip
    return {"departments": departments, "employees": employees}


class HrDrivesTheCycle:
    """Nobody but HR acts: the strategy's KPIs in goal setting, calibration in evaluation, and a forced
    close of every stage. Deadlines are minutes away (60 s per template day), so none is ever reached."""

    def __init__(self, driver: Scenario, faults: list[str]) -> None:
        self.driver = driver
        self.faults = faults
        self.hooks: dict[Stage, Any] = {}

    @property
    def cycle_id(self) -> str:
        return self.driver.report.cycle_id

    async def run(self) -> dict[str, Any]:
        d = self.driver
        await d.call("cycles", "POST", "/v1/org/import", json=small_org())
        template = await d.call("cycles", "POST", "/v1/templates", json=demo_template(f"Shape {uuid.uuid4().hex[:6]}"))
        today = datetime.now(UTC).date()
        cycle = await d.call(
            "cycles", "POST", "/v1/cycles",
            json={
                "name": f"Shape {uuid.uuid4().hex[:6]}", "template_id": template["template_id"],
                "period_start": today.isoformat(), "period_end": (today + timedelta(days=364)).isoformat(),
                "department_ids": list(DEPARTMENTS),
            },
        )  # fmt: skip
        d.report.cycle_id = cycle["cycle_id"]
        await d.call("cycles", "POST", f"/v1/cycles/{self.cycle_id}/start", params={"day_seconds": 60})
        for stage, work in (
            (Stage.GOAL_SETTING, self.goal_setting),
            (Stage.TRACKING, None),
            (Stage.EVALUATION, self.calibrate),
            (Stage.FEEDBACK, None),
            (Stage.RESULT_APPLICATION, None),
        ):
            await d.wait_for_stage(stage.value, timeout=240)
            if stage in self.hooks:
                await self.hooks[stage]()
            if work is not None:
                await work()
            await d.call(
                "cycles", "POST", f"/v1/cycles/{self.cycle_id}/force-stage",
                json={"stage": stage.value, "reason": "HR closes the stage: its work is done"},
            )  # fmt: skip
        return await d.wait_for_stage(Stage.CLOSED.value, timeout=240)

    async def goal_setting(self) -> None:
        """An objective, a company KPI and one KPI per department, all with a metric: the catalog for tracking."""
        d, base = self.driver, f"/v1/cycles/{self.cycle_id}"
        for _ in range(240):  # the opening handoff sets the cycle's period in goals
            if (await d.call("goals", "GET", f"{base}/settings"))["period_start"]:
                break
            await asyncio.sleep(0.5)
        await d.call(
            "goals",
            "POST",
            f"{base}/objectives",
            json={"objective_id": "grow", "name": "Grow", "perspective": "financial"},
        )
        kpi = {
            "kind": "kpi", "unit": "units", "direction": "higher_is_better", "aggregation": "sum", "start_value": 0,
            "target_value": 100, "metric": "ops.output", "update_frequency_hours": 24, "weight": 100,
        }  # fmt: skip
        await d.call(
            "goals", "POST", f"{base}/goals",
            json=kpi | {
                "goal_id": "c-out", "level": "company", "name": "Output", "objective_id": "grow",
                "data_owner_department_id": "hq",
            },
        )  # fmt: skip
        for department in DEPARTMENTS:
            await d.call(
                "goals", "POST", f"{base}/goals",
                json=kpi | {
                    "goal_id": f"d-{department}", "level": "department", "name": f"Output of {department}",
                    "parent_id": "c-out", "department_id": department, "data_owner_department_id": department,
                },
            )  # fmt: skip

    async def calibrate(self) -> None:
        """Scores from what there is, 'meets' for everyone without one, calibration closed."""
        d, base = self.driver, f"/v1/cycles/{self.cycle_id}"
        for _ in range(240):  # the opening handoff assigns the review forms
            if await d.call("evaluation", "GET", f"{base}/assignments", params={"limit": 1}):
                break
            await asyncio.sleep(0.5)
        computed = await d.call("evaluation", "POST", f"{base}/scores/compute")
        for employee_id in computed.get("unscored", []):
            await d.call(
                "evaluation", "POST", f"{base}/calibration/adjustments",
                json={"employee_id": employee_id, "new_rating": "meets", "reason": "No reviews: 'meets' by rule."},
            )  # fmt: skip
        await d.call("evaluation", "POST", f"{base}/calibration/close")


# -- the faults --------------------------------------------------------------------------------------------
async def kill_stream_leader(shape: ProductionShape, faults: list[str]) -> int:
    """Kill the broker leading the partition of the first stream department's key."""
    from aiokafka.partitioner import DefaultPartitioner

    leaders = await shape.kafka.leaders(METRICS)
    key = f"{STREAM_DEPARTMENTS[0]}:{STREAM_METRIC}".encode()
    partition = DefaultPartitioner()(key, sorted(leaders), sorted(leaders))
    victim = leaders[partition]
    shape.kafka.kill(victim)
    faults.append(f"broker {victim} (leader of {METRICS}[{partition}]) killed")
    return victim


async def hang_tracking_and_kill_the_handoffs_worker(
    shape: ProductionShape, client: Client, cycle_id: str, faults: list[str]
) -> None:
    """Started right before goal setting is forced closed: hold the tracking replicas, so the handoff of the
    KPI catalog hangs in flight; kill the worker running it, then let tracking answer again.

    The server retries a lost attempt once its heartbeat timeout passes. When that is longer than
    ``WAIT_FOR_SERVER``, the test fails the lost attempt itself, as the timeout would.
    """
    shape.proxies["tracking"].hold()
    handle = client.get_workflow_handle(review_cycle_workflow_id(cycle_id))
    try:
        while True:
            description = await handle.describe()
            stuck = [
                a
                for a in description.raw_description.pending_activities
                if a.activity_type.name not in STAGE_WORK
                and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
                and shape.proxies["tracking"].held > 0
            ]
            if stuck:
                break
            await asyncio.sleep(0.2)
        [activity] = stuck
        identities = {shape.worker_identity(name): name for name in shape.workers}
        victim = identities[activity.last_worker_identity]
        shape.kill(victim)
        timeout = await _heartbeat_timeout(handle, activity.activity_id)
        faults.append(
            f"{victim} killed while running handoff {activity.activity_type.name} (heartbeat timeout {timeout})"
        )
        if timeout > WAIT_FOR_SERVER:
            await client.get_async_activity_handle(
                workflow_id=handle.id, run_id=description.run_id, activity_id=activity.activity_id
            ).fail(ApplicationError(f"{victim} was killed (its heartbeat timeout would say so later)"))
    finally:
        shape.proxies["tracking"].release()


async def _heartbeat_timeout(handle: Any, activity_id: str) -> timedelta:
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes"):
            attributes = event.activity_task_scheduled_event_attributes
            if attributes.activity_id == activity_id:
                return attributes.heartbeat_timeout.ToTimedelta()  # type: ignore[no-any-return]
    return timedelta(0)


# -- what the services' tables say -------------------------------------------------------------------------
async def scalar(engine: Any, sql: str, **params: Any) -> Any:
    async with engine.connect() as conn:
        return (await conn.execute(text(sql), params)).scalar()


async def outbox(engine: Any, table: str, event_type: str, cycle_id: str) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(f"SELECT payload FROM {table} WHERE event_type = :t AND key = :c"), {"t": event_type, "c": cycle_id}
        )
        return [json.loads(payload) for (payload,) in rows]


async def test_a_broker_and_a_worker_lost_mid_cycle_everything_counted_once(
    tmp_path: Path, postgres_url: str, settings: Settings
) -> None:
    if os.environ.get("TANDEM_TEST_KAFKA") == "embedded":
        pytest.skip("the production shape runs three Apache Kafka brokers (TANDEM_TEST_KAFKA=embedded asked for none)")
    engine = create_engine(postgres_url)
    async with production_shape(tmp_path, postgres_url, settings) as shape:
        catalog = stream_catalog()
        async with create_session_factory(engine)() as session:
            await tracking.replace_catalog(
                session=session, catalog=catalog, late_data_policy=LateDataPolicy.ACCEPT, grace_hours=1,
                check_in_cadence_days=14,
            )  # fmt: skip
        stream = SteadyStream(shape.kafka.bootstrap_servers, STREAM_RATE)
        stream.start()
        faults: list[str] = []
        driver = Scenario(settings=settings, urls=shape.urls(), bootstrap_servers=shape.kafka.bootstrap_servers)
        cycle = HrDrivesTheCycle(driver, faults)
        client = await connect(shape.temporal.address)
        background: list[asyncio.Task[Any]] = []
        killed: list[int] = []

        async def handoff_fault() -> None:
            background.append(
                asyncio.create_task(hang_tracking_and_kill_the_handoffs_worker(shape, client, cycle.cycle_id, faults))
            )

        async def broker_down() -> None:
            await background[0]  # the handoff fault is over
            killed.append(await kill_stream_leader(shape, faults))
            await asyncio.sleep(2)  # the stream goes on through the two brokers left

        async def broker_back() -> None:
            await shape.kafka.restart(killed[0])
            faults.append(f"broker {killed[0]} restarted")

        cycle.hooks = {
            Stage.GOAL_SETTING: handoff_fault,
            Stage.TRACKING: broker_down,
            Stage.EVALUATION: lambda: _start(background, broker_back()),
        }
        try:
            final = await cycle.run()
            await asyncio.gather(*background)
        finally:
            for task in background:
                task.cancel()
            await driver.http.aclose()
            await stream.finish()
        print(f"[shape] faults: {faults}; {len(stream.acked)} events acknowledged", flush=True)

        assert final["stage"] == "closed", final
        assert [f for f in faults if "killed while running handoff" in f], faults
        assert shape.proxies["tracking"].held >= 1  # the killed worker's request was held, then delivered
        assert [f for f in faults if f.startswith("broker") and "killed" in f], faults

        # Every acknowledged event stored once, and counted once in its department's KPI.
        stored = await _wait_stored(engine, stream.acked)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT event_count, value_sum FROM tracking_kpi WHERE cycle_id = :c"), {"c": catalog.cycle_id}
                )
            ).all()
        assert sum(r.event_count for r in rows) == len(stored)
        assert sum(r.value_sum for r in rows) == sum(stream.values[i] for i in stored)

        # Every handoff's effect once, as the services' tables record it.
        cycle_id = cycle.cycle_id
        assert len(await outbox(engine, "goals_outbox", "GoalsFrozen", cycle_id)) == 1
        kpis = await scalar(engine, "SELECT count(*) FROM tracking_kpi WHERE cycle_id = :c", c=cycle_id)
        assert kpis == len(DEPARTMENTS) + 1  # the catalog handed over (twice: the ghost and the retry) is whole, once
        assignments = "SELECT count(*), count(DISTINCT (rater_id, reviewee_id, relation)) FROM evaluation_assignment"
        async with engine.connect() as conn:
            total, distinct = (await conn.execute(text(f"{assignments} WHERE cycle_id = :c"), {"c": cycle_id})).one()
        assert total == distinct > 0
        released = await outbox(engine, "feedback_outbox", "ResultsReleased", cycle_id)
        released_rows = await scalar(
            engine, "SELECT count(*) FROM feedback_result WHERE cycle_id = :c AND released_at IS NOT NULL", c=cycle_id
        )
        assert sum(e["payload"]["released"] for e in released) == released_rows == 4 * 6
        published = await outbox(engine, "results_outbox", "ResultsPublished", cycle_id)
        publication = await scalar(engine, "SELECT event_ids FROM results_publication WHERE cycle_id = :c", c=cycle_id)
        event_ids = json.loads(publication) if isinstance(publication, str) else publication
        assert sorted(e["event_id"] for e in published) == sorted(event_ids)
        assert await scalar(engine, "SELECT status FROM cycles_cycle WHERE id = :c", c=cycle_id) == "closed"
    await engine.dispose()


def _start(tasks: list[asyncio.Task[None]], work: Any) -> Any:
    """A stage hook that starts ``work`` in the background (a broker restart takes seconds)."""
    tasks.append(asyncio.create_task(work))
    return asyncio.sleep(0)


async def _wait_stored(engine: Any, acked: set[uuid.UUID], timeout: float = 90.0) -> set[uuid.UUID]:
    """The acknowledged events once all are in ``tracking_metric_event`` (consumers may still be catching up)."""
    wanted = {str(i) for i in acked}
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        async with engine.connect() as conn:
            stored = {
                str(row[0])  # a uuid column: asyncpg reads it as uuid.UUID
                for row in await conn.execute(
                    text("SELECT event_id FROM tracking_metric_event WHERE metric = :m"), {"m": STREAM_METRIC}
                )
            }
        if wanted <= stored or asyncio.get_running_loop().time() > deadline:
            break
        await asyncio.sleep(1)
    missing = wanted - stored
    assert not missing, f"{len(missing)} acknowledged events never stored, e.g. {sorted(missing)[:3]}"
    return {uuid.UUID(i) for i in stored}
