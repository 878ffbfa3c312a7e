"""The tracking consumer: ``metrics.v1`` -> PostgreSQL/SQLite, at least once, counted exactly once.

Per batch (``getmany``): validate, insert with the unique ``event_id``, aggregate
the new rows (``ingest.ingest_batch``), publish rejects to ``metrics.dlq.v1``
and wait for the broker's acknowledgement, commit the database transaction,
and only then commit the Kafka offsets. A crash anywhere before the offset
commit re-delivers the batch; the ``event_id`` key makes the repeat a no-op.

The pipeline: while batch N is written, batch N+1 is fetched and validated. A clean
batch on PostgreSQL (no rejects, every event new: the usual case) is written by one
self-committing statement (``ingest.store_new_batch``); anything else takes the
transactional path. Offsets are committed by a separate task, in batch order and
strictly after the database commit of their batch, so the next write does not wait
for the broker (commits that queue up meanwhile are merged into one).

It runs inside the tracking service's lifespan and standalone as
``tandem tracking consume`` (so tests can ``kill -9`` it).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, IllegalStateError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.events import DeadLetter
from contracts.topics import METRICS, METRICS_DLQ
from services.common.kafka import KafkaSecurity, client_options, create_consumer, create_producer
from services.common.telemetry import record_consumer_lag, record_ingest_batch
from services.tracking.ingest import (
    BatchResult,
    CatalogCache,
    PreparedBatch,
    prepare_batch,
    store_batch,
    store_new_batch,
)
from services.tracking.rules import CatalogIndex

__all__ = [
    "CONSUMER_GROUP",
    "ConsumerStats",
    "PartitionLag",
    "TrackingConsumer",
    "DEFAULT_MAX_RECORDS",
    "PARTITION_FETCH_BYTES",
    "consumer_lag",
    "freeze_startup_heap",
]

log = logging.getLogger(__name__)

CONSUMER_GROUP = "tandem-tracking"
"""Consumer group of every tracking consumer instance."""

_CATALOG_TTL = 1.0
"""Seconds between checks for a changed KPI catalog (a catalog PUT applies within this delay)."""

DEFAULT_MAX_RECORDS = 10_000
"""Records per ``getmany`` batch: larger batches amortise the per-batch round trips and
statements (measured in docs/benchmarks.md)."""


PARTITION_FETCH_BYTES = 2 * 1024 * 1024
"""Bytes per partition per fetch. aiokafka sends no new fetch to a broker while any of its
partitions still holds unconsumed records (for up to 100 ms), so with large fetches the consumer
drains every buffer and then waits for one huge response: 8 MiB per partition left the consumer
waiting on fetches for a third of the run; 1-2 MiB keeps records flowing (docs/benchmarks.md)."""


def freeze_startup_heap() -> None:
    """Move everything allocated so far (imported libraries, settings, engine) to the garbage
    collector's permanent generation: full collections then skip that heap instead of re-scanning
    it every few batches. For a standalone consumer process, called once after start-up."""
    gc.collect()
    gc.freeze()


@dataclass
class ConsumerStats:
    batches: int = 0
    received: int = 0
    inserted: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    unmapped: int = 0
    failures: int = 0
    started_at: float = field(default_factory=time.monotonic)
    # Seconds spent per phase (where a batch's time goes): waiting for records, validating and
    # routing them (CPU), waiting for the previous batch's write, the database transaction
    # (insert, aggregates, commit) and the offset commit.
    fetch_seconds: float = 0.0
    prepare_seconds: float = 0.0
    backpressure_seconds: float = 0.0
    database_seconds: float = 0.0
    offset_commit_seconds: float = 0.0
    """Off the write path (a separate task): time the broker took to acknowledge offset commits."""
    fast_batches: int = 0
    """Batches written by the single-statement fast path (the rest took the transactional path)."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Waits for the batch in flight (DB + offset commit) before partitions move away."""

    def __init__(self, owner: TrackingConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.owner.batch_lock:
            # The stored batches' offsets go to the broker before the partitions move away.
            await self.owner.flush_offsets()
            log.info("partitions revoked: %s (no batch in flight)", sorted(str(tp) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        log.info("partitions assigned: %s", sorted(str(tp) for tp in assigned))


class TrackingConsumer:
    """One member of the ``tandem-tracking`` group. ``run()`` until ``stop()``."""

    def __init__(
        self,
        *,
        engine: AsyncEngine,
        bootstrap_servers: str,
        group_id: str = CONSUMER_GROUP,
        topic: str = METRICS,
        dlq_topic: str = METRICS_DLQ,
        idempotence: bool = True,
        max_records: int = DEFAULT_MAX_RECORDS,
        on_batch: Callable[[BatchResult], None] | None = None,
        security: KafkaSecurity | None = None,
        enforce_principal: bool = False,
        partition_fetch_bytes: int = PARTITION_FETCH_BYTES,
    ) -> None:
        self.engine = engine
        self.bootstrap_servers = bootstrap_servers
        self.group_id = group_id
        self.topic = topic
        self.dlq_topic = dlq_topic
        self.idempotence = idempotence
        self.security = security
        self.max_records = max_records
        self.on_batch = on_batch
        self.enforce_principal = enforce_principal
        self.partition_fetch_bytes = partition_fetch_bytes
        """Dead-letter records without the ingest gateway's matching principal header
        (``TANDEM_KAFKA_ENFORCE_PRINCIPAL``; see ``ingest.prepare_batch``)."""
        self.stats = ConsumerStats()
        self.batch_lock = asyncio.Lock()
        self.catalog = CatalogCache()
        self._catalog_index = CatalogIndex([])
        self._catalog_checked_at = -_CATALOG_TTL
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: Any = None
        self._postgres = engine.dialect.name == "postgresql"
        self._conn: AsyncConnection | None = None
        self._pending_offsets: dict[Any, int] = {}
        self._committer: asyncio.Task[None] | None = None

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Consume until ``stop()``; reconnects (with backoff) after broker or database failures."""
        backoff = 0.5
        while not self._stopping.is_set():
            try:
                await self._session()
                backoff = 0.5
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the consumer must outlive any single failure
                self.stats.failures += 1
                log.warning("tracking consumer failed (%s: %s); restarting in %.1fs", type(exc).__name__, exc, backoff)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), timeout=backoff)
                backoff = min(backoff * 2, 10.0)

    async def _session(self) -> None:
        consumer = create_consumer(
            (),
            bootstrap_servers=self.bootstrap_servers,
            group_id=self.group_id,
            client_id="tandem-tracking",
            security=self.security,
            max_partition_fetch_bytes=self.partition_fetch_bytes,
        )
        consumer.subscribe([self.topic], listener=_Rebalance(self))
        self._consumer = consumer
        writing: asyncio.Task[None] | None = None
        self._pending_offsets = {}
        self._committer = None
        try:
            # One connection for the session's writes (no pool checkout and ping per batch).
            self._conn = await self.engine.connect()
            await consumer.start()
            self._producer = await create_producer(
                self.bootstrap_servers,
                idempotence=self.idempotence,
                client_id="tandem-tracking-dlq",
                security=self.security,
            )
            stats = self.stats
            clock = time.perf_counter
            while not self._stopping.is_set():
                started = clock()
                batch = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                fetched = clock()
                stats.fetch_seconds += fetched - started
                if not batch:
                    continue
                records = [r for rs in batch.values() for r in rs]
                offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
                catalog = await self._catalog()
                # Validation and routing (CPU) overlap with the previous batch's database write.
                prepared = prepare_batch(
                    records, catalog=catalog, postgres=self._postgres, enforce_principal=self.enforce_principal
                )
                prepared_at = clock()
                stats.prepare_seconds += prepared_at - fetched
                if writing is not None:
                    await writing
                stats.backpressure_seconds += clock() - prepared_at
                writing = asyncio.create_task(self._write(consumer, prepared, offsets))
                # Let the write encode and send its statement now: getmany returns without
                # suspending when records are buffered, and the write would otherwise only start
                # once the next batch is validated, instead of overlapping with it.
                await asyncio.sleep(0)
            if writing is not None:
                await writing
            await self.flush_offsets()
        finally:
            if writing is not None and not writing.done():
                writing.cancel()
                with contextlib.suppress(BaseException):
                    await writing
            committer, self._committer = self._committer, None
            if committer is not None and not committer.done():
                committer.cancel()
                with contextlib.suppress(BaseException):
                    await committer
            conn, self._conn = self._conn, None
            if conn is not None:
                with contextlib.suppress(Exception):
                    await conn.close()
            self._consumer = None
            producer, self._producer = self._producer, None
            # After a failure the consumer is rebuilt and resumes from the committed offsets:
            # nothing uncommitted is skipped, and the event_id key absorbs what is re-read.
            with contextlib.suppress(Exception):
                await consumer.stop()
            if producer is not None:
                with contextlib.suppress(Exception):
                    await producer.stop()

    async def _catalog(self) -> CatalogIndex:
        now = time.monotonic()
        if now - self._catalog_checked_at >= _CATALOG_TTL:
            async with self.engine.connect() as conn:
                self._catalog_index = await self.catalog.get(conn)
            self._catalog_checked_at = now
        return self._catalog_index

    async def _write(self, consumer: AIOKafkaConsumer, prepared: PreparedBatch, offsets: dict[Any, int]) -> None:
        async with self.batch_lock:
            conn = self._conn
            assert conn is not None, "no database connection: the session is not running"
            started = time.perf_counter()
            # Usual case: one self-committing statement; None when it does not apply (rejects, a
            # redelivered event_id, SQLite): then the transactional path, DLQ acknowledged first.
            result = await store_new_batch(conn, prepared)
            if result is None:
                async with conn.begin():
                    result = await store_batch(conn, prepared)
                    if result.dead_letters:
                        await self._publish_dead_letters(result.dead_letters)
            else:
                self.stats.fast_batches += 1
            self.stats.database_seconds += time.perf_counter() - started
            # committed in the database: only now the offsets (in order, by the committer task)
            self._commit_offsets(consumer, offsets)
        self.stats.batches += 1
        self.stats.received += result.received
        self.stats.inserted += result.inserted
        self.stats.duplicates += result.duplicates
        self.stats.dead_lettered += len(result.dead_letters)
        self.stats.unmapped += result.unmapped
        record_ingest_batch(
            topic=self.topic,
            inserted=result.inserted,
            duplicates=result.duplicates,
            dead_lettered=len(result.dead_letters),
        )
        record_consumer_lag(consumer, offsets, group=self.group_id)
        if self.on_batch is not None:
            self.on_batch(result)

    def _commit_offsets(self, consumer: AIOKafkaConsumer, offsets: dict[Any, int]) -> None:
        """Queue ``offsets`` (of a batch committed in the database) for the committer task.

        Batches reach this in order, and a partition's offsets only grow, so offsets that queue up
        while a commit is in flight are merged into the next one. A commit that failed for any
        reason other than a rebalance fails the session (it restarts from the committed offsets).
        """
        committer = self._committer
        if committer is not None and committer.done() and not committer.cancelled():
            failure = committer.exception()
            if failure is not None:
                raise failure
        self._pending_offsets.update(offsets)
        if committer is None or committer.done():
            self._committer = asyncio.create_task(self._commit_pending(consumer), name="tracking-offset-commit")

    async def _commit_pending(self, consumer: AIOKafkaConsumer) -> None:
        while self._pending_offsets:
            offsets, self._pending_offsets = self._pending_offsets, {}
            started = time.perf_counter()
            try:
                await consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError) as exc:
                # The group rebalanced meanwhile: the new owner re-reads these records and the
                # event_id key turns them into no-ops.
                log.warning("offset commit failed after a rebalance (%s); records will be re-read", exc)
            self.stats.offset_commit_seconds += time.perf_counter() - started

    async def flush_offsets(self) -> None:
        """Wait until the offsets of every batch written so far are committed to the broker."""
        committer = self._committer
        if committer is not None:
            await asyncio.shield(committer)

    async def _publish_dead_letters(self, letters: list[DeadLetter]) -> None:
        futures = [
            await self._producer.send(
                self.dlq_topic,
                letter.model_dump_json().encode(),
                key=letter.key.encode() if letter.key is not None else None,
            )
            for letter in letters
        ]
        await asyncio.gather(*futures)


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    end_offset: int
    committed: int | None
    lag: int


async def consumer_lag(
    bootstrap_servers: str,
    *,
    group_id: str = CONSUMER_GROUP,
    topic: str = METRICS,
    timeout: float = 10.0,
    security: KafkaSecurity | None = None,
) -> list[PartitionLag]:
    """End offset minus the group's committed offset, per partition of ``topic``."""
    options = client_options(security)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000), **options)
    reader = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False, **options)
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            await reader.start()
            described = await admin.describe_topics([topic])
            partitions = sorted(
                p["partition"] for t in described if t.get("topic") == topic for p in t.get("partitions", ())
            )
            if not partitions:
                raise LookupError(f"topic {topic!r} does not exist (or has no partitions) on {bootstrap_servers}")
            tps = [TopicPartition(topic, p) for p in partitions]
            ends = await reader.end_offsets(tps) if tps else {}
            committed = await admin.list_consumer_group_offsets(group_id, partitions=tps) if tps else {}
    finally:
        with contextlib.suppress(Exception):
            await reader.stop()
        with contextlib.suppress(Exception):
            await admin.close()
    lags = []
    for tp in tps:
        meta = committed.get(tp)
        done = meta.offset if meta is not None and meta.offset >= 0 else None
        end = int(ends.get(tp, 0))
        lags.append(PartitionLag(topic, tp.partition, end, done, end - (done or 0)))
    return lags
