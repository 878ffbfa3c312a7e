"""Ingestion health for ops: consumer lag, liveness, dead letters, conflicting duplicates and
unmapped events."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.kafka import KafkaSecurity
from services.common.settings import Settings
from services.tracking.consumer import TrackingConsumer, consumer_lag
from services.tracking.ingest.liveness import IngestionHealth, LagWatch
from services.tracking.ingest.store import CONFLICT_REASON_PREFIX
from services.tracking.models import TrackingDeadLetter, TrackingMetricEvent
from services.tracking.rules import EventStatus, as_utc
from services.tracking.schemas import DeadLetterRead, OpsIngestion, PartitionLagRead, UnmappedMetric

__all__ = ["conflicting_duplicates", "dead_letter_summary", "ingestion_health", "ops_ingestion", "unmapped_summary"]


async def dead_letter_summary(*, session: AsyncSession, latest: int = 10) -> tuple[int, list[DeadLetterRead]]:
    count = (await session.execute(select(func.count()).select_from(TrackingDeadLetter))).scalar_one()
    rows = (
        await session.scalars(
            select(TrackingDeadLetter)
            .order_by(TrackingDeadLetter.rejected_at.desc(), TrackingDeadLetter.id.desc())
            .limit(latest)
        )
    ).all()
    return int(count), [
        DeadLetterRead(
            topic=r.topic, partition=r.partition, offset=r.offset, reason=r.reason, rejected_at=as_utc(r.rejected_at)
        )
        for r in rows
    ]


async def unmapped_summary(*, session: AsyncSession, top: int = 20) -> tuple[int, int, list[UnmappedMetric]]:
    """(events stored, unmapped events, the most frequent unmapped metric keys)."""
    stored = (await session.execute(select(func.count()).select_from(TrackingMetricEvent))).scalar_one()
    rows = (
        await session.execute(
            select(TrackingMetricEvent.metric, TrackingMetricEvent.department_id, func.count().label("n"))
            .where(TrackingMetricEvent.status == EventStatus.UNMAPPED)
            .group_by(TrackingMetricEvent.metric, TrackingMetricEvent.department_id)
            .order_by(func.count().desc())
        )
    ).all()
    unmapped = sum(int(r.n) for r in rows)
    return (
        int(stored),
        unmapped,
        [UnmappedMetric(metric=r.metric, department_id=r.department_id, events=int(r.n)) for r in rows[:top]],
    )


async def conflicting_duplicates(*, session: AsyncSession) -> int:
    """Dead letters of events whose ``event_id`` was stored before with other content."""
    query = select(func.count()).where(TrackingDeadLetter.reason.startswith(CONFLICT_REASON_PREFIX))
    return int((await session.execute(query)).scalar_one())


def ingestion_health(
    *, consumer: TrackingConsumer | None, watch: LagWatch | None, lag_known: bool, now: datetime
) -> IngestionHealth:
    """This process's consumer's health, else (or when it is worse) what the group's committed
    offsets in Kafka show (``watch``, fed by each ops call): the earlier stall wins."""
    own = consumer.health(now) if consumer is not None else None
    seen = watch.stalled(now) if watch is not None and lag_known else None
    if seen is not None and (own is None or own.state != "stalled" or (own.since or now) > seen.since):
        error = own.last_error if own is not None else None
        return IngestionHealth("stalled", since=seen.since, partition=seen.partition, lag=seen.lag, last_error=error)
    if own is not None:
        return own
    return IngestionHealth("running" if lag_known else "unknown")


async def ops_ingestion(
    *,
    session: AsyncSession,
    settings: Settings,
    group_id: str,
    topic: str,
    consumer: TrackingConsumer | None = None,
    watch: LagWatch | None = None,
) -> OpsIngestion:
    """The consumer group's lag per partition of ``topic`` (read from Kafka; when that fails, the
    reason instead, so ops still sees the database figures), liveness (``ingestion_health``), dead
    letters, conflicting duplicates and unmapped events."""
    partitions: list[PartitionLagRead] = []
    lag_error: str | None = None
    try:
        lags = await consumer_lag(
            settings.kafka_bootstrap_servers,
            group_id=group_id,
            topic=topic,
            timeout=5.0,
            security=KafkaSecurity.from_settings(settings),
        )
        partitions = [
            PartitionLagRead(partition=p.partition, end_offset=p.end_offset, committed=p.committed, lag=p.lag)
            for p in lags
        ]
    except Exception as exc:  # noqa: BLE001 - ops still sees the database figures
        lag_error = f"could not read the consumer lag from Kafka: {type(exc).__name__}: {exc}"
    now = datetime.now(UTC)
    if watch is not None and lag_error is None:
        for p in partitions:
            watch.update(p.partition, committed=p.committed, lag=p.lag, now=now)
    health = ingestion_health(consumer=consumer, watch=watch, lag_known=lag_error is None, now=now)
    dead_letters, latest = await dead_letter_summary(session=session)
    stored, unmapped, unmapped_metrics = await unmapped_summary(session=session)
    return OpsIngestion(
        conflicting_duplicates=await conflicting_duplicates(session=session),
        ingestion_state=health.state,
        ingestion_status=health.message,
        stalled_since=health.since if health.state == "stalled" else None,
        stalled_partition=health.partition,
        last_error=health.last_error,
        consumer_group=group_id,
        topic=topic,
        partitions=partitions,
        total_lag=sum(p.lag for p in partitions) if lag_error is None else None,
        lag_error=lag_error,
        events_stored=stored,
        dead_letters=dead_letters,
        latest_dead_letters=latest,
        unmapped_events=unmapped,
        unmapped_metrics=unmapped_metrics,
    )
