"""Ingestion reliability against a real broker and PostgreSQL.

(a) ``kill -9`` the Apache Kafka broker while 20k events are produced, restart it on the
    same data: every acknowledged event is stored exactly once and the KPI totals are exact.
(b) ``kill -9`` the standalone consumer process mid-stream, restart it: same check.
(c) 1,000 malformed among 10,000 valid: all malformed in the DLQ with reasons, all valid
    stored, the consumer group's lag back to 0.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import random
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select

from contracts.events import DeadLetter, MetricEvent
from contracts.goals import Aggregation, Direction, GoalLevel, KpiCatalog, KpiDefinition
from contracts.tracking import LateDataPolicy
from devtools.stack.kafka import ApacheKafka, create_topics
from sdk.emitter import MetricEmitter
from services.common.db import create_engine, create_session_factory
from services.common.kafka import create_producer
from services.common.migrations import upgrade
from services.tracking import service
from services.tracking.consumer import TrackingConsumer, consumer_lag
from services.tracking.models import TrackingDeadLetter, TrackingKpi, TrackingMetricEvent

ROOT = Path(__file__).resolve().parents[2]
METRIC = "production.output_units"


def _catalog() -> KpiCatalog:
    today = datetime.now(UTC).date()
    return KpiCatalog(
        cycle_id="rel",
        period_start=date(today.year - 1, 1, 1),
        period_end=date(today.year + 1, 12, 31),
        kpis=[
            KpiDefinition(
                kpi_id="output",
                level=GoalLevel.DEPARTMENT,
                name="Output",
                metric=METRIC,
                unit="units",
                aggregation=Aggregation.SUM,
                direction=Direction.HIGHER_IS_BETTER,
                start_value=0,
                target_value=1e9,
                owner_department_id="production",
                update_frequency_hours=1,
                department_id="production",
            )
        ],
    )


async def _prepare_db(url: str) -> Any:
    await upgrade("tracking", url)
    engine = create_engine(url)
    async with create_session_factory(engine)() as session:
        await service.replace_catalog(
            session=session, catalog=_catalog(), late_data_policy=LateDataPolicy.ACCEPT, grace_hours=1,
            check_in_cadence_days=14,
        )
    return engine


async def _stored(engine: Any) -> tuple[int, float, float, int]:
    """(events stored, sum of their values, the KPI's running sum, the KPI's event count)."""
    async with create_session_factory(engine)() as session:
        count, total = (
            await session.execute(select(func.count(), func.coalesce(func.sum(TrackingMetricEvent.value), 0.0)))
        ).one()
        kpi = await session.get(TrackingKpi, ("rel", "output"))
        assert kpi is not None
        return int(count), float(total), kpi.value_sum, kpi.event_count


async def _stored_ids(engine: Any) -> set[str]:
    async with create_session_factory(engine)() as session:
        return set((await session.scalars(select(TrackingMetricEvent.event_id))).all())


async def _wait_for(
    check: Callable[[], Awaitable[bool]], timeout: float, what: str, interval: float = 0.3
) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def _event(value: float) -> MetricEvent:
    return MetricEvent(
        event_id=uuid.uuid4(), source="mes", department_id="production", metric=METRIC, value=value,
        unit="units", occurred_at=datetime.now(UTC),
    )


@contextlib.asynccontextmanager
async def _in_process_consumer(**kwargs: Any) -> AsyncIterator[TrackingConsumer]:
    consumer = TrackingConsumer(**kwargs)
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        consumer.stop()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=15)


async def test_a_broker_killed_mid_production_loses_and_duplicates_nothing(
    tmp_path: Path, postgres_url: str
) -> None:
    broker = ApacheKafka(tmp_path / "kafka-a")
    await broker.start()
    engine = await _prepare_db(postgres_url)
    topic, group = f"rel-a-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    try:
        await create_topics(broker.bootstrap_servers, [topic, f"{topic}.dlq"], partitions=4)
        acked: set[uuid.UUID] = set()
        values: dict[uuid.UUID, float] = {}
        emitter = MetricEmitter(
            broker.bootstrap_servers, source="mes", department_id="production", topic=topic,
            delivery_timeout=5.0, retry_backoff=0.5, max_retries=12, on_ack=acked.add,
        )
        async with _in_process_consumer(
            engine=engine, bootstrap_servers=broker.bootstrap_servers, group_id=group, topic=topic,
            dlq_topic=f"{topic}.dlq", max_records=1000,
        ):
            killed = False
            for i in range(20_000):
                value = float(i % 97 + 1)
                event_id = await emitter.emit(METRIC, value, "units", datetime.now(UTC))
                values[event_id] = value
                if i % 500 == 499:
                    await asyncio.sleep(0.05)  # a steady stream, not one burst
                if i == 8_000 and not killed:
                    await asyncio.wait_for(asyncio.shield(_settle(emitter)), timeout=30)
                    os.kill(broker.pid or 0, signal.SIGKILL)  # kill -9 by pid
                    broker.kill()
                    killed = True
                    await asyncio.sleep(1)
                    restart = asyncio.create_task(broker.start())
            await restart
            await emitter.flush()
            await emitter.close()
            assert len(acked) == 20_000, f"only {len(acked)} of 20000 acknowledged"
            await _wait_for(lambda: _has_all(engine, acked), 60, "every acknowledged event in PostgreSQL")
        count, total, kpi_sum, kpi_count = await _stored(engine)
        assert count == 20_000 and kpi_count == 20_000  # exactly once: nothing lost, nothing twice
        assert total == kpi_sum == sum(values.values())
    finally:
        await engine.dispose()
        await broker.stop()


async def _settle(emitter: MetricEmitter) -> None:
    """Let part of the stream be acknowledged before the crash, so the crash is mid-stream."""
    while emitter.acknowledged < 2_000:
        await asyncio.sleep(0.05)


async def _has_all(engine: Any, ids: set[uuid.UUID]) -> bool:
    return {str(i) for i in ids} <= await _stored_ids(engine)


async def test_b_consumer_killed_mid_batch_resumes_exactly_once(kafka_broker: Any, postgres_url: str) -> None:
    engine = await _prepare_db(postgres_url)
    servers = kafka_broker.bootstrap_servers
    topic, group = f"rel-b-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    await create_topics(servers, [topic, f"{topic}.dlq"], partitions=4)
    events = [_event(float(random.randint(1, 100))) for _ in range(20_000)]
    producer = await create_producer(servers, idempotence=kafka_broker.supports_idempotence)
    try:
        futures = [await producer.send(topic, e.model_dump_json().encode(), key=e.message_key.encode())
                   for e in events]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()

    env = {
        **os.environ,
        "TANDEM_ENV": "dev",
        "TANDEM_KAFKA_IDEMPOTENCE": "true" if kafka_broker.supports_idempotence else "false",
    }
    argv = [
        sys.executable, "-m", "services.cli", "tracking", "consume", "--bootstrap", servers,
        "--database-url", postgres_url, "--group", group, "--topic", topic, "--dlq-topic", f"{topic}.dlq",
        # small batches: the consumer must still be mid-backlog when the test notices progress and kills it
        "--no-migrate", "--max-records", "100",
    ]

    def spawn() -> subprocess.Popen[bytes]:
        return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    first = spawn()
    try:
        async def some_stored() -> bool:
            return (await _stored(engine))[0] >= 2_000

        await _wait_for(some_stored, 45, "the first consumer to store events", interval=0.02)
        first.send_signal(signal.SIGKILL)  # kill -9 while it is working through the backlog
        first.wait(10)
        stored_at_kill = (await _stored(engine))[0]
        assert stored_at_kill < 20_000, "the consumer finished before it could be killed"
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    second = spawn()
    try:
        async def all_stored() -> bool:
            return (await _stored(engine))[0] >= 20_000

        await _wait_for(all_stored, 45, "the restarted consumer to store every event")
        await asyncio.sleep(1)  # anything re-delivered after that must not count twice
    finally:
        second.send_signal(signal.SIGTERM)
        try:
            second.wait(15)
        except subprocess.TimeoutExpired:
            second.kill()
            second.wait(10)
    count, total, kpi_sum, kpi_count = await _stored(engine)
    assert count == kpi_count == 20_000
    assert await _stored_ids(engine) == {str(e.event_id) for e in events}
    assert total == kpi_sum == sum(e.value for e in events)
    await engine.dispose()


async def test_c_malformed_events_go_to_the_dlq_and_the_lag_returns_to_zero(
    kafka_broker: Any, postgres_url: str
) -> None:
    engine = await _prepare_db(postgres_url)
    servers = kafka_broker.bootstrap_servers
    topic, group = f"rel-c-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    dlq = f"{topic}.dlq"
    await create_topics(servers, [topic, dlq], partitions=4)
    valid = [_event(float(i % 13)) for i in range(10_000)]
    malformed = [
        b"{definitely not json",
        b'{"event_id": "not-a-uuid"}',
        _event(1).model_dump_json().replace('"production.output_units"', '"Output Units"').encode(),
        _event(1).model_dump_json().replace('"units"', '"units", "extra_field": 1').encode(),
    ]
    messages = [e.model_dump_json().encode() for e in valid] + [malformed[i % 4] for i in range(1_000)]
    random.Random(3).shuffle(messages)
    producer = await create_producer(servers, idempotence=kafka_broker.supports_idempotence)
    try:
        futures = [await producer.send(topic, m, key=b"production:" + METRIC.encode()) for m in messages]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()

    async with _in_process_consumer(
        engine=engine, bootstrap_servers=servers, group_id=group, topic=topic, dlq_topic=dlq
    ) as consumer:
        async def drained() -> bool:
            lags = await consumer_lag(servers, group_id=group, topic=topic)
            return sum(p.lag for p in lags) == 0 and all(p.committed is not None for p in lags if p.end_offset)

        await _wait_for(drained, 50, "the consumer group's lag to return to 0")
        assert consumer.stats.dead_lettered >= 1_000

    count, total, kpi_sum, _ = await _stored(engine)
    assert count == 10_000 and total == kpi_sum == sum(e.value for e in valid)
    async with create_session_factory(engine)() as session:
        letters = (await session.scalars(select(TrackingDeadLetter))).all()
        assert len(letters) == 1_000 and all(letter.reason for letter in letters)
    await engine.dispose()

    reader = AIOKafkaConsumer(dlq, bootstrap_servers=servers, auto_offset_reset="earliest", enable_auto_commit=False)
    await reader.start()
    seen: dict[tuple[int, int], DeadLetter] = {}
    try:
        async with asyncio.timeout(30):
            while len(seen) < 1_000:
                for records in (await reader.getmany(timeout_ms=500)).values():
                    for record in records:
                        letter = DeadLetter.model_validate_json(record.value)
                        seen[(letter.partition, letter.offset)] = letter
    finally:
        await reader.stop()
    reasons = {letter.reason.split(":")[0] for letter in seen.values()}
    assert reasons == {"message is not valid JSON", "contract violation"}
    assert {base64.b64decode(letter.original_b64) for letter in seen.values()} == set(malformed)

