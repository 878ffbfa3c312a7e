"""Kafka topic names. Versioned: a breaking change to a payload gets a new topic."""

from __future__ import annotations

from typing import Final

__all__ = ["ALL_TOPICS", "CYCLE_EVENTS", "METRICS", "METRICS_DLQ"]

METRICS: Final = "metrics.v1"
"""Metric events from department systems; key ``department_id:metric``."""

METRICS_DLQ: Final = "metrics.dlq.v1"
"""Rejected metric events with the original bytes, the reason and the source offset."""

CYCLE_EVENTS: Final = "cycle.events.v1"
"""Domain events from the services, published through a transactional outbox."""

ALL_TOPICS: Final = (METRICS, METRICS_DLQ, CYCLE_EVENTS)
