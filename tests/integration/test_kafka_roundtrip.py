"""A MetricEvent from the producer factory goes through the real broker to a consumer group,
and the committed offset is read back after the consumer restarts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from aiokafka import TopicPartition

from contracts.events import MetricEvent
from devtools.stack.kafka import create_topics
from services.common.kafka import create_consumer, create_producer


async def test_metric_event_round_trip_and_committed_offset_survives_restart(kafka_broker: Any) -> None:
    topic = f"metrics-test-{uuid.uuid4().hex[:8]}"
    group = f"group-{uuid.uuid4().hex[:8]}"
    servers = kafka_broker.bootstrap_servers
    await create_topics(servers, [topic], partitions=1)

    events = [
        MetricEvent(
            event_id=uuid.uuid4(),
            source="crm",
            department_id="sales",
            metric="sales.revenue",
            value=float(i),
            unit="EUR",
            occurred_at=datetime(2026, 3, 1, tzinfo=UTC),
        )
        for i in range(10)
    ]
    producer = await create_producer(servers, idempotence=kafka_broker.supports_idempotence)
    try:
        for ev in events:
            await producer.send_and_wait(topic, ev.model_dump_json().encode(), key=ev.message_key.encode())
    finally:
        await producer.stop()

    tp = TopicPartition(topic, 0)
    consumer = create_consumer([topic], bootstrap_servers=servers, group_id=group)
    await consumer.start()
    try:
        received: list[MetricEvent] = []
        while len(received) < 6:
            batch = await consumer.getmany(timeout_ms=1000, max_records=6 - len(received))
            for records in batch.values():
                received += [MetricEvent.model_validate_json(r.value) for r in records]
        await consumer.commit()
        assert [e.event_id for e in received] == [e.event_id for e in events[:6]]
    finally:
        await consumer.stop()

    restarted = create_consumer([topic], bootstrap_servers=servers, group_id=group)
    await restarted.start()
    try:
        assert await restarted.committed(tp) == 6
        rest: list[MetricEvent] = []
        while len(rest) < 4:
            batch = await restarted.getmany(timeout_ms=1000)
            for records in batch.values():
                rest += [MetricEvent.model_validate_json(r.value) for r in records]
        assert [e.event_id for e in rest] == [e.event_id for e in events[6:]]
    finally:
        await restarted.stop()
