"""The producer behind ``POST /v1/ingest/metrics``: created in the lifespan, connected on first use."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from contracts.events import MetricEvent
from contracts.topics import METRICS
from services.common.kafka import KafkaSecurity, create_producer

__all__ = ["MetricPublisher"]


class MetricPublisher:
    """Publishes validated events to ``metrics.v1`` and waits for the broker's acknowledgement."""

    def __init__(
        self,
        bootstrap_servers: str,
        *,
        idempotence: bool = True,
        topic: str = METRICS,
        security: KafkaSecurity | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.security = security
        self.idempotence = idempotence
        self.topic = topic
        self._producer: Any = None
        self._lock = asyncio.Lock()

    async def _get(self) -> Any:
        async with self._lock:
            if self._producer is None:
                self._producer = await create_producer(
                    self.bootstrap_servers,
                    idempotence=self.idempotence,
                    client_id="tandem-tracking-ingest",
                    security=self.security,
                )
            return self._producer

    async def publish(self, events: Sequence[MetricEvent], *, headers: list[tuple[str, bytes]] | None = None) -> None:
        """Publish and wait for the acks; ``headers`` (the authenticated caller) go on every record."""
        producer = await self._get()
        futures = [
            await producer.send(self.topic, e.model_dump_json().encode(), key=e.message_key.encode(), headers=headers)
            for e in events
        ]
        await asyncio.gather(*futures)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
