"""MetricEmitter recovery: a stuck or failing producer is replaced and unacknowledged events re-sent.

The producers here are in-memory stand-ins for aiokafka's (a unit test of the retry logic);
the real broker outage is covered by tests/integration/test_ingest_reliability.py.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from aiokafka.errors import OutOfOrderSequenceNumber

from sdk.emitter import EmitError, MetricEmitter


class FakeProducer:
    def __init__(self, mode: str) -> None:
        self.mode = mode  # "ok", "stuck" (futures never complete) or "out_of_order"
        self.sent: list[bytes] = []
        self.stopped = False

    async def send(self, topic: str, value: bytes, key: bytes | None = None) -> asyncio.Future[Any]:
        self.sent.append(value)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.mode == "ok":
            future.set_result(None)
        elif self.mode == "out_of_order":
            future.set_exception(OutOfOrderSequenceNumber())
        return future

    async def stop(self) -> None:
        self.stopped = True


def factory(modes: list[str], made: list[FakeProducer]) -> Any:
    async def make() -> FakeProducer:
        producer = FakeProducer(modes.pop(0) if modes else "ok")
        made.append(producer)
        return producer

    return make


@pytest.mark.parametrize("first", ["stuck", "out_of_order"])
async def test_stuck_or_out_of_order_producer_is_recreated_and_unacked_events_resent(first: str) -> None:
    made: list[FakeProducer] = []
    acked: list[uuid.UUID] = []
    emitter = MetricEmitter(
        "unused:9092",
        source="mes",
        department_id="production",
        delivery_timeout=0.2,
        retry_backoff=0.01,
        on_ack=acked.append,
        producer_factory=factory([first, "ok"], made),
    )
    ids = [await emitter.emit("production.output_units", float(i), "units", datetime.now(UTC)) for i in range(5)]
    await emitter.flush()
    await emitter.close()
    assert sorted(acked) == sorted(ids) and emitter.pending == 0
    assert emitter.producer_restarts == 1 and made[0].stopped
    assert len(made[1].sent) == 5  # everything unacknowledged went out again on the new producer


async def test_retries_are_bounded() -> None:
    emitter = MetricEmitter(
        "unused:9092",
        source="mes",
        department_id="production",
        delivery_timeout=0.05,
        retry_backoff=0.01,
        max_retries=2,
        producer_factory=factory(["stuck"] * 10, []),
    )
    event_id = await emitter.emit("production.output_units", 1.0, "units", datetime.now(UTC))
    with pytest.raises(EmitError) as error:
        await emitter.flush()
    assert error.value.unacknowledged == [event_id]
    await emitter.close()


async def test_emit_validates_against_the_contract() -> None:
    emitter = MetricEmitter("unused:9092", source="mes", department_id="production", producer_factory=factory([], []))
    with pytest.raises(ValueError, match="timezone"):
        await emitter.emit("production.output_units", 1.0, "units", datetime(2026, 1, 1))
    await emitter.close()
