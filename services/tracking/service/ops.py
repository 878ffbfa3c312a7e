"""Ingestion health for ops: consumer lag, dead letters and unmapped events."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.common.kafka import KafkaSecurity
from services.common.settings import Settings
from services.tracking.consumer import consumer_lag
from services.tracking.models import TrackingDeadLetter, TrackingMetricEvent
from services.tracking.rules import EventStatus, as_utc
from services.tracking.schemas import DeadLetterRead, OpsIngestion, PartitionLagRead, UnmappedMetric

__all__ = ["dead_letter_summary", "ops_ingestion", "unmapped_summary"]


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


async def ops_ingestion(*, session: AsyncSession, settings: Settings, group_id: str, topic: str) -> OpsIngestion:
    """The consumer group's lag per partition of ``topic`` (read from Kafka; when that fails, the
    reason instead, so ops still sees the database figures), dead letters and unmapped events."""
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
    dead_letters, latest = await dead_letter_summary(session=session)
    stored, unmapped, unmapped_metrics = await unmapped_summary(session=session)
    return OpsIngestion(
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
