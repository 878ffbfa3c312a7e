"""The producer behind ``POST /v1/ingest/metrics``: created in the lifespan, connected on first use."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from aiokafka.errors import MessageSizeTooLargeError
from aiokafka.partitioner import DefaultPartitioner

from contracts.events import MetricEvent
from contracts.topics import METRICS
from services.common.kafka import KafkaSecurity, create_producer

__all__ = ["MetricPublisher"]

_PARTITIONER = DefaultPartitioner()
"""The Java client's and aiokafka's default: murmur2 of the key over all partitions."""


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
        """Publish and wait for the acks; ``headers`` (the authenticated caller) go on every record.

        Each record goes to the partition the default partitioner gives its key (``department:metric``,
        as a producer's ``send`` would: one series stays on one partition, in order), but the records
        are handed to the producer as one batch per partition, with one acknowledgement to wait for
        per batch instead of one per record (the per-record ``send`` cost the ingest app 41% of its
        CPU: docs/benchmarks.md, round 5).
        """
        producer = await self._get()
        partitions = sorted(await producer.partitions_for(self.topic))
        chosen: dict[str, tuple[bytes, int]] = {}  # key -> (its bytes, its partition), once per series
        by_partition: dict[int, list[tuple[bytes, bytes]]] = {}
        for event in events:
            key = event.message_key
            found = chosen.get(key)
            if found is None:
                key_bytes = key.encode()
                found = chosen[key] = (key_bytes, _PARTITIONER(key_bytes, partitions, partitions))
            by_partition.setdefault(found[1], []).append((found[0], event.model_dump_json().encode()))
        record_headers = headers or []
        futures = []
        for partition, records in by_partition.items():
            builder = producer.create_batch()
            for key_bytes, value in records:
                if builder.append(timestamp=None, key=key_bytes, value=value, headers=record_headers) is None:
                    futures.append(await producer.send_batch(builder, self.topic, partition=partition))
                    builder = producer.create_batch()
                    if builder.append(timestamp=None, key=key_bytes, value=value, headers=record_headers) is None:
                        raise MessageSizeTooLargeError(f"an event of {len(value)} bytes does not fit in a batch")
            futures.append(await producer.send_batch(builder, self.topic, partition=partition))
        await asyncio.gather(*futures)

    async def close(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()
