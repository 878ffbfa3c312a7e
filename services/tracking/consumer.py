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

Nothing stops it. A batch the database refuses for its data (an overflow, a value out of
range: ``ingest.is_poison``) is bisected until the refused messages are isolated and
dead-lettered with the reason; the rest is stored. If the dead-letter topic is unreachable, the
batch is rolled back and retried with backoff (``health()`` says "paused" with the error) and
nothing is lost. Every write locks the catalog version and re-routes its batch if a catalog PUT
came in since it was routed, so no event is stored with an outdated routing. ``health()`` also
reports "stalled" when a partition has lag and its committed offset has not advanced for
``stall_after`` seconds (``ingest.liveness``).

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
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import CommitFailedError, IllegalStateError
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from contracts.events import DeadLetter
from contracts.topics import METRICS, METRICS_DLQ
from services.common.kafka import KafkaSecurity, client_options, create_consumer, create_producer
from services.common.telemetry import record_consumer_lag, record_ingest_batch
from services.tracking.ingest import (
    BatchResult,
    CatalogCache,
    PreparedBatch,
    RawMessage,
    prepare_batch,
    store_batch,
    store_new_batch,
)
from services.tracking.ingest.aggregates import record_dead_letters
from services.tracking.ingest.catalog import lock_catalog_version
from services.tracking.ingest.liveness import DEFAULT_STALL_AFTER, IngestionHealth, LagWatch
from services.tracking.ingest.messages import dead_letter
from services.tracking.ingest.store import is_poison
from services.tracking.rules import CatalogIndex

