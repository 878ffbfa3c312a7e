"""One batch of raw Kafka messages into the database, exactly once per ``event_id``.

``ingest_batch`` runs inside the caller's transaction and never commits: the
consumer commits the database, and only then the Kafka offsets. Two halves, so the
consumer can overlap the CPU work of one batch with the database write of the previous:

``prepare_batch`` (``prepare``; CPU only, no I/O):

1. validate every message against ``MetricEvent`` in one pydantic-core call over the
   batch (``BATCH_ADAPTER``, each value parsed as its own JSON document); when that
   fails, the failing messages are re-validated one by one for a readable reason and
   become ``DeadLetter`` s, the rest is validated again as a batch;
2. route the events to KPIs (``rules.CatalogIndex.route_batch``: cached per routing key,
   exact ``route`` near period bounds);
3. for PostgreSQL, turn the batch into binary arrays for one ``unnest`` insert.

``store_batch`` (``store`` and ``aggregates``; in the caller's transaction):

4. insert the events. PostgreSQL: a plain ``INSERT`` in a savepoint (every event new:
   the usual case); if the unique ``event_id`` index refuses it (a redelivery or a
   duplicate within the batch), the same rows again with ``ON CONFLICT (event_id) DO
   NOTHING``, keeping the first occurrence and returning what was inserted. SQLite:
   chunked multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING``;
5. aggregate only the newly inserted events, per (cycle, KPI) and per trend bucket
   (``rules.group_batch_deltas``), with atomic ``UPDATE``/upsert statements that merge
   the batch's count/sum/min/max/last into the stored ones.

``store_new_batch`` (``fast_path``; PostgreSQL, outside a transaction): steps 4 and 5 for a
clean batch of new events as one self-committing statement; ``None`` when it does not apply.
The catalog the events are routed with is ``catalog.CatalogCache``.

The cyclic garbage collector is paused during the allocation-heavy synchronous steps
(``gc_paused``): measured, it otherwise doubles the cost of validating a batch.
"""

from __future__ import annotations

from services.tracking.ingest.aggregates import apply_bucket_deltas
from services.tracking.ingest.catalog import CatalogCache, bucket_seconds_for, load_catalog
from services.tracking.ingest.fast_path import store_new_batch
from services.tracking.ingest.messages import BatchResult, RawMessage, parse_message, validate_values
from services.tracking.ingest.prepare import PreparedBatch, prepare_batch
from services.tracking.ingest.store import ingest_batch, store_batch

__all__ = [
    "BatchResult",
    "CatalogCache",
    "PreparedBatch",
    "RawMessage",
    "apply_bucket_deltas",
    "bucket_seconds_for",
    "ingest_batch",
    "load_catalog",
    "parse_message",
    "prepare_batch",
    "store_batch",
    "store_new_batch",
    "validate_values",
]
