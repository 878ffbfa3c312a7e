"""``ingest_batch`` against real SQLite and PostgreSQL: dedup, exact aggregates, DLQ rows, unmapped, late data."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from contracts.goals import Aggregation, Direction, GoalLevel, KpiCatalog, KpiDefinition
from contracts.tracking import LateDataPolicy
from services.common.db import create_engine, create_session_factory
from services.common.migrations import upgrade
from services.tracking import service
from services.tracking.ingest import (
    RawMessage,
    ingest_batch,
    load_catalog,
    prepare_batch,
    store_batch,
    store_new_batch,
)
from services.tracking.models import TrackingDeadLetter, TrackingKpi, TrackingKpiBucket, TrackingMetricEvent

T0 = datetime(2026, 2, 1, 9, tzinfo=UTC)


def kpi(kpi_id: str, metric: str, aggregation: Aggregation, **extra: Any) -> KpiDefinition:
    return KpiDefinition(
        kpi_id=kpi_id,
        level=GoalLevel.DEPARTMENT,
        name=kpi_id,
        metric=metric,
        unit="x",
        aggregation=aggregation,
        direction=Direction.HIGHER_IS_BETTER,
        start_value=0,
        target_value=100,
        owner_department_id=metric.split(".")[0],
        update_frequency_hours=24,
        department_id=metric.split(".")[0],
        **extra,
    )


def message(offset: int, payload: dict[str, Any] | bytes, topic: str = "metrics.v1") -> RawMessage:
    value = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    return RawMessage(topic=topic, partition=0, offset=offset, key=b"k", value=value)


def metric_event(metric: str, value: float, occurred_at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "source": "test",
        "department_id": metric.split(".")[0],
        "metric": metric,
        "value": value,
        "unit": "x",
        "occurred_at": occurred_at.isoformat(),
        **extra,
    }


async def test_batches_are_deduplicated_and_aggregates_exact_in_any_order(database_url: str) -> None:
    await upgrade("tracking", database_url)
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    try:
        async with sessions() as session:
            await service.replace_catalog(
                session=session,
                catalog=KpiCatalog(
                    cycle_id="c1",
                    period_start=date(2026, 1, 1),
                    period_end=date(2026, 3, 31),
                    kpis=[
                        kpi("rev-sum", "sales.revenue", Aggregation.SUM),
                        kpi("rev-avg", "sales.revenue", Aggregation.AVG),
                        kpi("rev-last", "sales.revenue", Aggregation.LAST),
                        kpi("rev-min", "sales.revenue", Aggregation.MIN),
                        kpi("rev-max", "sales.revenue", Aggregation.MAX),
                        kpi("rev-count", "sales.revenue", Aggregation.COUNT),
                        kpi("defects", "production.defect_rate", Aggregation.AVG),
                    ],
                ),
                late_data_policy=LateDataPolicy.REJECT,
                grace_hours=1,
                check_in_cadence_days=14,
            )
        rng = random.Random(7)
        events = [
            metric_event("sales.revenue", float(rng.randint(1, 1000)), T0 + timedelta(minutes=rng.randint(0, 5000)))
            for _ in range(300)
        ]
        latest = max(events, key=lambda e: (e["occurred_at"], e["event_id"]))
        shuffled = events[:]
        rng.shuffle(shuffled)
        messages = [message(i, e) for i, e in enumerate(shuffled)]
        bad = [
            message(1000, b"{broken"),
            message(1001, metric_event("sales.revenue", 1.0, datetime(2026, 5, 1, tzinfo=UTC))),  # late -> reject
            message(1002, metric_event("marketing.leads", 3.0, T0)),  # unmapped
        ]
        async with engine.connect() as conn:
            async with conn.begin():
                catalog = await load_catalog(conn)
            # three overlapping batches: the middle one re-delivers half of the first
            for batch in (messages[:200] + bad, messages[100:250], messages[150:]):
                async with conn.begin():
                    await ingest_batch(conn, batch, catalog=catalog)
            async with conn.begin():
                again = await ingest_batch(conn, messages + bad, catalog=catalog)
        assert again.inserted == 0 and again.duplicates == 302
        # every dead letter of the re-read batch is recorded already: none is published twice
        assert again.dead_letters == []

        async with sessions() as session:
            rows = {k.kpi_id: k for k in (await session.scalars(select(TrackingKpi))).all()}
            values = [e["value"] for e in events]
            assert rows["rev-sum"].value_sum == sum(values)
            assert rows["rev-count"].event_count == 300
            export = {a.kpi_id: a for a in (await service.progress_export(session=session, cycle_id="c1")).actuals}
            assert export["rev-sum"].actual_value == sum(values)
            assert export["rev-avg"].actual_value == sum(values) / 300
            assert export["rev-min"].actual_value == min(values)
            assert export["rev-max"].actual_value == max(values)
            assert export["rev-count"].actual_value == 300
            assert export["rev-last"].actual_value == latest["value"]
            assert export["defects"].actual_value is None and export["defects"].event_count == 0
            stored = (await session.execute(select(func.count()).select_from(TrackingMetricEvent))).scalar_one()
            assert stored == 302  # 300 + the late (rejected) one + the unmapped one
            letters = (await session.scalars(select(TrackingDeadLetter).order_by(TrackingDeadLetter.offset))).all()
            assert [d.offset for d in letters] == [1000, 1001]
            assert letters[0].reason.startswith("message is not valid JSON")
            assert "late-data policy is 'reject'" in letters[1].reason
            total, unmapped, metrics = await service.unmapped_summary(session=session)
            assert unmapped == 1 and metrics[0].metric == "marketing.leads"
    finally:
        await engine.dispose()


async def test_a_kpi_added_later_is_backfilled_from_stored_events(database_url: str) -> None:
    await upgrade("tracking", database_url)
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    catalog = KpiCatalog(
        cycle_id="c1",
        period_start=date(2026, 1, 1),
        period_end=date(2026, 3, 31),
        kpis=[kpi("output", "production.output_units", Aggregation.SUM)],
    )
    try:
        async with sessions() as session:
            await service.replace_catalog(
                session=session,
                catalog=catalog,
                late_data_policy=LateDataPolicy.ACCEPT,
                grace_hours=1,
                check_in_cadence_days=14,
            )
        async with engine.connect() as conn, conn.begin():
            index = await load_catalog(conn)
            await ingest_batch(
                conn,
                [
                    message(i, metric_event(m, 2.0, T0))
                    for i, m in enumerate(["production.output_units", "it.uptime"] * 5)
                ],
                catalog=index,
            )
        catalog.kpis.append(kpi("uptime", "it.uptime", Aggregation.AVG))
        async with sessions() as session:
            for _ in range(2):  # idempotent: the second PUT changes nothing
                accepted = await service.replace_catalog(
                    session=session,
                    catalog=catalog,
                    late_data_policy=LateDataPolicy.ACCEPT,
                    grace_hours=1,
                    check_in_cadence_days=14,
                )
            assert accepted.backfilled_events == 0
            export = {a.kpi_id: a for a in (await service.progress_export(session=session, cycle_id="c1")).actuals}
            assert export["output"].actual_value == 10.0 and export["uptime"].actual_value == 2.0
            assert export["uptime"].event_count == 5
            assert (await service.unmapped_summary(session=session))[1] == 0
    finally:
        await engine.dispose()


async def test_the_single_statement_path_matches_the_transactional_one(database_url: str) -> None:
    """``store_new_batch`` (one self-committing statement, PostgreSQL) stores and aggregates a clean
    batch exactly like ``store_batch``; a redelivery makes it refuse the whole batch (nothing
    applied) and the transactional path counts only the new events."""
    await upgrade("tracking", database_url)
    engine = create_engine(database_url)
    sessions = create_session_factory(engine)
    postgres = database_url.startswith("postgresql")
    try:
        async with sessions() as session:
            await service.replace_catalog(
                session=session,
                catalog=KpiCatalog(
                    cycle_id="c1",
                    period_start=date(2026, 1, 1),
                    period_end=date(2026, 3, 31),
                    kpis=[
                        kpi("rev-sum", "sales.revenue", Aggregation.SUM),
                        kpi("rev-last", "sales.revenue", Aggregation.LAST).model_copy(
                            update={"update_frequency_hours": 1}
                        ),
                        kpi("defects", "production.defect_rate", Aggregation.AVG),
                    ],
                ),
                late_data_policy=LateDataPolicy.ACCEPT,
                grace_hours=1,
                check_in_cadence_days=14,
            )
        rng = random.Random(11)
        events = [
            metric_event(
                rng.choice(["sales.revenue", "production.defect_rate", "marketing.leads"]),
                float(rng.randint(-50, 1000)),
                T0 + timedelta(minutes=rng.randint(0, 3000)),
            )
            for _ in range(400)
        ]
        events.append({**events[0], "event_id": str(uuid.uuid4())})  # a tie on occurred_at: event_id decides
        messages = [message(i, e) for i, e in enumerate(events)]
        paths = []
        async with engine.connect() as conn:
            async with conn.begin():
                catalog = await load_catalog(conn)
            # the second batch re-delivers 50 events of the first
            for batch, new in ((messages[:250], 250), (messages[200:300], 50), (messages[300:], 101)):
                prepared = prepare_batch(batch, catalog=catalog, postgres=postgres)
                result = await store_new_batch(conn, prepared)
                paths.append(result is not None)
                if result is None:
                    async with conn.begin():
                        result = await store_batch(conn, prepared)
                assert (result.inserted, result.duplicates) == (new, len(batch) - new)
        assert paths == ([True, False, True] if postgres else [False, False, False])

        async with sessions() as session:
            stored = (await session.execute(select(func.count()).select_from(TrackingMetricEvent))).scalar_one()
            assert stored == len(events)
            rows = {k.kpi_id: k for k in (await session.scalars(select(TrackingKpi))).all()}
            buckets = (await session.scalars(select(TrackingKpiBucket))).all()
        expected = (("rev-sum", "sales.revenue"), ("rev-last", "sales.revenue"), ("defects", "production.defect_rate"))
        for kpi_id, metric in expected:
            mine = [e for e in events if e["metric"] == metric]
            values = [e["value"] for e in mine]
            last = max(mine, key=lambda e: (datetime.fromisoformat(e["occurred_at"]), e["event_id"]))
            row = rows[kpi_id]
            assert (row.event_count, row.value_min, row.value_max) == (len(mine), min(values), max(values))
            assert abs(row.value_sum - sum(values)) < 1e-9
            assert (row.last_value, row.last_event_id) == (last["value"], last["event_id"])
            own = [b for b in buckets if b.kpi_id == kpi_id]
            assert sum(b.event_count for b in own) == len(mine)
            assert abs(sum(b.value_sum for b in own) - sum(values)) < 1e-9
            assert min(b.value_min for b in own) == min(values) and max(b.value_max for b in own) == max(values)
        assert len([b for b in buckets if b.kpi_id == "rev-last"]) > len([b for b in buckets if b.kpi_id == "rev-sum"])
    finally:
        await engine.dispose()