__all__ = [
    "CONSUMER_GROUP",
    "ConsumerStats",
    "DeadLetterQueueUnavailable",
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


_DLQ_TIMEOUT = 30.0
"""Seconds the dead-letter topic may take to acknowledge a batch's letters before it counts as
unreachable (the batch is then rolled back and retried)."""

_UNSTORABLE_PREFIX = "could not be stored: "


class DeadLetterQueueUnavailable(Exception):
    """The dead-letter topic did not acknowledge: the batch is rolled back and retried later."""


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
    bisections: int = 0
    """Times a batch the database refused was split in two to isolate the refused messages."""
    rerouted: int = 0
    """Batches routed again at write time because a catalog PUT came in since they were routed."""
    dlq_retries: int = 0
    """Times a batch was rolled back because the dead-letter topic did not acknowledge."""
    redelivered: int = 0
    """Records fetched again at an offset this consumer had fetched before (after a session
    restart or a rebalance): the at-least-once re-reads, whether or not their batch was stored."""


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Waits for the batch in flight (DB + offset commit) before partitions move away."""

    def __init__(self, owner: TrackingConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self.owner.batch_lock:
            # The stored batches' offsets go to the broker before the partitions move away.
            await self.owner.flush_offsets()
            for tp in revoked:
                self.owner.forget_partition(tp)
            log.info("partitions revoked: %s (no batch in flight)", sorted(str(tp) for tp in revoked))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        await self.owner.track_partitions(assigned)
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
        stall_after: float = DEFAULT_STALL_AFTER,
        dlq_timeout: float = _DLQ_TIMEOUT,
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
        self.dlq_timeout = dlq_timeout
        self._watch = LagWatch(stall_after)
        self._committed: dict[Any, int | None] = {}
        self._fetched: dict[Any, int] = {}
        """Per partition, the highest offset fetched by this consumer (kept across sessions)."""
        self._running = False
        self._paused_since: datetime | None = None
        self._last_error: str | None = None

    def stop(self) -> None:
        self._stopping.set()

    # -- health ----------------------------------------------------------------------------------
    def health(self, now: datetime | None = None) -> IngestionHealth:
        """``stalled`` (a partition with lag whose committed offset has not advanced for
        ``stall_after`` s), ``paused`` (retrying after an error), ``running`` or ``stopped``."""
        now = now or datetime.now(UTC)
        stall = self._watch.stalled(now)
        if stall is not None:
            return IngestionHealth(
                "stalled", since=stall.since, partition=stall.partition, lag=stall.lag, last_error=self._last_error
            )
        if self._paused_since is not None:
            return IngestionHealth("paused", since=self._paused_since, last_error=self._last_error)
        return IngestionHealth("running" if self._running else "stopped", last_error=self._last_error)

    def _pause(self, error: str) -> None:
        if self._paused_since is None:
            self._paused_since = datetime.now(UTC)
        self._last_error = error

    def _resume(self) -> None:
        self._paused_since = None

    async def track_partitions(self, assigned: Any) -> None:
        """Start watching newly assigned partitions from the group's committed offsets."""
        consumer = self._consumer
        for tp in assigned:
            committed: int | None = None
            if consumer is not None:
                with contextlib.suppress(Exception):
                    committed = await consumer.committed(tp)
            self._committed[tp] = committed

    def forget_partition(self, tp: Any) -> None:
        self._committed.pop(tp, None)
        self._watch.forget(tp.partition)

    def _observe(self, consumer: AIOKafkaConsumer) -> None:
        """Feed the liveness watch: each assigned partition's log end (from the last fetch)
        against the offset this consumer committed."""
        now = datetime.now(UTC)
        for tp in consumer.assignment():
            end = consumer.highwater(tp)
            if end is None:
                continue
            committed = self._committed.get(tp)
            self._watch.update(tp.partition, committed=committed, lag=max(0, end - (committed or 0)), now=now)

    async def run(self) -> None:
        """Consume until ``stop()``; reconnects (with backoff) after broker or database failures."""
        backoff = 0.5
        self._running = True
        try:
            while not self._stopping.is_set():
                try:
                    await self._session()
                    backoff = 0.5
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # noqa: BLE001 - the consumer must outlive any single failure
                    self.stats.failures += 1
                    self._pause(_describe(exc))
                    log.warning(
                        "tracking consumer failed (%s); restarting in %.1fs", _describe(exc), backoff, exc_info=False
                    )
                    await self._sleep(backoff)
                    backoff = min(backoff * 2, 10.0)
        finally:
            self._running = False

    async def _sleep(self, seconds: float) -> None:
        """Sleep, but wake up at once on ``stop()``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

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
            stats = self.stats
            clock = time.perf_counter
            while not self._stopping.is_set():
                started = clock()
                batch = await consumer.getmany(timeout_ms=500, max_records=self.max_records)
                fetched = clock()
                stats.fetch_seconds += fetched - started
                self._observe(consumer)
                if not batch:
                    if writing is None or writing.done():
                        self._resume()  # reachable, and nothing waits to be written
                    continue
                records = [r for rs in batch.values() for r in rs]
                offsets = {tp: rs[-1].offset + 1 for tp, rs in batch.items() if rs}
                self._count_redelivered(batch)
                catalog = await self._catalog()
                # Validation and routing (CPU) overlap with the previous batch's database write.
                try:
                    prepared: PreparedBatch | None = self._prepare(records, catalog)
                except Exception as exc:
                    if not is_poison(exc):
                        raise
                    prepared = None  # a message breaks preparation: the write isolates it
                prepared_at = clock()
                stats.prepare_seconds += prepared_at - fetched
                if writing is not None:
                    await writing
                stats.backpressure_seconds += clock() - prepared_at
                writing = asyncio.create_task(self._write(consumer, records, prepared, offsets))
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

    def _count_redelivered(self, batch: dict[Any, list[Any]]) -> None:
        fetched = self._fetched
        for tp, records in batch.items():
            if not records:
                continue
            highest = fetched.get(tp, -1)
            if records[0].offset <= highest:
                self.stats.redelivered += sum(1 for r in records if r.offset <= highest)
            fetched[tp] = max(highest, records[-1].offset)

    def _prepare(self, messages: list[Any], catalog: CatalogIndex) -> PreparedBatch:
        return prepare_batch(
            messages, catalog=catalog, postgres=self._postgres, enforce_principal=self.enforce_principal
        )

    async def _write(
        self,
        consumer: AIOKafkaConsumer,
        messages: list[Any],
        prepared: PreparedBatch | None,
        offsets: dict[Any, int],
    ) -> None:
        backoff = 0.5
        while True:
            async with self.batch_lock:
                started = time.perf_counter()
                try:
                    result = await self._store_isolating(messages, prepared)
                except DeadLetterQueueUnavailable as exc:
                    failure: DeadLetterQueueUnavailable | None = exc
                else:
                    failure = None
                    self.stats.database_seconds += time.perf_counter() - started
                    # committed in the database: only now the offsets (in order, by the committer task)
                    self._commit_offsets(consumer, offsets)
            if failure is None:
                break
            # Rolled back: nothing of the batch is stored, its offsets are not committed. Wait
            # outside the lock (a rebalance may proceed) and try again; stop() ends the wait.
            self.stats.dlq_retries += 1
            self._pause(f"dead-letter topic {self.dlq_topic!r} unreachable: {failure}")
            log.warning("dead-letter topic unreachable (%s); batch rolled back, retrying in %.1fs", failure, backoff)
            await self._drop_producer()
            await self._sleep(backoff)
            if self._stopping.is_set():
                raise failure
            backoff = min(backoff * 2, 10.0)
            prepared = None  # re-routed with the catalog current at the retry
        self._resume()
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

    async def _store_isolating(self, messages: list[Any], prepared: PreparedBatch | None) -> BatchResult:
        """Store ``messages``; if the database (or preparation) refuses them for their data,
        bisect until each refused message is alone, and dead-letter it with the reason.

        Each half is committed on its own; a crash in between re-delivers the whole batch and
        the ``event_id`` key and the dead letters' unique source offset absorb what is repeated.
        """
        try:
            if prepared is None:
                prepared = self._prepare(messages, self._catalog_index)
            return await self._store(messages, prepared)
        except DeadLetterQueueUnavailable:
            raise
        except Exception as exc:
            if not is_poison(exc):
                raise
            if len(messages) == 1:
                return await self._dead_letter_alone(messages[0], exc)
            self.stats.bisections += 1
            log.warning("a batch of %d was refused (%s); bisecting to isolate it", len(messages), _describe(exc))
        middle = len(messages) // 2
        first = await self._store_isolating(messages[:middle], None)
        return first.merge(await self._store_isolating(messages[middle:], None))

    async def _store(self, messages: list[Any], prepared: PreparedBatch) -> BatchResult:
        """One attempt: the single-statement fast path, else the transactional path, which
        locks the catalog version and re-routes the batch if the catalog changed meanwhile."""
        conn = self._conn
        assert conn is not None, "no database connection: the session is not running"
        # Usual case: one self-committing statement; None when it does not apply (rejects, a
        # redelivered event_id, a changed catalog, SQLite): then the transactional path.
        result = await store_new_batch(conn, prepared)
        if result is not None:
            self.stats.fast_batches += 1
            return result
        async with conn.begin():
            version = await lock_catalog_version(conn)
            if version != prepared.catalog_version:
                self.stats.rerouted += 1
                self._catalog_index = await self.catalog.get(conn, version=version)
                self._catalog_checked_at = time.monotonic()
                prepared = self._prepare(messages, self._catalog_index)
            result = await store_batch(conn, prepared)
            if result.dead_letters:
                # acknowledged by the DLQ before the database commit (else rolled back and retried)
                await self._publish_dead_letters(result.dead_letters)
        return result

    async def _dead_letter_alone(self, message: Any, exc: BaseException) -> BatchResult:
        """Dead-letter one message the database (or preparation) refuses, with the reason."""
        letter = dead_letter(
            RawMessage(message.topic, message.partition, message.offset, message.key, message.value),
            _UNSTORABLE_PREFIX + _describe(exc),
            datetime.now(UTC),
        )
        log.warning("message %s/%d@%d dead-lettered: %s", letter.topic, letter.partition, letter.offset, letter.reason)
        conn = self._conn
        assert conn is not None, "no database connection: the session is not running"
        async with conn.begin():
            new = await record_dead_letters(conn, [letter])
            if new:
                await self._publish_dead_letters(new)
        return BatchResult(received=1, dead_letters=new)

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
            else:
                now = datetime.now(UTC)
                for tp, offset in offsets.items():
                    self._committed[tp] = offset
                    end = consumer.highwater(tp)
                    lag = max(0, end - offset) if end is not None else 0
                    self._watch.update(tp.partition, committed=offset, lag=lag, now=now)
            self.stats.offset_commit_seconds += time.perf_counter() - started

    async def flush_offsets(self) -> None:
        """Wait until the offsets of every batch written so far are committed to the broker."""
        committer = self._committer
        if committer is not None:
            await asyncio.shield(committer)

    async def _publish_dead_letters(self, letters: list[DeadLetter]) -> None:
        """Send ``letters`` and wait for the acknowledgements; ``DeadLetterQueueUnavailable`` when
        the topic cannot be reached within ``dlq_timeout`` (the caller rolls back and retries)."""
        try:
            if self._producer is None:
                self._producer = await create_producer(
                    self.bootstrap_servers,
                    idempotence=self.idempotence,
                    client_id="tandem-tracking-dlq",
                    security=self.security,
                )
            await asyncio.wait_for(self._send_dead_letters(letters), timeout=self.dlq_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - any failure to deliver means: not acknowledged
            raise DeadLetterQueueUnavailable(_describe(exc)) from exc

    async def _send_dead_letters(self, letters: list[DeadLetter]) -> None:
        futures = [
            await self._producer.send(
                self.dlq_topic,
                letter.model_dump_json().encode(),
                key=letter.key.encode() if letter.key is not None else None,
            )
            for letter in letters
        ]
        await asyncio.gather(*futures)

    async def _drop_producer(self) -> None:
        """After a failed delivery: a new producer next time (a stuck one does not recover)."""
        producer, self._producer = self._producer, None
        if producer is not None:
            with contextlib.suppress(Exception):
                await producer.stop()


def _describe(exc: BaseException) -> str:
    """A short, readable cause: the driver's first line, without SQLAlchemy's statement and
    parameters (which can be megabytes of arrays)."""
    cause: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    text = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    name = type(cause).__name__
    return f"{name}: {text}"[:500] if text else name


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
    """Log end offset minus the group's committed offset, per partition of ``topic``; never negative.

    The log end is the larger of the broker's ``ListOffsets`` answer and the high-water mark of a
    one-record fetch from the committed offset: the embedded broker (tansu) answers ``ListOffsets``
    with a wrong, small offset (1 for a partition holding 857 records, so the lag was negative),
    while its fetch responses carry the right high-water mark, as Apache Kafka's do.
    """
    options = client_options(security)
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers, request_timeout_ms=int(timeout * 1000), **options)
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        enable_auto_commit=False,
        max_partition_fetch_bytes=1024,
        fetch_max_wait_ms=100,
        **options,
    )
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
            highwater = await _fetched_highwater(reader, tps, committed, deadline=timeout / 2)
    finally:
        with contextlib.suppress(Exception):
            await reader.stop()
        with contextlib.suppress(Exception):
            await admin.close()
    lags = []
    for tp in tps:
        meta = committed.get(tp)
        done = meta.offset if meta is not None and meta.offset >= 0 else None
        end = max(int(ends.get(tp, 0)), highwater.get(tp, 0))
        lags.append(PartitionLag(topic, tp.partition, end, done, max(0, end - (done or 0))))
    return lags


async def _fetched_highwater(
    reader: AIOKafkaConsumer, tps: list[TopicPartition], committed: dict[Any, Any], *, deadline: float
) -> dict[TopicPartition, int]:
    """Each partition's high-water mark from a small fetch at the group's committed offset (the
    partitions that answer before ``deadline`` seconds; the others keep ``ListOffsets``' end)."""
    reader.assign(tps)
    for tp in tps:
        meta = committed.get(tp)
        if meta is not None and meta.offset >= 0:
            reader.seek(tp, meta.offset)
        else:
            await reader.seek_to_beginning(tp)
    found: dict[TopicPartition, int] = {}
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(deadline):
            while len(found) < len(tps):
                await reader.getmany(timeout_ms=100, max_records=len(tps))
                for tp in tps:
                    mark = reader.highwater(tp)
                    if mark is not None:
                        found[tp] = mark
    return found
