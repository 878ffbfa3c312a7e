"""Kafka topic names, and what travels on each: the message key and the headers.

Versioned names: the topic's version changes only when its messages change shape for every
type at once; one event type's incompatible change raises that type's ``schema_version``
instead (``contracts.domain_events``; the rules are in ``docs/architecture.md``). The AsyncAPI
document (``contracts/schemas/asyncapi.json``) is generated from ``TOPICS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

__all__ = [
    "ALL_TOPICS",
    "CYCLE_EVENTS",
    "METRICS",
    "METRICS_DLQ",
    "PRINCIPAL_DEPARTMENT_HEADER",
    "PRINCIPAL_HEADER",
    "TOPICS",
    "Header",
    "TopicSpec",
]

METRICS: Final = "metrics.v1"
"""Metric events from department systems; key ``department_id:metric``."""

METRICS_DLQ: Final = "metrics.dlq.v1"
"""Rejected metric events with the original bytes, the reason and the source offset."""

CYCLE_EVENTS: Final = "cycle.events.v1"
"""Domain events from the services, published through a transactional outbox."""

ALL_TOPICS: Final = (METRICS, METRICS_DLQ, CYCLE_EVENTS)

PRINCIPAL_HEADER: Final = "tandem-principal"
"""Stamped by the ingest gateway on what it publishes: the authenticated caller (token subject)."""

PRINCIPAL_DEPARTMENT_HEADER: Final = "tandem-principal-department"
"""Stamped by the ingest gateway: the department the caller is authenticated for."""


@dataclass(frozen=True)
class Header:
    name: str
    description: str


@dataclass(frozen=True)
class TopicSpec:
    """One topic as a consumer sees it: what the key is, which headers may come, who writes it."""

    name: str
    title: str
    description: str
    key: str
    """What the message key holds (it decides the partition, and so the order)."""
    producers: str
    headers: tuple[Header, ...] = field(default=())


TOPICS: Final = (
    TopicSpec(
        name=METRICS,
        title="Metrics",
        description="One MetricEvent per measurement from a department system (emitter SDK, simulator, or "
        "tracking's HTTP ingest). The tracking consumer validates, deduplicates on event_id and aggregates; "
        "what it rejects goes to metrics.dlq.v1.",
        key="department_id:metric (UTF-8), so one series stays on one partition, in order.",
        producers="department systems; the tracking ingest gateway",
        headers=(
            Header(PRINCIPAL_HEADER, "Set by the ingest gateway: the authenticated caller (token subject)."),
            Header(
                PRINCIPAL_DEPARTMENT_HEADER,
                "Set by the ingest gateway: the caller's department; a consumer that accepts only what the "
                "gateway published refuses an event naming another department.",
            ),
        ),
    ),
    TopicSpec(
        name=METRICS_DLQ,
        title="Rejected metrics",
        description="Each message the tracking consumer could not accept, with the reason, the source "
        "topic/partition/offset and the original bytes.",
        key="The rejected message's own key (UTF-8), when it had one.",
        producers="the tracking consumer",
    ),
    TopicSpec(
        name=CYCLE_EVENTS,
        title="Cycle domain events",
        description="Domain events of the review cycle, one message type per event type and schema_version, "
        "written through each service's transactional outbox: at-least-once, so consumers deduplicate on "
        "event_id. Dispatch on (type, schema_version); skip what you have no reader for.",
        key="cycle_id (UTF-8) when the event belongs to a cycle, so one cycle's events stay in order; else none.",
        producers="the cycles, goals, tracking, evaluation, feedback and results services",
    ),
)
"""Every topic, in the order of ``ALL_TOPICS``."""
