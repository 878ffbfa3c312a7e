"""``MetricEmitter``: publish ``MetricEvent`` s to ``metrics.v1`` reliably.

* Idempotent ``acks=all`` producer from ``services.common.kafka.create_producer``
  (plain ``acks=all`` on brokers without idempotence); aiokafka batches sends
  (``linger_ms``), ``emit`` only appends to the batch.
* Every event stays in ``pending`` until the broker acknowledges it.
  ``flush()`` waits for the acknowledgements; a failed or stuck delivery is
  retried a bounded number of times with exponential backoff.
* Recovery from a stuck producer: after a broker outage aiokafka's idempotent
  producer can fail with ``OutOfOrderSequenceNumber`` or stop completing
  futures at all (aiokafka issue #1017). The emitter then drops that producer,
  creates a new one (new producer id, fresh sequence numbers) and re-sends
  everything not yet acknowledged. A re-send may duplicate an event the broker
  did store; ingestion deduplicates on ``event_id``, so that is safe.

Usage::

    async with MetricEmitter("127.0.0.1:9092", source="crm", department_id="sales") as emitter:
        await emitter.emit("sales.revenue", 1200.0, "EUR", datetime.now(UTC))
    # leaving the block flushes and closes
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any

from contracts.events import MetricEvent
from contracts.topics import METRICS
from services.common.kafka import create_producer

__all__ = ["EmitError", "MetricEmitter"]

log = logging.getLogger(__name__)


class EmitError(Exception):
    """Events could not be delivered within the retry budget; ``unacknowledged`` lists their ids."""

    def __init__(self, message: str, unacknowledged: list[uuid.UUID]) -> None:
        super().__init__(message)
        self.unacknowledged = unacknowledged


@dataclass
class _Pending:
    event_id: uuid.UUID
    key: bytes
    value: bytes
    generation: int = -1
    future: asyncio.Future[Any] | None = None
    failed: bool = True  # not (successfully) handed to the current producer yet


class MetricEmitter:
    """Publishes one department system's metric events; see the module docstring."""

    def __init__(
        self,
        bootstrap_servers: str,
        source: str,
        department_id: str,
        *,
        topic: str = METRICS,
        idempotence: bool = True,
        max_retries: int = 8,
        retry_backoff: float = 0.5,
        max_backoff: float = 5.0,
        delivery_timeout: float = 15.0,
        max_pending: int = 20_000,
        linger_ms: int = 5,
        on_ack: Callable[[uuid.UUID], None] | None = None,
        producer_factory: Callable[[], Awaitable[Any]] | None = None,
    ) -> None:
        if max_retries < 0 or retry_backoff <= 0 or delivery_timeout <= 0:
            raise ValueError("max_retries must be >= 0, retry_backoff and delivery_timeout > 0")
        self.bootstrap_servers = bootstrap_servers
        self.source = source
        self.department_id = department_id
        self.topic = topic
        self.idempotence = idempotence
        self.max_retries = max_retries
        self.retry_backoff = retry_backoff
        self.max_backoff = max_backoff
        self.delivery_timeout = delivery_timeout
        self.max_pending = max_pending
        self.linger_ms = linger_ms
        self.on_ack = on_ack
        self._factory = producer_factory or self._create_producer
        self.acknowledged = 0
        self.producer_restarts = 0
        self.resent = 0
        """Events sent again after a failed or stuck delivery (the consumer counts each once by its event_id)."""
        self._pending: dict[uuid.UUID, _Pending] = {}
        self._producer: Any = None
        self._generation = 0
        self._closed = False

    # -- lifecycle

    async def __aenter__(self) -> MetricEmitter:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc is None:
                await self.flush()
        finally:
            await self.close()

    async def _create_producer(self) -> Any:
        return await create_producer(
            self.bootstrap_servers,
            idempotence=self.idempotence,
            client_id=f"tandem-emitter-{self.source}",
            linger_ms=self.linger_ms,
            request_timeout_ms=int(self.delivery_timeout * 1000),
        )

    async def start(self) -> None:
        """Connect (``emit`` connects on first use too)."""
        if self._producer is None:
            self._producer = await self._factory()
            self._generation += 1

    async def close(self) -> None:
        """Stop the producer. Unflushed events are dropped: call ``flush()`` first."""
        self._closed = True
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(producer.stop(), timeout=self.delivery_timeout)

    @property
    def pending(self) -> int:
        """Events emitted but not acknowledged yet."""
        return len(self._pending)

    # -- publishing

    async def emit(
        self,
        metric: str,
        value: float,
        unit: str,
        occurred_at: datetime,
        employee_id: str | None = None,
        dimensions: Mapping[str, str] | None = None,
        *,
        event_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Validate and queue one event; returns its ``event_id``. Raises ``pydantic.ValidationError``
        for an event that breaks the contract (nothing is sent then)."""
        if self._closed:
            raise RuntimeError("this MetricEmitter is closed")
        event = MetricEvent(
            event_id=event_id or uuid.uuid4(),
            source=self.source,
            department_id=self.department_id,
            metric=metric,
            value=value,
            unit=unit,
            occurred_at=occurred_at,
            employee_id=employee_id,
            dimensions=dict(dimensions or {}),
        )
        entry = _Pending(event.event_id, event.message_key.encode(), event.model_dump_json().encode())
        self._pending[event.event_id] = entry
        if self._producer is None:
            try:
                await self.start()
            except Exception as exc:  # noqa: BLE001 - flush() retries the connection
                log.warning("emitter could not connect (%s); the event stays pending", exc)
                return event.event_id
        await self._send(entry)
        if len(self._pending) >= self.max_pending:
            await self.flush()
        return event.event_id

    async def _send(self, entry: _Pending) -> None:
        generation = self._generation
        try:
            future = await asyncio.wait_for(
                self._producer.send(self.topic, entry.value, key=entry.key), timeout=self.delivery_timeout
            )
        except Exception as exc:  # noqa: BLE001 - stays pending; flush() recovers
            log.debug("send of %s failed: %s", entry.event_id, exc)
            entry.failed = True
            return
        entry.generation = generation
        entry.future = future
        entry.failed = False
        future.add_done_callback(lambda f, e=entry, g=generation: self._delivered(e, g, f))

    def _delivered(self, entry: _Pending, generation: int, future: asyncio.Future[Any]) -> None:
        if not future.cancelled() and future.exception() is None:
            # Any successful delivery counts, even from a replaced producer: the broker has it.
            if self._pending.pop(entry.event_id, None) is not None:
                self.acknowledged += 1
                if self.on_ack is not None:
                    self.on_ack(entry.event_id)
        elif generation == entry.generation:
            entry.failed = True

    async def flush(self) -> None:
        """Wait until every emitted event is acknowledged, recovering from failures.

        Raises ``EmitError`` after ``max_retries`` recoveries without success.
        """
        attempt = 0
        while self._pending:
            waiting = [e.future for e in self._pending.values() if not e.failed and e.future is not None]
            stuck = False
            if waiting:
                _done, not_done = await asyncio.wait(waiting, timeout=self.delivery_timeout)
                stuck = bool(not_done)
            if not self._pending:
                return
            failed = [e for e in self._pending.values() if e.failed]
            if not failed and not stuck:
                await asyncio.sleep(0)  # let delivery callbacks run
                continue
            attempt += 1
            if attempt > self.max_retries:
                raise EmitError(
                    f"{len(self._pending)} metric events were not acknowledged by {self.bootstrap_servers} "
                    f"after {self.max_retries} retries",
                    list(self._pending),
                )
            delay = min(self.max_backoff, self.retry_backoff * 2 ** (attempt - 1))
            log.warning(
                "%d events unacknowledged (%s); recreating the producer and re-sending in %.1fs (retry %d/%d)",
                len(self._pending),
                "producer stuck" if stuck else "delivery failed",
                delay,
                attempt,
                self.max_retries,
            )
            await asyncio.sleep(delay)
            await self._recreate_producer()
            if self._producer is None:
                continue
            for entry in list(self._pending.values()):
                self.resent += 1
                await self._send(entry)

    async def _recreate_producer(self) -> None:
        old, self._producer = self._producer, None
        self._generation += 1
        for entry in self._pending.values():
            entry.failed = True
        if old is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(old.stop(), timeout=2.0)
        try:
            await self.start()
            self.producer_restarts += 1
        except Exception as exc:  # noqa: BLE001 - the broker may still be down; the next retry tries again
            log.warning("could not create a new producer: %s", exc)
            self._producer = None
