"""The migration that re-keys the stored metric events by ``event_id`` (a ``uuid`` on PostgreSQL)
carries every stored event over, field for field, keeps deduplicating, and goes back down intact."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import select, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError

from services.common.db import create_engine
from services.common.migrations import alembic_config, upgrade
from services.tracking.models import TrackingMetricEvent

BEFORE = "e3a8c1d7f5b2"
COLUMNS = (
    "event_id, source, department_id, metric, employee_id, value, unit, occurred_at, received_at, status, dimensions"
)
NAMES = [name.strip() for name in COLUMNS.split(",")]
NOW = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)
STORED = [
    {
        "event_id": str(uuid.uuid4()),
        "source": "mes-line-3",
        "department_id": "production",
        "metric": "production.defect_rate",
        "employee_id": None,
        "value": 0.25,
        "unit": "%",
        "occurred_at": NOW - timedelta(days=3, microseconds=17),
        "received_at": NOW,
        "status": status,
        "dimensions": '{"line": "3"}' if status == "applied" else None,
    }
    for status in ("applied", "unmapped", "deferred", "rejected")
]


def _downgrade(connection: Connection, revision: str) -> None:
    config = alembic_config("tracking")
    config.attributes["connection"] = connection
    command.downgrade(config, revision)


async def _events(url: str) -> list[dict[str, object]]:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            table = TrackingMetricEvent.__table__
            rows = (await conn.execute(select(*(table.c[name] for name in NAMES)))).mappings().all()
    finally:
        await engine.dispose()
    events = []
    for row in rows:
        event = {**row, "event_id": str(row["event_id"])}
        for name in ("occurred_at", "received_at"):
            value = event[name]
            assert isinstance(value, datetime)
            event[name] = value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite keeps no zone
        events.append(event)
    return sorted(events, key=lambda e: str(e["status"]))


async def test_stored_events_are_carried_over_and_still_deduplicated(database_url: str) -> None:
    await upgrade("tracking", database_url, BEFORE)
    engine = create_engine(database_url)
    values = ", ".join(f":{name}" for name in NAMES)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(f"INSERT INTO tracking_metric_event ({COLUMNS}) VALUES ({values})"), STORED)
    finally:
        await engine.dispose()

    await upgrade("tracking", database_url)
    expected = sorted(STORED, key=lambda e: str(e["status"]))
    assert await _events(database_url) == expected

    engine = create_engine(database_url)
    try:
        with pytest.raises(IntegrityError):
            async with engine.begin() as conn:
                await conn.execute(
                    text(f"INSERT INTO tracking_metric_event ({COLUMNS}) VALUES ({values})"),
                    {**STORED[0], "value": 9.0},
                )
        async with engine.begin() as conn:
            await conn.run_sync(_downgrade, BEFORE)
    finally:
        await engine.dispose()
    assert await _events(database_url) == expected
