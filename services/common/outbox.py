"""Transactional outbox: domain events are rows written in the same transaction as the
change they describe; a relay publishes them to ``cycle.events.v1`` afterwards.

Delivery is at-least-once (a crash between publish and mark re-publishes);
consumers deduplicate on ``event_id``. The relay connects to Kafka lazily and reconnects after a
failed pass, so a service starts (and keeps writing its outbox) while Kafka is down, and the rows
are relayed once the broker is back. Each service declares its own table::

    class GoalsOutbox(OutboxMixin, Base):
        __tablename__ = "goals_outbox"

and records events with ``add_event(session, GoalsOutbox, event)`` before committing. Every event is
checked against its model in ``contracts.domain_events`` before it is written.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from contracts.domain_events import InvalidDomainEvent, TypedDomainEvent, build_event, event_model, typed
from contracts.events import DomainEvent
from contracts.topics import CYCLE_EVENTS

__all__ = ["OutboxMixin", "OutboxRelay", "add_event", "new_event"]

log = logging.getLogger(__name__)


class OutboxMixin:
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    topic: Mapped[str] = mapped_column(String(128), default=CYCLE_EVENTS)
    key: Mapped[str | None] = mapped_column(String(256), nullable=True)
    event_type: Mapped[str] = mapped_column(String(64), index=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    published_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True, index=True)


new_event = build_event
"""A new event of the latest version of ``type`` (``contracts.domain_events.build_event``): the payload
is the type's payload model (or a mapping of its fields); ``InvalidDomainEvent`` when it does not
validate, ``UnknownDomainEvent`` for a type without a contract."""


def add_event(session: AsyncSession, model: type[OutboxMixin], event: TypedDomainEvent | DomainEvent) -> None:
    """Stage ``event`` in the caller's transaction (published only if it commits).

    The event is checked against the model of its ``(type, schema_version)`` first, and it must be
    the version producers write (the latest): an event that does not validate never reaches the
    outbox, so it never reaches the topic (``InvalidDomainEvent``, the caller's transaction fails).
    """
    checked = typed(event)
    latest = event_model(checked.event_type())
    if type(checked) is not latest:
        raise InvalidDomainEvent(
            f"domain event '{checked.event_type()}' is written at schema_version {latest.version()}, "
            f"not {checked.version()} (older versions are only read)"
        )
    mapped: Any = model  # a concrete mapped subclass of the mixin
    session.add(
        mapped(
            event_id=str(checked.event_id),
            topic=CYCLE_EVENTS,
            key=checked.cycle_id,
            event_type=checked.event_type(),
            payload=checked.model_dump_json(),
            created_at=checked.occurred_at,
        )
    )


class OutboxRelay:
    """Publishes unpublished outbox rows in order, then marks them published.

    Give ``producer`` (a started producer) or ``producer_factory`` (an async callable that returns
    one): with the factory the relay connects on its first pass and, after a failed pass, drops
    the producer and connects again on the next one, so Kafka may be down at start-up and come
    back later (the rows wait in the table meanwhile).
    """

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        model: type[OutboxMixin],
        producer: Any = None,
        producer_factory: Callable[[], Awaitable[Any]] | None = None,
        batch_size: int = 500,
        interval: float = 0.5,
        send_timeout: float = 30.0,
    ) -> None:
        if producer is None and producer_factory is None:
            raise ValueError("OutboxRelay needs a producer or a producer_factory")
        self.sessions = sessions
        self.model = model
        self.producer = producer
        self.producer_factory = producer_factory
        self.batch_size = batch_size
        self.interval = interval
        self.send_timeout = send_timeout
        self.last_error: str | None = None
        """Why the last pass failed (``None`` after a pass that succeeded)."""
        self._task: asyncio.Task[None] | None = None

    async def _connected(self) -> Any:
        if self.producer is None:
            assert self.producer_factory is not None
            self.producer = await self.producer_factory()
        return self.producer

    async def _reconnect_later(self) -> None:
        """Drop a producer that failed (only one the relay created), so the next pass starts afresh."""
        if self.producer_factory is None:
            return
        producer, self.producer = self.producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()

    async def publish_pending(self) -> int:
        """One pass; returns how many rows were published."""
        model: Any = self.model
        async with self.sessions() as session:
            query = select(model).where(model.published_at.is_(None)).order_by(model.id).limit(self.batch_size)
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                # Several replicas relay the same table: each row goes to one of them at a time.
                query = query.with_for_update(skip_locked=True)
            rows = (await session.scalars(query)).all()
            if not rows:
                return 0
            producer = await self._connected()
            futures = [
                await producer.send(row.topic, row.payload.encode(), key=row.key.encode() if row.key else None)
                for row in rows
            ]
            await asyncio.wait_for(asyncio.gather(*futures), timeout=self.send_timeout)
            await session.execute(
                update(model).where(model.id.in_([r.id for r in rows])).values(published_at=datetime.now(UTC))
            )
            await session.commit()
            return len(rows)

    async def run(self) -> None:
        backoff = self.interval
        while True:
            try:
                published = await self.publish_pending()
                self.last_error = None
                backoff = self.interval
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - keep relaying after a broker or database outage
                if self.last_error is None:
                    log.warning("outbox relay pass failed (%s: %s); retrying", type(exc).__name__, exc)
                self.last_error = f"{type(exc).__name__}: {exc}"
                await self._reconnect_later()
                published = 0
                backoff = min(backoff * 2, 10.0)
            if published < self.batch_size:
                await asyncio.sleep(backoff)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"outbox-relay-{self.model.__name__}")

    async def stop(self) -> None:
        """Stop relaying (the producer stays: ``publish_pending`` still works; ``close`` ends it)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def close(self) -> None:
        """``stop``, then stop the producer."""
        await self.stop()
        producer, self.producer = self.producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
