"""Transactional outbox: domain events are rows written in the same transaction as the
change they describe; a relay publishes them to ``cycle.events.v1`` afterwards.

Delivery is at-least-once (a crash between publish and mark re-publishes);
consumers deduplicate on ``event_id``. Each service declares its own table::

    class GoalsOutbox(OutboxMixin, Base):
        __tablename__ = "goals_outbox"

and records events with ``add_event(session, GoalsOutbox, event)`` before committing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, Text, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

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


def new_event(
    *,
    service: str,
    type: str,
    cycle_id: str | None = None,
    subject_id: str | None = None,
    payload: dict[str, Any] | None = None,
) -> DomainEvent:
    return DomainEvent(
        event_id=uuid.uuid4(),
        type=type,
        service=service,
        cycle_id=cycle_id,
        subject_id=subject_id,
        occurred_at=datetime.now(UTC),
        payload=payload or {},
    )


def add_event(session: AsyncSession, model: type[OutboxMixin], event: DomainEvent) -> None:
    """Stage ``event`` in the caller's transaction (published only if it commits)."""
    mapped: Any = model  # a concrete mapped subclass of the mixin
    session.add(
        mapped(
            event_id=str(event.event_id),
            topic=CYCLE_EVENTS,
            key=event.cycle_id,
            event_type=event.type,
            payload=event.model_dump_json(),
            created_at=event.occurred_at,
        )
    )


class OutboxRelay:
    """Publishes unpublished outbox rows in order, then marks them published."""

    def __init__(
        self,
        *,
        sessions: async_sessionmaker[AsyncSession],
        model: type[OutboxMixin],
        producer: Any,
        batch_size: int = 500,
        interval: float = 0.5,
    ) -> None:
        self.sessions = sessions
        self.model = model
        self.producer = producer
        self.batch_size = batch_size
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

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
            futures = [
                await self.producer.send(
                    row.topic, row.payload.encode(), key=row.key.encode() if row.key else None
                )
                for row in rows
            ]
            await asyncio.gather(*futures)
            await session.execute(
                update(model).where(model.id.in_([r.id for r in rows])).values(published_at=datetime.now(UTC))
            )
            await session.commit()
            return len(rows)

    async def run(self) -> None:
        while True:
            try:
                published = await self.publish_pending()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - keep relaying after a broker hiccup
                log.exception("outbox relay pass failed; retrying")
                published = 0
            if published < self.batch_size:
                await asyncio.sleep(self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=f"outbox-relay-{self.model.__name__}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
