"""The consumer-side principal check (``TANDEM_KAFKA_ENFORCE_PRINCIPAL``, docs/security.md).

With the check on, a metric record must carry the ingest gateway's ``tandem-principal-department``
header naming the event's own department; records without it, or naming another department, are
dead-lettered with the reason. Off (the default), the headers are not looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from sqlalchemy import func, select

from contracts.events import DeadLetter, MetricEvent
from contracts.goals import Aggregation, Direction, GoalLevel, KpiCatalog, KpiDefinition
from contracts.tracking import LateDataPolicy
from devtools.stack.kafka import create_topics
from services.common.db import create_engine, create_session_factory
from services.common.kafka import PRINCIPAL_DEPARTMENT_HEADER, create_producer, principal_headers
from services.common.migrations import upgrade
from services.common.settings import DEV_JWT_SECRET, Settings
from services.tracking import service
from services.tracking.consumer import TrackingConsumer, consumer_lag
from services.tracking.ingest import RawMessage, load_catalog, prepare_batch, store_batch, store_new_batch
from services.tracking.models import TrackingDeadLetter, TrackingKpi, TrackingMetricEvent

METRIC = "sales.orders"


async def _prepare_db(url: str) -> Any:
    await upgrade("tracking", url)
    engine = create_engine(url)
    today = datetime.now(UTC).date()
    catalog = KpiCatalog(
        cycle_id="p1",
        period_start=date(today.year - 1, 1, 1),
        period_end=date(today.year + 1, 12, 31),
        kpis=[
            KpiDefinition(
                kpi_id="orders",
                level=GoalLevel.DEPARTMENT,
                name="Orders",
                metric=METRIC,
                unit="count",
                aggregation=Aggregation.SUM,
                direction=Direction.HIGHER_IS_BETTER,
                start_value=0,
                target_value=100,
                owner_department_id="sales",
                update_frequency_hours=1,
                department_id="sales",
            )
        ],
    )
    async with create_session_factory(engine)() as session:
        await service.replace_catalog(
            session=session,
            catalog=catalog,
            late_data_policy=LateDataPolicy.ACCEPT,
            grace_hours=1,
            check_in_cadence_days=14,
        )
    return engine


def _event(value: float) -> MetricEvent:
    return MetricEvent(
        event_id=uuid.uuid4(),
        source="crm",
        department_id="sales",
        metric=METRIC,
        value=value,
        unit="count",
        occurred_at=datetime.now(UTC),
    )


GATEWAY = principal_headers(sub="crm-system", department_id="sales")
FOREIGN = principal_headers(sub="finance-system", department_id="finance")


def test_the_setting_defaults_to_off_and_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TANDEM_KAFKA_ENFORCE_PRINCIPAL", raising=False)
    assert Settings(env="dev", jwt_secret=DEV_JWT_SECRET).kafka_enforce_principal is False
    monkeypatch.setenv("TANDEM_KAFKA_ENFORCE_PRINCIPAL", "true")
    assert Settings(env="dev", jwt_secret=DEV_JWT_SECRET).kafka_enforce_principal is True


async def test_missing_or_foreign_principal_headers_are_dead_lettered(database_url: str) -> None:
    engine = await _prepare_db(database_url)
    postgres = database_url.startswith("postgresql")
    values = {"ok": 5.0, "foreign": 7.0, "missing": 11.0, "empty": 13.0}
    headers: dict[str, Any] = {
        "ok": GATEWAY,
        "foreign": FOREIGN,
        "missing": [("tandem-principal", b"crm-system")],
        "empty": (),
    }
    messages = [
        RawMessage(
            topic="metrics.v1",
            partition=0,
            offset=i,
            key=b"k",
            value=_event(values[name]).model_dump_json().encode(),
            headers=headers[name],
        )
        for i, name in enumerate(values)
    ]
    try:
        async with engine.connect() as conn:
            async with conn.begin():
                catalog = await load_catalog(conn)
            # off (the default): headers are not looked at, everything is stored
            unchecked = prepare_batch(messages, catalog=catalog, postgres=postgres)
            assert not unchecked.dead_letters and len(unchecked.events) == 4
            checked = prepare_batch(messages, catalog=catalog, postgres=postgres, enforce_principal=True)
            assert len(checked.events) == 1 and checked.events[0].value == values["ok"]
            reasons = {d.offset: d.reason for d in checked.dead_letters}
            assert sorted(reasons) == [1, 2, 3]
            assert reasons[1] == (
                "principal check failed: the event names department 'sales' but the gateway authenticated 'finance'"
            )
            for offset in (2, 3):
                assert reasons[offset].startswith(f"principal check failed: no {PRINCIPAL_DEPARTMENT_HEADER} header")
            # dead letters never take the single-statement path
            assert await store_new_batch(conn, checked) is None
            async with conn.begin():
                result = await store_batch(conn, checked)
            assert result.inserted == 1 and len(result.dead_letters) == 3
        async with create_session_factory(engine)() as session:
            kpi = await session.get(TrackingKpi, ("p1", "orders"))
            assert kpi is not None and (kpi.event_count, kpi.value_sum) == (1, values["ok"])
            letters = (await session.scalars(select(TrackingDeadLetter).order_by(TrackingDeadLetter.offset))).all()
            assert [(d.offset, d.reason) for d in letters] == sorted(reasons.items())
    finally:
        await engine.dispose()


async def test_the_consumer_enforces_the_principal_end_to_end(kafka_broker: Any, postgres_url: str) -> None:
    engine = await _prepare_db(postgres_url)
    servers = kafka_broker.bootstrap_servers
    topic = f"principal-{uuid.uuid4().hex[:6]}"
    dlq, group = f"{topic}.dlq", f"g-{uuid.uuid4().hex[:6]}"
    await create_topics(servers, [topic, dlq], partitions=2)
    stamped = [_event(float(i)) for i in range(200)]
    foreign = [_event(1000.0) for _ in range(5)]
    unstamped = [_event(2000.0) for _ in range(3)]
    producer = await create_producer(servers, idempotence=kafka_broker.supports_idempotence)
    try:
        batches: list[tuple[list[MetricEvent], Any]] = [(stamped, GATEWAY), (foreign, FOREIGN), (unstamped, None)]
        sends = [
            await producer.send(topic, e.model_dump_json().encode(), key=b"sales", headers=headers)
            for events, headers in batches
            for e in events
        ]
        await asyncio.gather(*sends)
    finally:
        await producer.stop()

    consumer = TrackingConsumer(
        engine=engine, bootstrap_servers=servers, group_id=group, topic=topic, dlq_topic=dlq, enforce_principal=True
    )
    task = asyncio.create_task(consumer.run())
    try:
        async with asyncio.timeout(60):
            while True:
                lags = await consumer_lag(servers, group_id=group, topic=topic)
                if sum(p.lag for p in lags) == 0 and all(p.committed is not None for p in lags if p.end_offset):
                    break
                await asyncio.sleep(0.3)
    finally:
        consumer.stop()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=15)
    assert consumer.stats.dead_lettered == 8
    async with create_session_factory(engine)() as session:
        stored = set((await session.scalars(select(TrackingMetricEvent.event_id))).all())
        assert stored == {str(e.event_id) for e in stamped}
        kpi = await session.get(TrackingKpi, ("p1", "orders"))
        assert kpi is not None and kpi.value_sum == sum(e.value for e in stamped)
        assert (await session.execute(select(func.count()).select_from(TrackingDeadLetter))).scalar_one() == 8
    await engine.dispose()

    reader = AIOKafkaConsumer(dlq, bootstrap_servers=servers, auto_offset_reset="earliest", enable_auto_commit=False)
    await reader.start()
    letters: list[DeadLetter] = []
    try:
        async with asyncio.timeout(30):
            while len(letters) < 8:
                for records in (await reader.getmany(timeout_ms=500)).values():
                    letters.extend(DeadLetter.model_validate_json(r.value) for r in records)
    finally:
        await reader.stop()
    foreign_reason = "the event names department 'sales' but the gateway authenticated 'finance'"
    assert sorted(letter.reason.removeprefix("principal check failed: ") for letter in letters) == sorted(
        [foreign_reason] * 5
        + [f"no {PRINCIPAL_DEPARTMENT_HEADER} header: the record was not published by the ingest gateway"] * 3
    )
