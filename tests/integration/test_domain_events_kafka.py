"""Every message type on every topic goes through the real broker and validates against the AsyncAPI
document's schema; an invalid domain event is refused by the outbox and never reaches the topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlalchemy.orm import DeclarativeBase

from contracts.asyncapi import ASYNCAPI_FILE, channel_id, message_id
from contracts.domain_events import DOMAIN_EVENTS, InvalidDomainEvent, parse_domain_event
from contracts.events import DeadLetter, DomainEvent, MetricEvent
from contracts.schema_export import SCHEMA_DIR
from contracts.topics import (
    ALL_TOPICS,
    CYCLE_EVENTS,
    METRICS,
    METRICS_DLQ,
    PRINCIPAL_DEPARTMENT_HEADER,
    PRINCIPAL_HEADER,
)
from devtools.stack.kafka import create_topics
from services.common.db import create_engine
from services.common.kafka import create_consumer, create_producer
from services.common.outbox import OutboxMixin, OutboxRelay, add_event
from tests.unit.test_domain_events import example_event

DOCUMENT: dict[str, Any] = json.loads((SCHEMA_DIR / ASYNCAPI_FILE).read_text())


class _Base(DeclarativeBase):
    pass


class _Outbox(OutboxMixin, _Base):
    __tablename__ = "contract_outbox"


def _validator(topic: str, message: str) -> Draft202012Validator:
    """The payload schema of ``message`` on ``topic`` as the AsyncAPI document has it (refs resolved in it)."""
    payload = DOCUMENT["channels"][channel_id(topic)]["messages"][message]["payload"]
    return Draft202012Validator({**DOCUMENT, **payload}, format_checker=FormatChecker())


async def _consume(consumer: Any, run: str, wanted: dict[str, int], timeout: float = 60.0) -> dict[str, list[Any]]:
    """This run's records per topic (keys contain ``run``; other tests share the topics) until ``wanted`` arrived."""
    found: dict[str, list[Any]] = {topic: [] for topic in wanted}
    deadline = asyncio.get_running_loop().time() + timeout
    while any(len(found[topic]) < count for topic, count in wanted.items()):
        assert asyncio.get_running_loop().time() < deadline, {t: len(r) for t, r in found.items()}
        for partition, records in (await consumer.getmany(timeout_ms=500)).items():
            found[partition.topic] += [r for r in records if r.key and run in r.key.decode()]
    return found


async def test_every_message_type_validates_against_the_asyncapi_document(kafka_broker: Any, tmp_path: Path) -> None:
    await create_topics(kafka_broker.bootstrap_servers, list(ALL_TOPICS))
    run = uuid.uuid4().hex[:8]
    cycle_ids = {f"cy-{run}-{i}": model for i, model in enumerate(DOMAIN_EVENTS)}
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path}/outbox.db")
    async with engine.begin() as connection:
        await connection.run_sync(_Base.metadata.create_all)
    sessions = async_sessionmaker(engine, expire_on_commit=False)
    consumer = create_consumer(
        list(ALL_TOPICS), bootstrap_servers=kafka_broker.bootstrap_servers, group_id=f"contract-{run}"
    )
    await consumer.start()
    producer = await create_producer(kafka_broker.bootstrap_servers, idempotence=kafka_broker.supports_idempotence)
    relay = OutboxRelay(sessions=sessions, model=_Outbox, producer=producer)
    try:
        async with sessions() as session:
            for cycle_id, model in cycle_ids.items():
                add_event(session, _Outbox, model.model_validate(example_event(model, cycle_id)))
            # the producer side of the contract: an event its model refuses is never written
            invalid = DomainEvent(
                event_id=uuid.uuid4(),
                type="GoalApproved",
                service="goals",
                cycle_id=f"cy-{run}-invalid",
                occurred_at=datetime.now(UTC),
                payload={"goal_id": "g1"},
            )
            with pytest.raises(InvalidDomainEvent, match="'GoalApproved' v1 does not match its contract"):
                add_event(session, _Outbox, invalid)
            await session.commit()
        assert await relay.publish_pending() == len(DOMAIN_EVENTS)

        metric = MetricEvent(
            event_id=uuid.uuid4(),
            source="erp",
            department_id=f"sales-{run}",
            metric="sales.revenue",
            value=1250.5,
            unit="EUR",
            occurred_at=datetime.now(UTC),
        )
        headers = [(PRINCIPAL_HEADER, b"system:erp"), (PRINCIPAL_DEPARTMENT_HEADER, metric.department_id.encode())]
        await producer.send_and_wait(
            METRICS, metric.model_dump_json().encode(), key=metric.message_key.encode(), headers=headers
        )
        letter = DeadLetter(
            reason="value must be a finite number (not NaN or infinity)",
            topic=METRICS,
            partition=0,
            offset=42,
            key=f"dlq-{run}",
            original_b64="e30=",
            rejected_at=datetime.now(UTC),
        )
        await producer.send_and_wait(METRICS_DLQ, letter.model_dump_json().encode(), key=f"dlq-{run}".encode())

        found = await _consume(consumer, run, {CYCLE_EVENTS: len(DOMAIN_EVENTS), METRICS: 1, METRICS_DLQ: 1})
        # the invalid event was refused before the outbox: one more pass publishes nothing, nothing else arrives
        assert await relay.publish_pending() == 0
        for partition, records in (await consumer.getmany(timeout_ms=2000)).items():
            found[partition.topic] += [r for r in records if r.key and run in r.key.decode()]
    finally:
        await relay.close()
        await consumer.stop()
        await engine.dispose()

    seen_types = set()
    for record in found[CYCLE_EVENTS]:
        data = json.loads(record.value)
        event = parse_domain_event(record.value)  # the typed reader of its (type, schema_version)
        assert cycle_ids[record.key.decode()] is type(event)
        _validator(CYCLE_EVENTS, message_id(type(event))).validate(data)
        seen_types.add((event.event_type(), event.version()))
    assert seen_types == {(m.event_type(), m.version()) for m in DOMAIN_EVENTS}
    assert len(found[CYCLE_EVENTS]) == len(DOMAIN_EVENTS)  # and not the invalid one
    (metric_record,) = found[METRICS]
    _validator(METRICS, "MetricEvent").validate(json.loads(metric_record.value))
    assert dict(metric_record.headers)[PRINCIPAL_DEPARTMENT_HEADER] == metric.department_id.encode()
    (letter_record,) = found[METRICS_DLQ]
    _validator(METRICS_DLQ, "DeadLetter").validate(json.loads(letter_record.value))

    # and the document's schemas do refuse what the models refuse
    first = found[CYCLE_EVENTS][0].value
    broken = {**json.loads(first), "payload": {}}
    assert list(_validator(CYCLE_EVENTS, message_id(type(parse_domain_event(first)))).iter_errors(broken))
