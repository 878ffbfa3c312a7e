"""Kafka producer and consumer factories with safe defaults.

Producers are idempotent with ``acks=all``. Some Kafka-protocol brokers (the
embedded ``tansu``) answer ``InitProducerId`` with an error; then the factory
logs it and falls back to a plain ``acks=all`` producer. That is safe because
ingestion deduplicates on ``event_id``. Consumers never auto-commit: offsets
are committed only after the database transaction that used them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError

__all__ = ["create_consumer", "create_producer"]

log = logging.getLogger(__name__)


async def create_producer(
    bootstrap_servers: str,
    *,
    idempotence: bool = True,
    client_id: str = "tandem",
    **overrides: Any,
) -> AIOKafkaProducer:
    """A started producer: idempotent when the broker supports it, always ``acks=all``."""
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "acks": "all",
        "linger_ms": 5,
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": 30_000,
        "retry_backoff_ms": 200,
        **overrides,
    }
    if idempotence:
        producer = AIOKafkaProducer(enable_idempotence=True, **options)
        try:
            await producer.start()
            return producer
        except KafkaError as exc:
            await producer.stop()
            log.warning(
                "broker %s refused an idempotent producer (%s: %s); falling back to acks=all "
                "without idempotence, deduplication on event_id keeps ingestion exact",
                bootstrap_servers,
                type(exc).__name__,
                exc,
            )
    producer = AIOKafkaProducer(**options)
    await producer.start()
    return producer


def create_consumer(
    topics: Sequence[str],
    *,
    bootstrap_servers: str,
    group_id: str,
    client_id: str = "tandem",
    **overrides: Any,
) -> AIOKafkaConsumer:
    """A consumer in ``group_id`` with manual commits, reading from the earliest offset.

    Not started: call ``await consumer.start()``; pass ``listener=`` to
    ``consumer.subscribe`` separately when a rebalance listener is needed
    (then give ``topics=()``).
    """
    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers,
        "group_id": group_id,
        "client_id": client_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "max_poll_records": 5000,
        "fetch_max_bytes": 32 * 1024 * 1024,
        "max_partition_fetch_bytes": 8 * 1024 * 1024,
        **overrides,
    }
    return AIOKafkaConsumer(*topics, **options)
