"""A malformed-event corpus mixed into a valid stream, on a real broker and database.

Near-limit and over-limit messages (larger than a dead letter could carry whole), overflow
values, invalid UTF-8, empty and non-object messages, a tombstone, naive and out-of-range
timestamps, conflicting and exact duplicates, among valid events whose keys spread over every
partition: every valid event is counted exactly once, every bad one is in the DLQ exactly once
with its reason (large originals truncated, with size and hash), the lag returns to 0 and the
consumer keeps running.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import uuid
from typing import Any

import pytest
from aiokafka.errors import MessageSizeTooLargeError
from sqlalchemy import select

from devtools.stack.kafka import create_topics
from services.common.db import create_session_factory
from services.common.settings import Settings
from services.tracking.ingest.messages import DLQ_ORIGINAL_LIMIT
from services.tracking.models import TrackingDeadLetter
from services.tracking.service import ops_ingestion
from tests.integration.conftest_ingest import (
    DEPARTMENTS,
    METRIC,
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
    stored_events,
    wait_for,
)

NEAR_LIMIT = 1_000_000
"""Bytes: near Kafka's default 1 MiB record limit, and larger than a DLQ record could carry whole."""


def _payload(**overrides: Any) -> dict[str, Any]:
    return {**json.loads(event("dep0", 1).model_dump_json()), **overrides}


def _bytes(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload).encode()


def _sized(size: int) -> bytes:
    """Valid JSON of ``size`` bytes: an event whose one dimension is far too long."""
    payload = _payload(dimensions={"note": ""})
    filler = size - len(_bytes(payload))
    return _bytes({**payload, "dimensions": {"note": "x" * filler}})


def _corpus(first: dict[str, Any]) -> list[tuple[bytes | None, str]]:
    """(message value, expected reason prefix) of every bad message."""
    valid_bytes = _bytes(_payload())
    return [
        (_sized(NEAR_LIMIT), "contract violation: dimensions.note"),
        (_sized(800_000), "contract violation: dimensions.note"),
        (_bytes(_payload(value=1e308)), "contract violation: value: value must be between"),
        (_bytes(_payload(value=-1e308)), "contract violation: value: value must be between"),
        (
            _bytes(_payload(occurred_at="0001-01-01T00:30:00+01:00")),
            "contract violation: occurred_at: occurred_at must be",
        ),
        (
            _bytes(_payload(occurred_at="9999-12-31T23:30:00-01:00")),
            "contract violation: occurred_at: occurred_at must be",
        ),
        (
            _bytes(_payload(occurred_at="2026-01-31T12:00:00")),
            "contract violation: occurred_at: occurred_at must include",
        ),
        (valid_bytes.replace(b'"units"', b'"\xff\xfe"'), "message is not valid JSON"),
        (b"", "message is not valid JSON"),
        (b"[1, 2]", "message is not a JSON object"),
        (b"null", "message is not a JSON object"),
        (b"42", "message is not a JSON object"),
        (None, "message has no value (tombstone)"),
        (_bytes({**first, "value": first["value"] + 1}), "conflicting duplicate"),
    ]


async def test_a_malformed_corpus_leaves_valid_events_counted_once_and_bad_ones_in_the_dlq(
    kafka_broker: Any, postgres_url: str, settings: Settings
) -> None:
    engine = await prepare_db(postgres_url)
    servers = kafka_broker.bootstrap_servers
    topic, group = f"corpus-{uuid.uuid4().hex[:6]}", f"g-{uuid.uuid4().hex[:6]}"
    dlq = f"{topic}.dlq"
    await create_topics(servers, [topic, dlq], partitions=4)
    rng = random.Random(15)
    valid = [event(rng.choice(DEPARTMENTS), float(rng.randint(1, 100))) for _ in range(3_000)]
    first = json.loads(valid[0].model_dump_json())
    key0 = valid[0].message_key.encode()
    bad = _corpus(first)
    # valid[0] first, its conflicting and exact repeats after it on the same partition (same key);
    # the rest of the corpus spread through the stream under other keys
    messages: list[tuple[bytes | None, bytes | None]] = keyed(valid)
    for value, _reason in bad[:-1]:
        messages.insert(rng.randint(1, len(messages)), (f"{rng.choice(DEPARTMENTS)}:{METRIC}".encode(), value))
    messages.insert(rng.randint(1, len(messages)), (key0, bad[-1][0]))
    messages.insert(rng.randint(1, len(messages)), (key0, valid[0].model_dump_json().encode()))  # exact repeat
    sent = await produce(
        servers, topic, messages, idempotence=kafka_broker.supports_idempotence, max_request_size=2 * 1024 * 1024
    )
    assert len({m.partition for m in sent}) == 4, "the keys must spread over every partition"
    expected_reason = {value: reason for value, reason in bad}
    bad_at = {
        (m.partition, m.offset): msg[1] for m, msg in zip(sent, messages, strict=True) if msg[1] in expected_reason
    }
    conflict_at = next(
        (p, o)
        for (p, o), value in bad_at.items()
        if value == bad[-1][0] and (p, o) != (sent[0].partition, sent[0].offset)
    )
    assert len(bad_at) == len(bad)

    # Over the broker's limit: refused when produced, so it can never reach the consumer.
    with pytest.raises(MessageSizeTooLargeError):
        await produce(servers, topic, [(key0, b"x" * (2 * 1024 * 1024))], idempotence=False)

    async with in_process_consumer(
        engine=engine, bootstrap_servers=servers, group_id=group, topic=topic, dlq_topic=dlq, max_records=500
    ) as consumer:
        await wait_for(lambda: drained(servers, group=group, topic=topic), 60, "the group's lag to return to 0")
        assert consumer.health().state == "running"
        assert consumer._running  # noqa: SLF001 - the consumer task is still alive

    stored = await stored_events(engine)
    assert stored == {str(e.event_id): e.value for e in valid}  # the first of the conflicting pair is kept
    assert await kpi_totals(engine) == expected_totals(valid)

    letters = dead_letters(await read_topic(servers, dlq, at_least=len(bad)))
    assert len(letters) == len(bad), "each bad message is in the DLQ exactly once"
    by_source = {(d.partition, d.offset): d for d in letters}
    assert set(by_source) == set(bad_at)
    for where, letter in by_source.items():
        value = bad_at[where]
        assert letter.reason.startswith(expected_reason[value]), (letter.reason, expected_reason[value])
        original = value or b""
        assert letter.original_size == len(original)
        assert letter.original_sha256 == hashlib.sha256(original).hexdigest()
        kept = base64.b64decode(letter.original_b64)
        assert letter.truncated == (len(original) > DLQ_ORIGINAL_LIMIT)
        assert kept == original[:DLQ_ORIGINAL_LIMIT]
        assert len(letter.model_dump_json()) < 512 * 1024
    assert by_source[conflict_at].reason.startswith("conflicting duplicate: event_id " + first["event_id"])

    async with create_session_factory(engine)() as session:
        rows = (await session.scalars(select(TrackingDeadLetter))).all()
        assert {(r.partition, r.offset) for r in rows} == set(bad_at)
        here = settings.model_copy(update={"kafka_bootstrap_servers": servers})
        ops = await ops_ingestion(session=session, settings=here, group_id=group, topic=topic)
    assert ops.total_lag == 0 and all(p.lag >= 0 for p in ops.partitions)
    assert ops.dead_letters == len(bad) and ops.conflicting_duplicates == 1
    await engine.dispose()
