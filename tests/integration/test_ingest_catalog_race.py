"""A KPI catalog pushed while events stream in: routing is exact whatever the arrival order.

Events stored after the catalog PUT's back-fill read the stored events, but routed with the
catalog the consumer had cached before, used to stay unmapped (or miss the new KPI) for good.
Every ingestion write now locks the catalog version and re-routes a batch routed at an older
version, and the PUT bumps the version before it back-fills.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

from contracts.goals import KpiCatalog
from devtools.stack.kafka import create_topics
from tests.integration.conftest_ingest import (
    DEPARTMENTS,
    catalog,
    drained,
    event,
    in_process_consumer,
    keyed,
    kpi_totals,
    prepare_db,
    produce,
    register_catalog,
    wait_for,
)


def _with_twin(base: KpiCatalog) -> KpiCatalog:
    """``base`` plus a second KPI on dep0's metric (events already counted once must count again)."""
    twin = base.kpis[0].model_copy(update={"kpi_id": "twin-dep0", "name": "Twin"})
    return base.model_copy(update={"kpis": [*base.kpis, twin]})


async def _some_stored(consumer: Any) -> bool:
    return bool(consumer.stats.inserted)


async def test_catalogs_pushed_during_a_live_stream_count_every_event_exactly(
    kafka_broker: Any, postgres_url: str
) -> None:
    engine = await prepare_db(postgres_url, with_catalog=False)
    servers = kafka_broker.bootstrap_servers
    topic, group = f"race-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    await create_topics(servers, [topic, f"{topic}.dlq"], partitions=4)
    rng = random.Random(2)
    events = [event(rng.choice(DEPARTMENTS), float(rng.randint(1, 50))) for _ in range(24_000)]
    # A backlog, so the consumer is mid-stream (batches routed, in flight and queued) at each PUT.
    await produce(servers, topic, keyed(events), idempotence=kafka_broker.supports_idempotence)
    catalogs = [
        catalog(DEPARTMENTS[:6]),  # half the departments
        catalog(DEPARTMENTS),  # all of them
        _with_twin(catalog(DEPARTMENTS)),  # a second KPI on a metric already counted
    ]
    async with in_process_consumer(
        engine=engine,
        bootstrap_servers=servers,
        group_id=group,
        topic=topic,
        dlq_topic=f"{topic}.dlq",
        max_records=100,
    ) as consumer:
        await wait_for(lambda: _some_stored(consumer), 30, "the consumer to start storing", interval=0.01)
        for kpis in catalogs:
            await register_catalog(engine, kpis)
            await asyncio.sleep(0.02)  # short: on a quiet machine the backlog drains in about a second
        stored_at_last_put = consumer.stats.inserted
        await wait_for(lambda: drained(servers, group=group, topic=topic), 60, "the group's lag to return to 0")
        rerouted = consumer.stats.rerouted
    assert stored_at_last_put < len(events), "the stream was over before the last catalog came"
    assert rerouted > 0, "no batch routed at an older catalog version was written: the window was not hit"

    totals = await kpi_totals(engine)
    for department in DEPARTMENTS:
        mine = [e.value for e in events if e.department_id == department]
        assert totals[f"out-{department}"] == (len(mine), sum(mine)), department
    dep0 = [e.value for e in events if e.department_id == "dep0"]
    assert totals["twin-dep0"] == (len(dep0), sum(dep0))
    await engine.dispose()
