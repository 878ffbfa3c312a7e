"""Ingestion that pauses visibly and resumes without loss, and services that start without Kafka.

* The dead-letter topic unreachable: the consumer rolls the batch back and retries; its health
  says "paused", then "stalled since ... on partition ..." with the error once the committed
  offsets stop advancing under lag; when the topic is back, everything is counted exactly once
  and every dead letter is published once.
* The tracking service starts while Kafka is down, writes its outbox, and relays it once the
  broker is up; the broker stopped mid-relay and restarted loses nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from pathlib import Path
from typing import Any

from httpx import ASGITransport, AsyncClient
from sqlalchemy import func, select

from contracts.topics import CYCLE_EVENTS
from devtools.stack.kafka import create_topics, make_broker
from services.common.db import create_session_factory
from services.common.outbox import add_event, new_event
from services.common.settings import Settings
from services.tracking.app import create_app
from services.tracking.consumer import TrackingConsumer
from services.tracking.models import TrackingOutbox
from services.tracking.service import ops_ingestion
from tests.integration.conftest_ingest import (
    DEPARTMENTS,
    dead_letters,
    drained,
    event,
    expected_totals,
    in_process_consumer,
    keyed,
    kpi_totals,
    prepare_db,
    produce,
    read_topic,
    wait_for,
)


async def test_an_unreachable_dlq_pauses_visibly_and_resumes_without_loss(
    kafka_broker: Any, postgres_url: str, settings: Settings
) -> None:
    engine = await prepare_db(postgres_url)
    servers = kafka_broker.bootstrap_servers
    topic, group = f"dlqdown-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    dlq = f"{topic}.dlq"
    await create_topics(servers, [topic, dlq], partitions=4)
    valid = [event(DEPARTMENTS[i % len(DEPARTMENTS)], float(i % 7)) for i in range(2_000)]
    messages = keyed(valid)
    for i in range(10):
        messages.insert(150 * i + 7, (b"dep0:x", b"{not json"))
    await produce(servers, topic, messages, idempotence=kafka_broker.supports_idempotence)

    outage = asyncio.Event()
    outage.set()
    original = TrackingConsumer._send_dead_letters

    async def unreachable(self: TrackingConsumer, letters: list[Any]) -> None:
        if outage.is_set():
            raise ConnectionError("dead-letter topic unreachable (test)")
        await original(self, letters)

    TrackingConsumer._send_dead_letters = unreachable  # type: ignore[method-assign]
    try:
        async with in_process_consumer(
            engine=engine,
            bootstrap_servers=servers,
            group_id=group,
            topic=topic,
            dlq_topic=dlq,
            max_records=200,
            stall_after=2.0,
        ) as consumer:

            async def paused() -> bool:
                return consumer.health().state in ("paused", "stalled")

            await wait_for(paused, 30, "the consumer to report the outage")
            assert "dead-letter topic" in (consumer.health().last_error or "")

            async def stalled() -> bool:
                return consumer.health().state == "stalled"

            await wait_for(stalled, 30, "the consumer to report a stall")
            health = consumer.health()
            assert health.message.startswith("ingestion stalled since ")
            assert f"on partition {health.partition}" in health.message and "unreachable" in health.message
            async with create_session_factory(engine)() as session:
                here = settings.model_copy(update={"kafka_bootstrap_servers": servers})
                ops = await ops_ingestion(
                    session=session, settings=here, group_id=group, topic=topic, consumer=consumer
                )
            assert ops.ingestion_state == "stalled" and ops.stalled_since is not None
            assert ops.ingestion_status.startswith("ingestion stalled since") and ops.total_lag
            assert consumer.stats.dlq_retries >= 2

            outage.clear()  # the topic is back
            await wait_for(lambda: drained(servers, group=group, topic=topic), 60, "the group's lag to return to 0")
            await wait_for(_running(consumer), 10, "the consumer to report it runs again")
    finally:
        TrackingConsumer._send_dead_letters = original  # type: ignore[method-assign]
    assert await kpi_totals(engine) == expected_totals(valid)
    letters = dead_letters(await read_topic(servers, dlq, at_least=10))
    assert len(letters) == 10 and len({(d.partition, d.offset) for d in letters}) == 10
    await engine.dispose()


def _running(consumer: TrackingConsumer) -> Any:
    async def check() -> bool:
        return consumer.health().state == "running"

    return check


async def _outbox_rows(app: Any) -> tuple[int, int]:
    """(rows, rows published)."""
    async with app.state.sessions() as session:
        total = (await session.execute(select(func.count()).select_from(TrackingOutbox))).scalar_one()
        done = (
            await session.execute(
                select(func.count()).select_from(TrackingOutbox).where(TrackingOutbox.published_at.is_not(None))
            )
        ).scalar_one()
    return int(total), int(done)


async def _record_events(app: Any, n: int, marker: str) -> list[str]:
    ids = []
    async with app.state.sessions() as session:
        for i in range(n):
            payload = {
                "kpi_id": f"k{i}",
                "owner_department_id": "dep0",
                "metric": "production.output_units",
                "last_event_at": None,
                "due_at": "2026-01-01T00:00:00+00:00",
            }
            domain_event = new_event(
                service="tracking", type="KpiStale", cycle_id=marker, subject_id=f"k{i}", payload=payload
            )
            add_event(session, TrackingOutbox, domain_event)
            ids.append(str(domain_event.event_id))
        await session.commit()
    return ids


async def test_tracking_starts_without_kafka_and_relays_its_outbox_when_it_returns(
    tmp_path: Path, settings: Settings
) -> None:
    broker = make_broker(os.environ.get("TANDEM_TEST_KAFKA", "apache"), state_dir=tmp_path / "kafka")
    servers = broker.bootstrap_servers  # the address is fixed before the broker runs
    here = settings.model_copy(
        update={
            "outbox_relay": True,
            "kafka_bootstrap_servers": servers,
            "kafka_idempotence": broker.supports_idempotence,
            "database_url": f"sqlite+aiosqlite:///{tmp_path}/tracking.db",
            "auto_migrate": True,
        }
    )
    app = create_app(here, run_consumer=False)
    marker = f"c-{uuid.uuid4().hex[:8]}"
    try:
        async with app.router.lifespan_context(app):  # starts: Kafka is not running
            async with AsyncClient(transport=ASGITransport(app=app), base_url="http://t") as client:
                assert (await client.get("/healthz")).status_code == 200
            first = await _record_events(app, 20, marker)
            await asyncio.sleep(2)
            assert await _outbox_rows(app) == (20, 0)
            assert app.state.outbox_relay.last_error is not None  # it tried, and says why it could not

            await broker.start()
            await create_topics(servers, [CYCLE_EVENTS])
            await wait_for(lambda: _all_published(app, 20), 60, "the outbox to be relayed once Kafka is up")

            # Kafka stopped for a while in the middle of relaying, then started again on the same data.
            second = await _record_events(app, 200, marker)
            await broker.stop()
            third = await _record_events(app, 30, marker)
            await asyncio.sleep(3)
            await broker.start()
            await wait_for(lambda: _all_published(app, 250), 90, "the outbox to be relayed after the restart")
            if broker.provider != "apache":
                return  # the embedded broker keeps nothing across a restart: only the relay's side is checked
            records = await read_topic(servers, CYCLE_EVENTS, at_least=250, timeout=60)
    finally:
        with contextlib.suppress(Exception):
            await broker.stop()
    seen = [r.value for r in records if marker.encode() in r.value]
    ids = {v.split(b'"event_id":"')[1][:36].decode() for v in seen}
    assert ids == set(first + second + third)  # at least once, nothing lost (consumers dedup on event_id)


async def _all_published(app: Any, n: int) -> bool:
    return await _outbox_rows(app) == (n, n)
